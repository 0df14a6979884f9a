"""Explain · Evidence · Sanity check (Adebayo et al., NeurIPS 2018): each map of this photo as the
model is randomised from the top (its head and final norm, then each block, then the embeddings:
vitviz.evidence.mprt's default convention, a step per block), with its rank correlation and SSIM with
the original map. A map that stays the same does not depend on what the model learned.

The check runs a randomised copy of the model (vitviz.evidence.mprt), so it is held to the memory
budget first and runs on request (seconds); its result is kept with the analysis
(vitviz.service.work). The Evidence view hosts it (a section's row of tabs has room for six views),
and its evidence table reads it.
"""

from __future__ import annotations

import gradio as gr

from vitviz.core.limits import RequestRefused
from vitviz.pictures import evidence as pictures
from vitviz.service import work
from vitviz.service.context import Opened

from .text import L, say, t
from .view import Shared, View, clear_of_badge, out_image


def show(opened: Opened, lang: str, refused: RequestRefused | None = None) -> dict:
    """{"picture", "note"}: the check's picture when it was run for this analysis, else why not."""
    why = work.sanity_unsupported(opened)
    if why:
        return {"picture": None, "note": t(why, lang, model=opened.loaded.name)}
    if refused is not None:
        return {"picture": None, "note": say(refused.key, lang, **refused.fields)}
    res = work.sanity_done(opened)
    if res is None:
        return {"picture": None, "note": ""}
    picture = pictures.sanity_picture(res.maps, res.spearman, res.ssim, lang, steps=res.steps)
    return {"picture": clear_of_badge(picture), "note": ""}


def build(ctx, shared: Shared) -> View:
    """The check's content (the Evidence view places it and wires its button)."""
    gr.Markdown(L("sanity_help"))
    gr.Markdown(L("sanity_flat"), elem_id="sanity-flat")
    run = gr.Button(L("sanity_run"), variant="primary", elem_id="sanity-run")
    note = gr.Markdown(elem_id="sanity-note")
    picture = out_image("sanity_picture", "sanity")
    return View(lambda ctx, opened, lang: show(opened, lang), outputs={"picture": picture, "note": note},
                extra={"run": run})
