"""Heads · Which heads decide: the class logit split over the embeddings, every head and every MLP (direct
logit attribution, vitviz.heads.attribution), a head's share traced back to the patches it read, and heads
switched off to see what changes (knock-out, vitviz.heads.knockout), with a greedy search for the fewest
heads that change the answer. The model work is kept with the analysis (vitviz.service.heads)."""

from __future__ import annotations

from functools import partial

import gradio as gr

from vitviz import query as Q
from vitviz.core.limits import RequestRefused
from vitviz.heads.knockout import MODES
from vitviz.pictures import heads as pictures
from vitviz.pictures import maps
from vitviz.service import heads as work
from vitviz.service.context import AppContext, Opened

from .text import L, say, t
from .view import BADGE_BAND, Shared, View, clear_of_badge, guarded, opened_session, out_image

ID = "heads"
CLICKS = ("show", "toggle")
PICTURE_H = 400          # pixels the pictures may take on a 1280×800 projector


def head_value(layer: int, head: int) -> str:
    return f"{layer}.{head}"


def head_choices(loaded) -> list[tuple[str, str]]:
    return [(f"L{layer} H{head}", head_value(layer, head)) for layer in range(loaded.layers)
            for head in range(loaded.heads)]


def parse_heads(values, loaded) -> list[tuple[int, int]]:
    """The dropdown's "layer.head" values as pairs, those outside this model (another model's) left out."""
    if isinstance(values, str):
        values = [values]
    found = []
    for value in values or ():
        try:
            layer, head = (int(part) for part in str(value).split("."))
        except ValueError:
            continue
        if 0 <= layer < loaded.layers and 0 <= head < loaded.heads and (layer, head) not in found:
            found.append((layer, head))
    return found


def render(ctx: AppContext, opened: Opened, lang: str, target=None, shown=None, off=None, mode: str = "zero",
           click: str = "show", action: str | None = None) -> dict:
    """The grid, the shown head's sources and the knock-out (action: "knockout" switches the set off,
    "search" runs the greedy search and switches its heads off)."""
    loaded, an = opened.loaded, opened.an
    mode = mode if mode in MODES else "zero"
    off_heads = parse_heads(off, loaded)
    out = {"mode": gr.update(choices=mode_choices(lang), value=mode),
           "click": gr.update(choices=click_choices(lang), value=click if click in CLICKS else "show")}
    if work.unavailable(opened):
        empty = {name: None for name in ("grid", "source", "rollout")}
        return {**out, **empty, "note": t("no_classifier", lang, model=loaded.name), "caption": "", "result": "",
                "target": gr.update(choices=[], value=None), "shown": gr.update(choices=[], value=None),
                "off": gr.update(choices=[], value=[])}
    classes = maps.class_choices(an, lang)
    target = target if target in [c for _, c in classes] else classes[0][1]
    names = an.class_names.get(lang) or an.labels
    attr = work.attribution_of(ctx, opened, target)
    picked = parse_heads(shown, loaded)
    head = picked[0] if picked else (default_head(attr) if attr is not None else None)
    search, knocked = None, None
    try:
        if action == "search":
            search = work.fewest_heads(ctx, opened)
            if search is None:
                search = t("heads_no_search", lang)
            elif search.found:
                off_heads, mode, action = list(search.heads), "zero", "knockout"
                out["mode"] = gr.update(choices=mode_choices(lang), value=mode)
        knocked = (work.knock_out(ctx, opened, off_heads, mode, target) if action == "knockout"
                   else work.kept_knock_out(opened, off_heads, mode, target))
        refused = ""
    except RequestRefused as exc:
        refused = say(exc.key, lang, **exc.fields)
    out |= {"target": gr.update(choices=classes, value=target),
            "shown": gr.update(choices=head_choices(loaded), value=None if head is None else head_value(*head)),
            "off": gr.update(choices=head_choices(loaded), value=[head_value(*h) for h in off_heads]),
            **attribution_part(an, attr, head, off_heads, names.get(target, str(target)), loaded, lang),
            **knock_out_part(an, knocked, off_heads, mode, target, names, lang, refused,
                             search or work.searched(opened))}
    return out


def default_head(attr) -> tuple[int, int]:
    """The head with the largest share of the logit."""
    return attr.order()[0]


def attribution_part(an, attr, head, off_heads, name: str, loaded, lang: str) -> dict:
    """The grid, the shown head's sources and caption, and the notes (or why there is no attribution)."""
    if attr is None:
        return {"grid": None, "source": None, "caption": "", "note": t("heads_not_affine", lang, model=loaded.name)}
    notes = [t("heads_frozen", lang)]
    if loaded.dtype not in ("float32", "int8"):            # an int8 model's read-out runs on float32 weights
        notes.append(t("heads_dtype", lang, dtype=loaded.dtype))
    grid = pictures.contribution_grid(attr, name, lang, selected=head, off=off_heads)
    layer, index = head
    value, patches, prefix = attr.heads[layer, index], attr.sources[layer, index].sum(), \
        attr.prefix_sources[layer, index].sum()
    fields = dict(layer=layer, head=index, name=name, value=f"{value:+.3f}")
    caption = (t("heads_source_caption", lang, **fields, patches=f"{patches:+.3f}", prefix=f"{prefix:+.3f}",
                 names=", ".join(an.prefix_names)) if an.prefix else t("heads_source_caption_plain", lang, **fields))
    return {"grid": clear_of_badge(grid), "source": pictures.source_map(an.seen, attr, layer, index, lang),
            "caption": caption, "note": "\n\n".join(notes)}


def knock_out_part(an, knocked, off_heads, mode: str, target: int, names: dict, lang: str, refused: str,
                   search) -> dict:
    """The knock-out's words and rollout pair (or the hint to press the button), and the search's answer."""
    lines = [search_line(search, names, lang)] if search is not None else []
    if refused:
        return {"result": "\n\n".join(lines + [refused]), "rollout": None}
    if knocked is None:
        return {"result": "\n\n".join(lines + [t("heads_press", lang)]), "rollout": None}
    if not knocked.heads:
        lines.append(t("heads_none_off", lang))
    else:
        before, after = knocked.base_logits[target], knocked.logits[target]
        lines.append(t("heads_result", lang, mode=t(f"heads_word_{mode}", lang), count=len(knocked.heads),
                       name=names.get(target, str(target)), before=f"{before:.3f}", after=f"{after:.3f}",
                       change=f"{knocked.change:+.3f}"))
    lines.append(pictures.top_change_table(knocked, names, lang))
    rollout = pictures.rollout_pair(an.seen, Q.rollout(an).numpy(), knocked.rollout, len(knocked.heads), lang)
    return {"result": "\n\n".join(lines), "rollout": clear_of_badge(rollout)}


def search_line(search, names: dict, lang: str) -> str:
    """The greedy search's answer in words (or why there is none: a string)."""
    if isinstance(search, str):
        return search
    if search.found:
        return t("heads_found", lang, n=search.found, before=names.get(search.top1, str(search.top1)),
                 after=names.get(search.new_top1, str(search.new_top1)))
    return t("heads_not_found", lang, bound=search.bound, name=names.get(search.top1, str(search.top1)))


def mode_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"heads_mode_{m}", lang), m) for m in MODES]


def click_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"heads_click_{c}", lang), c) for c in CLICKS]


def pick(ctx: AppContext, opened: Opened, lang: str, evt: gr.SelectData, **controls) -> dict:
    """A click on the grid (drawn below the badge band): that head shown, or switched off or on (and the
    set switched off at once: one forward)."""
    loaded = opened.loaded
    x, y = evt.index
    cell = pictures.grid_layout(loaded.layers, loaded.heads).head_at(x, y - BADGE_BAND)
    if cell is None:
        return render(ctx, opened, lang, **controls)
    if controls.get("click") == "toggle":
        off = parse_heads(controls.get("off"), loaded)
        off = [h for h in off if h != cell] if cell in off else off + [cell]
        return render(ctx, opened, lang, **{**controls, "off": [head_value(*h) for h in off]}, action="knockout")
    return render(ctx, opened, lang, **{**controls, "shown": head_value(*cell)})


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("heads_help"))
    with gr.Row():
        target = gr.Dropdown([], label=L("heads_target"), elem_id="heads-target", scale=2)
        mode = gr.Radio(mode_choices("en"), value="zero", label=L("heads_mode"), elem_id="heads-mode", scale=3)
        click = gr.Radio(click_choices("en"), value="show", label=L("heads_click"), elem_id="heads-click", scale=3)
    with gr.Row():
        grid = out_image("heads_grid", "heads-grid", height=PICTURE_H)
        with gr.Column():
            source = out_image("heads_source", "heads-source", height=PICTURE_H - 60)
            shown = gr.Dropdown([], label=L("heads_shown"), elem_id="heads-shown")
            caption = gr.Markdown(elem_id="heads-caption")
    with gr.Row():
        with gr.Column():
            off = gr.Dropdown([], value=[], multiselect=True, label=L("heads_off"), elem_id="heads-off")
            with gr.Row():
                run = gr.Button(L("heads_run"), variant="primary", elem_id="heads-run")
                search = gr.Button(L("heads_search"), elem_id="heads-search")
            result = gr.Markdown(elem_id="heads-result")
        rollout = out_image("heads_rollout", "heads-rollout", height=PICTURE_H - 60)
    note = gr.Markdown(elem_id="heads-note")            # how the split is exact: below what it explains
    return View(render, controls={"target": target, "shown": shown, "off": off, "mode": mode, "click": click},
                outputs={"grid": grid, "source": source, "caption": caption, "note": note, "result": result,
                         "rollout": rollout},
                extra={"run": run, "search": search})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    inputs = [shared.session, shared.lang, *view.controls.values()]
    view.extra["run"].click(view.handler(ctx, partial(render, action="knockout")), inputs, view.targets(),
                            api_visibility="private")
    view.extra["search"].click(view.handler(ctx, partial(render, action="search")), inputs, view.targets(),
                               api_visibility="private")

    def select(session, lang, target, shown, off, mode, click, evt: gr.SelectData):
        def run():
            return pick(ctx, opened_session(ctx, session), lang, evt, target=target, shown=shown, off=off, mode=mode,
                        click=click)
        return view.updates(ctx, guarded(ctx, "heads grid click", lang, run))

    view.outputs["grid"].select(select, inputs, view.targets(), api_visibility="private", show_progress="hidden")
