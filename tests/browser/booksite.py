"""Shared helpers of the browser tests: the table of contents, the book config, the browser flags."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
]


# ----------------------------------------------------------------------------- the table of contents
@dataclass(frozen=True)
class TocEntry:
    docname: str  # e.g. "book/softmax/index"
    level: str  # "root", "chapter" or "section"

    @property
    def html(self) -> str:
        return f"{self.docname}.html"

    @property
    def source(self) -> Path | None:
        for suffix in (".ipynb", ".md"):
            if (ROOT / f"{self.docname}{suffix}").exists():
                return ROOT / f"{self.docname}{suffix}"
        return None

    @property
    def is_notebook(self) -> bool:
        return self.source is not None and self.source.suffix == ".ipynb"


def toc_path() -> Path:
    return Path(os.environ.get("LOSSBOOK_TOC", ROOT / "_toc.yml"))


def toc_entries() -> list[TocEntry]:
    """Every page of the table of contents, in reading order (LOSSBOOK_TOC overrides _toc.yml)."""
    toc = yaml.safe_load(toc_path().read_text(encoding="utf-8"))
    entries = [TocEntry(toc["root"], "root")]

    def walk(items, level):
        for item in items or []:
            if "file" in item:
                entries.append(TocEntry(item["file"], level))
            walk(item.get("sections"), "section")

    for part in toc.get("parts", []):
        walk(part.get("chapters"), "chapter")
    walk(toc.get("chapters"), "chapter")
    return entries


def book_config() -> dict:
    return yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))




def is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.hostname in ("127.0.0.1", "localhost", "::1")
