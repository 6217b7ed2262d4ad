// Prepare a page for the Jupyter widget embed bundle served from _static/html-manager/.
// Sphinx loads this file before require.js and embed-amd.js on every page that contains widgets.
(function () {
  "use strict";

  // The bundle computes the URL of its font files from the RequireJS module URLs, which default
  // to paths relative to the page. A global `require` object defined before require.js loads is
  // its configuration, so these paths point every bundled module at _static/html-manager/.
  const bundleFolder = new URL("html-manager/", document.currentScript.src).href;
  const moduleFile = (name) => bundleFolder + name;
  window.require = {
    paths: {
      "@jupyter-widgets/base": moduleFile("base"),
      "@jupyter-widgets/base7": moduleFile("base7"),
      "@jupyter-widgets/controls": moduleFile("controls"),
      "@jupyter-widgets/controls7": moduleFile("controls7"),
      "@jupyter-widgets/html-manager/dist": bundleFolder.slice(0, -1),
      "@jupyter-widgets/html-manager": moduleFile("html-manager"),
    },
  };

  // ipywidgets 8 typesets widget labels with the MathJax 2 call
  // MathJax.Hub.Queue(["Typeset", MathJax.Hub, element]), and the book loads MathJax 3, which has
  // no Hub. MathJax 3 replaces window.MathJax when its deferred script runs, so the bridge is
  // added at DOMContentLoaded, after deferred scripts and before the widgets render on load.
  document.addEventListener("DOMContentLoaded", function () {
    const mathjax = window.MathJax;
    if (!mathjax || mathjax.Hub || !mathjax.startup) {
      return;
    }
    mathjax.Hub = {
      Queue: function (...commands) {
        for (const command of commands) {
          if (Array.isArray(command) && command[0] === "Typeset" && command[2]) {
            mathjax.startup.promise = mathjax.startup.promise.then(() => mathjax.typesetPromise([command[2]]));
          }
        }
      },
    };
  });
})();
