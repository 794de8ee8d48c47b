"""references.bib and the book's citations agree: no missing key, no unused entry, one list per chapter."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

CITE_ROLE = re.compile(r"\{(?:foot)?cite(?::[a-z]+)?\}`([^`]+)`")


def bib_keys() -> list[str]:
    return re.findall(r"^@\w+\s*\{\s*([^,\s]+)\s*,", (ROOT / "references.bib").read_text(encoding="utf-8"), flags=re.M)


def sources() -> list[Path]:
    return sorted(
        p for p in BOOK.rglob("*") if p.suffix in (".md", ".ipynb") and ".ipynb_checkpoints" not in p.parts
    )


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def citations() -> dict[str, set[str]]:
    """Cited key -> the files that cite it."""
    cited: dict[str, set[str]] = {}
    for path in sources():
        for group in CITE_ROLE.findall(markdown_of(path)):
            for key in group.split(","):
                key = re.sub(r"\{[^}]*\}", "", key).strip()  # {pre}key{post}
                if key:
                    cited.setdefault(key, set()).add(str(path.relative_to(ROOT)))
    return cited


def test_the_role_parser_sees_every_form():
    text = "{cite:p}`a, b` {cite:t}`c` {cite}`d` {footcite:p}`e` {cite:p}`{see}f{p. 3}`"
    keys = {re.sub(r"\{[^}]*\}", "", k).strip() for g in CITE_ROLE.findall(text) for k in g.split(",")}
    assert keys == {"a", "b", "c", "d", "e", "f"}


def test_references_bib_has_no_duplicate_keys():
    keys = [k.lower() for k in bib_keys()]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, f"references.bib defines these keys more than once: {dupes}"


def test_every_cited_key_is_in_references_bib():
    known = set(bib_keys())
    missing = {k: sorted(v) for k, v in citations().items() if k not in known}
    assert not missing, f"cited but not in references.bib: {missing}"


def test_every_entry_of_references_bib_is_cited():
    unused = sorted(set(bib_keys()) - set(citations()))
    assert not unused, (
        f"references.bib entries that no page cites: {unused}; cite each where its idea appears "
        "(or in the road map of book/index.md for a chapter not written yet), or remove it"
    )


def test_every_chapter_that_cites_has_a_reference_list():
    cited_folders = {Path(f).parent for files in citations().values() for f in files}
    lacking = []
    for folder in sorted(cited_folders - {Path("book")}):  # book/*.md: book/bibliography.md lists them
        index = ROOT / folder / "index.md"
        if not index.is_file() or "{chapter-bibliography}" not in index.read_text(encoding="utf-8"):
            lacking.append(f"{folder}/index.md")
    assert not lacking, f"chapters that cite works but have no 'References' section (chapter-bibliography): {lacking}"


def test_the_book_has_one_bibliography_of_everything_cited():
    text = (BOOK / "bibliography.md").read_text(encoding="utf-8")
    assert "{bibliography}" in text
    others = [str(p.relative_to(ROOT)) for p in sources() if p.name != "bibliography.md" and "{bibliography}" in markdown_of(p)]
    assert not others, f"only book/bibliography.md has a bibliography directive (chapters use chapter-bibliography): {others}"


def test_references_bib_parses_and_every_entry_is_complete():
    """A merge that drops a brace makes the whole bibliography unreadable for Sphinx: parse it here."""
    from pybtex.database import parse_file

    db = parse_file(str(ROOT / "references.bib"))
    assert len(db.entries) == len(bib_keys())
    for key, entry in db.entries.items():
        assert "title" in entry.fields and "year" in entry.fields, f"{key} lacks a title or a year"
