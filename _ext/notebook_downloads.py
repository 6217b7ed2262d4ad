"""Sphinx extension that offers each chapter as a Jupyter notebook download.

sphinx-book-theme 1.3 lists an ``.ipynb`` entry in its download menu only when a launch
button (Binder, JupyterHub, Colab, Thebe) is configured, and this book has none because the site
must work offline. This extension converts the chapter's MyST Markdown source to a notebook with
jupytext, writes it into ``_sources/`` and sets the ``ipynb_source`` page variable that the
theme's download menu reads. The notebook has no outputs: a reader runs it.

The executed notebooks in ``jupyter_execute/`` are not used, because myst-nb 1.4 writes them
without outputs when it takes a chapter from its execution cache.

Nothing is copied when ``html_copy_source`` is false, because the download menu then offers no
sources at all.
"""

from __future__ import annotations

from pathlib import Path

import jupytext


def add_notebook_download(app, pagename, templatename, context, doctree):
    """Write the page's source as a notebook into _sources/ and name it in the page context."""
    if not app.config.html_copy_source or pagename not in app.env.all_docs:
        return

    source = Path(app.env.doc2path(pagename))
    if source.suffix != ".md":
        return
    notebook = jupytext.read(source)
    # Only chapters carry a kernelspec in their jupytext front matter; plain pages are skipped.
    if "kernelspec" not in notebook.metadata:
        return

    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    jupytext.write(notebook, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    # sphinx-book-theme builds its download menu at priority 501, so this handler runs first.
    app.connect("html-page-context", add_notebook_download, priority=500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
