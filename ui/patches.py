"""See · Patches & tokens: the input the model saw, cut into patches, and the token sequence."""

from __future__ import annotations

import gradio as gr

from vitviz import views
from vitviz.analysis import Analysis, prefix_names
from vitviz.models import LoadedModel

from .context import AppContext, Session
from .text import L
from .view import Shared, View, out_image

ID, SECTION = "patches", "see"


def draw(loaded: LoadedModel, an: Analysis, lang: str) -> dict:
    grid, tokens = views.patches(an, loaded.family)
    hidden = getattr(loaded.model.config, "hidden_size", None)
    distilled = "[DIST]" in prefix_names(loaded.family, an.prefix)
    return {"patch_grid": grid, "tokens": tokens, "shapes": views.shapes_text(an, hidden, lang),
            "dist_help": gr.update(visible=distilled)}


def render(ctx: AppContext, session: Session | None, lang: str) -> dict:
    return draw(*ctx.open(session), lang)


def build(ctx: AppContext, shared: Shared) -> View:
    with gr.Tab(L("tab_patches"), id=ID) as tab:
        with gr.Row():
            grid = out_image("patch_grid", "patch-grid", elem_classes=["vv-crisp"])
            with gr.Column():
                tokens = out_image("tokens", "tokens")
                shapes = gr.Markdown()
                dist_help = gr.Markdown(L("dist_help"), visible=False, elem_id="dist-help")
    return View(ID, SECTION, tab, render,
                outputs={"patch_grid": grid, "tokens": tokens, "shapes": shapes, "dist_help": dist_help})
