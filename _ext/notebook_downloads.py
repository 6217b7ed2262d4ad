"""Sphinx extension that offers each executed chapter as a Jupyter notebook download.

sphinx-book-theme 1.3 lists an ``.ipynb`` entry in its download menu only when a launch
button (Binder, JupyterHub, Colab, Thebe) is configured, and this book has none because the site
must work offline. This extension copies the notebook that myst-nb executed, from the
``jupyter_execute`` folder next to the output folder, into ``_sources/`` and sets the
``ipynb_source`` page variable that the theme's download menu reads.

Nothing is copied when ``html_copy_source`` is false, because the download menu then offers no
sources at all.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def add_notebook_download(app, pagename, templatename, context, doctree):
    """Copy the page's executed notebook into _sources/ and name it in the page context."""
    if not app.config.html_copy_source:
        return

    # myst-nb 1.4 writes executed notebooks to <output folder>/../jupyter_execute/<docname>.ipynb.
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return

    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def setup(app):
    # sphinx-book-theme builds its download menu at priority 501, so this handler runs first.
    app.connect("html-page-context", add_notebook_download, priority=500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
