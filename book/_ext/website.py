"""Serve MathJax from the built book itself, so that the site needs no CDN.

Sphinx loads MathJax 3 from a CDN by default. This extension points ``mathjax_path`` at a copy
inside the build (``_static/mathjax/tex-mml-chtml.js``) and copies MathJax there from the
``django-static-mathjax`` package on PyPI (MathJax 3.2.2, the ``es5`` bundle with its fonts and
lazily loaded extensions; it does not need Django). It is a normal requirement of the book
(``requirements.txt``), so nothing is downloaded at build time.

The other assets (the theme's fonts and icons, its scripts) already ship inside the theme. Thebe
(live code) loads its kernel from Binder only when a reader clicks its button.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

MATHJAX_ENTRY = "mathjax/tex-mml-chtml.js"


def mathjax_dir() -> Path:
    """The ``es5`` folder of the installed MathJax copy (the files a browser loads)."""
    try:
        import mathjax  # the import name of the PyPI package django-static-mathjax
    except ImportError as err:
        raise ExtensionError(
            "MathJax is not installed: `pip install django-static-mathjax` (it is in requirements.txt; "
            "`bash scripts/install.sh` installs everything)"
        ) from err
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise ExtensionError(f"the installed MathJax has no {es5 / 'tex-mml-chtml.js'}; reinstall django-static-mathjax")
    return es5


def _use_local_mathjax(app, config):
    # A relative mathjax_path is resolved against the build's _static folder by Sphinx.
    config.mathjax_path = MATHJAX_ENTRY
    mathjax_dir()  # fail early, with a clear message, if it is missing


def _copy_mathjax(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    source = mathjax_dir()
    stamp = target / ".copied-from"
    if stamp.is_file() and stamp.read_text() == str(source):
        return  # already there from a previous build
    shutil.copytree(source, target, dirs_exist_ok=True)
    stamp.write_text(str(source))


def setup(app):
    app.connect("config-inited", _use_local_mathjax, priority=900)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
