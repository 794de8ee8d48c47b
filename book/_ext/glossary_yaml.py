"""A Sphinx directive that builds the book's glossary from ``book/glossary.yml``.

Usage in a MyST page::

    ```{yaml-glossary} glossary.yml
    ```

Every entry becomes a term of a standard Sphinx glossary, under both its English and its
Chinese name, so that ``{term}`cross-entropy``` and ``{term}`交叉熵``` both link to it.
"""
from __future__ import annotations

from pathlib import Path

import yaml
from docutils.statemachine import StringList
from sphinx.domains.std import Glossary
from sphinx.util.docutils import SphinxDirective


def load_terms(path: Path) -> list[dict]:
    """The glossary entries: dicts with ``en``, ``zh`` and ``definition`` (and optional ``see``)."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return sorted(data["terms"], key=lambda t: t["en"].lower())


class YamlGlossary(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self):
        rel, path = self.env.relfn2path(self.arguments[0])
        self.env.note_dependency(rel)
        lines = []
        for term in load_terms(Path(path)):
            lines.append(term["en"])
            lines.append(term["zh"])
            definition = term["definition"].strip()
            if term.get("see"):
                definition += f" See {term['see']}."
            for line in definition.splitlines():
                lines.append("   " + line)
            lines.append("")
        glossary = Glossary(
            "glossary", [], {"sorted": True}, StringList(lines, source=path), self.lineno,
            self.content_offset, self.block_text, self.state, self.state_machine,
        )
        return glossary.run()


def setup(app):
    app.add_directive("yaml-glossary", YamlGlossary)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
