"""Learn · Inductive bias: does a ViT need more data than a CNN? vitviz's own measurement
(python -m vitviz.study), and what distillation from a CNN gave the bundled model."""

from __future__ import annotations

import json

import gradio as gr

from vitviz import models, study
from vitviz.core.paths import STUDY_DIR
from vitviz.service.context import AppContext, Opened

from .text import L, t
from .view import Shared, View, clear_of_badge, out_image

ID = "bias"


def study_records() -> list[dict]:
    path = STUDY_DIR / "study.json"
    return json.loads(path.read_text())["records"] if path.exists() else []


def findings(records: list[dict], lang: str) -> str:
    """The study's numbers in sentences: smallest and largest training set, each model."""
    if not records:
        return t("bias_missing", lang)
    acc = {(r["model"], r["train_images"]): 100 * r["test_accuracy"] for r in records}
    sizes = sorted({r["train_images"] for r in records})
    lines = []
    for n in (sizes[0], sizes[-1]):
        parts = ", ".join(f"{t(f'study_name_{k}', lang)} {acc[(k, n)]:.1f} %" for k in study.MODELS if (k, n) in acc)
        lines.append(t("bias_at", lang, n=f"{n:,}", parts=parts))
    gap_small = acc.get(("cnn", sizes[0]), 0) - acc.get(("vit", sizes[0]), 0)
    gap_large = acc.get(("cnn", sizes[-1]), 0) - acc.get(("vit", sizes[-1]), 0)
    lines.append(t("bias_gap", lang, small=f"{gap_small:+.1f}", large=f"{gap_large:+.1f}",
                   n0=f"{sizes[0]:,}", n1=f"{sizes[-1]:,}"))
    return "\n\n".join(lines)


def distillation(lang: str) -> str:
    """The bundled model's teacher and heads, from its training record."""
    rec = models.bundled_training_record()
    if not rec or "teacher" not in rec:
        return ""
    heads = rec.get("heads", {})
    return t("bias_distilled", lang, teacher=f"{100 * rec['teacher']['test_accuracy']:.2f}",
             cls=f"{100 * heads.get('cls', float('nan')):.2f}", dist=f"{100 * heads.get('dist', float('nan')):.2f}",
             both=f"{100 * rec['test_accuracy']:.2f}")


def render(ctx: AppContext, opened: Opened | None, lang: str) -> dict:
    records = study_records()
    table = study.table(records, lang) if records else ""
    plot = None
    if records:
        plot = ctx.pictures.get(("study plot", lang, len(records)),
                                lambda: ctx.picture(clear_of_badge(study.plot(records, lang)), lossless=True))
    return {"findings": findings(records, lang), "plot": plot, "table": table, "distillation": distillation(lang)}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("bias_help"))
    with gr.Row():
        plot = out_image("bias_plot", "bias-plot")
        with gr.Column():
            findings_md = gr.Markdown(elem_id="bias-findings")
            table = gr.Markdown(elem_id="bias-table")
    distilled = gr.Markdown(elem_id="bias-distillation")
    return View(render, outputs={"findings": findings_md, "plot": plot, "table": table, "distillation": distilled},
                needs_session=False)
