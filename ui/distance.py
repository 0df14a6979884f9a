"""Learn · Attention distance: how far each head looks, per layer (ViT paper, Fig. 7 right)."""

from __future__ import annotations

import gradio as gr

from vitviz.pictures import maps
from vitviz.service.context import AppContext, Opened

from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "distance"


def render(ctx: AppContext, opened: Opened, lang: str) -> dict:
    return {"plot": clear_of_badge(maps.attention_distance_plot(opened.an, lang))}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("distance_help"))
    plot = out_image("distance_plot", "distance")
    return View(render, outputs={"plot": plot})
