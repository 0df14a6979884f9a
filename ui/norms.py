"""Learn · Token norms: the length of every token's hidden state per layer, as maps over the patch
grid, with [CLS] and registers listed apart (Darcet et al., ICLR 2024: high-norm patch tokens).
When the selector also offers the same model with registers (or without), both run on the photo
and are shown side by side."""

from __future__ import annotations

from dataclasses import replace

import gradio as gr

from vitviz import pairs
from vitviz.pictures import maps
from vitviz.service import work
from vitviz.service.context import AppContext, Opened

from .text import L, t
from .view import Shared, View, clear_of_badge, out_image

ID = "norms"


def render(ctx: AppContext, opened: Opened, lang: str) -> dict:
    picture, table = maps.token_norms(opened.an, work.token_norms(ctx, opened), lang)
    return {"picture": clear_of_badge(picture), "table": table, **partner(ctx, opened, lang)}


def partner(ctx: AppContext, opened: Opened, lang: str) -> dict:
    """The other half of a with / without registers pair on the same photo (hidden when none is offered)."""
    name = pairs.register_partner(opened.loaded.name, ctx.policy.models)
    if name is None:
        hidden = gr.update(visible=False)
        return {"compare": hidden, "other_picture": gr.update(value=None, visible=False), "other_table": hidden}
    other, values, size = work.partner_norms(ctx, opened, name)
    seen = replace(opened.an, prefix_names=other.prefix_names, grid=other.grid(tuple(size)))
    picture, table = maps.token_norms(seen, values, lang)
    return {"compare": gr.update(value=t("norms_compare", lang), visible=True),
            "other_picture": gr.update(value=ctx.picture(clear_of_badge(picture)), visible=True,
                                       label=t("norms_other", lang, model=name)),
            "other_table": gr.update(value=table, visible=True)}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("norms_help"))
    compare = gr.Markdown(visible=False, elem_id="norms-compare")
    with gr.Row():
        with gr.Column():
            image = out_image("norms_map", "norms")
            table = gr.Markdown(elem_id="norms-table")
        with gr.Column():
            other_image = out_image("norms_map", "norms-other", visible=False)
            other_table = gr.Markdown(visible=False, elem_id="norms-other-table")
    return View(render, outputs={"picture": image, "table": table, "compare": compare,
                                 "other_picture": other_image, "other_table": other_table})
