"""Learn · Token norms: the length of every token's hidden state per layer, as maps over the patch
grid, with [CLS] and registers listed apart (Darcet et al., ICLR 2024: high-norm patch tokens)."""

from __future__ import annotations

import gradio as gr

from vitviz import analysis, views

from .context import AppContext, Session
from .text import L
from .view import Shared, View, clear_of_badge, out_image

ID = "norms"


def render(ctx: AppContext, session: Session | None, lang: str) -> dict:
    loaded, an = ctx.open(session)
    norms = an.memo.get(("norms",), lambda: ctx.run(analysis.token_norms, loaded, an.pixel_values))
    picture, table = views.token_norms(an, norms, lang)
    return {"picture": clear_of_badge(picture), "table": table}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("norms_help"))
    image = out_image("norms_map", "norms")
    table = gr.Markdown(elem_id="norms-table")
    return View(render, outputs={"picture": image, "table": table})
