"""See · Masked autoencoder (He et al. 2022): 75 % of the patches hidden and reconstructed."""

from __future__ import annotations

import gradio as gr

from vitviz.pictures import maps
from vitviz.service import work
from vitviz.service.context import AppContext, Opened

from .text import L, t
from .view import Shared, View, out_image

ID = "mae"
RATIO = 0.75


def render(ctx: AppContext, opened: Opened, lang: str) -> dict:
    if not opened.loaded.can_reconstruct:
        return {"note": t("mae_only", lang, model=opened.loaded.name), "masked": None, "reconstruction": None,
                "pasted": None}
    recon, mask = work.reconstruction(ctx, opened, RATIO)
    masked, reconstruction, pasted = maps.mae_pictures(opened.an, recon, mask)
    return {"note": t("mae_help", lang), "masked": masked, "reconstruction": reconstruction, "pasted": pasted}


def build(ctx: AppContext, shared: Shared) -> View:
    note = gr.Markdown(L("mae_help"))
    with gr.Row():
        masked = out_image("mae_masked", "mae-masked")
        reconstruction = out_image("mae_recon", "mae-recon")
        pasted = out_image("mae_pasted", "mae-pasted")
    return View(render,
                outputs={"note": note, "masked": masked, "reconstruction": reconstruction, "pasted": pasted})
