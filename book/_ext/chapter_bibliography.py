"""A per-chapter list of references, without duplicate citations.

Usage, at the end of a chapter's ``index.md``::

    ## References

    ```{chapter-bibliography}
    ```

It lists every work cited (``{cite:p}``/``{cite:t}``) anywhere in the chapter, i.e. in the
documents of the same folder, formatted like the book's bibliography and linked to its entry there.

Why not a second ``{bibliography}`` directive: sphinxcontrib-bibtex makes each entry of a
bibliography a citation *target*, so a key listed in a chapter's bibliography and in the book's
(or in two chapters' when both cite it) is a "duplicate citation" warning, which ``-W`` turns into
an error; and its ``:filter:`` cannot select "cited in this folder". Here the book's bibliography
(``book/bibliography.md``) stays the one target of every citation, and the chapter lists are
plain lists that point at it.
"""
from __future__ import annotations

import posixpath

from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class chapter_bibliography(nodes.General, nodes.Element):
    pass


class ChapterBibliography(SphinxDirective):
    has_content = False

    def run(self):
        depends_on_folder(self.env, self.env.docname)
        return [chapter_bibliography(docname=self.env.docname)]


def depends_on_folder(env, docname: str) -> None:
    """Mark a page (a chapter's index) as depending on every document of its folder: it is rebuilt
    whenever one of them changes. Used by this directive and by ``chapter-exercises``."""
    if not hasattr(env, "lossbook_chapter_bibs"):
        env.lossbook_chapter_bibs = set()
    env.lossbook_chapter_bibs.add(docname)


def _cited_keys(env, folder: str) -> list[str]:
    domain = env.get_domain("cite")
    order = {d: i for i, d in enumerate(sorted(env.found_docs))}
    refs = sorted(
        (r for r in domain.citation_refs if posixpath.dirname(r.docname) == folder),
        key=lambda r: (order.get(r.docname, 0), r.line or 0),
    )
    keys: list[str] = []
    for ref in refs:
        for target in ref.targets:
            if target.key not in keys:
                keys.append(target.key)
    return keys


def _resolve(app, doctree, fromdocname):
    env = app.env
    domain = env.get_domain("cite")
    citations = {c.key: c for c in domain.citations}
    for node in doctree.findall(chapter_bibliography):
        folder = posixpath.dirname(node["docname"])
        entries = [citations[k] for k in _cited_keys(env, folder) if k in citations]
        if not entries:
            para = nodes.paragraph(text="This chapter cites no published work.")
            node.replace_self(para)
            continue
        entries.sort(key=lambda c: c.formatted_entry.label.lower())
        items = nodes.bullet_list(classes=["chapter-bibliography"])
        for c in entries:
            target_doc = c.bibliography_key.docname
            try:
                uri = app.builder.get_relative_uri(fromdocname, target_doc) + "#" + c.citation_id
            except Exception:  # non-HTML builders
                uri = "#"
            link = nodes.reference("", "", internal=True, refuri=uri)
            link += nodes.Text(f"[{c.formatted_entry.label}]")
            para = domain.backend.paragraph(c.formatted_entry)
            para.insert(0, nodes.Text(" "))
            para.insert(0, link)
            items += nodes.list_item("", para)
        node.replace_self(items)


def _outdated(app, env, added, changed, removed):
    # A chapter's list depends on every document of its folder.
    touched = {posixpath.dirname(d) for d in (added | changed | removed)}
    return [d for d in getattr(env, "lossbook_chapter_bibs", set()) if posixpath.dirname(d) in touched]


def _purge(app, env, docname):
    getattr(env, "lossbook_chapter_bibs", set()).discard(docname)


def _merge(app, env, docnames, other):
    if not hasattr(env, "lossbook_chapter_bibs"):
        env.lossbook_chapter_bibs = set()
    env.lossbook_chapter_bibs |= getattr(other, "lossbook_chapter_bibs", set())


def setup(app):
    app.setup_extension("sphinxcontrib.bibtex")
    app.add_node(chapter_bibliography)
    app.add_directive("chapter-bibliography", ChapterBibliography)
    app.connect("doctree-resolved", _resolve)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
