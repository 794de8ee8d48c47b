"""The book's structure: every notebook is in the TOC, output-free, and starts the same way."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for e in entries or []:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections"))
            walk(e.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def notebooks() -> list[Path]:
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)


def resolve(entry: str) -> Path | None:
    for suffix in (".ipynb", ".md"):
        p = ROOT / f"{entry}{suffix}"
        if p.exists():
            return p
    return None


def test_every_toc_entry_exists():
    missing = [e for e in toc_files() if resolve(e) is None]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"


def test_toc_has_no_duplicates():
    files = toc_files()
    assert len(files) == len(set(files))


def test_every_notebook_is_in_the_toc():
    listed = {str(ROOT / e) for e in toc_files()}
    orphans = [str(nb.relative_to(ROOT)) for nb in notebooks() if str(nb.with_suffix("")) not in listed]
    assert not orphans, f"notebooks missing from _toc.yml: {orphans}"


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: str(p.relative_to(BOOK)))
def test_notebook_is_committed_without_outputs(nb: Path):
    data = json.loads(nb.read_text())
    dirty = [i for i, c in enumerate(data["cells"]) if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{nb.name}: cells {dirty} have outputs or execution counts; clear them before committing"
    assert data["metadata"].get("kernelspec", {}).get("name") == "python3", f"{nb.name}: kernelspec must be python3"
    ids = [c.get("id") for c in data["cells"]]
    assert (data["nbformat"], data["nbformat_minor"]) >= (4, 5) and None not in ids and len(set(ids)) == len(ids), (
        f"{nb.name}: every cell needs a unique id (nbformat 4.5; a cell inserted by a script often has none); "
        f"cells without one: {[i for i, v in enumerate(ids) if v is None]}")


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: str(p.relative_to(BOOK)))
def test_notebook_first_code_cell_sets_up(nb: Path):
    cells = json.loads(nb.read_text())["cells"]
    code = next(("".join(c["source"]) for c in cells if c["cell_type"] == "code"), "")
    assert "lossbook" in code, f"{nb.name}: the first code cell must import lossbook"
    assert "seed_everything(" in code, f"{nb.name}: the first code cell must seed (lossbook.seed_everything)"
    assert "default_device()" in code, f"{nb.name}: the first code cell must pick device = lossbook.default_device()"


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: str(p.relative_to(BOOK)))
def test_notebook_never_pastes_lossbook_code(nb: Path):
    """The book shows lossbook's code with show_source; it never keeps a second copy."""
    import lossbook

    cells = json.loads(nb.read_text())["cells"]
    defined = set()
    for c in cells:
        if c["cell_type"] == "code":
            defined |= set(re.findall(r"^def (\w+)\(", "".join(c["source"]), flags=re.M))
    clashes = sorted(defined & set(lossbook.__all__))
    assert not clashes, f"{nb.name} defines functions with lossbook's names: {clashes}; use show_source"


def test_every_chapter_folder_has_an_index():
    for folder in BOOK.iterdir():
        if folder.is_dir() and not folder.name.startswith("_") and any(folder.glob("*.ipynb")):
            assert (folder / "index.md").exists(), f"{folder.name}/ needs an index.md"


def test_exercises_in_the_book_exist_and_every_exercise_is_used():
    from lossbook.exercises import registry

    used = set()
    for nb in notebooks():
        for c in json.loads(nb.read_text())["cells"]:
            used |= set(re.findall(r"check\(\s*[\"']([\w-]+)[\"']", "".join(c["source"])))
    known = set(registry())
    assert used <= known, f"notebooks check unknown exercises: {sorted(used - known)}"
    assert known <= used, f"exercises no notebook uses: {sorted(known - used)}"


def test_readme_usage_snippet_runs(capsys):
    """The README's "Using the package" example is run as a new user would paste it."""
    text = (ROOT / "README.md").read_text()
    m = re.search(r"## Using the package\n\n```python\n(.*?)```", text, re.S)
    assert m, "README.md lost its 'Using the package' code block"
    exec(compile(m.group(1), "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "✔ all" in out and "cases passed" in out, out


def test_chapters_are_numbered_and_their_index_pages_use_rubrics():
    """Equations, figures and exercises are numbered per chapter ("Exercise 2.3"): the chapter parts
    of the TOC are numbered, and a chapter's index page has rubrics, not numbered section headings,
    so that its first section is N.1 rather than N.6 after "What you will learn", "References"..."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc["parts"]:
        if part["caption"] != "Reference":
            assert part.get("numbered") is True, f"TOC part {part['caption']!r} must be numbered: true"
    headed = [str(p.relative_to(ROOT)) for p in sorted(BOOK.glob("*/index.md"))
              if re.search(r"^#{2,6} ", p.read_text(), flags=re.M)]
    assert not headed, f"chapter index pages with section headings (use ```{{rubric}} Title``` instead): {headed}"


def _fenced_directive_problems(markdown: str) -> list[str]:
    """Directives (```{name}) whose body holds a code fence as long as their own: it closes them early."""
    problems, lines = [], markdown.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(`{3,})\{([\w-]+)\}", line)
        if not m:
            continue
        fence = m.group(1)
        for inner in lines[i + 1:]:
            if re.match(r"^`{3,}\s*$", inner) and len(inner.strip()) >= len(fence):
                break  # the directive's own closing fence
            if re.match(r"^`{3,}\S", inner) and len(re.match(r"^`+", inner).group(0)) >= len(fence):
                problems.append(f"{{{m.group(2)}}} opened with {fence} holds the fence {inner.strip()!r}: "
                                f"open the directive with a longer fence (````{{{m.group(2)}}})")
                break
    return problems


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: str(p.relative_to(BOOK)))
def test_directives_are_not_closed_early_by_an_inner_code_fence(nb: Path):
    cells = json.loads(nb.read_text())["cells"]
    problems = [p for c in cells if c["cell_type"] == "markdown" for p in _fenced_directive_problems("".join(c["source"]))]
    assert not problems, f"{nb.name}: {problems}"


def test_fenced_directive_checker_catches_the_early_close():
    bad = "```{exercise} Title\n:label: x\ntext\n```python\ncode\n```\nmore\n```"
    good = "````{exercise} Title\n:label: x\n```python\ncode\n```\n````"
    assert _fenced_directive_problems(bad) and not _fenced_directive_problems(good)


ERRATA_FRAMING = re.compile(r"source notes|the notes\b|notes'|Correction:|\bE\d{2}\b|\bseed 00\d|the seed's")


@pytest.mark.parametrize("page", notebooks() + sorted(BOOK.glob("**/*.md")), ids=lambda p: str(p.relative_to(BOOK)))
def test_corrections_are_written_for_a_reader_who_never_saw_the_source(page: Path):
    """A correction is framed as the common mistake it is ("You will often see ..."), never as an
    errata log: no "source notes", no "Correction:" box titles, no erratum ids like E12."""
    if page.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in json.loads(page.read_text())["cells"] if c["cell_type"] == "markdown")
    else:
        text = page.read_text()
    found = sorted(set(ERRATA_FRAMING.findall(text)))
    assert not found, f"{page.relative_to(ROOT)}: errata-log framing {found}"


# Numbers in prose that are definitions, not results: (notebook, number) -> why it needs no computation.
DEFINITION_NUMBERS = {
    ("classification/imbalance_focal.ipynb", "0.25"): "RetinaNet's default α, a hyper-parameter",
    ("ranking/triplets.ipynb", "0.25"): "a wrong option of a predict-then-run exercise, not a claim",
    ("llm/next_token.ipynb", "0.69"): "a wrong option of a predict-then-run exercise (ln 2), not a claim",
}
_DECIMAL = re.compile(r"(?<![\w.])[-−]?\d+\.\d+(?![\w.])")


def _prose(markdown: str) -> str:
    """Markdown without what is not prose: code fences, math, inline code, glue roles, links, directive lines."""
    md = re.sub(r"^(`{3,}|~{3,})(?!\{)[^\n]*\n.*?^\1\s*$", " ", markdown, flags=re.S | re.M)  # code fences
    md = re.sub(r"^(`{3,}|:{3,})\{[^}]*\}.*$", " ", md, flags=re.M)  # directive lines (their bodies are prose)
    md = re.sub(r"^:[\w-]+:.*$", " ", md, flags=re.M)  # directive options
    md = re.sub(r"\$\$.*?\$\$", " ", md, flags=re.S)
    md = re.sub(r"\$[^$\n]+\$", " ", md)
    md = re.sub(r"\{glue(:\w+)?\}`[^`]*`", " ", md)
    md = re.sub(r"`[^`\n]+`", " ", md)
    md = re.sub(r"\]\([^)]*\)", "]", md)
    return re.sub(r"https?://\S+", " ", md)


def _significant_digits(number: str) -> int:
    return len(number.lstrip("-−").replace(".", "").lstrip("0").rstrip("0"))


def unproven_numbers(cells: list[dict]) -> list[str]:
    """Decimal numbers (two or more significant digits) in Markdown cells that are neither glued nor
    written in the code cell right before or after them (where they are computed or asserted)."""
    sources = ["".join(c["source"]) for c in cells]
    found = []
    for i, c in enumerate(cells):
        if c["cell_type"] != "markdown":
            continue
        near = " ".join(sources[j] for j in (i - 1, i + 1) if 0 <= j < len(cells) and cells[j]["cell_type"] == "code")
        for m in _DECIMAL.finditer(_prose(sources[i])):
            number = m.group(0).lstrip("-−")
            if _significant_digits(number) >= 2 and number not in near:
                found.append(number)
    return found


@pytest.mark.parametrize("nb", notebooks(), ids=lambda p: str(p.relative_to(BOOK)))
def test_every_number_in_prose_is_computed(nb: Path):
    """A number stated in a Markdown cell is glued (myst-nb) or appears in the code cell beside it."""
    rel = str(nb.relative_to(BOOK))
    unproven = [n for n in unproven_numbers(json.loads(nb.read_text())["cells"]) if (rel, n) not in DEFINITION_NUMBERS]
    assert not unproven, (f"{rel}: numbers in prose that no cell computes: {unproven}; glue them "
                          "(myst_nb.glue + {glue:text}) or assert them in the cell before")


def test_the_number_check_catches_an_unglued_number():
    md = {"cell_type": "markdown", "source": ["The loss is 0.4170 here, and $0.4170$ in math, `0.4170` in code."]}
    code = {"cell_type": "code", "source": ["x = 1"]}
    assert unproven_numbers([code, md]) == ["0.4170"]
    assert unproven_numbers([{"cell_type": "code", "source": ["assert round(v, 4) == 0.4170"]}, md]) == []
    glued = {"cell_type": "markdown", "source": ["The loss is {glue:text}`ce:.4f`, with 0.5 of one digit."]}
    assert unproven_numbers([code, glued]) == []


def _chapter_indexes() -> list[Path]:
    return sorted(p for p in BOOK.glob("*/index.md") if any(p.parent.glob("*.ipynb")))


@pytest.mark.parametrize("index", _chapter_indexes(), ids=lambda p: p.parent.name)
def test_every_chapter_ends_with_a_summary_its_exercises_and_references(index: Path):
    """A chapter's index ends with a what-to-use-when table, the generated list of its exercises, and
    at least four references cited in the chapter."""
    text = index.read_text()
    summary = text.find("{rubric} Summary")
    assert summary >= 0, f"{index.parent.name}: no 'Summary' rubric"
    assert re.search(r"^\|.*\|\s*$", text[summary:], flags=re.M), f"{index.parent.name}: the summary needs a table"
    assert "{chapter-exercises}" in text, f"{index.parent.name}: list the exercises with the chapter-exercises directive"
    assert "{chapter-bibliography}" in text
    cited = set()
    for page in index.parent.glob("*"):
        if page.suffix in (".md", ".ipynb"):
            for keys in re.findall(r"\{cite:[pt]\}`([^`]+)`", page.read_text()):
                cited |= {k.strip() for k in keys.split(",")}
    assert len(cited) >= 4, f"{index.parent.name} cites {sorted(cited)}: a chapter needs at least four references"
