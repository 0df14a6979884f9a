"""See · Patches & tokens: the input the model saw, cut into patches, and the token sequence."""

from __future__ import annotations

import gradio as gr

from vitviz import views
from vitviz.analysis import Analysis
from vitviz.models import LoadedModel

from .context import AppContext, Session
from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "patches"


def draw(loaded: LoadedModel, an: Analysis, lang: str) -> dict:
    grid, tokens = views.patches(an)
    return {"patch_grid": clear_of_badge(grid), "tokens": clear_of_badge(tokens),
            "shapes": views.shapes_text(an, loaded.hidden_size, lang),
            "dist_help": gr.update(visible="[DIST]" in an.prefix_names)}


def render(ctx: AppContext, session: Session | None, lang: str) -> dict:
    return draw(*ctx.open(session), lang)


def build(ctx: AppContext, shared: Shared) -> View:
    with gr.Row():
        grid = out_image("patch_grid", "patch-grid", elem_classes=["vv-crisp"])
        with gr.Column():
            tokens = out_image("tokens", "tokens")
            shapes = gr.Markdown()
            dist_help = gr.Markdown(L("dist_help"), visible=False, elem_id="dist-help")
    return View(render,
                outputs={"patch_grid": grid, "tokens": tokens, "shapes": shapes, "dist_help": dist_help})
