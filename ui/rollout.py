"""Explain · Attention rollout (Abnar & Zuidema 2020), over the model's input and over the photo."""

from __future__ import annotations

import gradio as gr

from vitviz.attention import FUSIONS
from vitviz.pictures import maps
from vitviz.service.context import AppContext, Opened

from .text import L, t
from .view import Shared, View, layer_slider, out_image, query_radio, query_update

ID = "rollout"


def render(ctx: AppContext, opened: Opened, lang: str, fusion: str = "mean", discard: float = 0.0,
           alpha: float = 0.5, start_layer: int = 0, query: int = 0) -> dict:
    an = opened.an
    query = int(query or 0) if int(query or 0) < an.prefix else 0
    on_input, on_photo = maps.rollout(an, fusion, discard, alpha, start_layer or 0, lang, query)
    return {"on_input": on_input, "on_photo": on_photo, "fusion": gr.update(choices=fusion_choices(lang)),
            "note": t("rollout_probe", lang) if opened.loaded.query_name == "probe" else "",
            "start_layer": gr.update(maximum=an.num_layers - 1),
            "query": query_update(an.prefix_names, query)}


def fusion_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"fusion_{f}", lang), f) for f in FUSIONS]


def build(ctx: AppContext, shared: Shared) -> View:
    with gr.Row():
        fusion = gr.Radio(fusion_choices("en"), value="mean", label=L("fusion"))
        discard = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label=L("discard"))
        start_layer = layer_slider(ctx.start, "start_layer")
        query = query_radio()
    note = gr.Markdown(elem_id="rollout-note")
    with gr.Row():
        on_input = out_image("rollout_seen", "rollout-seen")
        on_photo = out_image("rollout_photo", "rollout-photo")
    return View(render,
                controls={"fusion": fusion, "discard": discard, "alpha": shared.alpha, "start_layer": start_layer,
                          "query": query},
                outputs={"on_input": on_input, "on_photo": on_photo, "note": note}, first=("on_input", "on_photo"))
