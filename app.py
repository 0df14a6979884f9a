"""vitviz — the Gradio app: layout and event wiring only; vitviz/ computes.

    python app.py [--model ID|FOLDER|bundled] [--device auto|cpu|cuda] [--dtype auto|float32|bfloat16] [--port 7860]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import gradio as gr

from vitviz import i18n, models, views
from vitviz.analysis import analyze
from vitviz.i18n import t
from vitviz.preprocess import BadImage

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (ROOT / "assets" / "examples").glob("*") if p.suffix in {".jpg", ".png"})
# Our keys are prefixed: Gradio's own translations use plain keys such as "image".
I18N = gr.I18n(**{lang: {f"vv_{k}": v for k, v in table.items()} for lang, table in i18n.STRINGS.items()})


def L(key: str):
    """A label translated in the browser."""
    return I18N(f"vv_{key}")
FUSIONS = ["mean", "max", "min"]
MAX_UPLOAD = "20mb"
SESSION_TTL_S = 3600  # cached attentions of an idle tab are dropped after an hour

# The page language: Gradio translates static labels in the browser from the browser's language.
# Our radio switches it live through the frontend's own changeLocale (found among the loaded
# modules), and also tells the server which language to write messages in.
DETECT_LANG_JS = "() => ((navigator.language || 'en').toLowerCase().startsWith('ko') ? 'ko' : 'en')"
SET_LANG_JS = """async (lang) => {
  try {
    const url = performance.getEntriesByType("resource").map((e) => e.name)
      .find((n) => /\\/assets\\/core-[^/]*\\.js$/.test(n));
    if (url) { const core = await import(url); if (core.changeLocale) core.changeLocale(lang); }
  } catch (e) { console.warn("vitviz: could not switch the page language", e); }
  return lang;
}"""


def tolerate_undecodable(image: gr.Image) -> gr.Image:
    """Make an image input's decoding never raise: a file PIL cannot open reaches our handler
    as a path, and vitviz explains the problem in the user's language. (Wrapping the instance,
    not subclassing: Gradio would treat a subclass as a custom component with its own frontend.)"""
    decode = image.preprocess

    def preprocess(payload):
        try:
            return decode(payload)
        except Exception:
            return getattr(payload, "path", None)

    image.preprocess = preprocess
    return image


def model_choices(default: str) -> list[tuple[str, str]]:
    names = dict(models.KNOWN_MODELS)
    names.setdefault(default, default)
    return [(f"{label} — {name}" if name != models.BUNDLED else label, name) for name, label in names.items()]


def status_line(loaded, lang: str) -> str:
    text = t("active_model", lang, model=loaded.name, device=loaded.device, dtype=loaded.dtype)
    if loaded.reason:
        text += "\n\n" + t("fallback", lang, reason=loaded.reason)
    return text


def create_demo(model: str | None = None, device: str | None = None, dtype: str | None = None) -> gr.Blocks:
    """Build the UI. The starting model is loaded now (offline-first), so the page can say which it is."""
    start = models.load(model, device, dtype)
    dev, dt = start.device, start.dtype

    def get_model(name):
        return start if name in (None, start.name) else models.load(name, dev, dt)

    def run(image, model_name, fusion, discard, alpha, start_layer, lang="en"):
        empty = [None] * 6
        if image is None:
            return [t("err_no_image", lang), None, *empty, None]
        t0 = time.perf_counter()
        try:
            loaded = get_model(model_name)
            an = analyze(loaded, image)
        except BadImage as exc:
            size = str(exc).split("(")[-1].split(")")[0] if "(" in str(exc) else ""
            return [t(exc.key, lang, size=size), None, *empty, None]
        except models.ModelUnavailable as exc:
            return [t("err_model", lang, model=model_name, reason=str(exc)), None, *empty, None]
        except Exception as exc:  # keep serving: one bad request must not take the app down
            return [t("err_internal", lang, error=f"{type(exc).__name__}: {exc}"), None, *empty, None]
        grid_img, tokens_img = views.patches(an, loaded.family)
        on_seen, on_photo = views.rollout(an, fusion, discard, alpha, start_layer, lang)
        status = t("ok", lang, model=loaded.name, device=loaded.device, dtype=loaded.dtype,
                   seconds=time.perf_counter() - t0)
        if loaded.reason:
            status += "\n\n" + t("fallback", lang, reason=loaded.reason)
        if not loaded.has_classifier:
            status += "\n\n" + t("no_classifier", lang, model=loaded.name)
        return [status, views.predictions(an), grid_img, tokens_img,
                views.shapes_text(an, getattr(loaded.model.config, "hidden_size", None)),
                on_seen, on_photo, _posemb(loaded, lang), an]

    def _posemb(loaded, lang):
        from vitviz.posemb import NoAbsolutePositions

        try:
            return views.position_similarity(loaded)
        except NoAbsolutePositions:
            return None

    def rerender_rollout(an, fusion, discard, alpha, start_layer, lang):
        if an is None:
            return None, None
        return views.rollout(an, fusion, discard, alpha, start_layer, lang)

    with gr.Blocks(title="vitviz") as demo:
        state = gr.State(None, time_to_live=SESSION_TTL_S)
        gr.Markdown(L("title"))
        with gr.Row():
            gr.Markdown(L("intro"), scale=4)
            lang_radio = gr.Radio([("English", "en"), ("한국어", "ko")], value="en", label=L("language"),
                                  scale=1, elem_id="lang-switch")
        status = gr.Markdown(status_line(start, "en"), elem_id="status")
        with gr.Row():
            with gr.Column(scale=1):
                image = tolerate_undecodable(gr.Image(type="filepath", image_mode=None, label=L("image"),
                                                      sources=["upload", "clipboard"], height=320, elem_id="upload"))
                model_dd = gr.Dropdown(model_choices(start.name), value=start.name, label=L("model"),
                                       allow_custom_value=True, elem_id="model")
                gr.Examples(EXAMPLES, inputs=[image], label=L("examples"), examples_per_page=16)
            with gr.Column(scale=1):
                label = gr.Label(num_top_classes=5, label=L("predictions"), elem_id="predictions")
        with gr.Tabs():
            with gr.Tab(L("tab_patches")):
                with gr.Row():
                    grid_img = gr.Image(label=L("patch_grid"), format="png", interactive=False, elem_id="patch-grid")
                    with gr.Column():
                        tokens_img = gr.Image(label=L("tokens"), format="png", interactive=False, elem_id="tokens")
                        shapes_md = gr.Markdown()
            with gr.Tab(L("tab_rollout")):
                with gr.Row():
                    fusion = gr.Radio(FUSIONS, value="mean", label=L("fusion"))
                    discard = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label=L("discard"))
                    alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label=L("opacity"))
                    start_layer = gr.Slider(0, 23, value=0, step=1, label=L("start_layer"))
                with gr.Row():
                    ro_seen = gr.Image(label=L("rollout_seen"), format="png", interactive=False, elem_id="rollout-seen")
                    ro_photo = gr.Image(label=L("rollout_photo"), format="png", interactive=False, elem_id="rollout-photo")
            with gr.Tab(L("tab_posemb")):
                gr.Markdown(L("posemb_help"))
                posemb_img = gr.Image(label=L("posemb_map"), format="png", interactive=False, elem_id="posemb")

        controls = [fusion, discard, alpha, start_layer]
        outputs = [status, label, grid_img, tokens_img, shapes_md, ro_seen, ro_photo, posemb_img, state]
        image.change(run, [image, model_dd, *controls, lang_radio], outputs, api_name="analyze",
                     api_description="Analyse a photo: status, top-5, patch grid, tokens, shapes, rollout (input, photo), "
                                     "position-embedding similarity.")
        model_dd.change(run, [image, model_dd, *controls, lang_radio], outputs, api_visibility="private")
        for c in controls:
            c.change(rerender_rollout, [state, *controls, lang_radio], [ro_seen, ro_photo], api_visibility="private",
                     show_progress="hidden")
        lang_radio.change(None, [lang_radio], [lang_radio], js=SET_LANG_JS)
        lang_radio.change(lambda lang: status_line(start, lang), [lang_radio], [status], api_visibility="private")
        demo.load(None, None, [lang_radio], js=DETECT_LANG_JS)
    return demo


def launch_kwargs() -> dict:
    return {"i18n": I18N, "max_file_size": MAX_UPLOAD}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="vitviz: an interactive Vision Transformer explorer")
    p.add_argument("--model", default=None, help="Hub id, local folder or 'bundled' (default: "
                   f"{models.DEFAULT_MODEL} if available, else the bundled model)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, mps (env VITVIZ_DEVICE)")
    p.add_argument("--dtype", default=None, help="auto, float32, bfloat16 (env VITVIZ_DTYPE)")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    a = p.parse_args(argv)
    demo = create_demo(a.model, a.device, a.dtype)
    demo.queue(default_concurrency_limit=1).launch(server_name=a.host, server_port=a.port, **launch_kwargs())


if __name__ == "__main__":
    main()
