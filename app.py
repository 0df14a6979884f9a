"""vitviz — the Gradio app: layout and event wiring only; vitviz/ computes.

    python app.py [--model ID|FOLDER|bundled] [--device auto|cpu|cuda] [--dtype auto|float32|bfloat16] [--port 7860]
"""

from __future__ import annotations

import os

# Before torch loads OpenMP: worker threads that sleep instead of spin when idle. On a small CPU the
# web server's own threads otherwise fight torch's spinning threads and a burst of uploads slows down.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
from concurrent.futures import ThreadPoolExecutor
import time
from pathlib import Path

import gradio as gr

from vitviz import compiled, i18n, memory, models, views
from vitviz.analysis import analyze_batch
from vitviz.i18n import t
from vitviz.preprocess import BadImage
from vitviz.render import PictureSpool

ROOT = Path(__file__).resolve().parent
EXAMPLES = sorted(str(p) for p in (ROOT / "assets" / "examples").glob("*") if p.suffix in {".jpg", ".png"})
# Our keys are prefixed: Gradio's own translations use plain keys such as "image".
I18N = gr.I18n(**{lang: {f"vv_{k}": v for k, v in table.items()} for lang, table in i18n.STRINGS.items()})
FUSIONS = ["mean", "max", "min"]
MAX_UPLOAD = "20mb"
SESSION_TTL_S = 3600          # cached attentions of an idle tab are dropped after an hour
BATCH = 4                     # uploads per batch in a burst: 4 beat 8 (1.70× vs 1.27×, peak 2.3 vs 2.8 GB) and 2 (1.38×)
MODEL_THREAD = ThreadPoolExecutor(1, thread_name_prefix="vitviz-model")

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


def L(key: str):
    """A label translated in the browser."""
    return I18N(f"vv_{key}")


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


def precision(loaded, lang: str) -> str:
    """The dtype, and whether the compiled forward is in use (or still being built)."""
    state = loaded.compiled.state
    return loaded.dtype + (f", {t('compiled_' + state, lang)}" if state in ("ready", "compiling") else "")


def status_line(loaded, lang: str) -> str:
    text = t("active_model", lang, model=loaded.name, device=loaded.device, dtype=precision(loaded, lang))
    if loaded.reason:
        text += "\n\n" + t("fallback", lang, reason=loaded.reason)
    return text


def size_choices(loaded) -> list[tuple[str, str]]:
    """Input sizes to offer: the model's own, then larger multiples of the patch size."""
    h, w = loaded.input_size
    p = loaded.patch_size
    out = []
    for f in (1.0, 1.5, 2.0):
        hh, ww = int(round(h * f / p)) * p, int(round(w * f / p)) * p
        out.append((f"{hh}×{ww}" + (" (trained)" if f == 1.0 else ""), f"{hh}x{ww}"))
    return out


def parse_size(value: str | None):
    if not value:
        return None
    h, w = (int(v) for v in value.split("x"))
    return h, w


def create_demo(model: str | None = None, device: str | None = None, dtype: str | None = None) -> gr.Blocks:
    """Build the UI. The starting model is loaded now (offline-first), so the page can say which it is."""
    start = models.load(model, device, dtype)
    dev, dt = start.device, start.dtype
    memory.limit_arenas()
    spool = PictureSpool()
    picture = spool.save
    model_pictures: dict = {}   # model-only pictures, written once

    def filed(fn):
        """Run a handler on the one model thread and serve its pictures as quickly written files
        (vitviz.render.PictureSpool).

        One thread for all torch work: every new calling thread would get its own OpenMP team and
        oneDNN caches, and the server's memory grew by ~1.5 GB over 300 requests that way."""
        import functools

        import numpy as np

        def convert(x):
            if isinstance(x, np.ndarray) and x.ndim == 3:
                return picture(x)
            if isinstance(x, (list, tuple)):
                return type(x)(convert(v) for v in x)
            return x

        @functools.wraps(fn)        # keeps the signature: Gradio injects gr.SelectData by annotation
        def wrapper(*args, **kwargs):
            return convert(MODEL_THREAD.submit(fn, *args, **kwargs).result())

        return wrapper

    def model_picture(key, make):
        if key not in model_pictures:
            model_pictures[key] = picture(make(), lossless=True)
        return model_pictures[key]

    def get_model(name):
        return start if name in (None, start.name) else models.load(name, dev, dt)

    # ------------------------------------------------------------ the one forward pass
    def analyse_many(images, model_names, sizes, langs):
        """Batched handler: Gradio's queue hands a burst of uploads over together."""
        results = [None] * len(images)
        groups: dict = {}
        for i, (img, name, size) in enumerate(zip(images, model_names, sizes)):
            if img is None:
                results[i] = ("err_no_image", {})
                continue
            groups.setdefault((name, size), []).append(i)
        for (name, size), idx in groups.items():
            t0 = time.perf_counter()
            try:
                loaded = get_model(name)
                ans = analyze_batch(loaded, [images[i] for i in idx], parse_size(size))
                for i, an in zip(idx, ans):
                    results[i] = (loaded, an, (time.perf_counter() - t0) / len(idx))
            except BadImage:
                for i in idx:  # analyse one by one so one bad file does not fail its neighbours
                    results[i] = single(images[i], name, size)
            except models.ModelUnavailable as exc:
                for i in idx:
                    results[i] = ("err_model", {"model": name, "reason": str(exc)})
            except Exception as exc:  # keep serving: one bad request must not take the app down
                for i in idx:
                    results[i] = ("err_internal", {"error": f"{type(exc).__name__}: {exc}"})
        outs = [render_main(r, lang) for r, lang in zip(results, langs)]
        memory.trim()
        return [list(col) for col in zip(*outs)]

    def single(image, name, size):
        t0 = time.perf_counter()
        try:
            loaded = get_model(name)
            an = analyze_batch(loaded, [image], parse_size(size))[0]
            return loaded, an, time.perf_counter() - t0
        except BadImage as exc:
            return exc.key, {"size": exc.size}
        except Exception as exc:
            return "err_internal", {"error": f"{type(exc).__name__}: {exc}"}

    def render_main(result, lang):
        if len(result) == 2:                      # (message key, format values)
            key, fmt = result
            return [t(key, lang, **fmt), None, None, None, "", None, None, None, None] + [gr.update()] * 5
        loaded, an, seconds = result
        grid_img, tokens_img = views.patches(an, loaded.family)
        on_seen, on_photo = views.rollout(an, "mean", 0.0, 0.5, 0, lang)
        status = t("ok", lang, model=loaded.name, device=loaded.device, dtype=precision(loaded, lang),
                   seconds=seconds)
        if loaded.reason:
            status += "\n\n" + t("fallback", lang, reason=loaded.reason)
        if not loaded.has_classifier:
            status += "\n\n" + t("no_classifier", lang, model=loaded.name)
        hidden = getattr(loaded.model.config, "hidden_size", None)
        # pictures stay arrays here: filed() writes them as files off the model thread
        return [status, views.predictions(an), grid_img, tokens_img, views.shapes_text(an, hidden, lang),
                on_seen, on_photo, posemb_grid(loaded, an), {"model": loaded.name, "an": an},
                *[gr.update(maximum=an.num_layers - 1)] * 3,
                *[gr.update(choices=["mean"] + [str(h) for h in range(an.num_heads)])] * 2]

    def posemb_grid(loaded, an):
        from vitviz.posemb import NoAbsolutePositions

        try:
            return model_picture(("posemb", loaded.name, loaded.dtype, an.grid),
                             lambda: views.position_similarity(loaded, an.grid))
        except NoAbsolutePositions:
            return None

    # ------------------------------------------------------------ re-rendering from the session's cache
    def cached(state):
        if not state:
            raise gr.Error("Upload a photo first.", print_exception=False)
        return get_model(state["model"]), state["an"]

    def on_rollout(state, fusion, discard, alpha, start_layer, lang):
        if not state:
            return None, None
        return views.rollout(state["an"], fusion, discard, alpha, start_layer, lang)

    def on_raw(state, layer, head, shared, alpha, query, lang):
        if not state:
            return None, None, None, None
        an = state["an"]
        token = 0 if query is None else an.prefix + int(query)
        return views.raw_attention(an, layer, head_value(head), shared, alpha, lang, query=token)

    def on_class(state, target, method, alpha, lang):
        if not state:
            return None, None, gr.update()
        loaded, an = cached(state)
        if not loaded.has_classifier:
            return None, None, gr.update(choices=[], value=None)
        choices = views.class_choices(an)
        target = target if target in [c[1] for c in choices] else choices[0][1]
        seen, photo = views.class_specific(loaded, an, target, method, alpha, lang)
        return seen, photo, gr.update(choices=choices, value=target)

    def on_dino(state, mass):
        return views.dino_heads(state["an"], mass) if state else None

    def on_distance(state, lang):
        return views.attention_distance_plot(state["an"], lang) if state else None

    def on_filters(state):
        return views.embedding_filters(get_model(state["model"]) if state else start)

    def on_faith(state, lang):
        loaded, an = cached(state)
        if not loaded.has_classifier:
            return None, t("no_classifier", lang, model=loaded.name)
        return views.faithfulness(loaded, an, views.standard_maps(loaded, an), lang)

    def on_click(state, layer, head, alpha, evt: gr.SelectData):
        loaded, an = cached(state)
        canvas = views.click_canvas(an)
        patch = views.patch_at(an, *evt.index, canvas.shape[:2])
        return [views.mark_patch(canvas, patch, an), patch,
                *views.query_maps(loaded, an, patch, layer, head_value(head), alpha)]

    def on_query_controls(state, patch, layer, head, alpha):
        if not state or patch is None:
            return [None] * 4
        loaded, an = cached(state)
        return views.query_maps(loaded, an, int(patch), layer, head_value(head), alpha)

    def on_click_canvas(state):
        return views.click_canvas(state["an"]) if state else None

    def on_overview_click(state, evt: gr.SelectData):
        """A click on the layers × heads grid selects that layer and head."""
        layer, head = views.overview_cell(state["an"], *evt.index)
        return layer, str(head)

    def on_inside(state, lang):
        if not state:
            return [gr.update()] * 12
        loaded, an = cached(state)
        out = []
        for text, img in views.inside_steps(loaded, an, lang):
            out += [text, gr.update(value=img, visible=img is not None)]
        return out

    def on_mae(state, lang):
        loaded, an = cached(state)
        if loaded.family != "vit_mae":
            return t("mae_only", lang, model=loaded.name), None, None, None
        return (t("mae_help", lang), *views.mae_reconstruction(loaded, an))

    def head_value(head):
        return "mean" if head in (None, "mean") else int(head)

    # ------------------------------------------------------------ layout
    with gr.Blocks(title="vitviz") as demo:
        state = gr.State(None, time_to_live=SESSION_TTL_S)
        gr.Markdown(L("title"))
        with gr.Row():
            gr.Markdown(L("intro"), scale=4)
            lang = gr.Radio([("English", "en"), ("한국어", "ko")], value="en", label=L("language"), scale=1,
                            elem_id="lang-switch")
        status = gr.Markdown(status_line(start, "en"), elem_id="status")
        with gr.Row():
            with gr.Column(scale=1):
                image = tolerate_undecodable(gr.Image(type="filepath", image_mode=None, label=L("image"),
                                                      sources=["upload", "clipboard"], height=320, elem_id="upload"))
                with gr.Row():
                    model_dd = gr.Dropdown(model_choices(start.name), value=start.name, label=L("model"),
                                           allow_custom_value=True, elem_id="model", scale=3)
                    size_dd = gr.Dropdown(size_choices(start), value=size_choices(start)[0][1],
                                          label=L("resolution"), allow_custom_value=True, scale=2, elem_id="size")
                gr.Examples(EXAMPLES, inputs=[image], label=L("examples"), examples_per_page=16)
            with gr.Column(scale=1):
                label = gr.Label(num_top_classes=5, label=L("predictions"), elem_id="predictions")

        def layer_head_controls():
            """A layer slider and a head list; their ranges follow the active model after each analysis."""
            return (gr.Slider(0, 23, value=0, step=1, label=L("layer")),
                    gr.Dropdown(["mean"] + [str(i) for i in range(16)], value="mean", label=L("head")))

        def out_image(key, elem_id, **kw):
            return gr.Image(label=L(key), format="png", interactive=False, elem_id=elem_id,
                            buttons=["download", "fullscreen"], **kw)

        with gr.Tabs():
            with gr.Tab(L("tab_patches"), id="patches"):
                with gr.Row():
                    grid_img = out_image("patch_grid", "patch-grid")
                    with gr.Column():
                        tokens_img = out_image("tokens", "tokens")
                        shapes_md = gr.Markdown()
            with gr.Tab(L("tab_rollout"), id="rollout"):
                with gr.Row():
                    fusion = gr.Radio(FUSIONS, value="mean", label=L("fusion"))
                    discard = gr.Slider(0.0, 0.95, value=0.0, step=0.05, label=L("discard"))
                    alpha = gr.Slider(0.0, 1.0, value=0.5, step=0.05, label=L("opacity"))
                    start_layer = gr.Slider(0, 23, value=0, step=1, label=L("start_layer"))
                with gr.Row():
                    ro_seen = out_image("rollout_seen", "rollout-seen")
                    ro_photo = out_image("rollout_photo", "rollout-photo")
            with gr.Tab(L("tab_click"), id="click") as click_tab:
                gr.Markdown(L("click_help"))
                with gr.Row():
                    q_layer, q_head = layer_head_controls()
                    q_patch = gr.Number(None, label=L("patch"), precision=0, interactive=False, elem_id="query-patch")
                with gr.Row():
                    canvas = gr.Image(label=L("click_image"), format="png", interactive=False, elem_id="click-canvas")
                    q_att = out_image("query_att", "query-att")
                with gr.Row():
                    q_mean = out_image("query_mean", "query-mean")
                    q_roll = out_image("query_rollout", "query-rollout")
                    q_pos = out_image("query_posemb", "query-posemb")
            with gr.Tab(L("tab_raw"), id="raw") as raw_tab:
                with gr.Row():
                    r_layer, r_head = layer_head_controls()
                    r_shared = gr.Checkbox(False, label=L("shared_scale"))
                with gr.Row():
                    r_grid = out_image("raw_grid", "raw-grid")
                    with gr.Column():
                        r_seen = out_image("raw_selected", "raw-seen")
                        r_photo = out_image("on_photo", "raw-photo")
                r_means = out_image("raw_mean", "raw-means")
            with gr.Tab(L("tab_class"), id="class") as class_tab:
                with gr.Row():
                    c_target = gr.Dropdown([], label=L("target_class"), elem_id="class-target")
                    c_method = gr.Radio([("Chefer et al. 2021 (generic)", "chefer"),
                                         ("gradient-weighted rollout", "grad_rollout")], value="chefer",
                                        label=L("method"))
                with gr.Row():
                    c_seen = out_image("class_map", "class-seen")
                    c_photo = out_image("on_photo", "class-photo")
            with gr.Tab(L("tab_dino"), id="dino") as dino_tab:
                d_mass = gr.Slider(0.1, 1.0, value=0.6, step=0.05, label=L("dino_mass"))
                d_img = out_image("dino_maps", "dino")
            with gr.Tab(L("tab_distance"), id="distance") as dist_tab:
                dist_img = out_image("distance_plot", "distance")
            with gr.Tab(L("tab_posemb"), id="posemb"):
                gr.Markdown(L("posemb_help"))
                posemb_img = out_image("posemb_map", "posemb")
            with gr.Tab(L("tab_filters"), id="filters") as filt_tab:
                filt_img = out_image("filters", "filters")
            with gr.Tab(L("tab_faith"), id="faith"):
                faith_btn = gr.Button(L("tab_faith"), variant="primary")
                faith_md = gr.Markdown()
                faith_img = out_image("faith_plot", "faith")
            with gr.Tab("MAE", id="mae") as mae_tab:
                mae_md = gr.Markdown(L("mae_help"))
                with gr.Row():
                    mae_masked = out_image("mae_masked", "mae-masked")
                    mae_recon = out_image("mae_recon", "mae-recon")
                    mae_pasted = out_image("mae_pasted", "mae-pasted")
            with gr.Tab(L("tab_inside"), id="inside") as inside_tab:
                inside = []
                for _ in range(6):
                    inside += [gr.Markdown(), gr.Image(format="png", interactive=False, show_label=False)]

        # ------------------------------------------------------------ events
        main_out = [status, label, grid_img, tokens_img, shapes_md, ro_seen, ro_photo, posemb_img, state,
                    start_layer, q_layer, r_layer, q_head, r_head]
        main_in = [image, model_dd, size_dd, lang]
        image.change(filed(analyse_many), main_in, main_out, api_name="analyze", batch=True, max_batch_size=BATCH,
                     api_description="Analyse a photo: status, top-5, patch grid, tokens, shapes, rollout over "
                                     "the input and the photo, position-embedding similarity.")
        for dd in (model_dd, size_dd):
            dd.change(filed(analyse_many), main_in, main_out, batch=True, max_batch_size=BATCH, api_visibility="private")
        rollout_in = [state, fusion, discard, alpha, start_layer, lang]
        for c in (fusion, discard, alpha, start_layer):
            c.change(filed(on_rollout), rollout_in, [ro_seen, ro_photo], api_visibility="private", show_progress="hidden")
        state.change(filed(on_rollout), rollout_in, [ro_seen, ro_photo], api_visibility="private", show_progress="hidden")

        raw_in = [state, r_layer, r_head, r_shared, alpha, q_patch, lang]
        raw_out = [r_grid, r_seen, r_photo, r_means]
        for trig in (raw_tab.select, r_layer.change, r_head.change, r_shared.change):
            trig(filed(on_raw), raw_in, raw_out, api_visibility="private", show_progress="hidden")
        r_grid.select(on_overview_click, [state], [r_layer, r_head], api_visibility="private")

        class_in = [state, c_target, c_method, alpha, lang]
        class_out = [c_seen, c_photo, c_target]
        class_tab.select(filed(on_class), class_in, class_out, api_visibility="private")
        c_target.input(filed(on_class), class_in, class_out, api_visibility="private")
        c_method.change(filed(on_class), class_in, class_out, api_visibility="private")
        gr.on([dino_tab.select, d_mass.change], filed(on_dino), [state, d_mass], [d_img], api_visibility="private",
              show_progress="hidden")
        dist_tab.select(filed(on_distance), [state, lang], [dist_img], api_visibility="private")
        filt_tab.select(filed(on_filters), [state], [filt_img], api_visibility="private")
        faith_btn.click(filed(on_faith), [state, lang], [faith_img, faith_md], api_visibility="private")
        inside_tab.select(filed(on_inside), [state, lang], inside, api_visibility="private")
        mae_tab.select(filed(on_mae), [state, lang], [mae_md, mae_masked, mae_recon, mae_pasted], api_visibility="private")

        click_tab.select(filed(on_click_canvas), [state], [canvas], api_visibility="private")
        state.change(filed(on_click_canvas), [state], [canvas], api_visibility="private")
        query_out = [q_att, q_mean, q_roll, q_pos]
        canvas.select(filed(on_click), [state, q_layer, q_head, alpha], [canvas, q_patch, *query_out],
                      api_visibility="private", show_progress="hidden")
        for c in (q_layer, q_head):
            c.change(filed(on_query_controls), [state, q_patch, q_layer, q_head, alpha], query_out,
                     api_visibility="private", show_progress="hidden")

        lang.change(None, [lang], [lang], js=SET_LANG_JS)

        def on_lang(value, current):
            # the model line follows the language; an analysis message is left alone (no race with it)
            return status_line(start, value) if current is None else gr.update()

        lang.change(on_lang, [lang, state], [status], api_visibility="private")
        demo.load(None, None, [lang], js=DETECT_LANG_JS)
    return demo


def launch_kwargs() -> dict:
    return {"i18n": I18N, "max_file_size": MAX_UPLOAD}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="vitviz: an interactive Vision Transformer explorer")
    p.add_argument("--model", default=None, help="Hub id, local folder or 'bundled' (default: "
                   f"{models.DEFAULT_MODEL} if available, else the bundled model)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, mps (env VITVIZ_DEVICE)")
    p.add_argument("--dtype", default=None, help="auto, float32, bfloat16 (env VITVIZ_DTYPE)")
    p.add_argument("--compile", default=None, choices=["auto", "wait", "off"],
                   help="compiled forward on CPU: build it in the background (auto), before serving (wait), "
                        "or not (off); env VITVIZ_COMPILE")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    a = p.parse_args(argv)
    if a.compile:
        os.environ["VITVIZ_COMPILE"] = a.compile
    demo = create_demo(a.model, a.device, a.dtype)
    start = models.load(a.model, a.device, a.dtype)       # the cached model create_demo started with
    # the default model gets the compiled forward (vitviz/compiled.py); it serves eagerly meanwhile
    start.compiled.start(start, background=compiled.setting() != "wait")
    # several events at once: while one waits for the model thread, others decode uploads and move files
    demo.queue(default_concurrency_limit=4).launch(server_name=a.host, server_port=a.port, **launch_kwargs())


if __name__ == "__main__":
    main()
