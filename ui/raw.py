"""Explain · Raw attention: a token's attention for every layer × head, one selected and enlarged."""

from __future__ import annotations

import gradio as gr

from vitviz.pictures import maps
from vitviz.service.context import AppContext, Opened

from .text import L, t
from .view import (
    BADGE_BAND,
    Shared,
    View,
    clear_of_badge,
    guarded,
    head_choices,
    head_dropdown,
    head_value,
    layer_slider,
    opened_session,
    out_image,
    parse_head,
    query_radio,
    query_update,
)

ID = "raw"


def render(ctx: AppContext, opened: Opened, lang: str, layer: int = 0, head: str = "mean",
           one_scale: bool = False, alpha: float = 0.5, query: int = 0) -> dict:
    an = opened.an
    query = int(query or 0) if int(query or 0) < an.prefix else 0
    head = head_value(head, an.num_heads)
    grid, on_input, on_photo, means = maps.raw_attention(an, layer, parse_head(head), one_scale, alpha, lang, query)
    return {"overview": clear_of_badge(grid), "on_input": on_input, "on_photo": on_photo,
            "note": t("raw_probe", lang) if opened.loaded.query_name == "probe" else "",
            "means": clear_of_badge(means),
            "layer": gr.update(maximum=an.num_layers - 1),
            "head": gr.update(choices=head_choices(an.num_heads, lang), value=head),
            "query": query_update(an.prefix_names, query)}


def pick_tile(ctx: AppContext, opened: Opened, lang: str, evt: gr.SelectData, **controls) -> dict:
    """A click on the layers × heads overview (drawn below the badge band): that layer and head, drawn."""
    x, y = evt.index
    layer, head = maps.overview_cell(opened.an, x, y - BADGE_BAND)
    return render(ctx, opened, lang, **{**controls, "layer": layer, "head": str(head)}) | {"layer": layer,
                                                                                           "head": str(head)}


def build(ctx: AppContext, shared: Shared) -> View:
    with gr.Row():
        layer, head = layer_slider(ctx.start), head_dropdown(ctx.start)
        one_scale = gr.Checkbox(False, label=L("shared_scale"))
        query = query_radio()
    note = gr.Markdown(elem_id="raw-note")
    with gr.Row():
        overview = out_image("raw_grid", "raw-grid")
        with gr.Column():
            on_input = out_image("raw_selected", "raw-seen")
            on_photo = out_image("on_photo", "raw-photo")
    means = out_image("raw_mean", "raw-means")
    return View(render,
                controls={"layer": layer, "head": head, "one_scale": one_scale, "alpha": shared.alpha, "query": query},
                outputs={"overview": overview, "on_input": on_input, "on_photo": on_photo, "means": means,
                         "note": note})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    def select(session, lang, layer, head, one_scale, alpha, query, evt: gr.SelectData):
        def work():
            return pick_tile(ctx, opened_session(ctx, session), lang, evt, layer=layer, head=head,
                             one_scale=one_scale, alpha=alpha, query=query)
        return view.updates(ctx, guarded(ctx, "overview click", lang, work))

    view.outputs["overview"].select(select, [shared.session, shared.lang, *view.controls.values()], view.targets(),
                                    api_visibility="private", show_progress="hidden")
