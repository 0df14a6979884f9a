"""Explain · Faithfulness: how much each map's ranking of the pixels matters to the model on this
photo (Chefer et al. CVPR 2021 perturbation curves), against a random map. Runs on request."""

from __future__ import annotations

from dataclasses import replace

import gradio as gr

from vitviz import explain, views

from .classmap import class_maps
from .context import AppContext, Session
from .text import L, t
from .view import Shared, View, out_image

ID = "faith"


def measure(ctx: AppContext, session: Session | None, lang: str, fill: str | None = None) -> dict:
    """Every standard map of this photo, perturbed and run through the model in batches."""
    loaded, an = ctx.open(session)
    fill = fill if fill in explain.FILLS else loaded.removal_fill
    if not loaded.has_classifier:
        return {"plot": None, "table": t("no_classifier", lang, model=loaded.name)}
    target = an.top(1)[0][0]

    def run():
        ctx.check_memory(loaded, an, "faithfulness")
        maps = views.standard_maps(an, class_maps(ctx, loaded, an, target))
        return ctx.run(explain.faithfulness, loaded, an, maps, None, fill, kind="faithfulness")

    plot, table = views.faithfulness_report(an.memo.get(("faithfulness", fill), run), lang)
    return {"plot": plot, "table": table, "fill": fill_choices(fill, lang)}


def render(ctx: AppContext, session: Session | None, lang: str, fill: str | None = None) -> dict:
    """This photo's measurement if the button was pressed for it (it takes seconds), else nothing."""
    loaded, an = ctx.open(session)
    fill = fill if fill in explain.FILLS else loaded.removal_fill
    if ("faithfulness", fill) in an.memo:
        return measure(ctx, session, lang, fill)
    return {"plot": None, "table": "", "fill": fill_choices(fill, lang)}


def fill_choices(fill: str, lang: str) -> dict:
    return gr.update(choices=[(t(f"fill_{f}", lang), f) for f in explain.FILLS], value=fill)


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("faith_help"))
    with gr.Row():
        fill = gr.Radio([(t(f"fill_{f}", "en"), f) for f in explain.FILLS], value=ctx.start.removal_fill,
                        label=L("fill"), scale=2)
        run = gr.Button(L("faith_run"), variant="primary", elem_id="faith-run", scale=1)
    table = gr.Markdown(elem_id="faith-table")
    plot = out_image("faith_plot", "faith")
    return View(render, controls={"fill": fill},
                outputs={"plot": plot, "table": table}, extra={"run": run})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    measuring = replace(view, render=measure)
    view.extra["run"].click(measuring.handler(ctx), [shared.session, shared.lang, *view.controls.values()],
                            view.targets(), api_visibility="private")
