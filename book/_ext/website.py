"""Fixes that make the built book a self-contained, error-free website.

1. MathJax is served from the build itself, so that the site needs no CDN. Sphinx loads MathJax 3
   from a CDN by default; this extension points ``mathjax_path`` at a copy inside the build
   (``_static/mathjax/tex-mml-chtml.js``) and copies MathJax there from the
   ``django-static-mathjax`` package on PyPI (MathJax 3.2.2, the ``es5`` bundle with its fonts and
   lazily loaded extensions; it does not need Django). It is a normal requirement of the book
   (``requirements.txt``), so nothing is downloaded at build time. The other assets (the theme's
   fonts, icons and scripts) ship inside the theme. Thebe (live code) loads its library and kernel
   from the network only when a reader clicks its button.
2. MathJax is loaded on every page, not only on pages with math of their own: a section title with
   math (e.g. "The gradient $p - y$") also appears in the navigation of every other page.
3. Inline scripts are emitted once. Extensions that add an inline script (``add_js_file(None,
   body=...)``) during the build get it twice in Sphinx 7.4 (once registered as ``None``, once as
   ``''``), and sphinx-thebe's second ``const THEBE_JS_URL`` is a JavaScript error on every page.
4. Search finds Chinese words. Sphinx's English index keeps a run of Chinese characters as one
   word, so 损失 (loss) was not found inside 损失函数 or 交叉熵损失. The English search language is
   extended to cut Chinese runs into words with jieba (the standard Chinese segmenter), with every
   Chinese term of ``book/glossary.yml`` added to its dictionary; English words are indexed exactly
   as before.
5. A small style sheet (``static/lossbook-site.css``): the navigation never scrolls sideways, and
   the execution-status table fits the text column.
"""
from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import yaml
from sphinx.errors import ExtensionError
from sphinx.search.en import SearchEnglish

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
        raise ExtensionError(
            f"the installed MathJax has no {es5 / 'tex-mml-chtml.js'}; reinstall django-static-mathjax"
        )
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


def _dedupe_inline_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        key = (js.filename or "", tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


class SearchEnglishWithChinese(SearchEnglish):
    """English search, with runs of Chinese characters segmented into words by jieba."""

    glossary_terms: list[str] = []

    def init(self, options):
        super().init(options)
        import jieba

        jieba.setLogLevel(logging.WARNING)
        for term in self.glossary_terms:
            jieba.add_word(term)
        self._jieba = jieba

    def split(self, input):
        words = []
        for word in super().split(input):
            words.append(word)
            if _CJK.search(word):
                words.extend(w for w in self._jieba.cut_for_search(word) if w.strip() and w != word)
        return words


def _register_search(app, config):
    glossary = Path(app.srcdir) / "book" / "glossary.yml"
    if glossary.is_file():
        terms = yaml.safe_load(glossary.read_text(encoding="utf-8")).get("terms", [])
        SearchEnglishWithChinese.glossary_terms = [t["zh"] for t in terms if t.get("zh")]
    app.add_search_language(SearchEnglishWithChinese)


def _add_static(app):
    static = str(Path(__file__).parent / "static")
    if static not in app.config.html_static_path:
        app.config.html_static_path.append(static)


def setup(app):
    app.connect("config-inited", _use_local_mathjax, priority=900)
    app.connect("config-inited", _register_search)
    app.set_html_assets_policy("always")
    app.connect("builder-inited", _add_static)
    app.add_css_file("lossbook-site.css")
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _dedupe_inline_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
