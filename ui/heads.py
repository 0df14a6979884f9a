"""Heads · Which heads decide: the class logit split over the embeddings, every head and every MLP (direct
logit attribution), and heads switched off to see what changes (knock-out)."""

from __future__ import annotations

import gradio as gr

from vitviz.service.context import AppContext, Opened

from .view import Shared, View

ID = "heads"


def render(ctx: AppContext, opened: Opened, lang: str) -> dict:
    return {}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown("")
    return View(render)
