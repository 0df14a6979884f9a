"""Explain · Faithfulness · Sanity check (Adebayo et al., NeurIPS 2018): each map of this photo as the
model's blocks are re-initialised from the top, with its rank correlation and SSIM with the
original map. A map that stays the same does not depend on what the model learned.

The check runs a randomised copy of the model (vitviz.sanity), so it is held to the memory budget
first and runs on request (seconds); its result is kept with the analysis. The Faithfulness view
hosts it (a section's row of tabs has room for six views), and its evidence table reads it.
"""

from __future__ import annotations

import gradio as gr

from vitviz import evidence, explain, sanity, sanity_views, views
from vitviz.analysis import Analysis
from vitviz.lens import encoder_layers
from vitviz.limits import RequestRefused
from vitviz.models import LoadedModel

from .context import AppContext, Session
from .text import L, say, t
from .view import Shared, View, clear_of_badge, out_image

ID = "sanity"
KEY = ("sanity",)              # the analysis's memo entry


def methods(loaded: LoadedModel) -> tuple[str, ...]:
    """The maps the check compares: every standard map (class maps only with a classifier)."""
    return tuple(m for m in views.STANDARD_MAPS if loaded.has_classifier or m not in explain.CLASS_METHODS)


def unsupported(loaded: LoadedModel, lang: str) -> str | None:
    """Why this model cannot be checked (no classifier, no list of blocks to re-initialise), or None."""
    if not loaded.has_classifier:
        return t("no_classifier", lang, model=loaded.name)
    try:
        encoder_layers(loaded.model)
    except ValueError:
        return t("sanity_unsupported", lang, model=loaded.name)
    return None


def check(ctx: AppContext, loaded: LoadedModel, an: Analysis) -> sanity.SanityResult:
    """The check of this analysis, run once (RequestRefused over the memory budget)."""
    def run():
        evidence.check_sanity_budget(loaded, an.seen.shape[:2], ctx.policy.request_budget)
        return ctx.run(sanity.mprt, loaded, an, methods(loaded), kind="sanity")

    return an.memo.get(KEY, run)


def show(loaded: LoadedModel, an: Analysis, lang: str, run: bool = False, ctx: AppContext | None = None) -> dict:
    """{"picture", "note"}: the check's picture when it was run for this analysis (run: run it now)."""
    why = unsupported(loaded, lang)
    if why:
        return {"picture": None, "note": why}
    if run:
        try:
            check(ctx, loaded, an)
        except RequestRefused as refused:
            return {"picture": None, "note": say(refused.key, lang, **refused.fields)}
    if KEY not in an.memo:
        return {"picture": None, "note": ""}
    res = an.memo.lookup(KEY)
    return {"picture": clear_of_badge(sanity_views.sanity_picture(res.maps, res.spearman, res.ssim, lang)), "note": ""}


def render(ctx: AppContext, session: Session | None, lang: str) -> dict:
    """This photo's check if it was run (it takes seconds), else nothing."""
    loaded, an = ctx.open(session)
    return show(loaded, an, lang)


def measure(ctx: AppContext, session: Session | None, lang: str) -> dict:
    loaded, an = ctx.open(session)
    return show(loaded, an, lang, run=True, ctx=ctx)


def build(ctx: AppContext, shared: Shared) -> View:
    """The check's content (the Faithfulness view places it)."""
    gr.Markdown(L("sanity_help"))
    gr.Markdown(L("sanity_flat"), elem_id="sanity-flat")
    run = gr.Button(L("sanity_run"), variant="primary", elem_id="sanity-run")
    note = gr.Markdown(elem_id="sanity-note")
    picture = out_image("sanity_picture", "sanity")
    return View(render, outputs={"picture": picture, "note": note}, extra={"run": run})
