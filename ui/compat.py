"""Every use of Gradio's private API, in one place.

Gradio offers no public way to do these four things; each is named here with why, and
tests/test_compat_gradio.py fails the day Gradio changes one of them.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr


def wrap_preprocess(component: gr.components.Component, wrap: Callable[[Callable], Callable]) -> None:
    """Replace an instance's ``preprocess`` (how Gradio decodes what the browser sent) with
    ``wrap(original)``. A subclass would be treated as a custom component with a frontend of its own,
    so the instance is patched: uploads that PIL cannot decode reach our handler (ui/upload.py), and a
    drawing's layers are checked before they are decoded (ui/sketch.py)."""
    component.preprocess = wrap(component.preprocess)


def server_function(component: gr.components.Component, name: str, fn: Callable) -> None:
    """Replace a component's server function (what the browser calls through /component_server, e.g.
    the image editor's ``accept_blobs``): Gradio calls only methods marked ``_is_server_fn``."""
    fn._is_server_fn = True
    setattr(component, name, fn)


def blob_storage(editor: gr.ImageEditor) -> dict[str, Any]:
    """The image editor's posted images waiting for an event (id -> its background, layers, composite),
    which Gradio bounds neither in number nor in size."""
    return editor.blob_storage


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
