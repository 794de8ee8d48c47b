"""The glossary data file (book/glossary.yml), its directive, and the book's {term} links to it."""
from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
GLOSSARY = BOOK / "glossary.yml"

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")


def entries() -> list[dict]:
    return yaml.safe_load(GLOSSARY.read_text(encoding="utf-8"))["terms"]


def load_directive_module():
    spec = importlib.util.spec_from_file_location("glossary_yaml", BOOK / "_ext" / "glossary_yaml.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("glossary_yaml", module)
    spec.loader.exec_module(module)
    return module


def test_the_file_is_a_list_of_terms():
    terms = entries()
    assert isinstance(terms, list) and len(terms) >= 50, "the glossary should cover the whole book"
    for t in terms:
        assert isinstance(t, dict), f"not a mapping: {t!r}"
        unknown = set(t) - {"en", "zh", "definition", "see"}
        assert not unknown, f"{t.get('en')!r} has unknown fields {sorted(unknown)}"


@pytest.mark.parametrize("t", entries(), ids=lambda t: str(t.get("en")))
def test_entry_has_both_languages_and_a_definition(t):
    en, zh, definition = (str(t.get(k) or "").strip() for k in ("en", "zh", "definition"))
    assert en and LATIN.search(en), f"English term missing or without Latin letters: {en!r}"
    assert not CJK.search(en), f"the English field contains Chinese characters: {en!r}"
    assert zh and CJK.search(zh), f"{en!r}: the Chinese field must contain Chinese characters, got {zh!r}"
    assert len(definition) >= 20, f"{en!r}: the definition is missing or too short"
    assert definition[-1] in ".)", f"{en!r}: the definition should be a sentence ending with a full stop"
    assert ":" not in en and "\n" not in en, f"{en!r}: a term must be one line without a colon"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_duplicates(lang):
    seen: dict[str, str] = {}
    dups = []
    for t in entries():
        key = re.sub(r"\s+", " ", str(t[lang]).strip().lower())
        if key in seen:
            dups.append(t[lang])
        seen[key] = t["en"]
    assert not dups, f"terms listed twice ({lang}): {dups}"


def test_english_and_chinese_names_never_collide():
    """Both names become glossary terms, so an English name must not equal any Chinese one."""
    en = {t["en"].lower() for t in entries()}
    zh = {t["zh"].lower() for t in entries()}
    assert not en & zh


def book_sources() -> dict[str, str]:
    """The text of every MyST page and every notebook's markdown cells under book/."""
    texts = {}
    for path in sorted(BOOK.rglob("*")):
        if "_build" in path.parts or ".ipynb_checkpoints" in path.parts:
            continue
        if path.suffix == ".md":
            texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
        elif path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            texts[str(path.relative_to(ROOT))] = "\n".join(
                "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
            )
    return texts


TERM_ROLE = re.compile(r"\{term\}`([^`]+)`")


def referenced_terms(text: str) -> set[str]:
    """Targets of {term}`name` and {term}`shown text <name>`."""
    out = set()
    for body in TERM_ROLE.findall(text):
        m = re.search(r"<([^<>]+)>\s*$", body)
        out.add((m.group(1) if m else body).strip())
    return out


def test_term_role_parser():
    text = "a {term}`likelihood` and {term}`losses <loss function>`, not `{term}`"
    assert referenced_terms(text) == {"likelihood", "loss function"}


def test_every_term_reference_in_the_book_exists():
    # Sphinx glossary terms are matched case-insensitively, under their English or Chinese name.
    known = {t["en"].lower() for t in entries()} | {t["zh"].lower() for t in entries()}
    missing = {}
    for name, text in book_sources().items():
        bad = sorted(r for r in referenced_terms(text) if r.lower() not in known)
        if bad:
            missing[name] = bad
    assert not missing, f"{{term}} references with no glossary entry (add them to book/glossary.yml): {missing}"


def test_the_book_links_to_the_glossary():
    refs = set().union(*(referenced_terms(t) for t in book_sources().values()))
    assert refs, "no page links a term to the glossary"


def test_directive_loads_every_term_sorted():
    module = load_directive_module()
    terms = module.load_terms(GLOSSARY)
    assert len(terms) == len(entries())
    names = [t["en"].lower() for t in terms]
    assert names == sorted(names)
    assert callable(module.setup)


def test_directive_renders_a_glossary(tmp_path):
    """Build a one-page Sphinx project with the directive and look at the HTML."""
    pytest.importorskip("sphinx")
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    (src / "glossary.yml").write_text(GLOSSARY.read_text(encoding="utf-8"), encoding="utf-8")
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(BOOK / '_ext')!r})\nextensions = ['myst_parser', 'glossary_yaml']\n",
        encoding="utf-8",
    )
    # the book's pages are MyST Markdown, so the definitions are parsed as Markdown
    (src / "index.md").write_text(
        "# Glossary\n\n```{yaml-glossary} glossary.yml\n```\n\nSee {term}`likelihood` and {term}`交叉熵`.\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    app = Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html",
                 status=None, warning=None, freshenv=True, warningiserror=True)
    app.build()
    html = (out / "index.html").read_text(encoding="utf-8")
    for t in entries()[:5] + entries()[-5:]:
        assert t["zh"] in html, f"{t['en']!r} is not rendered"
    assert 'href="#term-likelihood"' in html
    assert html.count('class="reference internal" href="#term-') >= 2
