"""Explain · Faithfulness: the evidence for believing each map on this photo, against a random map.

Two parts, one choice apart (the section's row of tabs is full):
- remove pixels: perturbation curves and AUCs (Chefer et al. CVPR 2021), SaCo (Wu et al. CVPR
  2024), one table of evidence per map with the sanity check at full randomisation and pointing,
  and the maps' ranking under each fill of the removed pixels (Rong et al. ICML 2022);
- the sanity check (ui/sanity.py): the maps as the model's blocks are re-initialised.
Everything runs on request (seconds) and is kept with the analysis.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import gradio as gr

from vitviz import evidence, explain, limits, views
from vitviz.analysis import Analysis
from vitviz.models import LoadedModel

from . import sanity
from .classmap import class_maps
from .context import AppContext, Session
from .text import L, t
from .view import Shared, View, clear_of_badge, out_image

ID = "faith"
PARTS = ("measure", "sanity")


def fills(an: Analysis) -> tuple[str, ...]:
    """The fills offered for this input: ROAD only where its imputation is quick (evidence.ROAD_MAX_PIXELS)."""
    return tuple(f for f in explain.FILLS if f != "road" or evidence.road_allowed(an.seen.shape[:2]))


def pick_fill(loaded: LoadedModel, an: Analysis, fill: str | None) -> str:
    return fill if fill in fills(an) else loaded.removal_fill


def evidence_for(ctx: AppContext, loaded: LoadedModel, an: Analysis, fill: str) -> dict:
    """{"faith", "saco", "pointing"} of every standard map for the predicted class, computed once per fill."""
    def run():
        evidence.check_fill(fill, an.seen.shape[:2])
        ctx.check_memory(loaded, an, "faithfulness")
        maps = views.standard_maps(an, class_maps(ctx, loaded, an, an.top(1)[0][0]))
        measured = ctx.run(evidence.measure, loaded, an, maps, fill, kind="evidence")
        mask = evidence.object_mask(loaded.label_set, an.seen)
        return {**measured, "pointing": evidence.pointing_scores(maps, mask)}

    return an.memo.get(("evidence", fill), run)


def render(ctx: AppContext, session: Session | None, lang: str, fill: str | None = None, part: str = "measure",
           action: str | None = None) -> dict:
    """What was measured for this photo (action: "measure", "compare" or "sanity" runs it first)."""
    loaded, an = ctx.open(session)
    fill = pick_fill(loaded, an, fill)
    part = part if part in PARTS else "measure"
    shown = {"fill": fill_choices(an, fill, lang), "part": gr.update(choices=part_choices(lang), value=part),
             "measure_box": gr.update(visible=part == "measure"), "sanity_box": gr.update(visible=part == "sanity")}
    if not loaded.has_classifier:
        note = t("no_classifier", lang, model=loaded.name)
        return {**shown, "plot": None, "table": "", "note": note, "fills": "",
                **prefixed(sanity.show(loaded, an, lang))}
    if action == "measure":
        evidence_for(ctx, loaded, an, fill)
    if action == "compare":
        for f in fills(an):
            evidence_for(ctx, loaded, an, f)
    sanity_part = sanity.show(loaded, an, lang, run=action in ("measure", "sanity"), ctx=ctx)
    return {**shown, **measured(an, fill, lang, sanity_part["note"]), "fills": compared(an, lang),
            **prefixed(sanity_part)}


def prefixed(named: dict) -> dict:
    return {f"sanity_{k}": v for k, v in named.items()}


def measured(an: Analysis, fill: str, lang: str, sanity_why: str = "") -> dict:
    """The evidence table, the curves and the notes, when this fill was measured for this photo.
    sanity_why: why the sanity check is missing (a refusal, a model it cannot check), if it is."""
    notes = [] if "road" in fills(an) else [road_note(an, lang)]
    if ("evidence", fill) not in an.memo:
        return {"plot": None, "table": "", "note": "\n\n".join(notes)}
    result = an.memo.lookup(("evidence", fill))
    checked = an.memo.lookup(sanity.KEY)
    mprt = None if checked is None else checked.spearman
    why = "" if checked is not None else sanity_why or t("faith_no_mprt", lang)
    if result["pointing"] is None:
        notes.append(t("faith_no_mask", lang))
    if why:
        notes.append(t("faith_mprt_missing", lang, why=why))
    ev = evidence.evidence(result["faith"], result["saco"], mprt, result["pointing"])
    plot, _ = views.faithfulness_report(result["faith"], lang)
    return {"plot": clear_of_badge(plot), "table": evidence.evidence_table(ev, lang),
            "note": "\n\n".join([t("faith_columns", lang), *notes])}


def compared(an: Analysis, lang: str) -> str:
    """The ranking under each fill, once every fill offered was measured."""
    offered = fills(an)
    if not all(("evidence", f) in an.memo for f in offered):
        return ""
    by_fill = {f: an.memo.lookup(("evidence", f))["faith"] for f in offered}
    changed = evidence.rank_changes(by_fill)
    moved = (t("faith_fills_changed", lang, names=", ".join(t(f"map_{n}", lang) for n in changed)) if changed
             else t("faith_fills_same", lang))
    skipped = [] if "road" in offered else [road_note(an, lang)]
    return "\n\n".join([t("faith_fills_title", lang), evidence.fill_table(by_fill, lang), moved, *skipped])


def road_note(an: Analysis, lang: str) -> str:
    size = an.seen.shape[:2]
    return t("faith_road_hidden", lang, size=limits.format_size(size), seconds=f"{evidence.road_seconds(size):.0f}",
             limit=limits.format_size((int(evidence.ROAD_MAX_PIXELS ** 0.5),) * 2))


def measure(ctx: AppContext, session: Session | None, lang: str, fill: str | None = None,
            part: str = "measure") -> dict:
    """Measure this photo's maps under `fill` (and run the sanity check the evidence table reads)."""
    return render(ctx, session, lang, fill, part, action="measure")


def fill_choices(an: Analysis, fill: str, lang: str) -> dict:
    return gr.update(choices=[(t(f"fill_{f}", lang), f) for f in fills(an)], value=fill)


def part_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"faith_part_{p}", lang), p) for p in PARTS]


def build(ctx: AppContext, shared: Shared) -> View:
    part = gr.Radio(part_choices("en"), value="measure", label=L("faith_part"), elem_id="faith-part")
    with gr.Column() as measure_box:
        gr.Markdown(L("faith_help"))
        with gr.Row():
            fill = gr.Radio([(t(f"fill_{f}", "en"), f) for f in explain.FILLS], value=ctx.start.removal_fill,
                            label=L("fill"), scale=2)
            run = gr.Button(L("faith_run"), variant="primary", elem_id="faith-run", scale=1)
        table = gr.Markdown(elem_id="faith-table")
        note = gr.Markdown(elem_id="faith-note")
        plot = out_image("faith_plot", "faith")
        compare = gr.Button(L("faith_compare"), elem_id="faith-compare")
        ranks = gr.Markdown(elem_id="faith-fills")
    with gr.Column(visible=False) as sanity_box:
        inner = sanity.build(ctx, shared)
    return View(render, controls={"fill": fill, "part": part},
                outputs={"plot": plot, "table": table, "note": note, "fills": ranks, "measure_box": measure_box,
                         "sanity_box": sanity_box, **prefixed(inner.outputs)},
                extra={"run": run, "compare": compare, "sanity_run": inner.extra["run"]})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    inputs = [shared.session, shared.lang, *view.controls.values()]
    for button, action in (("run", "measure"), ("compare", "compare"), ("sanity_run", "sanity")):
        acting = replace(view, render=partial(render, action=action))
        view.extra[button].click(acting.handler(ctx), inputs, view.targets(), api_visibility="private")
