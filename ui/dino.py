"""Explain · DINO heads: last-layer [CLS] attention per head, and the tokens holding a share of it."""

from __future__ import annotations

import gradio as gr

from vitviz.methods.attention_maps import DINO_MASS
from vitviz.pictures import maps
from vitviz.service.context import AppContext, Opened

from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "dino"


def render(ctx: AppContext, opened: Opened, lang: str, mass: float = DINO_MASS) -> dict:
    return {"heads": clear_of_badge(maps.dino_heads(opened.an, mass))}


def build(ctx: AppContext, shared: Shared) -> View:
    mass = gr.Slider(0.1, 1.0, value=DINO_MASS, step=0.05, label=L("dino_mass"))
    heads = out_image("dino_maps", "dino")
    return View(render, controls={"mass": mass}, outputs={"heads": heads})
