"""See · Inside the ViT: the tutorial's pipeline for this photo, step by step, with real shapes."""

from __future__ import annotations

import gradio as gr

from vitviz.pictures import maps
from vitviz.service import work
from vitviz.service.context import AppContext, Opened

from .view import Shared, View

ID = "inside"
STEPS = 6


def render(ctx: AppContext, opened: Opened, lang: str) -> dict:
    out = {}
    steps = maps.inside_steps(ctx.weights(opened.loaded), opened.an, work.projection(ctx, opened), lang)
    for i, (text, picture) in enumerate(steps):
        out[f"text{i}"] = text
        out[f"picture{i}"] = gr.update(value=ctx.picture(picture), visible=picture is not None)
    return out


def build(ctx: AppContext, shared: Shared) -> View:
    outputs = {}
    for i in range(STEPS):
        outputs[f"text{i}"] = gr.Markdown()
        outputs[f"picture{i}"] = gr.Image(format="png", interactive=False, show_label=False,
                                          elem_classes=["vv-crisp"])
    return View(render, outputs=outputs)
