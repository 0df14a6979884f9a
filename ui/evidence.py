"""Explain · Evidence: what speaks for believing each map on this photo, against a random map.

Two parts, one choice apart (the section's row of tabs is full):
- remove pixels: perturbation curves and AUCs (Chefer et al. CVPR 2021), SaCo (Wu et al. CVPR
  2024), one table of evidence per map with the sanity check at full randomisation and pointing,
  and the maps' ranking under each fill of the removed pixels (Rong et al. ICML 2022);
- the sanity check (ui/sanity.py): the maps as the model's blocks are re-initialised.
Everything runs on request (seconds) and is kept with the analysis (vitviz.service.work). The maps
are every method in the registry the model can be explained with (vitviz.methods).
"""

from __future__ import annotations

from functools import partial

import gradio as gr

from vitviz import methods
from vitviz.core import limits
from vitviz.evidence import measure, perturb, table
from vitviz.pictures import evidence as pictures
from vitviz.service import work
from vitviz.service.context import AppContext, Opened

from . import sanity
from .text import L, t
from .view import Shared, View, clear_of_badge, out_image

ID = "evidence"
PARTS = ("measure", "sanity")


def render(ctx: AppContext, opened: Opened, lang: str, fill: str | None = None, part: str = "measure",
           action: str | None = None) -> dict:
    """What was measured for this photo (action: "measure", "compare" or "sanity" runs it first)."""
    loaded = opened.loaded
    fill = work.pick_fill(ctx, opened, fill)
    part = part if part in PARTS else "measure"
    shown = {"fill": fill_choices(ctx, opened, fill, lang), "part": gr.update(choices=part_choices(lang), value=part),
             "measure_box": gr.update(visible=part == "measure"), "sanity_box": gr.update(visible=part == "sanity")}
    if not loaded.has_classifier:
        note = t("no_classifier", lang, model=loaded.name)
        return {**shown, "plot": None, "table": "", "note": note, "fills": "",
                **prefixed(sanity.show(opened, lang))}
    if action == "measure":
        work.evidence(ctx, opened, fill)
    if action == "compare":
        for f in work.fills(ctx, opened):
            work.evidence(ctx, opened, f)
    refused = work.try_sanity(ctx, opened) if action in ("measure", "sanity") else None
    sanity_part = sanity.show(opened, lang, refused)
    return {**shown, **measured(ctx, opened, fill, lang, sanity_part["note"]), "fills": compared(ctx, opened, lang),
            **prefixed(sanity_part)}


def prefixed(named: dict) -> dict:
    return {f"sanity_{k}": v for k, v in named.items()}


def measured(ctx: AppContext, opened: Opened, fill: str, lang: str, sanity_why: str = "") -> dict:
    """The evidence table, the curves and the notes, when this fill was measured for this photo.
    sanity_why: why the sanity check is missing (a refusal, a model it cannot check), if it is."""
    notes = [] if "road" in work.fills(ctx, opened) else [road_note(ctx, opened, lang)]
    result = work.measured(opened, fill)
    if result is None:
        return {"plot": None, "table": "", "note": "\n\n".join(notes)}
    checked = work.sanity_done(opened)
    why = "" if checked is not None else sanity_why or t("ev_no_mprt", lang)
    if result["pointing"] is None:
        notes.append(t("ev_no_mask", lang))
    if why:
        notes.append(t("ev_mprt_missing", lang, why=why))
    ev = table.evidence(result["curves"], result["saco"], None if checked is None else checked.spearman,
                        result["pointing"])
    plot = pictures.curves_plot(result["curves"], perturb.FRACTIONS, lang)
    return {"plot": clear_of_badge(plot), "table": table.evidence_table(ev, lang),
            "note": "\n\n".join([t("ev_columns", lang), table.conventions_line(lang), *notes])}


def compared(ctx: AppContext, opened: Opened, lang: str) -> str:
    """The ranking under each fill, once every fill offered was measured."""
    offered = work.fills(ctx, opened)
    results = {f: work.measured(opened, f) for f in offered}
    if any(r is None for r in results.values()):
        return ""
    by_fill = {f: r["curves"] for f, r in results.items()}
    changed = table.rank_changes(by_fill)
    moved = (t("ev_fills_changed", lang, names=", ".join(methods.get(n).name(lang) for n in changed)) if changed
             else t("ev_fills_same", lang))
    skipped = [] if "road" in offered else [road_note(ctx, opened, lang)]
    return "\n\n".join([t("ev_fills_title", lang), table.fill_table(by_fill, lang), moved, *skipped])


def road_note(ctx: AppContext, opened: Opened, lang: str) -> str:
    size = opened.an.seen.shape[:2]
    return t("ev_road_hidden", lang, size=limits.format_size(size), need=limits.human_bytes(measure.road_bytes(size)),
             limit=limits.human_bytes(ctx.policy.request_budget))


def fill_choices(ctx: AppContext, opened: Opened, fill: str, lang: str) -> dict:
    return gr.update(choices=[(t(f"fill_{f}", lang), f) for f in work.fills(ctx, opened)], value=fill)


def part_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"ev_part_{p}", lang), p) for p in PARTS]


def build(ctx: AppContext, shared: Shared) -> View:
    part = gr.Radio(part_choices("en"), value="measure", label=L("ev_part"), elem_id="evidence-part")
    with gr.Column() as measure_box:
        gr.Markdown(L("ev_help"))
        with gr.Row():
            fill = gr.Radio([(t(f"fill_{f}", "en"), f) for f in perturb.FILLS], value=ctx.start.removal_fill,
                            label=L("fill"), scale=2)
            run = gr.Button(L("ev_run"), variant="primary", elem_id="evidence-run", scale=1)
        table_md = gr.Markdown(elem_id="evidence-table")
        note = gr.Markdown(elem_id="evidence-note")
        plot = out_image("ev_plot", "evidence-curves")
        compare = gr.Button(L("ev_compare"), elem_id="evidence-compare")
        ranks = gr.Markdown(elem_id="evidence-fills")
    with gr.Column(visible=False) as sanity_box:
        inner = sanity.build(ctx, shared)
    return View(render, controls={"fill": fill, "part": part},
                outputs={"plot": plot, "table": table_md, "note": note, "fills": ranks, "measure_box": measure_box,
                         "sanity_box": sanity_box, **prefixed(inner.outputs)},
                extra={"run": run, "compare": compare, "sanity_run": inner.extra["run"]})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    inputs = [shared.session, shared.lang, *view.controls.values()]
    for button, action in (("run", "measure"), ("compare", "compare"), ("sanity_run", "sanity")):
        view.extra[button].click(view.handler(ctx, partial(render, action=action)), inputs, view.targets(),
                                 api_visibility="private")
