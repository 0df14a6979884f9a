"""Every use of Gradio's private API, in one place.

Gradio offers no public way to do these four things; each is named here with why, and
tests/test_compat.py fails the day Gradio changes one of them. (Components that decode what the
browser sends in our own way are subclasses marked ``is_template``, Gradio's own way to serve a
subclass with its parent's frontend: ui/sketch.py, ui/upload.py.)
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import gradio as gr
from gradio.components.base import server


def server_function(fn: Callable) -> Callable:
    """Mark a component method as a server function (what the browser calls through
    /component_server, e.g. the image editor's ``accept_blobs``): Gradio calls only methods marked so,
    with its own decorator, which it exports only for custom components."""
    return server(fn)


def share_blob_storage(editor: gr.ImageEditor, storage: dict[str, Any]) -> None:
    """Point the image editor's posted images waiting for an event (id -> its background, layers,
    composite; read by its preprocess, filled by its accept_blobs) at `storage`, so an editor and the
    copies Gradio builds of it for each session keep one bounded store."""
    editor.blob_storage = storage


@contextlib.contextmanager
def component_subclass() -> Iterator[None]:
    """Define a component subclass without Gradio writing a type stub beside its module: its
    metaclass writes (or extends) ``<module>.pyi`` for every component class, meant for custom
    components' packages; here it would shadow the module for type checkers and litter a checkout."""
    import gradio.component_meta as meta

    write = meta.create_or_modify_pyi
    meta.create_or_modify_pyi = lambda *args, **kwargs: None
    try:
        yield
    finally:
        meta.create_or_modify_pyi = write


# The language switch: Gradio translates static labels in the browser from the browser's language; the
# radio switches it live through the frontend's own changeLocale, found in its hashed core-*.js bundle
# among the loaded modules (no public API switches the page's language).
SET_LANG_JS = """async (lang) => {
  try {
    const url = performance.getEntriesByType("resource").map((e) => e.name)
      .find((n) => /\\/assets\\/core-[^/]*\\.js$/.test(n));
    if (url) { const core = await import(url); if (core.changeLocale) core.changeLocale(lang); }
  } catch (e) { console.warn("vitviz: could not switch the page language", e); }
  return lang;
}"""
