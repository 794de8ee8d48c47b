"""Fixtures for the browser tests: the built book, a loopback web server, and Chromium.

Which build is tested:
- ``LOSSBOOK_HTML=<dir>`` tests that build as it is (``scripts/test.sh`` builds the book first and
  sets it to ``_build/html``);
- otherwise ``_build/html`` is (re)built with ``jupyter-book build .`` when it is missing or older
  than the book's sources, so that a plain ``pytest`` never tests a stale or absent book.

The browser is Debian's Chromium (``apt-get install chromium``; ``scripts/install.sh`` installs it),
driven by Playwright. Every request that does not go to the loopback server is blocked and
recorded, so a page that needs the network (a CDN) fails its test.
"""
from __future__ import annotations

import fcntl
import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from booksite import CHROMIUM_FLAGS, ROOT, is_loopback, toc_path


# ----------------------------------------------------------------------------- the built book
def _newest_source_mtime() -> float:
    paths = [ROOT / "_config.yml", toc_path(), ROOT / "references.bib"]
    paths += [p for p in (ROOT / "book").rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts]
    return max(p.stat().st_mtime for p in paths if p.exists())


@pytest.fixture(scope="session")
def html_dir() -> Path:
    given = os.environ.get("LOSSBOOK_HTML")
    if given:
        path = Path(given).resolve()
        if not (path / "index.html").is_file():
            pytest.fail(f"LOSSBOOK_HTML={given} has no index.html: build the book first (bash scripts/book.sh)")
        return path
    path = ROOT / "_build" / "html"
    lock = ROOT / "_build" / ".browser-tests.lock"
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "w") as fh:  # pytest-xdist workers: one builds, the others wait for it
        fcntl.flock(fh, fcntl.LOCK_EX)
        index = path / "index.html"
        if not index.is_file() or index.stat().st_mtime < _newest_source_mtime():
            why = "missing" if not index.is_file() else "older than the book's sources"
            print(f"\n_build/html is {why}: building the book (jupyter-book build .) for the browser tests ...")
            t0 = time.time()
            proc = subprocess.run(
                [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", ".", "-W", "-n", "--keep-going"],
                cwd=ROOT, capture_output=True, text=True,
            )
            if proc.returncode != 0 or not index.is_file():
                pytest.fail(
                    "building the book for the browser tests failed (jupyter-book build . -W -n --keep-going):\n"
                    + (proc.stdout + proc.stderr)[-4000:]
                )
            print(f"built in {time.time() - t0:.0f} s")
    return path


# ----------------------------------------------------------------------------- the web server
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # the browser closing a connection it no longer needs (a page left mid-download) is
        # normal; any other error still prints its traceback
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="session")
def base_url(html_dir: Path):
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


# ----------------------------------------------------------------------------- the browser
@pytest.fixture(scope="session")
def browser():
    exe = os.environ.get("LOSSBOOK_CHROMIUM") or shutil.which("chromium")
    if not exe:
        pytest.fail("Chromium is not installed: `apt-get install -y chromium` (bash scripts/install.sh does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@dataclass
class PageLog:
    """What happened while a page was open."""

    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # failed requests and HTTP errors
    blocked: list[str] = field(default_factory=list)  # requests that tried to leave the machine

    def problems(self) -> list[str]:
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"failed request: {m}" for m in self.failed]
            + [f"blocked non-loopback request: {u}" for u in self.blocked]
        )


@pytest.fixture
def open_page(browser, base_url):
    """``page, log = open_page("book/x.html")``: a fresh page with the network blocked and recorded."""
    contexts = []

    def _open(path: str, wait_for_math: bool = True):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        log = PageLog()

        def route(r):
            if is_loopback(r.request.url):
                r.continue_()
            else:
                log.blocked.append(r.request.url)
                r.abort("blockedbyclient")

        page.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and log.console_errors.append(m.text))
        page.on("pageerror", lambda e: log.console_errors.append(f"uncaught: {e}"))
        page.on(
            "requestfailed",
            lambda r: is_loopback(r.url) and log.failed.append(f"{r.url} ({r.failure})"),
        )
        page.on("response", lambda r: r.status >= 400 and log.failed.append(f"{r.url} (HTTP {r.status})"))
        page.goto(base_url + path, wait_until="load")
        if wait_for_math:
            wait_for_mathjax(page)
        return page, log

    yield _open
    for c in contexts:
        c.close()


def wait_for_mathjax(page, timeout_ms: int = 20_000):
    """Wait until MathJax (if the page loads it) has typeset everything."""
    if not page.evaluate("() => !!document.querySelector('script[src*=\"mathjax\"]')"):
        return
    page.wait_for_function(
        "() => window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=timeout_ms
    )
    page.evaluate("() => MathJax.startup.promise")
