"""See · Guess where it looks, a class activity: a student draws over the model's input where they
think the model looks, presses Reveal, and attention rollout and the class-specific map (Chefer et
al. 2021) appear over the drawing with a score (vitviz.activity): the share of each map's mass
inside the drawing and whether its brightest patch is. On a classroom server an optional board
(vitviz.service.board) lists nicknames and scores per photo.

The tab keeps one small record per session (vitviz.service.guesses, in the app's context): whether
it has been given the picture, so a redraw (a language switch, coming back to the tab) does not wipe
a drawing, and the last drawing, so the answer can be redrawn in another language without drawing
again.
"""

from __future__ import annotations

import hashlib

import gradio as gr
import numpy as np

from vitviz import activity as act
from vitviz import attention as A
from vitviz.analysis import Analysis
from vitviz.core.loaded import LoadedModel
from vitviz.pictures import maps as pictures
from vitviz.pictures import render as R
from vitviz.service import board, work
from vitviz.service.context import AppContext, Expired, Opened
from vitviz.service.guesses import Guess

from . import sketch
from .text import L, t
from .view import Shared, View, clear_of_badge, guarded, opened_session, out_image

ID = "guess"
PICTURE_SIDE = 336      # the picture drawn on: the model's input enlarged by a whole factor to at least this
CMAP = "inferno"
MAPS = ("rollout", "classmap")


def picture(an: Analysis) -> np.ndarray:
    """The picture the student draws on and the answer is drawn over: the model's input, enlarged."""
    return R.enlarge(an.seen, PICTURE_SIDE)[0]


def photo_key(loaded: LoadedModel, an: Analysis) -> str:
    """One board per model input and model: every student who picks the same example shares it."""
    return hashlib.sha1(loaded.name.encode() + an.seen.tobytes()).hexdigest()[:16]


def maps(ctx: AppContext, opened: Opened) -> dict[str, np.ndarray]:
    """The maps the drawing is compared with, (gh, gw) in [0, 1] as the Explain views show them:
    rollout (mean over heads), and Chefer's map for the predicted class where the model has a
    classifier."""
    an = opened.an
    out = {"rollout": pictures.rollout_map(an)}
    if opened.loaded.has_classifier:
        chefer = work.class_maps(ctx, opened, an.top(1)[0][0], ("chefer",))["chefer"]
        out["classmap"] = A.normalize(chefer).numpy()
    return out


def map_titles(loaded: LoadedModel, an: Analysis, lang: str) -> dict[str, str]:
    titles = {"rollout": t("guess_rollout", lang)}
    if loaded.has_classifier:
        titles["classmap"] = t("guess_class_for", lang, name=an.top(1, lang)[0][1])
    return titles


def answer(ctx: AppContext, opened: Opened, guess: Guess, lang: str) -> tuple[dict, list]:
    """({output name: value}, [(mass, peak inside)] per map): both maps over the drawing and the score."""
    loaded, an = opened.loaded, opened.an
    base, mask, titles = picture(an), guess.mask(), map_titles(loaded, an, lang)
    out, scores = {name: None for name in MAPS}, []
    lines = [t("guess_area", lang, area=f"{float(guess.cover.mean()):.0%}")]
    for name, m in maps(ctx, opened).items():
        s = act.score(m, guess.cover)
        drawn = act.reveal(base, m, mask, an.grid, s.peak, cmap=CMAP)
        out[name] = clear_of_badge(R.with_colorbar(drawn, CMAP, t("low", lang), t("high", lang)))
        peak = t("guess_peak_in" if s.peak_inside else "guess_peak_out", lang)
        lines.append(t("guess_line", lang, map=titles[name], mass=f"{s.mass:.0%}", peak=peak))
        scores.append((s.mass, s.peak_inside))
    if not loaded.has_classifier:
        lines.append(t("no_classifier", lang, model=loaded.name))
    return {**out, "score": "\n".join(lines)}, scores


def board_text(ctx: AppContext, opened: Opened, lang: str, note: str = "") -> str:
    """The class board for this photo (empty off a classroom server)."""
    if ctx.board is None:
        return ""
    loaded = opened.loaded
    entries = ctx.board.entries(photo_key(loaded, opened.an))
    parts = [note] if note else []
    if not entries:
        parts.append(t("board_empty", lang))
    else:
        headers = [t("board_col_nick", lang), *(t(f"board_col_{m}", lang) for m in maps_of(loaded))]
        parts += [t("board_title", lang, n=len(entries)), board.table(entries, headers)]
    return "\n\n".join(parts)


def maps_of(loaded: LoadedModel) -> tuple[str, ...]:
    return MAPS if loaded.has_classifier else MAPS[:1]


def render(ctx: AppContext, opened: Opened, lang: str) -> dict:
    an, key = opened.an, opened.session.key
    guess = ctx.guesses.lookup(key)
    out = {"board": board_text(ctx, opened, lang)}
    if guess is None:                   # a new photo for this tab: the picture to draw on, nothing revealed
        ctx.guesses.put(key, Guess())
        return {**out, "drawing": {"background": picture(an), "layers": [], "composite": None},
                "rollout": None, "classmap": None, "score": t("guess_todo", lang)}
    if guess.cover is None:
        return {**out, "score": t("guess_todo", lang)}
    return {**out, **answer(ctx, opened, guess, lang)[0]}


def reveal(ctx: AppContext, opened: Opened | None, lang: str, drawing, share: bool = False,
           nickname: str = "", owner: str = "") -> dict:
    """Reveal: the drawing scored against both maps (and put on the class board if asked).
    opened: None when the tab has no analysis, or it expired. owner: the browser session (Gradio's
    session hash), which holds the nickname on this photo's board once it used it."""
    if opened is None:
        return untold(t("err_expired", lang))
    loaded, an = opened.loaded, opened.an
    if sketch.refused(drawing):
        return untold(t("guess_refused", lang, side=act.MAX_SIDE))
    layers = (drawing.get("layers") or []) if isinstance(drawing, dict) else []
    try:
        mask = act.drawn_mask(layers) if layers else None
        cover = act.patch_cover(mask, an.grid, an.seen.shape[:2]) if mask is not None and mask.any() else None
    except ValueError:
        return untold(t("guess_redraw", lang))
    if cover is None:
        return untold(t("guess_empty", lang))
    small = act.resize_mask(mask, picture(an).shape[:2])
    guess = ctx.guesses.put(opened.session.key, Guess(cover, np.packbits(small), small.shape))
    out, scores = answer(ctx, opened, guess, lang)
    if share and ctx.board is not None:
        try:
            ctx.board.add(photo_key(loaded, an), nickname, scores, owner)
            note = ""
        except board.BoardRefused as exc:
            note = t(exc.key, lang, **exc.fields)
        out["board"] = board_text(ctx, opened, lang, note)
    return out


def untold(message: str) -> dict:
    """No answer pictures (an earlier drawing's would mislead), and why."""
    return {"rollout": None, "classmap": None, "score": message}


def build(ctx: AppContext, shared: Shared) -> View:
    classroom = ctx.board is not None
    gr.Markdown(L("guess_help"))
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=280):
            drawing = sketch.editor(L("guess_draw"), "guess-editor", height=440)
            with gr.Row(visible=classroom):
                nickname = gr.Textbox(label=L("board_nick"), max_length=board.NICK_MAX, elem_id="guess-nick",
                                      scale=2)
                share = gr.Checkbox(False, label=L("board_share"), elem_id="guess-share", scale=1)
            button = gr.Button(L("guess_reveal"), variant="primary", elem_id="guess-reveal")
        rollout = out_image("guess_rollout_label", "guess-rollout", scale=1, min_width=240)
        classmap = out_image("guess_class_label", "guess-class", scale=1, min_width=240)
    score = gr.Markdown(elem_id="guess-score")
    with gr.Column(visible=classroom):
        board_md = gr.Markdown(elem_id="guess-board")
        refresh = gr.Button(L("board_refresh"), size="sm", elem_id="guess-board-refresh")
    return View(render, outputs={"drawing": drawing, "rollout": rollout, "classmap": classmap, "score": score,
                                 "board": board_md},
                extra={"reveal": button, "share": share, "nickname": nickname, "refresh": refresh})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    private = {"api_visibility": "private"}
    extra = view.extra

    def on_reveal(session, lang, drawing, share, nickname, request: gr.Request = None):
        owner = getattr(request, "session_hash", None) or ""
        def work():
            if session is None:
                return untold(t("err_no_image", lang))
            try:
                opened = opened_session(ctx, session)
            except Expired:
                opened = None
            return reveal(ctx, opened, lang, drawing, share, nickname, owner)
        return view.updates(ctx, guarded(ctx, "view guess", lang, work))

    def on_refresh(session, lang):
        def work():
            return {"board": board_text(ctx, opened_session(ctx, session), lang)}
        return view.updates(ctx, guarded(ctx, "view guess", lang, work))

    drawing = view.outputs["drawing"]
    # the editor is an input here, not an output: as an output it would be covered while Reveal runs
    answers = [c for c in view.targets() if c is not drawing]
    extra["reveal"].click(on_reveal, [shared.session, shared.lang, drawing, extra["share"], extra["nickname"]],
                          answers, **private)
    extra["refresh"].click(on_refresh, [shared.session, shared.lang], [view.outputs["board"]], **private)
