"""See · Patches & tokens: the input the model saw, cut into patches, and the token sequence."""

from __future__ import annotations

import gradio as gr

from vitviz.pictures import maps
from vitviz.service.context import AppContext, Opened

from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "patches"


def render(ctx: AppContext, opened: Opened, lang: str) -> dict:
    an = opened.an
    grid, tokens = maps.patches(an)
    return {"patch_grid": clear_of_badge(grid), "tokens": clear_of_badge(tokens),
            "shapes": maps.shapes_text(an, opened.loaded.hidden_size, lang),
            "dist_help": gr.update(visible="[DIST]" in an.prefix_names)}


def build(ctx: AppContext, shared: Shared) -> View:
    with gr.Row():
        grid = out_image("patch_grid", "patch-grid", elem_classes=["vv-crisp"])
        with gr.Column():
            tokens = out_image("tokens", "tokens")
            shapes = gr.Markdown()
            dist_help = gr.Markdown(L("dist_help"), visible=False, elem_id="dist-help")
    return View(render, outputs={"patch_grid": grid, "tokens": tokens, "shapes": shapes, "dist_help": dist_help},
                first=("patch_grid", "tokens", "shapes"))
