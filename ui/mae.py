"""See · Masked autoencoder (He et al. 2022): 75 % of the patches hidden and reconstructed."""

from __future__ import annotations

import gradio as gr

from vitviz import mae, views

from .context import AppContext, Session
from .text import L, t
from .view import Shared, View, out_image

ID = "mae"
RATIO = 0.75


def render(ctx: AppContext, session: Session | None, lang: str) -> dict:
    loaded, an = ctx.open(session)
    if not loaded.can_reconstruct:
        return {"note": t("mae_only", lang, model=loaded.name), "masked": None, "reconstruction": None,
                "pasted": None}
    recon, mask = an.memo.get(("mae", RATIO), lambda: ctx.run(mae.reconstruct, loaded, an.pixel_values, RATIO))
    masked, reconstruction, pasted = views.mae_pictures(an, recon, mask)
    return {"note": t("mae_help", lang), "masked": masked, "reconstruction": reconstruction, "pasted": pasted}


def build(ctx: AppContext, shared: Shared) -> View:
    note = gr.Markdown(L("mae_help"))
    with gr.Row():
        masked = out_image("mae_masked", "mae-masked")
        reconstruction = out_image("mae_recon", "mae-recon")
        pasted = out_image("mae_pasted", "mae-pasted")
    return View(render,
                outputs={"note": note, "masked": masked, "reconstruction": reconstruction, "pasted": pasted})
