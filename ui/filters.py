"""Learn · Embedding filters: principal components of the patch projection (ViT paper, Fig. 7 left)."""

from __future__ import annotations

import gradio as gr

from vitviz.pictures import maps
from vitviz.service.context import AppContext, Opened

from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "filters"


def render(ctx: AppContext, opened: Opened | None, lang: str) -> dict:
    """The last analysis's model; before any upload, the start model."""
    loaded = ctx.start if opened is None else opened.loaded
    weights = ctx.weights(loaded)
    picture = ctx.model_picture(loaded, ("filters",), lambda: clear_of_badge(maps.embedding_filters(weights)))
    return {"picture": picture}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("filters_help"))
    image = out_image("filters", "filters", elem_classes=["vv-crisp"])
    return View(render, outputs={"picture": image}, needs_session=False)
