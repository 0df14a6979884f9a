"""What every view has, and the components several views use.

A view module (ui/rollout.py, ...) has a module-level ``render(ctx, opened, lang, **controls)``
that returns its outputs by name, and a ``build(ctx, shared)`` that lays out its content (inside
the tab the composer opened) and returns a ``View``: its controls and outputs by the same names.
The View opens the tab's session once per event and hands it to ``render`` as an ``Opened`` (the
analysis and the model that made it; None for a view that also shows something without one), and
turns the render into Gradio's ``{component: value}`` updates, so no list of outputs is ever
matched by position and tests read results by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import gradio as gr
import numpy as np

from vitviz.attention import Head
from vitviz.service.context import AppContext, Expired, Opened, Session, failure_message

from .text import L, t

BADGE_BAND = 36   # pixels of white above a tile sheet, for Gradio's label badge (30 px tall in presentation mode)


@dataclass
class Shared:
    """Components every view may use: the tab's session, the page language, the overlay opacity."""
    session: gr.State
    lang: gr.Radio
    alpha: gr.Slider


@dataclass
class View:
    """A view's content. The composer (app.py) opens its tab and fills in id, section and tab."""
    render: Callable[..., dict[str, Any]]      # render(ctx, opened, lang, **controls) -> {output name: value}
    controls: dict[str, Any] = field(default_factory=dict)   # render's keyword -> input component
    outputs: dict[str, Any] = field(default_factory=dict)    # output name -> component
    # render may also return a control by its name (choices and ranges that follow the model)
    extra: dict[str, Any] = field(default_factory=dict)      # other components its wire() uses (buttons)
    first: tuple[str, ...] = ()                # outputs drawn with every analysis (the /analyze API returns them)
    needs_session: bool = True                 # False: render also runs without an analysis (opened None)
    id: str = ""
    section: str = ""                          # "see", "explain" or "learn"
    tab: gr.Tab | None = None
    shared: Shared | None = None               # the section's shared components (never updated by a view)

    def targets(self) -> list:
        """Every component a render may update: the outputs and the view's own controls, each once."""
        shared = {id(c) for c in vars(self.shared).values()} if self.shared else set()
        return list({id(c): c for c in (*self.outputs.values(), *self.controls.values()) if id(c) not in shared}
                    .values())

    def updates(self, ctx: AppContext, named: dict[str, Any]) -> dict:
        """{component: value}; pictures (arrays) become quickly written files."""
        by_name = {**self.controls, **self.outputs}
        return {by_name[name]: files(ctx, value) for name, value in named.items()}

    def handler(self, ctx: AppContext, render: Callable | None = None) -> Callable:
        """A Gradio handler: (session, lang, *controls) -> updates. The session is opened once, here;
        render: another function of the view's (a button's action) with render's signature."""
        names, render = list(self.controls), render or self.render

        def work(session: Session | None, lang: str, values: dict):
            return render(ctx, opened_session(ctx, session, self.needs_session), lang, **values)

        def handle(session: Session | None, lang: str, *values):
            return self.updates(ctx, guarded(ctx, f"view {self.id}", lang, work, session, lang,
                                             dict(zip(names, values))))

        return handle

    def refresh(self, ctx: AppContext, data: dict, session, lang: str) -> dict:
        """Render from a dict of every input's value (a Gradio handler with a set of inputs)."""
        return self.handler(ctx)(session, lang, *(data[c] for c in self.controls.values()))


def opened_session(ctx: AppContext, session: Session | None, needed: bool = True) -> Opened | None:
    """The session opened (Expired when its analysis is gone), or None where the view needs none."""
    try:
        return ctx.open(session)
    except Expired:
        if needed:
            raise
        return None


def guarded(ctx: AppContext, what: str, lang: str, fn: Callable, *args, **kwargs) -> dict:
    """fn's outputs by name, computed on the model thread. A session whose analysis is gone
    updates nothing; any other failure becomes a warning in the user's language with a request
    id (the details go to the log), never exception text."""
    try:
        return ctx.runner.on_thread(fn, *args, **kwargs)
    except Expired:
        return {}
    except Exception as exc:
        gr.Warning(failure_message(exc, lang, what))
        return {}


def files(ctx: AppContext, value):
    """Pictures (H, W, 3) arrays, alone or in a list, as files; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 3:
        return ctx.picture(value)
    if isinstance(value, list):
        return [files(ctx, v) for v in value]
    return value


def clear_of_badge(picture: np.ndarray | None) -> np.ndarray | None:
    """The picture below a white band: Gradio covers an image's top corners with its label and
    buttons, and a tile sheet's first captions are there. Clicks on it subtract BADGE_BAND."""
    if picture is None:
        return None
    band = np.full((BADGE_BAND, *picture.shape[1:]), 255, dtype=picture.dtype)
    return np.concatenate([band, picture], 0)


# ---------------------------------------------------------------- shared components

def out_image(key: str, elem_id: str, **kw) -> gr.Image:
    return gr.Image(label=L(key), format="png", interactive=False, elem_id=elem_id,
                    buttons=["download", "fullscreen"], **kw)


def layer_slider(loaded, key: str = "layer") -> gr.Slider:
    return gr.Slider(0, loaded.layers - 1, value=0, step=1, label=L(key))


def head_dropdown(loaded) -> gr.Dropdown:
    return gr.Dropdown(head_choices(loaded.heads), value="mean", label=L("head"))


def head_choices(heads: int, lang: str = "en") -> list[tuple[str, str]]:
    """The head list: the mean over heads, then each head by its index."""
    return [(t("head_mean", lang), "mean")] + [(str(h), str(h)) for h in range(heads)]


def head_value(value, heads: int) -> str:
    """A head dropdown's value that exists for this model (else the mean)."""
    return value if value in [v for _, v in head_choices(heads)] else "mean"


def parse_head(value) -> Head:
    """The head dropdown's value: "mean" (or nothing) -> None, "3" -> 3."""
    return None if value in (None, "", "mean") else int(value)


def query_radio() -> gr.Radio:
    """Which prefix token's attention a map shows: [CLS], or DeiT's [DIST]. Hidden for one token."""
    return gr.Radio([("[CLS]", 0), ("[DIST]", 1)], value=0, label=L("token_query"), visible=False)


def query_update(prefix_names: tuple[str, ...], value) -> dict:
    """The token radio for this model: visible with the model's prefix tokens when it has several."""
    choices = [(name, i) for i, name in enumerate(prefix_names)]
    value = value if value in range(len(choices)) else 0
    return gr.update(choices=choices, value=value, visible=len(choices) > 1)
