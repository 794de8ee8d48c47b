"""Every page of the table of contents, opened in Chromium with the network blocked.

Per page: no console error, no failed or non-loopback request, every formula typeset by MathJax
(none left as raw TeX, no MathJax error), every image loaded, every figure captioned, every
internal link (and its #anchor) resolving. Chapter pages are also saved as full-page screenshots
in tests/browser/artifacts/ (CI uploads them).
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from html import unescape
from urllib.parse import unquote, urlsplit

import pytest
from booksite import ARTIFACTS, ROOT, TocEntry, is_loopback, toc_entries

pytestmark = pytest.mark.browser

PAGES = toc_entries()

# Evaluated in the page once MathJax has finished.
INSPECT_JS = r"""
() => {
  const main = document.querySelector('main') || document.body;
  const math = [...document.querySelectorAll('.math')];
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);  // navigation too
  const rawTex = /\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^$\s][^$]*\\[a-zA-Z]+[^$]*\$/;
  while (walker.nextNode()) {
    const n = walker.currentNode;
    if (n.parentElement.closest('pre, code, script, style, textarea, mjx-container, .highlight')) continue;
    if (rawTex.test(n.textContent)) raw.push(n.textContent.trim().slice(0, 120));
  }
  const figures = [...main.querySelectorAll('figure')];
  const outputImages = [...main.querySelectorAll('.cell_output img')];
  return {
    math: math.length,
    typeset: document.querySelectorAll('mjx-container').length,
    unrendered: math.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.trim().slice(0, 120)),
    mathErrors: [...document.querySelectorAll('mjx-merror')].map(
      e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120)),
    raw: raw,
    images: [...document.images].map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
    figures: figures.length,
    uncaptioned: figures.filter(f => !(f.querySelector('figcaption') && f.querySelector('figcaption').textContent.trim()))
      .map(f => f.id || f.outerHTML.slice(0, 120)),
    bareOutputImages: outputImages.filter(i => !i.closest('figure')).map(i => i.src.split('/').pop()),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  };
}
"""

_fetched: dict[str, tuple[int, str]] = {}


def fetch(url: str) -> tuple[int, str]:
    """HTTP status and text of a URL on the loopback server (cached for the session)."""
    if url not in _fetched:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                body = r.read()
                _fetched[url] = (r.status, body.decode("utf-8", "replace") if url.endswith((".html", "/")) else "")
        except urllib.error.HTTPError as e:
            _fetched[url] = (e.code, "")
    return _fetched[url]


def broken_link(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    page_url = url.split("#", 1)[0]
    status, text = fetch(page_url)
    if status >= 400:
        return f"{url} (HTTP {status})"
    frag = unquote(parts.fragment)
    if frag and text and f'id="{frag}"' not in unescape(text) and f'id="{frag}"' not in text:
        return f"{url} (no element with id {frag!r})"
    return None


def source_has_math(entry: TocEntry) -> bool:
    src = entry.source
    if src is None:
        return False
    if src.suffix == ".ipynb":
        cells = json.loads(src.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = src.read_text(encoding="utf-8")
    text = re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", text, flags=re.S))  # code is not math
    return bool(re.search(r"\$\$|\$[^$\s][^$\n]*\$|\{math\}|\\begin\{", text))


def screenshot_name(entry: TocEntry) -> str:
    return entry.docname.replace("/", "__") + ".png"


@pytest.mark.parametrize("entry", PAGES, ids=[p.docname for p in PAGES])
def test_page_renders_offline(entry: TocEntry, open_page, base_url):
    page, log = open_page(entry.html)
    info = page.evaluate(INSPECT_JS)
    problems = log.problems()

    if info["unrendered"]:
        problems += [f"formula not typeset by MathJax: {t!r}" for t in info["unrendered"]]
    if info["mathErrors"]:
        problems += [f"MathJax error: {t!r}" for t in info["mathErrors"]]
    problems += [f"raw TeX left in the text: {t!r}" for t in info["raw"]]
    if source_has_math(entry) and info["typeset"] == 0:
        problems.append(f"{entry.source.name} contains math but the page shows no MathJax output")
    problems += [f"image did not load: {i['src']}" for i in info["images"] if not i["ok"]]
    problems += [f"figure without a caption: {f}" for f in info["uncaptioned"]]
    problems += [f"plot output that is not a captioned figure: {s}" for s in info["bareOutputImages"]]

    internal = sorted({u for u in info["links"] if is_loopback(u) and u.startswith(base_url)})
    problems += [f"broken internal link: {b}" for b in map(broken_link, internal) if b]

    if entry.level in ("root", "chapter"):
        ARTIFACTS.mkdir(exist_ok=True)
        page.evaluate("async () => { await document.fonts.ready; window.scrollTo(0, 0); }")
        page.screenshot(path=str(ARTIFACTS / screenshot_name(entry)), full_page=True)

    stats = {
        "page": entry.docname, "formulas": info["typeset"], "images": len(info["images"]),
        "figures": info["figures"], "internal_links": len(internal),
    }
    (ARTIFACTS / "stats").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "stats" / (entry.docname.replace("/", "__") + ".json")).write_text(json.dumps(stats))
    assert not problems, f"{entry.html}:\n  " + "\n  ".join(problems)


def test_the_site_root_redirects_to_the_book(open_page):
    page, log = open_page("index.html", wait_for_math=False)
    page.wait_for_url(re.compile(r"book/index\.html$"), timeout=10_000)
    assert not log.problems(), log.problems()


def test_every_toc_page_was_built(html_dir):
    missing = [p.html for p in PAGES if not (html_dir / p.html).is_file()]
    assert not missing, f"pages of _toc.yml missing from the build {html_dir}: {missing}"
    assert (ROOT / "_toc.yml").is_file()
