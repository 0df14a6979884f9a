"""Learn · Embedding filters: principal components of the patch projection (ViT paper, Fig. 7 left)."""

from __future__ import annotations

import gradio as gr

from vitviz import views

from .context import AppContext, Expired, Session
from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "filters"


def render(ctx: AppContext, session: Session | None, lang: str) -> dict:
    try:
        loaded, _ = ctx.open(session)
    except Expired:
        loaded = ctx.start
    weights = ctx.weights(loaded)
    picture = ctx.model_picture(loaded, ("filters",), lambda: clear_of_badge(views.embedding_filters(weights)))
    return {"picture": picture}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("filters_help"))
    image = out_image("filters", "filters", elem_classes=["vv-crisp"])
    return View(render, outputs={"picture": image})
