"""Explain · Click a patch: where that patch looks (layer/head, head mean, rollout) and its
position-embedding similarity. No model run per click."""

from __future__ import annotations

import gradio as gr

from vitviz import views
from vitviz.analysis import Analysis
from vitviz.models import LoadedModel

from .context import AppContext, Session
from .text import L
from .view import Shared, View, guarded, head_choices, head_dropdown, head_value, layer_slider, out_image, parse_head

ID = "click"
# the clicked patch's four maps: output name -> the key of its label and element id (query_att, query-att)
MAPS = {"attention": "att", "head_mean": "mean", "rollout": "rollout", "posemb": "posemb"}


def map_image(name: str) -> gr.Image:
    return out_image(f"query_{MAPS[name]}", f"query-{MAPS[name]}")


def draw(ctx: AppContext, loaded: LoadedModel, an: Analysis, lang: str, patch=None, layer: int = 0,
         head: str = "mean", alpha: float = 0.5) -> dict:
    """The click canvas (the clicked patch marked) and, once a patch is chosen, its four maps."""
    head = head_value(head, an.num_heads)
    out = {"canvas": views.click_canvas(an, None if patch is None else int(patch) % (an.grid[0] * an.grid[1])),
           "layer": gr.update(maximum=an.num_layers - 1),
           "head": gr.update(choices=head_choices(an.num_heads, lang), value=head)}
    if patch is None:
        return out | {name: None for name in MAPS}
    patch = int(patch) % (an.grid[0] * an.grid[1])
    maps = views.query_maps(ctx.weights(loaded), an, patch, layer, parse_head(head), alpha)
    return out | dict(zip(MAPS, maps))


def render(ctx: AppContext, session: Session | None, lang: str, **controls) -> dict:
    return draw(ctx, *ctx.open(session), lang, **controls)


def click(ctx: AppContext, session: Session | None, lang: str, layer, head, alpha, evt: gr.SelectData) -> dict:
    """A click on the canvas: the patch under it, and its maps."""
    _, an = ctx.open(session)
    patch = views.patch_at(an, *evt.index, views.click_canvas(an).shape[:2])
    return {"patch": patch} | render(ctx, session, lang, patch=patch, layer=layer, head=head, alpha=alpha)


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("click_help"))
    with gr.Row():
        layer, head = layer_slider(ctx.start), head_dropdown(ctx.start)
        patch = gr.Number(None, label=L("patch"), precision=0, interactive=False, elem_id="query-patch")
    with gr.Row():
        canvas = gr.Image(label=L("click_image"), format="png", interactive=False, elem_id="click-canvas")
        maps = {"attention": map_image("attention")}
    with gr.Row():
        maps |= {name: map_image(name) for name in ("head_mean", "rollout", "posemb")}
    return View(render, controls={"patch": patch, "layer": layer, "head": head, "alpha": shared.alpha},
                outputs={"canvas": canvas, **maps})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    c = view.controls

    def on_click(session, lang, layer, head, alpha, evt: gr.SelectData):
        return view.updates(ctx, guarded(ctx, "click", lang, click, ctx, session, lang, layer, head, alpha, evt))

    view.outputs["canvas"].select(on_click, [shared.session, shared.lang, c["layer"], c["head"], c["alpha"]],
                                  view.targets(), api_visibility="private", show_progress="hidden")
