"""Learn · Position embeddings: cosine similarity of every patch's embedding with all others
(ViT paper, Fig. 7 centre), at the grid of the last analysis."""

from __future__ import annotations

import gradio as gr

from vitviz.core.loaded import LoadedModel
from vitviz.pictures import maps
from vitviz.posemb import NoAbsolutePositions
from vitviz.service.context import AppContext, Opened

from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "posemb"


def picture(ctx: AppContext, loaded: LoadedModel, grid: tuple[int, int] | None) -> str | None:
    """The similarity grid as a file, drawn once per model and grid; None without absolute embeddings."""
    weights = ctx.weights(loaded)
    try:
        return ctx.model_picture(loaded, ("posemb", grid),
                                 lambda: clear_of_badge(maps.position_similarity(weights, grid)))
    except NoAbsolutePositions:
        return None


def render(ctx: AppContext, opened: Opened | None, lang: str) -> dict:
    """The last analysis's model and grid; before any upload, the start model's own grid."""
    if opened is None:
        return {"picture": picture(ctx, ctx.start, None)}
    return {"picture": picture(ctx, opened.loaded, opened.an.grid)}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("posemb_help"))
    image = out_image("posemb_map", "posemb")
    return View(render, outputs={"picture": image}, first=("picture",), needs_session=False)
