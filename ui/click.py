"""Explain · Click a patch: where that patch looks (layer/head, head mean, rollout) and its
position-embedding similarity. No model run per click."""

from __future__ import annotations

import gradio as gr

from vitviz.pictures import maps
from vitviz.service.context import AppContext, Opened

from .text import L
from .view import (
    Shared,
    View,
    guarded,
    head_choices,
    head_dropdown,
    head_value,
    layer_slider,
    opened_session,
    out_image,
    parse_head,
)

ID = "click"
# the clicked patch's four maps: output name -> the key of its label and element id (query_att, query-att)
MAPS = {"attention": "att", "head_mean": "mean", "rollout": "rollout", "posemb": "posemb"}


def map_image(name: str) -> gr.Image:
    return out_image(f"query_{MAPS[name]}", f"query-{MAPS[name]}")


def render(ctx: AppContext, opened: Opened, lang: str, patch=None, layer: int = 0, head: str = "mean",
           alpha: float = 0.5) -> dict:
    """The click canvas (the clicked patch marked) and, once a patch is chosen, its four maps."""
    an = opened.an
    head = head_value(head, an.num_heads)
    out = {"canvas": maps.click_canvas(an, None if patch is None else int(patch) % (an.grid[0] * an.grid[1])),
           "layer": gr.update(maximum=an.num_layers - 1),
           "head": gr.update(choices=head_choices(an.num_heads, lang), value=head)}
    if patch is None:
        return out | {name: None for name in MAPS}
    patch = int(patch) % (an.grid[0] * an.grid[1])
    pictures = maps.query_maps(ctx.weights(opened.loaded), an, patch, layer, parse_head(head), alpha)
    return out | dict(zip(MAPS, pictures))


def click(ctx: AppContext, opened: Opened, lang: str, layer, head, alpha, evt: gr.SelectData) -> dict:
    """A click on the canvas: the patch under it, and its maps."""
    patch = maps.patch_at(opened.an, *evt.index, maps.click_canvas(opened.an).shape[:2])
    return {"patch": patch} | render(ctx, opened, lang, patch=patch, layer=layer, head=head, alpha=alpha)


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("click_help"))
    with gr.Row():
        layer, head = layer_slider(ctx.start), head_dropdown(ctx.start)
        patch = gr.Number(None, label=L("patch"), precision=0, interactive=False, elem_id="query-patch")
    with gr.Row():
        canvas = gr.Image(label=L("click_image"), format="png", interactive=False, elem_id="click-canvas")
        pictures = {"attention": map_image("attention")}
    with gr.Row():
        pictures |= {name: map_image(name) for name in ("head_mean", "rollout", "posemb")}
    return View(render, controls={"patch": patch, "layer": layer, "head": head, "alpha": shared.alpha},
                outputs={"canvas": canvas, **pictures})


def click_handler(ctx: AppContext, view: View):
    """The Gradio handler of a click on the canvas: the session opened once, the patch's maps drawn."""
    def on_click(session, lang, layer, head, alpha, evt: gr.SelectData):
        def work():
            return click(ctx, opened_session(ctx, session), lang, layer, head, alpha, evt)
        return view.updates(ctx, guarded(ctx, "click", lang, work))
    return on_click


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    c = view.controls
    view.outputs["canvas"].select(click_handler(ctx, view), [shared.session, shared.lang, c["layer"], c["head"],
                                                            c["alpha"]],
                                  view.targets(), api_visibility="private", show_progress="hidden")
