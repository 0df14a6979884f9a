"""vitviz — the Gradio app: composes the views of ui/ and launches; vitviz/ computes.

    python app.py [--model ID|FOLDER|bundled] [--device auto|cpu|cuda] [--dtype auto|float32|bfloat16|int8]
                  [--public | --no-public] [--request-memory-mb MB] [--port 7860]
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: worker threads that sleep instead of spin when idle. On a small CPU the
# web server's own threads otherwise fight torch's spinning threads and a burst of uploads slows down.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from vitviz import hosting  # noqa: E402  (imports neither torch nor gradio)

if hosting.running_on_zerogpu():
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
    faithfulness,
    filters,
    guess,
    inside,
    lens,
    mae,
    norms,
    patches,
    posemb,
    raw,
    rollout,
    upload,
)
from ui.context import AppContext  # noqa: E402
from ui.text import CSS, DETECT_LANG_JS, I18N, SET_LANG_JS, L  # noqa: E402
from ui.view import Shared, View  # noqa: E402

MAX_UPLOAD = "20mb"
SESSION_TTL_S = 3600      # an idle tab's session is dropped after an hour
# The page as a lesson and a toolbox: how the ViT reads a photo, where it looks, what it learned.
SECTIONS = {
    "see": (patches, inside, mae, guess, camera),
    "explain": (rollout, click, raw, classmap, dino, faithfulness),
    "learn": (posemb, distance, filters, norms, bias, lens),
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
                public: bool | None = None) -> gr.Blocks:
    """The app for a start model (offline first) and a hosting policy (public where SPACE_ID is set)."""
    return build(AppContext.create(model, device, dtype, public))


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
        wire_analysis(ctx, inputs, named | {"status": status, "session": session}, views, lang, refresh)
        wire_language(ctx, inputs, session, lang, status, named["predictions"], refresh)
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


def wire_analysis(ctx: AppContext, inputs: upload.Inputs, named: dict, views: dict, lang: gr.Radio,
                  refresh: dict) -> None:
    """Upload, model or size -> admission (queue length) -> the batched analysis -> the view on
    show redrawn for the new session. (Chained rather than on the session's change event: that
    event can run before a batched function's new state is stored, and would see the old one.)"""
    outputs = {**named, "patch_grid": views["patches"].outputs["patch_grid"],
               "tokens": views["patches"].outputs["tokens"], "shapes": views["patches"].outputs["shapes"],
               "rollout_input": views["rollout"].outputs["on_input"],
               "rollout_photo": views["rollout"].outputs["on_photo"], "posemb": views["posemb"].outputs["picture"]}
    private = {"api_visibility": "private"}

    def admit(lang):
        upload.admit(ctx, lang)

    def analyze_many(images, model_names, sizes, langs, labels=None):   # labels last: older API calls omit them
        return upload.analyze_many(ctx, images, model_names, sizes, langs, labels)

    def on_model(name, lang):
        named = upload.on_model_change(ctx, name, lang)
        return {{"size": inputs.size, "examples": inputs.examples, "labels": inputs.labels}[k]: v
                for k, v in named.items()}

    def then_analyze(admitted, **api):
        admitted.success(analyze_many, [inputs.image, inputs.model, inputs.size, lang, inputs.labels],
                         [outputs[name] for name in upload.OUTPUTS], batch=True, max_batch_size=upload.BATCH,
                         **api).then(**refresh, **private, show_progress="hidden")

    then_analyze(inputs.image.change(admit, [lang], None, queue=False, **private), api_name="analyze",
                 api_description="Analyze a photo: status, top-5, patch grid, tokens, shapes, rollout over the "
                                 "input and the photo, position-embedding similarity.")
    then_analyze(inputs.size.input(admit, [lang], None, queue=False, **private), **private)
    then_analyze(inputs.labels.submit(admit, [lang], None, queue=False, **private), **private)
    then_analyze(inputs.model.input(on_model, [inputs.model, lang], [inputs.size, inputs.examples, inputs.labels],
                                    queue=False,
                                    **private).then(admit, [lang], None, queue=False, **private), **private)


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
    return {"i18n": I18N, "max_file_size": MAX_UPLOAD, "css": CSS}


def main(argv: list[str] | None = None) -> None:
    from vitviz import compiled, models

    p = argparse.ArgumentParser(description="vitviz: an interactive Vision Transformer explorer")
    p.add_argument("--model", default=None, help="Hub id, local folder or 'bundled' (default: "
                   f"{models.DEFAULT_MODEL} if available, else the bundled model)")
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
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    a = p.parse_args(argv)
    if a.classroom:
        os.environ["VITVIZ_CLASSROOM"] = "1"
    if a.compile:
        os.environ["VITVIZ_COMPILE"] = a.compile
    if a.request_memory_mb:
        os.environ["VITVIZ_REQUEST_MEMORY_MB"] = str(a.request_memory_mb)
    ctx = AppContext.create(a.model, a.device, a.dtype, a.public)
    demo = build(ctx)
    start = ctx.start
    # the start model gets the compiled forward (vitviz/compiled.py); it serves eagerly meanwhile
    start.compiled.start(start, background=compiled.setting() != "wait")
    # several events at once: while one waits for the model thread, others decode uploads and move files
    demo.queue(default_concurrency_limit=4, max_size=2 * upload.MAX_WAITING).launch(
        server_name=a.host, server_port=a.port, **launch_kwargs())


if __name__ == "__main__":
    main()
