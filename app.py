"""vitviz — the Gradio app: composes the views of ui/ and launches; vitviz/ computes.

    python app.py [--model ID|FOLDER|bundled] [--device auto|cpu|cuda] [--dtype auto|float32|bfloat16|int8]
                  [--compile auto|wait|off] [--classroom] [--public | --no-public] [--request-memory-mb MB]
                  [--host 127.0.0.1] [--port 7860]
"""

from __future__ import annotations

import os

# OpenMP's own setting, for the process (read when torch loads OpenMP, so before torch): worker threads
# that sleep instead of spin when idle. On a small CPU the web server's threads otherwise fight torch's
# spinning threads and a burst of uploads slows down. Not vitviz's configuration: that is Settings.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vitviz.core.settings import Settings  # noqa: E402  (imports neither torch nor gradio)

if Settings.from_env().zerogpu:
    import spaces  # noqa: F401  ZeroGPU patches torch's CUDA calls: it must come before torch

import argparse  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402

import gradio as gr  # noqa: E402

from ui import (  # noqa: E402
    bias,
    camera,
    classmap,
    click,
    dino,
    distance,
    evidence,
    filters,
    guess,
    heads,
    inside,
    lens,
    mae,
    norms,
    patches,
    posemb,
    qk,
    raw,
    rollout,
    tools,
    upload,
)
from ui.compat import SET_LANG_JS  # noqa: E402
from ui.text import CSS, DETECT_LANG_JS, I18N, L  # noqa: E402
from ui.view import Shared, View  # noqa: E402
from vitviz.service.context import AppContext  # noqa: E402

MAX_UPLOAD = "20mb"
SESSION_TTL_S = 3600      # an idle tab's session is dropped after an hour
# The page as a lesson and a toolbox: how the ViT reads a photo, where it looks, what it learned.
SECTIONS = {
    "see": (patches, inside, mae, guess, camera),
    "explain": (rollout, click, raw, classmap, dino, evidence),
    "learn": (posemb, distance, filters, norms, bias, lens),
    "heads": (heads, qk),
}
FIRST = {section: modules[0].ID for section, modules in SECTIONS.items()}


@dataclass
class Shown:
    """Which section is on show, and which view in each. Separate states because events overlap: a
    section's select can run after the select of a view in it (Gradio fires both), and with one state
    it would write back the view that was on show before."""
    section: gr.State
    views: dict[str, gr.State]


def create_demo(model: str | None = None, device: str | None = None, dtype: str | None = None,
                public: bool | None = None, settings: Settings | None = None) -> gr.Blocks:
    """The app for a start model (offline first) and a hosting policy (public where SPACE_ID is set):
    the environment's settings, these arguments over them."""
    settings = (settings or Settings.from_env()).overridden(model=model, device=device, dtype=dtype, public=public)
    return build(AppContext.create(settings))


def build(ctx: AppContext) -> gr.Blocks:
    with gr.Blocks(title="vitviz") as demo:
        session = gr.State(None, time_to_live=SESSION_TTL_S)
        shown = Shown(gr.State("see"), {section: gr.State(first) for section, first in FIRST.items()})
        gr.Markdown(L("title"))
        with gr.Row():
            gr.Markdown(L("intro"), scale=4, elem_classes="vv-chrome")
            with gr.Column(scale=1, min_width=220):
                lang = gr.Radio([("English", "en"), ("한국어", "ko")], value="en", label=L("language"),
                                elem_id="lang-switch")
                gr.Checkbox(False, label=L("present"), elem_id="present")
        status = gr.Markdown(upload.status_line(ctx, "en"), elem_id="status", elem_classes="vv-chrome")
        with gr.Column(elem_classes="vv-chrome"):
            inputs, named = upload.build(ctx)
        views, section_tabs = build_sections(ctx, session, lang)
        refresh = wire_views(ctx, views, section_tabs, session, lang, shown)
        upload.wire(ctx, inputs, named | {"status": status, "session": session}, views, lang, refresh)
        wire_language(ctx, inputs, session, lang, status, named["predictions"], refresh)
        tools.build(ctx)
        demo.load(None, None, [lang], js=DETECT_LANG_JS)
    return demo


def build_sections(ctx: AppContext, session: gr.State, lang: gr.Radio) -> tuple[dict[str, View], dict]:
    """Each section's tab, and inside it one tab per view, laid out by the view's module."""
    views: dict[str, View] = {}
    section_tabs = {}
    with gr.Tabs(elem_id="sections"):
        for section, modules in SECTIONS.items():
            with gr.Tab(L(f"sec_{section}"), id=section) as section_tabs[section]:
                alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label=L("opacity"), visible=section == "explain")
                shared = Shared(session, lang, alpha)
                with gr.Tabs():
                    for module in modules:
                        if not getattr(module, "available", lambda ctx: True)(ctx):   # e.g. no camera on ZeroGPU
                            continue
                        with gr.Tab(L(f"tab_{module.ID}"), id=module.ID) as tab:
                            view = module.build(ctx, shared)
                        views[module.ID] = view = replace(view, id=module.ID, section=section, tab=tab, shared=shared)
                        if hasattr(module, "wire"):
                            module.wire(ctx, view, shared)
    return views, section_tabs


def wire_views(ctx: AppContext, views: dict[str, View], section_tabs: dict, session: gr.State,
               lang: gr.Radio, shown: Shown) -> dict:
    """Each view renders when it is shown and when its controls move. Returns the event arguments
    that redraw the view on show (after an analysis, or a switch of language)."""
    private = {"api_visibility": "private"}
    for view in views.values():
        ins = [session, lang, *view.controls.values()]
        moved = [c.release if isinstance(c, gr.Slider) else c.input for c in view.controls.values()]
        if moved:
            gr.on(moved, view.handler(ctx), ins, view.targets(), show_progress="hidden", **private)

        def show(session, lang, *values, view=view):
            return {shown.section: view.section, shown.views[view.section]: view.id,
                    **view.handler(ctx)(session, lang, *values)}

        view.tab.select(show, ins, [shown.section, shown.views[view.section], *view.targets()], **private)
    every_input = {shown.section, *shown.views.values(), session, lang} | {
        c for v in views.values() for c in v.controls.values()}
    every_output = list({id(c): c for v in views.values() for c in v.targets()}.values())

    def render_visible(data: dict, section: str | None = None):
        section = section or data[shown.section]
        view = views[data[shown.views[section]]]
        return {shown.section: section, **view.refresh(ctx, data, data[session], data[lang])}

    for section, tab in section_tabs.items():
        tab.select(lambda data, section=section: render_visible(data, section), every_input,
                   [shown.section, *every_output], **private)
    return {"fn": render_visible, "inputs": every_input, "outputs": [shown.section, *every_output]}


def wire_language(ctx: AppContext, inputs: upload.Inputs, session: gr.State, lang: gr.Radio,
                  status: gr.Markdown, predictions: gr.Label, refresh: dict) -> None:
    """The radio switches the page's labels (in the browser), the messages, the class names and the
    pictures' words."""
    lang.change(None, [lang], [lang], js=SET_LANG_JS)

    def on_lang(value, current, model_name):
        loaded = ctx.start if model_name in (None, ctx.start.name) else None
        sizes = {} if loaded is None else {inputs.size: gr.update(choices=upload.size_choices(loaded, value))}
        # the model line follows the language; an analysis message is left alone
        return {status: upload.status_line(ctx, value) if current is None else gr.update(),
                predictions: upload.predictions_in(ctx, current, value), **sizes}

    lang.change(on_lang, [lang, session, inputs.model], [status, predictions, inputs.size],
                api_visibility="private")
    lang.change(**refresh, api_visibility="private", show_progress="hidden")


def launch_kwargs() -> dict:
    # the tools for AI assistants (ui/tools.py) are served at /gradio_api/mcp/ beside the page
    return {"i18n": I18N, "max_file_size": MAX_UPLOAD, "css": CSS, "mcp_server": True}


def parser() -> argparse.ArgumentParser:
    from vitviz import models

    p = argparse.ArgumentParser(description="vitviz: an interactive Vision Transformer explorer")
    p.add_argument("--model", default=None, help="Hub id, local folder or 'bundled' (default: "
                   f"{models.DEFAULT_MODEL} if available, else the bundled model; env VITVIZ_MODEL)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, mps (env VITVIZ_DEVICE)")
    p.add_argument("--dtype", default=None, help="auto, float32, bfloat16, int8 (CPUs with VNNI or AMX, once "
                   "a fidelity check passed) (env VITVIZ_DTYPE)")
    p.add_argument("--compile", default=None, choices=["auto", "wait", "off"],
                   help="compiled forward on CPU: build it in the background (auto), before serving (wait), "
                        "or not (off); env VITVIZ_COMPILE")
    p.add_argument("--classroom", action="store_true", default=None,
                   help="classroom server: a shared board of nicknames and scores in Guess where it looks "
                        "(memory only; env VITVIZ_CLASSROOM=1; allowed in public mode)")
    p.add_argument("--public", action=argparse.BooleanOptionalAction, default=None,
                   help="public mode: only the listed models and sizes (default: on where SPACE_ID is set)")
    p.add_argument("--request-memory-mb", type=float, default=None,
                   help="memory one request may hold (env VITVIZ_REQUEST_MEMORY_MB; default: a tenth of RAM, "
                        "256 MB to 4 GB)")
    p.add_argument("--host", default=None, help="where to listen (default 127.0.0.1; env GRADIO_SERVER_NAME)")
    p.add_argument("--port", type=int, default=None, help="default 7860 (env GRADIO_SERVER_PORT)")
    return p


def settings_from(a: argparse.Namespace, environ=None) -> Settings:
    """The environment's settings with the command line's flags over them: parsed once, here."""
    return Settings.from_env(environ).overridden(model=a.model, device=a.device, dtype=a.dtype, compile=a.compile,
                                                 classroom=a.classroom, public=a.public,
                                                 request_memory_mb=a.request_memory_mb, host=a.host, port=a.port)


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    ctx = AppContext.create(settings_from(a))
    demo = build(ctx)
    start = ctx.start
    # the start model gets the compiled forward (vitviz/core/compiled.py); it serves eagerly meanwhile
    start.compiled.start(start, background=ctx.settings.compile != "wait", mode=ctx.settings.compile)
    # several events at once: while one waits for the model thread, others decode uploads and move files
    demo.queue(default_concurrency_limit=4, max_size=2 * upload.MAX_WAITING).launch(
        server_name=ctx.settings.host, server_port=ctx.settings.port, **launch_kwargs())


if __name__ == "__main__":
    main()
