"""The top of the page: the photo, model and size, the prediction, and the one forward pass.

An upload is analyzed once (batched with other uploads in a burst); the analysis goes to the
store and the tab keeps a ``Session``. The answer brings the first pictures with it (patch grid,
tokens, rollout, position embeddings: what ``/analyze`` has always returned through the API);
every other view renders from the session when it is shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr

from vitviz import hosting, memory, models, views, zeroshot
from vitviz.limits import format_size
from vitviz.preprocess import BadImage

from . import examples, patches, posemb, rollout
from .context import AppContext, Expired, failure_message
from .text import L, say, t
from .view import files

BATCH = 4          # uploads per batch in a burst: 4 beat 8 (1.70× vs 1.27×, peak 2.3 vs 2.8 GB) and 2 (1.38×)
# Uploads that may wait for the model. At ~0.3 s each on two CPU cores the last waits ~10 s;
# a longer wait helps nobody, and a flood must not pile up. Beyond it: "busy, try again".
MAX_WAITING = 32
# The names of the analysis's outputs, in the order the batched handler returns them.
OUTPUTS = ("status", "predictions", "session", "patch_grid", "tokens", "shapes", "rollout_input",
           "rollout_photo", "posemb")


@dataclass
class Inputs:
    image: gr.Image
    model: gr.Dropdown
    size: gr.Dropdown
    examples: gr.Dataset
    labels: gr.Textbox          # the classes typed for CLIP / SigLIP, comma-separated; hidden for other models


# ---------------------------------------------------------------- handlers

def analyze_many(ctx: AppContext, images: list, model_names: list, sizes: list, langs: list,
                 labels: list | None = None) -> list[list]:
    """Gradio's batched handler: a burst of uploads, grouped by model, size and typed labels, one
    forward per group. The torch work and the drawing run on the model thread; the pictures are
    written as files here, beside it. Returns one column per name in OUTPUTS."""
    try:
        results = ctx.runner.on_thread(analyze_uploads, ctx, images, model_names, sizes, langs, labels)
    finally:
        ctx.waiting.done(len(images))
    columns = [[files(ctx, r.get(name)) for r in results] for name in OUTPUTS]
    memory.trim()
    return columns


def analyze_uploads(ctx: AppContext, images: list, model_names: list, sizes: list, langs: list,
                    labels: list | None = None) -> list[dict]:
    """Each upload's outputs by name (pictures as arrays)."""
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
        for i, named in zip(idx, analyze_group(ctx, images_, name, size, langs_, typed)):
            results[i] = named
    return results


def analyze_group(ctx: AppContext, images: list, name: str, size: str, langs: list[str],
                  labels: str | None = None) -> list[dict]:
    """Uploads that share a model, a size and typed labels: one forward pass; a bad file only fails itself."""
    t0 = time.perf_counter()
    try:
        loaded = ctx.labelled(ctx.model(name), labels)
        hw = ctx.input_size(loaded, size)
        analyses, on_cpu = ctx.analyze(loaded, images, hw)
    except Exception as exc:
        if len(images) > 1 and not _applies_to_all(exc):
            return [analyze_group(ctx, [image], name, size, [lang], labels)[0] for image, lang in zip(images, langs)]
        return [{"status": failure_message(exc, lang, "analysis")} for lang in langs]
    seconds = (time.perf_counter() - t0) / len(images)
    return [first_pictures(ctx, loaded, an, lang, seconds, on_cpu) for an, lang in zip(analyses, langs)]


def _applies_to_all(exc: Exception) -> bool:
    """A refusal of the model or size is everybody's in the group; a bad image is its own."""
    return not isinstance(exc, BadImage)


def first_pictures(ctx: AppContext, loaded, an, lang: str, seconds: float, on_cpu: bool) -> dict:
    status = say("ok", lang, model=loaded.name, device=loaded.device, dtype=precision(loaded, lang), seconds=seconds)
    notes = [model_notes(loaded, lang)] + ([t("gpu_fallback", lang)] if on_cpu else [])
    status = "\n\n".join([status] + [n for n in notes if n])
    seen = patches.draw(loaded, an, lang)
    roll = rollout.draw(loaded, an, lang)
    session = ctx.keep(loaded, an)
    return {"status": status, "predictions": views.predictions(an, lang), "session": session,
            "patch_grid": seen["patch_grid"], "tokens": seen["tokens"], "shapes": seen["shapes"],
            "rollout_input": roll["on_input"], "rollout_photo": roll["on_photo"],
            "posemb": posemb.picture(ctx, loaded, an.grid)}


def predictions_in(ctx: AppContext, session, lang: str):
    """The session's top-5 with class names in lang (nothing to change without an analysis)."""
    try:
        return views.predictions(ctx.open(session)[1], lang)
    except Expired:
        return gr.update()


def precision(loaded, lang: str) -> str:
    """The dtype, and whether the compiled forward is in use (or still being built); an int8 model
    says what serves now (float32 until its fidelity gate passed, vitviz.quant)."""
    state = loaded.compiled.state
    if loaded.dtype == "int8":
        return t({"ready": "int8_ready", "compiling": "int8_preparing"}.get(state, "int8_off"), lang)
    return loaded.dtype + (f", {t('compiled_' + state, lang)}" if state in ("ready", "compiling") else "")


def int8_note(loaded, lang: str) -> str:
    """Why int8 does not serve, with the measured fidelity, when the gate said no."""
    from vitviz.quant import THRESHOLDS as need

    fid = getattr(loaded.compiled, "fidelity", None)
    if loaded.dtype != "int8" or not getattr(loaded.compiled, "gate_failed", False) or fid is None:
        return ""
    return t("int8_gate_failed", lang, top1=f"{fid.top1:.0%}", rollout=f"{fid.rollout:.3f}",
             attention=f"{min(fid.attention):.3f}", need_top1=f"≥ {need['top1']:.0%}",
             need_rollout=f"≥ {need['rollout']}", need_attention=f"≥ {need['attention']}")


def model_notes(loaded, lang: str) -> str:
    """Why this model (a fallback) and what it cannot do (no classifier)."""
    notes = []
    if loaded.fallback_from is not None:
        reason = say(loaded.fallback_from.key, lang, **loaded.fallback_from.fields)
        notes.append(t("fallback", lang, reason=f"{reason} {t('using_bundled', lang)}"))
    if not loaded.has_classifier:
        notes.append(t("no_classifier", lang, model=loaded.name))
    notes.append(int8_note(loaded, lang))
    return "\n\n".join(n for n in notes if n)


def status_line(ctx: AppContext, lang: str) -> str:
    loaded = ctx.start
    text = say("active_model", lang, model=loaded.name, device=loaded.device, dtype=precision(loaded, lang))
    notes = model_notes(loaded, lang)
    return text + ("\n\n" + notes if notes else "")


def admit(ctx: AppContext, lang: str) -> None:
    """Before an upload joins the queue: refuse it (in the user's language) when too many wait."""
    waiting = ctx.waiting.admit()
    if waiting >= MAX_WAITING:
        ctx.waiting.done()
        raise gr.Error(t("err_busy", lang, waiting=waiting), print_exception=False)


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


# ---------------------------------------------------------------- layout

def build(ctx: AppContext) -> tuple[Inputs, dict]:
    """The input column and the predictions; returns the inputs and the outputs by name."""
    # Any typed or API value reaches the handler, where the hosting policy refuses what it does not offer
    # in the user's language: Gradio's own check of the choices would answer in English with the list
    # of choices (server paths among them, for a local model).
    typed = {"allow_custom_value": True}
    with gr.Row():
        with gr.Column(scale=1):
            image = gr.Image(type="filepath", image_mode=None, label=L("image"), sources=["upload", "clipboard"],
                             height=320, elem_id="upload")
            tolerate_undecodable(image)
            with gr.Row():
                model = gr.Dropdown(model_choices(ctx), value=ctx.start.name, label=L("model"), elem_id="model",
                                    scale=3, **typed)
                size = gr.Dropdown(size_choices(ctx.start), value=size_choices(ctx.start)[0][1],
                                   label=L("resolution"), scale=2, elem_id="size", **typed)
            labels = gr.Textbox(", ".join(zeroshot.DEFAULT_LABELS), label=L("labels"), info=L("labels_info"),
                                max_lines=1, visible=ctx.start.typed_labels, elem_id="labels")
            gallery = gr.Examples(examples.order(ctx.start), inputs=[image], label=L("examples"),
                                  examples_per_page=16)
        with gr.Column(scale=1):
            predictions = gr.Label(num_top_classes=5, label=L("predictions"), elem_id="predictions")
    return Inputs(image, model, size, gallery.dataset, labels), {"predictions": predictions}


def tolerate_undecodable(image: gr.Image) -> gr.Image:
    """Make an image input's decoding never raise: a file PIL cannot open reaches our handler
    as a path, and vitviz explains the problem in the user's language. Gradio has no public API
    for this (its decoder raises in English), so the instance's preprocess is wrapped; a subclass
    would be treated as a custom component with its own frontend.
    tests/test_app.py::test_bad_file_gets_a_message_and_the_server_keeps_serving fails the day this stops working."""
    decode = image.preprocess

    def preprocess(payload):
        try:
            return decode(payload)
        except Exception:
            return getattr(payload, "path", None)

    image.preprocess = preprocess
    return image
