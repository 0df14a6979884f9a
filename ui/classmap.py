"""Explain · Class-specific maps for any of the top-5 classes: every class-specific method in the
registry (vitviz.methods: Chefer et al. 2021, gradient-weighted rollout, LeGrad, ...); the shown
method's backward pass per class, kept with the analysis (vitviz.service.work)."""

from __future__ import annotations

import gradio as gr

from vitviz import methods
from vitviz.pictures import maps
from vitviz.service import work
from vitviz.service.context import AppContext, Opened

from .text import L, t
from .view import Shared, View, out_image

ID = "class"


def method_choices(lang: str) -> list[tuple[str, str]]:
    """The class-specific methods, by the name they are listed under."""
    return [(methods.get(m).label(lang), m) for m in methods.class_specific()]


def render(ctx: AppContext, opened: Opened, lang: str, target=None, method: str = "chefer",
           alpha: float = 0.5) -> dict:
    loaded, an = opened.loaded, opened.an
    choices = method_choices(lang)
    method = method if method in [m for _, m in choices] else choices[0][1]
    shown = {"method": gr.update(choices=choices, value=method)}
    if not loaded.has_classifier:
        return {**shown, "on_input": None, "on_photo": None, "note": t("no_classifier", lang, model=loaded.name),
                "target": gr.update(choices=[], value=None)}
    classes = maps.class_choices(an, lang)
    target = target if target in [c[1] for c in classes] else classes[0][1]
    on_input, on_photo = maps.class_specific(an, work.class_maps(ctx, opened, target, (method,)), method, alpha, lang)
    return {**shown, "on_input": on_input, "on_photo": on_photo, "note": "",
            "target": gr.update(choices=classes, value=target)}


def build(ctx: AppContext, shared: Shared) -> View:
    with gr.Row():
        target = gr.Dropdown([], label=L("target_class"), elem_id="class-target")
        method = gr.Radio(method_choices("en"), value="chefer", label=L("method"), elem_id="class-method")
    note = gr.Markdown()
    with gr.Row():
        on_input = out_image("class_map", "class-seen")
        on_photo = out_image("on_photo", "class-photo")
    return View(render,
                controls={"target": target, "method": method, "alpha": shared.alpha},
                outputs={"on_input": on_input, "on_photo": on_photo, "note": note})
