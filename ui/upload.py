"""The top of the page: the photo, model and size, the prediction, and the one forward pass.

An upload is analyzed once (batched with other uploads in a burst); the analysis goes to the
store and the tab keeps a ``Session``. The answer brings with it the outputs the views name as
``first`` (patch grid, tokens, rollout, position embeddings: what ``/analyze`` has always returned
through the API); every other view renders from the session when it is shown.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import gradio as gr

from vitviz import models
from vitviz.core import memory
from vitviz.core.limits import format_size
from vitviz.core.preprocess import BadImage
from vitviz.pictures import maps
from vitviz.quant import THRESHOLDS
from vitviz.service import examples, hosting
from vitviz.service.context import AppContext, Busy, Expired, Opened, Session, failure_message

from . import compat
from .text import L, say, t
from .view import View, files

# Uploads per batch in a burst (the measurements behind 4: results/measured.md, "Upload batches").
BATCH = 4
# Uploads that may wait for the model. At ~0.3 s each on two CPU cores the last waits ~10 s;
# a longer wait helps nobody, and a flood must not pile up. Beyond it: "busy, try again".
MAX_WAITING = 32
OWN = ("status", "predictions")     # the analysis's own outputs, before the views' first pictures
# Last column: the new session, handed over as a value. Gradio runs a batched function with the
# first request's session state for the whole batch, so a gr.State output would land in one tab only
# (benchmarks/classroom.py found it: students whose uploads were batched with others had no session).
# A plain component's value goes to each request's own tab; a chained, unbatched step (wire) then
# stores it in that tab's state.
HANDOFF = "session"


@dataclass
class Inputs:
    image: gr.Image
    model: gr.Dropdown
    size: gr.Dropdown
    examples: gr.Dataset
    labels: gr.Textbox          # the classes typed for CLIP / SigLIP, comma-separated; hidden for other models


# ---------------------------------------------------------------- handlers

def first_outputs(views: dict[str, View]) -> list[tuple[View, str]]:
    """The outputs drawn with every analysis, view by view in the page's order."""
    return [(view, name) for view in views.values() for name in view.first]


def column_keys(views: dict[str, View]) -> list:
    """The batched handler's columns: OWN's names, (view id, output name) for the views', then HANDOFF."""
    return [*OWN, *((view.id, name) for view, name in first_outputs(views)), HANDOFF]


def handed(session: Session | None) -> dict | None:
    """A session as the handoff component carries it (its key is unguessable: uuid4)."""
    return None if session is None else {"key": session.key, "model": session.model}


def adopted(value) -> Session | None:
    """The handoff's value back as the tab's session (None: the upload failed; nothing is kept)."""
    try:
        return Session(str(value["key"]), str(value["model"]))
    except (TypeError, KeyError):
        return None


def analyze_many(ctx: AppContext, views: dict[str, View], images: list, model_names: list, sizes: list,
                 langs: list, labels: list | None = None) -> list[list]:
    """Gradio's batched handler: a burst of uploads, grouped by model, size and typed labels, one
    forward per group. The torch work and the drawing run on the model thread; the pictures are
    written as files here, beside it. Returns one column per output: OWN, then first_outputs."""
    results = ctx.runner.on_thread(analyze_uploads, ctx, views, images, model_names, sizes, langs, labels)
    columns = [[handed(r.get(key)) if key == HANDOFF else files(ctx, r.get(key)) for r in results]
               for key in column_keys(views)]
    memory.trim()
    return columns


def analyze_uploads(ctx: AppContext, views: dict[str, View], images: list, model_names: list, sizes: list,
                    langs: list, labels: list | None = None) -> list[dict]:
    """Each upload's outputs by key (OWN's names, (view id, output name) for the views'), pictures as arrays."""
    results: list[dict | None] = [None] * len(images)
    groups: dict = {}
    labels = labels or [None] * len(images)
    for i, (image, name, size, typed) in enumerate(zip(images, model_names, sizes, labels)):
        if image is None:
            results[i] = {"status": t("err_no_image", langs[i])}
        else:
            groups.setdefault((name, size, typed), []).append(i)
    for (name, size, typed), idx in groups.items():
        images_, langs_ = [images[i] for i in idx], [langs[i] for i in idx]
        for i, named in zip(idx, analyze_group(ctx, views, images_, name, size, langs_, typed)):
            results[i] = named
    return results


def analyze_group(ctx: AppContext, views: dict[str, View], images: list, name: str, size: str, langs: list[str],
                  labels: str | None = None) -> list[dict]:
    """Uploads that share a model, a size and typed labels: the model resolved once, one forward pass per
    language of default labels (a model that reads typed labels, none typed: the page's language's)."""
    try:
        model = ctx.model(name)
    except Exception as exc:
        return [{"status": failure_message(exc, lang, "analysis")} for lang in langs]
    if not model.typed_labels or (labels or "").strip():
        return analyze_with(ctx, views, model, images, size, langs, labels)
    results: list = [None] * len(images)
    for lang in dict.fromkeys(langs):
        idx = [i for i, other in enumerate(langs) if other == lang]
        for i, named in zip(idx, analyze_with(ctx, views, model, [images[i] for i in idx], size, [lang] * len(idx))):
            results[i] = named
    return results


def analyze_with(ctx: AppContext, views: dict[str, View], model, images: list, size: str, langs: list[str],
                 labels: str | None = None) -> list[dict]:
    """One forward pass of a resolved model over images; a bad file only fails itself."""
    t0 = time.perf_counter()
    try:
        loaded = ctx.labelled(model, labels, langs[0])
        hw = ctx.input_size(loaded, size)
        analyses, on_cpu, shared = ctx.analyze(loaded, images, hw)
    except Exception as exc:
        if len(images) > 1 and isinstance(exc, BadImage):     # a bad image fails itself; the rest go on
            return [analyze_with(ctx, views, model, [image], size, [lang], labels)[0]
                    for image, lang in zip(images, langs)]
        return [{"status": failure_message(exc, lang, "analysis")} for lang in langs]
    seconds = (time.perf_counter() - t0) / max(1, len(images) - sum(shared))
    return [answer(ctx, views, ctx.keep(loaded, an), lang, None if reused else seconds, on_cpu)
            for an, lang, reused in zip(analyses, langs, shared)]


def answer(ctx: AppContext, views: dict[str, View], opened: Opened, lang: str, seconds: float | None,
           on_cpu: bool) -> dict:
    """An analysis's status, top-5 and session, and the views' first outputs drawn from it (seconds None:
    an example's shared analysis, not run for this request)."""
    loaded = opened.loaded
    said = dict(model=loaded.name, device=loaded.device, dtype=precision(loaded, lang))
    status = say("ok_shared", lang, **said) if seconds is None else say("ok", lang, **said, seconds=seconds)
    notes = [model_notes(loaded, lang)] + ([t("gpu_fallback", lang)] if on_cpu else [])
    out = {"status": "\n\n".join([status] + [n for n in notes if n]),
           "predictions": maps.predictions(opened.an, lang), "session": opened.session}
    for view in views.values():
        if view.first:
            drawn = view.render(ctx, opened, lang)
            out.update({(view.id, name): drawn.get(name) for name in view.first})
    return out


def predictions_in(ctx: AppContext, session, lang: str):
    """The session's top-5 with class names in lang (nothing to change without an analysis)."""
    try:
        return maps.predictions(ctx.open(session).an, lang)
    except Expired:
        return gr.update()


def precision(loaded, lang: str) -> str:
    """The dtype, and whether the compiled forward is in use (or still being built); an int8 model
    says what serves now (float32 until its fidelity gate passed, vitviz.quant)."""
    state = loaded.compiled.state
    if loaded.dtype == "int8":
        speed = getattr(loaded.compiled, "speed", None)
        if state == "ready" and speed is not None:
            return t("int8_ready_speed", lang, ratio=f"{speed.ratio:.2f}")
        return t({"ready": "int8_ready", "compiling": "int8_preparing"}.get(state, "int8_off"), lang)
    return loaded.dtype + (f", {t('compiled_' + state, lang)}" if state in ("ready", "compiling") else "")


def int8_note(loaded, lang: str) -> str:
    """Why int8 does not serve: the measured fidelity when the gate said no, or the measured times
    when int8 was faithful but not faster here."""
    speed = getattr(loaded.compiled, "speed", None)
    if loaded.dtype == "int8" and getattr(loaded.compiled, "slower", False) and speed is not None:
        return t("int8_slower", lang, int8=f"{speed.int8_s * 1e3:.0f}", float32=f"{speed.float32_s * 1e3:.0f}",
                 ratio=f"{speed.ratio:.1f}")
    fid = getattr(loaded.compiled, "fidelity", None)
    if loaded.dtype != "int8" or not getattr(loaded.compiled, "gate_failed", False) or fid is None:
        return ""
    need = THRESHOLDS
    return t("int8_gate_failed", lang, top1=f"{fid.top1:.0%}", rollout=f"{fid.rollout:.3f}",
             attention=f"{min(fid.attention):.3f}", need_top1=f"≥ {need['top1']:.0%}",
             need_rollout=f"≥ {need['rollout']}", need_attention=f"≥ {need['attention']}")


def model_notes(loaded, lang: str) -> str:
    """Why this model (a fallback) and what it cannot do (no classifier)."""
    notes = []
    if loaded.fallback_from is not None:
        failed = loaded.fallback_from
        reason = say(failed.key, lang, **failed.fields)
        notes.append(t("fallback", lang, model=failed.fields.get("model", "?"),
                       reason=f"{reason} {t('using_bundled', lang)}"))
    if not loaded.has_classifier:
        notes.append(t("no_classifier", lang, model=loaded.name))
    notes.append(int8_note(loaded, lang))
    return "\n\n".join(n for n in notes if n)


def status_line(ctx: AppContext, lang: str) -> str:
    loaded = ctx.start
    text = say("active_model", lang, model=loaded.name, device=loaded.device, dtype=precision(loaded, lang))
    notes = model_notes(loaded, lang)
    return text + ("\n\n" + notes if notes else "")


def admit(ctx: AppContext, owner: str, lang: str, photo: str = "") -> bool:
    """Before an analysis joins the queue: refuse it (in the user's language) when too many wait.
    False: the owner's photo is already waiting (reported twice), nothing to add."""
    try:
        return ctx.waiting.admit(owner, MAX_WAITING, photo)
    except Busy as busy:
        raise gr.Error(t("err_busy", lang, waiting=busy.waiting), print_exception=False) from None


def owner(request: gr.Request | None) -> str:
    """Whose place among the waiting: the browser tab (an API call without one: its own)."""
    return getattr(request, "session_hash", None) or uuid.uuid4().hex


# ---------------------------------------------------------------- choices offered

def model_choices(ctx: AppContext) -> list[tuple[str, str]]:
    return [(models.display_name(n), n) for n in ctx.policy.models]


def size_choices(loaded, lang: str = "en") -> list[tuple[str, str]]:
    sizes = hosting.offered_sizes(loaded.input_size, loaded.patch_size)
    text = [f"{h}×{w}" for h, w in sizes]
    text[0] = t("size_trained", lang, size=text[0])
    return list(zip(text, [format_size(s) for s in sizes]))


def on_model_change(ctx: AppContext, name: str, lang: str) -> dict:
    """The size list and the examples follow the chosen model (when it can be loaded)."""
    try:
        loaded = ctx.model(name)
    except Exception:
        return {}
    return {"size": gr.update(choices=size_choices(loaded, lang), value=size_choices(loaded)[0][1]),
            "examples": gr.Dataset(samples=examples.order(loaded)), "labels": gr.update(visible=loaded.typed_labels)}


# ---------------------------------------------------------------- layout and events

def build(ctx: AppContext) -> tuple[Inputs, dict]:
    """The input column and the predictions; returns the inputs and the outputs by name."""
    # Any typed or API value reaches the handler, where the hosting policy refuses what it does not offer
    # in the user's language: Gradio's own check of the choices would answer in English with the list
    # of choices (server paths among them, for a local model).
    typed = {"allow_custom_value": True}
    with gr.Row():
        with gr.Column(scale=1):
            image = TolerantImage(type="filepath", image_mode=None, label=L("image"), sources=["upload", "clipboard"],
                                  height=320, elem_id="upload")
            with gr.Row():
                model = gr.Dropdown(model_choices(ctx), value=ctx.start.name, label=L("model"), elem_id="model",
                                    scale=3, **typed)
                size = gr.Dropdown(size_choices(ctx.start), value=size_choices(ctx.start)[0][1],
                                   label=L("resolution"), scale=2, elem_id="size", **typed)
            # empty: the default labels in the page's language (the placeholder names them); a pasted
            # list may keep its line breaks, which separate labels as commas do
            labels = gr.Textbox("", label=L("labels"), info=L("labels_info"), placeholder=L("labels_placeholder"),
                                max_lines=4, visible=ctx.start.typed_labels, elem_id="labels")
            gallery = gr.Examples(examples.order(ctx.start), inputs=[image], label=L("examples"),
                                  examples_per_page=16)
        with gr.Column(scale=1):
            predictions = gr.Label(num_top_classes=5, label=L("predictions"), elem_id="predictions")
    handoff = gr.JSON(visible=False)          # the new session on its way to the tab's state (HANDOFF)
    return Inputs(image, model, size, gallery.dataset, labels), {"predictions": predictions, "handoff": handoff}


def wire(ctx: AppContext, inputs: Inputs, own: dict, views: dict[str, View], lang: gr.Radio, refresh: dict) -> None:
    """Upload, model or size -> admission (queue length) -> the batched analysis -> the view on show
    redrawn for the new session. own: the components of OWN by name. (Chained rather than on the
    session's change event: that event can run before a batched function's new state is stored,
    and would see the old one.)"""
    outputs = ([own[name] for name in OWN] + [view.outputs[name] for view, name in first_outputs(views)]
               + [own["handoff"]])
    private = {"api_visibility": "private"}

    def admitted(lang, request: gr.Request):
        admit(ctx, owner(request), lang)

    def photo_admitted(image, lang, request: gr.Request):
        """A new photo is admitted as any analysis. The same photo reported again while it waits is
        not: Gradio reports a replacing upload twice, and each report once took a place of its own, so
        30 students' second photos filled the 32 and were refused (benchmarks/classroom.py). image: the
        upload's payload, unprocessed (None: the photo was cleared and is analysed as before)."""
        photo = (image or {}).get("path") or ""
        if not admit(ctx, owner(request), lang, photo):
            raise gr.Error("", visible=False, print_exception=False)     # ends the chain, says nothing

    def handed_over(value, request: gr.Request):
        """The analysis answered: its tab's place among the waiting goes, its session into the tab's state."""
        ctx.waiting.done(owner(request))
        return adopted(value)

    def analyze(images, model_names, sizes, langs, labels=None):   # labels last: older API calls omit them
        return analyze_many(ctx, views, images, model_names, sizes, langs, labels)

    def on_model(name, lang):
        named = on_model_change(ctx, name, lang)
        return {{"size": inputs.size, "examples": inputs.examples, "labels": inputs.labels}[k]: v
                for k, v in named.items()}

    def then_analyze(event, **api):
        # "always_last": a photo chosen while the last one is analysed is analysed next (Gradio's default
        # for a chained step, "once", dropped it: the page kept the old photo's result)
        last = {"trigger_mode": "always_last"}
        event.success(analyze, [inputs.image, inputs.model, inputs.size, lang, inputs.labels], outputs, batch=True,
                      max_batch_size=BATCH, **last, **api).then(
            handed_over, own["handoff"], own["session"], queue=False, **last, **private).then(
            **refresh, **last, **private, show_progress="hidden")

    then_analyze(inputs.image.change(photo_admitted, [inputs.image, lang], None, queue=False, preprocess=False,
                                     **private), api_name="analyze",
                 api_description="Analyze a photo: status, top-5, patch grid, tokens, shapes, rollout over the "
                                 "input and the photo, position-embedding similarity.")
    then_analyze(inputs.size.input(admitted, [lang], None, queue=False, **private), **private)
    then_analyze(inputs.labels.submit(admitted, [lang], None, queue=False, **private), **private)
    then_analyze(inputs.model.input(on_model, [inputs.model, lang], [inputs.size, inputs.examples, inputs.labels],
                                    queue=False, **private).then(admitted, [lang], None, queue=False, **private),
                 **private)


with compat.component_subclass():      # no type stub written beside this module
    class TolerantImage(gr.Image):
        """gr.Image whose decoding never raises: a file PIL cannot open reaches our handler as a path,
        and vitviz explains the problem in the user's language (Gradio's decoder raises in English).
        A subclass, served with the image's own frontend (``is_template``): Gradio rebuilds a session's
        copy of a component from its class, so a patched instance would lose this.
        tests/test_app.py::test_bad_file_gets_a_message_and_the_server_keeps_serving fails the day this
        stops working."""

        is_template = True

        def preprocess(self, payload):
            try:
                return super().preprocess(payload)
            except Exception:
                return getattr(payload, "path", None)
