"""See · Inside the ViT: the tutorial's pipeline for this photo, step by step, with real shapes."""

from __future__ import annotations

import gradio as gr

from vitviz import analysis, views

from .context import AppContext, Session
from .view import Shared, View

ID = "inside"
STEPS = 6


def render(ctx: AppContext, session: Session | None, lang: str) -> dict:
    loaded, an = ctx.open(session)
    weights = ctx.weights(loaded)      # the patch projection reads weights only
    projection = an.memo.get(("projection",), lambda: analysis.patch_projection(weights, an.pixel_values))
    out = {}
    for i, (text, picture) in enumerate(views.inside_steps(weights, an, projection, lang)):
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
