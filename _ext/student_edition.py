"""The student edition of the book: every exercise solution removed.

Run as a script, it writes the student edition's Jupyter Book configuration::

    python _ext/student_edition.py _config.yml _build/student/_config.yml _build/.jupyter_cache

The written file is the book's ``_config.yml`` with three changes: the title ends in "(student
edition)", the execution cache is the main build's cache (so no chapter runs twice), and this
module is loaded as a Sphinx extension. Loaded by Sphinx, the module

* removes every ``solution`` node, gated (``solution-start`` ... ``solution-end``) or not, after
  sphinx-exercise has merged the gated ones, so the prose, code cells and outputs of each
  solution are gone from the pages;
* turns off ``html_copy_source`` and the theme's download menu, because the chapter sources
  and notebooks contain the solutions.

NOTE: sphinx-exercise's own ``hide_solutions = True`` is not used, because sphinx-exercise
1.2.1 then fails the build on gated solutions ("departing unknown node type:
solution_end_node"), and every chapter uses gated solutions so that solutions can hold code cells.
"""

from __future__ import annotations

import sys
from pathlib import Path

EXTENSION_FOLDER = Path(__file__).resolve().parent


def remove_downloads(app, config):
    """Stop copying the sources, which contain the solutions, and hide the download menu."""
    config.html_copy_source = False
    config.html_theme_options = {**config.html_theme_options, "use_download_button": False}


def setup(app):
    from sphinx.transforms import SphinxTransform
    from sphinx_exercise.nodes import solution_node

    class RemoveSolutions(SphinxTransform):
        """Remove every solution node from the document."""

        # sphinx-exercise merges gated solutions into solution nodes at priority 10.
        default_priority = 100

        def apply(self):
            for node in list(self.document.findall(solution_node)):
                node.parent.remove(node)

    app.setup_extension("sphinx_exercise")
    app.add_transform(RemoveSolutions)
    app.connect("config-inited", remove_downloads)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def write_config(base_path: Path, output_path: Path, cache_path: Path) -> None:
    """Write the student edition's configuration, derived from the book's configuration."""
    import yaml

    config = yaml.safe_load(base_path.read_text(encoding="utf-8"))
    config["title"] = f"{config.get('title', 'The book')} (student edition)"
    config.setdefault("execute", {})["cache"] = str(cache_path.resolve())
    sphinx = config.setdefault("sphinx", {})
    # local_extensions puts the folder on sys.path. It also appends the name to Jupyter Book's
    # extension list, but sphinx.config.extensions replaces that list, so the name goes there too.
    sphinx.setdefault("local_extensions", {})["student_edition"] = str(EXTENSION_FOLDER)
    extensions = (sphinx.get("config") or {}).get("extensions")
    if extensions is not None and "student_edition" not in extensions:
        extensions.append("student_edition")

    output_path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Generated from {base_path} by {Path(__file__).name}; edit that file, not this one.\n"
    output_path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(f"usage: {sys.argv[0]} BOOK_CONFIG STUDENT_CONFIG EXECUTION_CACHE")
    write_config(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
