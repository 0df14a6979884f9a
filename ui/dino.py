"""Explain · DINO heads: last-layer [CLS] attention per head, and the tokens holding a share of it."""

from __future__ import annotations

import gradio as gr

from vitviz import views

from .context import AppContext, Session
from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "dino"


def render(ctx: AppContext, session: Session | None, lang: str, mass: float = views.DINO_MASS) -> dict:
    _, an = ctx.open(session)
    return {"heads": clear_of_badge(views.dino_heads(an, mass))}


def build(ctx: AppContext, shared: Shared) -> View:
    mass = gr.Slider(0.1, 1.0, value=views.DINO_MASS, step=0.05, label=L("dino_mass"))
    heads = out_image("dino_maps", "dino")
    return View(render, controls={"mass": mass}, outputs={"heads": heads})
