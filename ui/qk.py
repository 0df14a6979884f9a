"""Heads · Queries and keys: every token's query and key of many photos in one picture, for a layer and
a head (AttentionViz, Yeh et al. VIS 2023), and every head of a layer as small multiples."""

from __future__ import annotations

import gradio as gr

from vitviz.service.context import AppContext, Opened

from .view import Shared, View

ID = "qk"


def render(ctx: AppContext, opened: Opened, lang: str) -> dict:
    return {}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown("")
    return View(render)
