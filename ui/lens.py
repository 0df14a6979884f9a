"""Learn · When does it know? The logit lens: every layer read through the model's final norm and
head (vitviz.lens), the final top classes' probability layer by layer, and each patch's top class at
a chosen layer (as ViT-Prisma's logit lens draws it). One forward, kept with the analysis."""

from __future__ import annotations

import gradio as gr

from vitviz.pictures import lens as pictures
from vitviz.service import work
from vitviz.service.context import AppContext, Opened

from .text import L, t
from .view import Shared, View, clear_of_badge, out_image

ID = "lens"


def render(ctx: AppContext, opened: Opened, lang: str, layer=None) -> dict:
    loaded, an = opened.loaded, opened.an
    last = an.num_layers
    layer = last if layer is None else int(min(max(int(layer), 0), last))
    slider = gr.update(maximum=last, value=layer)
    if loaded.typed_labels or not loaded.has_classifier or not loaded.head_reads:
        key = "lens_typed" if loaded.typed_labels else "lens_no_classifier"
        return {"plot": None, "patches": None, "table": "", "note": t(key, lang, model=loaded.name), "layer": slider}
    r = work.layer_readout(ctx, opened)
    names = an.class_names.get(lang) or an.labels
    picture = pictures.patch_class_map(an.seen, an.grid, an.patch_size, r.patch_class[layer].numpy(),
                                       pictures.palette(r.patch_class), names, lang)
    return {"plot": clear_of_badge(pictures.top_plot(r.logits, names, lang)), "patches": clear_of_badge(picture),
            "table": pictures.top_table(r.logits, names, lang), "note": "", "layer": slider}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("lens_help"))
    gr.Markdown(L("lens_honest"), elem_id="lens-honest")
    note = gr.Markdown(elem_id="lens-note")
    with gr.Row():
        plot = out_image("lens_plot", "lens-plot")
        with gr.Column():
            layer = gr.Slider(0, ctx.start.layers, value=ctx.start.layers, step=1, label=L("lens_layer"))
            patches = out_image("lens_patches", "lens-patches")
    table = gr.Markdown(elem_id="lens-table")
    return View(render, controls={"layer": layer},
                outputs={"plot": plot, "patches": patches, "table": table, "note": note})
