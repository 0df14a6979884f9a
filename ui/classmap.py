"""Explain · Class-specific maps: Chefer et al. 2021 (generic), gradient-weighted rollout and LeGrad for
any of the top-5 classes; the shown method's forward + backward per class, kept with the analysis."""

from __future__ import annotations

import gradio as gr

from vitviz import explain, views
from vitviz.analysis import Analysis
from vitviz.models import LoadedModel

from .context import AppContext, Session
from .text import L, t
from .view import Shared, View, out_image

ID = "class"


# Maps that come from the same backward pass: Chefer and gradient rollout share one; LeGrad has its own
# (about one more), so a view showing one of them does not pay for the other.
PASSES = (("chefer", "grad_rollout"), ("legrad",))


def class_maps(ctx: AppContext, loaded: LoadedModel, an: Analysis, target: int,
               methods=explain.CLASS_METHODS) -> dict:
    """The maps of `methods` for one class, each backward pass made once per analysis and class
    (held to the memory budget first: the backward keeps every layer's attention)."""
    def make(group):
        ctx.check_memory(loaded, an, "class")
        return ctx.run(explain.class_maps, loaded, an, target, group, kind="class")

    maps = {}
    for group in PASSES:
        if set(group) & set(methods):
            maps.update(an.memo.get(("class", target, group), lambda g=group: make(g)))
    return {m: maps[m] for m in methods}


def draw(ctx: AppContext, loaded: LoadedModel, an: Analysis, lang: str, target=None, method: str = "chefer",
         alpha: float = 0.5) -> dict:
    methods = [(t(f"method_{m}", lang), m) for m in explain.CLASS_METHODS]
    if not loaded.has_classifier:
        return {"on_input": None, "on_photo": None, "note": t("no_classifier", lang, model=loaded.name),
                "target": gr.update(choices=[], value=None), "method": gr.update(choices=methods)}
    choices = views.class_choices(an, lang)
    target = target if target in [c[1] for c in choices] else choices[0][1]
    maps = class_maps(ctx, loaded, an, target, (method,) if method in explain.CLASS_METHODS else explain.CLASS_METHODS)
    on_input, on_photo = views.class_specific(an, maps, method, alpha, lang)
    return {"on_input": on_input, "on_photo": on_photo, "note": "",
            "target": gr.update(choices=choices, value=target), "method": gr.update(choices=methods)}


def render(ctx: AppContext, session: Session | None, lang: str, **controls) -> dict:
    return draw(ctx, *ctx.open(session), lang, **controls)


def build(ctx: AppContext, shared: Shared) -> View:
    with gr.Row():
        target = gr.Dropdown([], label=L("target_class"), elem_id="class-target")
        method = gr.Radio([(t(f"method_{m}", "en"), m) for m in explain.CLASS_METHODS], value="chefer",
                          label=L("method"))
    note = gr.Markdown()
    with gr.Row():
        on_input = out_image("class_map", "class-seen")
        on_photo = out_image("on_photo", "class-photo")
    return View(render,
                controls={"target": target, "method": method, "alpha": shared.alpha},
                outputs={"on_input": on_input, "on_photo": on_photo, "note": note})
