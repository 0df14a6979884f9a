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
I18N = gr.I18n(**i18n.STRINGS)
FUSIONS = ["mean", "max", "min"]
MAX_UPLOAD = "20mb"
SESSION_TTL_S = 3600  # cached attentions of an idle tab are dropped after an hour

# A "?lang=ko" URL overrides the browser language: the frontend reads navigator.language at start,
# so this runs before it. The language radio reloads the page with the chosen ?lang=.
HEAD = """<script>
const vitvizLang = new URLSearchParams(window.location.search).get("lang");
if (vitvizLang) {
  Object.defineProperty(navigator, "language", {get: () => vitvizLang});
  Object.defineProperty(navigator, "languages", {get: () => [vitvizLang]});
}
</script>"""
SWITCH_LANG_JS = """(lang) => { const u = new URL(window.location); u.searchParams.set("lang", lang);
  window.location.assign(u); return lang; }"""


class SafeImage(gr.Image):
    """gr.Image whose upload decoding never raises: a file PIL cannot open reaches our
    handler as a path, and vitviz explains the problem in the user's language."""

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except Exception:
            return getattr(payload, "path", None)


def lang_of(request: gr.Request | None) -> str:
    if request is None:
        return "en"
    lang = request.query_params.get("lang") if hasattr(request, "query_params") else None
    return i18n.lang_of(lang or request.headers.get("accept-language", "en"))


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

    def run(image, model_name, fusion, discard, alpha, start_layer, request: gr.Request):
        lang = lang_of(request)
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

    def rerender_rollout(an, fusion, discard, alpha, start_layer, request: gr.Request):
        if an is None:
            return None, None
        return views.rollout(an, fusion, discard, alpha, start_layer, lang_of(request))

    with gr.Blocks(title="vitviz") as demo:
        state = gr.State(None, time_to_live=SESSION_TTL_S)
        gr.Markdown(I18N("title"))
        with gr.Row():
            gr.Markdown(I18N("intro"), scale=4)
            lang_radio = gr.Radio([("English", "en"), ("한국어", "ko")], value=None, label=I18N("language"),
                                  scale=1, elem_id="lang-switch")
        status = gr.Markdown(status_line(start, "en"), elem_id="status")
        with gr.Row():
            with gr.Column(scale=1):
                image = SafeImage(type="filepath", image_mode=None, label=I18N("image"), sources=["upload", "clipboard"],
                                  height=320, elem_id="upload")
                model_dd = gr.Dropdown(model_choices(start.name), value=start.name, label=I18N("model"),
                                       allow_custom_value=True, elem_id="model")
                gr.Examples(EXAMPLES, inputs=[image], label=I18N("examples"), examples_per_page=16)
            with gr.Column(scale=1):
                label = gr.Label(num_top_classes=5, label=I18N("predictions"), elem_id="predictions")
        with gr.Tabs():
            with gr.Tab(I18N("tab_patches")):
                with gr.Row():
                    grid_img = gr.Image(label=I18N("patch_grid"), format="png", interactive=False, elem_id="patch-grid")
                    with gr.Column():
                        tokens_img = gr.Image(label=I18N("tokens"), format="png", interactive=False, elem_id="tokens")
                        shapes_md = gr.Markdown()
            with gr.Tab(I18N("tab_rollout")):
                with gr.Row():
                    fusion = gr.Radio(FUSIONS, value="mean", label=I18N("fusion"))
                    discard = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label=I18N("discard"))
                    alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label=I18N("opacity"))
                    start_layer = gr.Slider(0, 23, value=0, step=1, label=I18N("start_layer"))
                with gr.Row():
                    ro_seen = gr.Image(label=I18N("rollout_seen"), format="png", interactive=False, elem_id="rollout-seen")
                    ro_photo = gr.Image(label=I18N("rollout_photo"), format="png", interactive=False, elem_id="rollout-photo")
            with gr.Tab(I18N("tab_posemb")):
                gr.Markdown(I18N("posemb_help"))
                posemb_img = gr.Image(label=I18N("posemb_map"), format="png", interactive=False, elem_id="posemb")

        controls = [fusion, discard, alpha, start_layer]
        outputs = [status, label, grid_img, tokens_img, shapes_md, ro_seen, ro_photo, posemb_img, state]
        image.change(run, [image, model_dd, *controls], outputs, api_name="analyze",
                     api_description="Analyse a photo: status, top-5, patch grid, tokens, shapes, rollout (input, photo), "
                                     "position-embedding similarity.")
        model_dd.change(run, [image, model_dd, *controls], outputs, api_visibility="private")
        for c in controls:
            c.change(rerender_rollout, [state, *controls], [ro_seen, ro_photo], api_visibility="private",
                     show_progress="hidden")
        lang_radio.change(None, [lang_radio], [lang_radio], js=SWITCH_LANG_JS)

        def greet(request: gr.Request):
            return status_line(start, lang_of(request))

        demo.load(greet, None, [status], api_visibility="private")
    return demo


def launch_kwargs() -> dict:
    return {"i18n": I18N, "head": HEAD, "max_file_size": MAX_UPLOAD}


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
