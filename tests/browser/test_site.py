"""The site's interactive parts in Chromium: search (English and Chinese), exercise solutions,
and the launch/download buttons of every notebook page."""
from __future__ import annotations

import json
import re
import urllib.request
from html import unescape
from urllib.parse import urlsplit

import pytest
from booksite import ROOT, book_config, toc_entries

pytestmark = pytest.mark.browser

PAGES = toc_entries()
NOTEBOOKS = [p for p in PAGES if p.is_notebook]


def _source_text(entry) -> str:
    return entry.source.read_text(encoding="utf-8") if entry.source else ""


EXERCISE_PAGES = [p for p in PAGES if re.search(r"\{solution-start\}|\{solution\}", _source_text(p))]


# ----------------------------------------------------------------------------- search
def page_text(html_dir, entry) -> str:
    html = (html_dir / entry.html).read_text(encoding="utf-8")
    m = re.search(r"<article[^>]*>(.*)</article>", html, flags=re.S)
    body = m.group(1) if m else html
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", body, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", body))


def search(open_page, base_url, query: str) -> list[str]:
    """The docnames the book's search page lists for ``query``, in order."""
    page, log = open_page(f"search.html?q={urllib.request.quote(query)}", wait_for_math=False)
    page.wait_for_function(
        "() => { const s = document.querySelector('#search-results .search-summary');"
        " return s && /found|did not match/i.test(s.textContent); }",
        timeout=15_000,
    )
    hrefs = page.eval_on_selector_all("#search-results ul.search > li > a:first-of-type", "els => els.map(e => e.href)")
    assert not log.problems(), log.problems()
    docnames = []
    for h in hrefs:
        path = urlsplit(h).path
        assert path.startswith("/"), h
        docnames.append(re.sub(r"\.html$", "", path[1:]))
    return docnames


GLOSSARY = "book/glossary"


@pytest.mark.parametrize("query", ["cross-entropy", "交叉熵", "损失"])
def test_search_lists_the_right_pages(query, open_page, base_url, html_dir):
    """Every page whose text contains the query is found, the glossary among them; and, for a
    Chinese query, no page that does not contain it (so the words are segmented, not guessed)."""
    found = search(open_page, base_url, query)
    assert found, f"searching for {query!r} found nothing"
    assert GLOSSARY in found, f"searching for {query!r} does not list the glossary; it lists {found}"
    texts = {p.docname: page_text(html_dir, p) for p in PAGES}
    containing = {d for d, t in texts.items() if query.lower() in t.lower()}
    missing = sorted(containing - set(found))
    assert not missing, f"searching for {query!r} misses pages that contain it: {missing}"
    if re.search(r"[\u4e00-\u9fff]", query):
        extra = sorted(set(found) - containing)
        assert not extra, f"searching for {query!r} lists pages that do not contain it: {extra}"


def test_search_for_a_chapter_title_finds_its_chapter(open_page, base_url, html_dir):
    chapters = [p for p in PAGES if p.level == "chapter" and p.docname.endswith("/index")]
    chapter = chapters[-1] if chapters else next(p for p in PAGES if p.docname == GLOSSARY)
    title = re.search(r"<title>(.*?)</title>", (html_dir / chapter.html).read_text(encoding="utf-8"), flags=re.S)
    assert title, f"{chapter.html} has no <title>"
    words = unescape(title.group(1)).split(" \u2014 ")[0].strip()
    assert chapter.docname in search(open_page, base_url, words), f"searching for {words!r} misses {chapter.html}"


# ----------------------------------------------------------------------------- exercises
SOLUTION_STATE_JS = """
() => [...document.querySelectorAll('.solution')].map(s => ({
  id: s.id,
  shown: [...s.children].filter(c => !c.classList.contains('admonition-title'))
           .some(c => c.getClientRects().length > 0 && getComputedStyle(c).visibility !== 'hidden'),
}))
"""


@pytest.mark.parametrize("entry", EXERCISE_PAGES, ids=[p.docname for p in EXERCISE_PAGES])
def test_solutions_are_hidden_until_clicked(entry, open_page):
    page, log = open_page(entry.html, wait_for_math=False)
    before = page.evaluate(SOLUTION_STATE_JS)
    assert before, f"{entry.html}: the source has solutions but the page shows none"
    shown = [s["id"] for s in before if s["shown"]]
    assert not shown, f"{entry.html}: solutions visible before any click: {shown}"
    solutions = page.locator(".solution")
    for i in range(solutions.count()):
        sol = solutions.nth(i)
        button = sol.locator(".toggle-button")
        (button.first if button.count() else sol.locator(".admonition-title")).click()
    after = page.evaluate(SOLUTION_STATE_JS)
    hidden = [s["id"] for s in after if not s["shown"]]
    assert not hidden, f"{entry.html}: solutions still hidden after a click: {hidden}"
    assert not log.problems(), log.problems()


# ----------------------------------------------------------------------------- launch buttons
def expected_launch_urls(docname: str) -> dict[str, str]:
    cfg = book_config()
    repo = cfg["repository"]
    owner_repo = urlsplit(repo["url"]).path.strip("/")
    branch = repo.get("branch", "main")
    prefix = (repo.get("path_to_book") or "").strip("/")
    path = f"{prefix}/{docname}.ipynb" if prefix else f"{docname}.ipynb"
    launch = cfg["launch_buttons"]
    return {
        "colab": f"{launch['colab_url'].rstrip('/')}/github/{owner_repo}/blob/{branch}/{path}",
        "binder": f"{launch['binderhub_url'].rstrip('/')}/v2/gh/{owner_repo}/{branch}?urlpath=tree/{path}",
        "path": path,
    }


@pytest.mark.parametrize("entry", NOTEBOOKS, ids=[p.docname for p in NOTEBOOKS])
def test_launch_and_download_buttons(entry, open_page, base_url):
    page, log = open_page(entry.html, wait_for_math=False)
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    want = expected_launch_urls(entry.docname)
    assert want["colab"] in hrefs, f"{entry.html}: no Colab link to {want['colab']}"
    assert want["binder"] in hrefs, f"{entry.html}: no Binder link to {want['binder']}"
    assert (ROOT / want["path"]).is_file(), f"the launch buttons point at {want['path']}, which is not in the repository"
    downloads = [h for h in hrefs if h.endswith(f"_sources/{entry.docname}.ipynb")]
    assert downloads, f"{entry.html}: no download link to the .ipynb"
    with urllib.request.urlopen(downloads[0], timeout=10) as r:
        nb = json.loads(r.read())
    assert nb.get("cells"), f"{downloads[0]} is not a notebook"
    assert not log.problems(), log.problems()
