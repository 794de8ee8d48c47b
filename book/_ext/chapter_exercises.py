"""A per-chapter list of exercises, generated from the chapter's pages.

Usage, near the end of a chapter's ``index.md``::

    ```{chapter-exercises}
    ```

It lists every ``{exercise}`` (sphinx-exercise) of the chapter's sections, in reading order, with
its number and title, each linked to the exercise. The list is built from what the pages contain,
so an exercise added to (or removed from) a section can never be missing from (or dangle in) its
chapter's summary.
"""
from __future__ import annotations

import posixpath

from chapter_bibliography import depends_on_folder
from docutils import nodes
from sphinx.util.docutils import SphinxDirective


class chapter_exercises(nodes.General, nodes.Element):
    pass


class ChapterExercises(SphinxDirective):
    has_content = False

    def run(self):
        depends_on_folder(self.env, self.env.docname)  # rebuilt when a section of the chapter changes
        return [chapter_exercises(docname=self.env.docname)]


def _reading_order(env, index: str) -> list[str]:
    """The chapter's documents as the table of contents orders them: the index, then its sections."""
    order, todo = [], [index]
    while todo:
        doc = todo.pop(0)
        order.append(doc)
        todo[:0] = env.toctree_includes.get(doc, [])
    return order


def _subtitle(exercise) -> str:
    """The exercise's own title (the directive's argument), without the "Exercise" label."""
    from sphinx_exercise.nodes import exercise_subtitle

    return next((n.astext() for n in exercise.findall(exercise_subtitle)), "")


def _resolve(app, doctree, fromdocname):
    env = app.env
    registry = getattr(env, "sphinx_exercise_registry", {})
    for node in doctree.findall(chapter_exercises):
        index = node["docname"]
        folder = posixpath.dirname(index)
        order = {d: i for i, d in enumerate(_reading_order(env, index))}
        found = [(label, e) for label, e in registry.items()
                 if e.get("type") == "exercise" and posixpath.dirname(e["docname"]) == folder and e["docname"] in order]
        if not found:
            node.replace_self(nodes.paragraph(text="This chapter has no exercises."))
            continue
        found.sort(key=lambda item: (order[item[1]["docname"]], item[1]["node"].get("serial_number", 0)))
        items = nodes.bullet_list(classes=["chapter-exercises"])
        for label, entry in found:
            number = env.toc_fignumbers.get(entry["docname"], {}).get("exercise", {}).get(label)
            name = "Exercise " + ".".join(map(str, number)) if number else "Exercise"
            title = _subtitle(entry["node"])
            try:
                uri = app.builder.get_relative_uri(fromdocname, entry["docname"]) + "#" + label
            except Exception:  # non-HTML builders
                uri = "#" + label
            link = nodes.reference("", "", internal=True, refuri=uri)
            link += nodes.Text(f"{name} ({title})" if title else name)
            items += nodes.list_item("", nodes.paragraph("", "", link))
        node.replace_self(items)


def setup(app):
    app.setup_extension("sphinx_exercise")
    app.setup_extension("chapter_bibliography")  # its env-get-outdated handler serves both directives
    app.add_node(chapter_exercises)
    app.add_directive("chapter-exercises", ChapterExercises)
    # after sphinx-exercise's own post-transforms, when every page's exercises are registered
    app.connect("doctree-resolved", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
