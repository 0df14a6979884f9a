"""Heads · Queries and keys: every token's query and key of many photos in one picture, for a layer and
a head (AttentionViz, Yeh et al. VIS 2023), and every head of a layer as small multiples. A click on a
point shows its patch and its attention; the correlations say in words whether a head sorts patches by
position or brightness. The model work is kept with the analysis (vitviz.service.qk)."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from vitviz.core.limits import RequestRefused
from vitviz.heads import qk as Q
from vitviz.pictures import qk as pictures
from vitviz.service import qk as work
from vitviz.service.context import AppContext, Opened

from .text import L, say, t
from .view import BADGE_BAND, Shared, View, clear_of_badge, guarded, layer_slider, opened_session, out_image

ID = "qk"
DEFAULT_EXAMPLES = 3          # example photos drawn with the upload until the user chooses
PICTURE_H = 440               # pixels the scatter may take on a 1280×800 projector


def render(ctx: AppContext, opened: Opened, lang: str, layer: int = 0, head="0", colour: str = "kind",
           projection: str = "pca", photos=None, point=None) -> dict:
    """The scatter of one head, the clicked token, the words on the head and the layer's overview."""
    loaded = opened.loaded
    layer = min(max(int(layer or 0), 0), loaded.layers - 1)
    head = min(max(int(head or 0), 0), loaded.heads - 1)
    colour = colour if colour in pictures.COLOURINGS else "kind"
    projection = projection if projection in Q.PROJECTIONS else "pca"
    names = work.example_names(loaded)
    chosen = work.chosen_examples(loaded, names[:DEFAULT_EXAMPLES] if photos is None else photos)
    out = {"layer": gr.update(maximum=loaded.layers - 1, value=layer),
           "head": gr.update(choices=[str(h) for h in range(loaded.heads)], value=str(head)),
           "colour": gr.update(choices=colour_choices(lang), value=colour),
           "projection": gr.update(choices=projection_choices(lang), value=projection),
           "photos": gr.update(choices=photo_choices(names), value=list(chosen))}
    notes = []
    try:
        kept, emb = work.embedding(ctx, opened, chosen, layer, head, projection)
    except RequestRefused as exc:          # too many photos, or t-SNE of too many points: say so, draw what fits
        notes.append(say(exc.key, lang, **exc.fields))
        chosen = chosen[:work.MAX_PHOTOS_PUBLIC - 1] if exc.key == "err_qk_photos" else chosen
        kept, emb = work.embedding(ctx, opened, chosen, layer, head, "pca")
        out["photos"] = gr.update(choices=photo_choices(names), value=list(chosen))
    if emb.method == "tsne":
        notes.append(t("qk_tsne_note", lang))
    point = None if point is None or not 0 <= int(point) < emb.flat().shape[0] else int(point)
    scatter, px = pictures.scatter(emb, kept.tokens, colour, lang, selected=point)
    kept.shown = px
    heads = work.overview(ctx, opened, chosen, layer)
    return out | {"scatter": clear_of_badge(scatter), "point": point, **token_part(kept, emb, point, lang),
                  "reading": reading(heads[head][1], head, heads, layer, lang), "note": "\n\n".join(notes),
                  "overview": clear_of_badge(pictures.overview([e for e, _ in heads], kept.tokens, colour,
                                                               [c for _, c in heads], lang, selected=head))}


def token_part(kept: work.Kept, emb: Q.Embedding, point: int | None, lang: str) -> dict:
    """The clicked token's picture and words (or the hint to click)."""
    if point is None:
        return {"token": None, "token_note": t("qk_click", lang)}
    p = emb.point(point)
    an, tokens = kept.analyses[p.photo], kept.tokens
    att = an.att()[emb.layer, emb.head]                                   # (N, N) the model's own attention
    looks = att[p.token] if p.kind == "query" else att[:, p.token]       # a query's row, a key's column
    grid = looks[tokens.prefix:].reshape(tokens.grid).numpy()
    if p.token < tokens.prefix:
        who = an.prefix_names[p.token]
    else:
        row, column = divmod(p.token - tokens.prefix, tokens.grid[1])
        who = t("qk_patch", lang, patch=p.token - tokens.prefix, row=row, column=column)
    name = kept.names[p.photo]
    photo = t("qk_your_photo", lang) if name is None else Path(name).stem
    return {"token": pictures.token_picture(an.seen, tokens, p.token, grid),
            "token_note": t(f"qk_token_{p.kind}", lang, who=who, photo=photo)}


def reading(corr: dict, head: int, heads: list, layer: int, lang: str) -> str:
    """The head's correlations as sentences, and which heads of the layer sort by position."""
    fields = {a: f"{corr[a]:.2f}" for a in Q.ATTRIBUTES}
    sorts = Q.sorts_by(corr)
    lines = []
    if "row" in sorts and "column" in sorts:
        lines.append(t("qk_reads_position", lang, head=head, **fields))
    elif "row" in sorts or "column" in sorts:
        lines.append(t(f"qk_reads_{'row' if 'row' in sorts else 'column'}", lang, head=head, **fields))
    if "brightness" in sorts:
        lines.append(t("qk_reads_brightness", lang, head=head, **fields))
    if not lines:
        lines.append(t("qk_reads_none", lang, head=head, threshold=f"{Q.SORTS:.1f}", **fields))
    by_position = [str(e.head) for e, c in heads if {"row", "column"} & set(Q.sorts_by(c))]
    lines.append(t("qk_layer_position", lang, layer=layer, heads=", ".join(by_position)) if by_position
                 else t("qk_layer_none", lang, layer=layer))
    return "\n\n".join(lines + [t("qk_r_means", lang)])


def photo_choices(names: list[str]) -> list[tuple[str, str]]:
    return [(Path(n).stem, n) for n in names]


def colour_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"qk_colour_{c}", lang), c) for c in pictures.COLOURINGS]


def projection_choices(lang: str) -> list[tuple[str, str]]:
    return [(t(f"qk_projection_{p}", lang), p) for p in Q.PROJECTIONS]


def click(ctx: AppContext, opened: Opened, lang: str, evt: gr.SelectData, **controls) -> dict:
    """A click on the scatter (drawn below the badge band): the point drawn nearest to it, in the picture
    last drawn for this session (drawn first where there is none)."""
    kept = opened.an.memo.lookup(work.KEPT)
    if kept is None or kept.shown is None:
        render(ctx, opened, lang, **{**controls, "point": None})
        kept = opened.an.memo.lookup(work.KEPT)
    x, y = evt.index
    return render(ctx, opened, lang, **{**controls, "point": pictures.nearest(kept.shown, x, y - BADGE_BAND)})


def pick_head(ctx: AppContext, opened: Opened, lang: str, evt: gr.SelectData, **controls) -> dict:
    """A click on the overview: that head drawn above."""
    x, y = evt.index
    head = pictures.overview_head(opened.loaded.heads, x, y - BADGE_BAND)
    if head is None:
        return render(ctx, opened, lang, **controls)
    return render(ctx, opened, lang, **{**controls, "head": str(head), "point": None})


def build(ctx: AppContext, shared: Shared) -> View:
    loaded = ctx.start
    gr.Markdown(L("qk_help"))
    with gr.Row():
        layer = layer_slider(loaded)
        head = gr.Dropdown([str(h) for h in range(loaded.heads)], value="0", label=L("head"), elem_id="qk-head")
        projection = gr.Radio(projection_choices("en"), value="pca", label=L("qk_projection"), elem_id="qk-projection")
        colour = gr.Radio(colour_choices("en"), value="kind", label=L("qk_colour"), elem_id="qk-colour")
    offered = work.example_names(loaded)
    with gr.Accordion(L("qk_photos"), open=False):      # closed: the scatter stays on a projector's screen
        photos = gr.CheckboxGroup(photo_choices(offered), value=offered[:DEFAULT_EXAMPLES], label=L("qk_photos"),
                                  elem_id="qk-photos")
    point = gr.Number(None, precision=0, visible=False, elem_id="qk-point")
    note = gr.Markdown(elem_id="qk-note")
    with gr.Row():
        scatter = out_image("qk_scatter", "qk-scatter", height=PICTURE_H, scale=3)
        with gr.Column(scale=2):
            token = out_image("qk_token", "qk-token", height=200)
            token_note = gr.Markdown(elem_id="qk-token-note")
            reading_words = gr.Markdown(elem_id="qk-reading")
    overview = out_image("qk_overview", "qk-overview")
    return View(render, controls={"layer": layer, "head": head, "colour": colour, "projection": projection,
                                  "photos": photos, "point": point},
                outputs={"scatter": scatter, "token": token, "token_note": token_note, "reading": reading_words,
                         "overview": overview, "note": note})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    inputs = [shared.session, shared.lang, *view.controls.values()]

    def on(picture: str, action):
        def select(session, lang, layer, head, colour, projection, photos, point, evt: gr.SelectData):
            def run():
                return action(ctx, opened_session(ctx, session), lang, evt, layer=layer, head=head, colour=colour,
                              projection=projection, photos=photos, point=point)
            return view.updates(ctx, guarded(ctx, f"qk {picture} click", lang, run))
        view.outputs[picture].select(select, inputs, view.targets(), api_visibility="private", show_progress="hidden")

    on("scatter", click)
    on("overview", pick_head)
