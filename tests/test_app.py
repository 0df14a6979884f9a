"""The app in-process, driven through gradio_client as a user's browser would drive it."""

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def client(tiny_vit_dir):
    gr_client = pytest.importorskip("gradio_client")
    import app

    demo = app.create_demo(tiny_vit_dir, "cpu", "float32")
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    yield gr_client.Client(demo.local_url, verbose=False)
    demo.close()


def analyze(client, path, model=None, size=None, lang="en"):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), model or client._model, size or "32x32", lang,
                          api_name="/analyze")


@pytest.fixture(scope="module")
def tiny_name(tiny_vit_dir, client):
    client._model = tiny_vit_dir
    return tiny_vit_dir


def test_upload_shows_every_output(client, tiny_name, tmp_path):
    path = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 120, 3), dtype=np.uint8)).save(path)
    status, label, grid, tokens, shapes, ro_seen, ro_photo, pos = analyze(client, path)[:8]
    assert status.startswith("Analyzed with")
    assert len(label["confidences"]) == 5
    assert abs(sum(c["confidence"] for c in label["confidences"])) <= 1.0 + 1e-6
    assert "4×4 = 16" in shapes
    for img in (grid, tokens, ro_seen, ro_photo):        # per upload: quick JPEG files
        assert Image.open(img).format == "JPEG"
    assert Image.open(pos).format == "PNG"                # drawn once per model: lossless
    photo = Image.open(ro_photo)
    bar = 14 + 16                                            # the colour bar under the photo
    assert photo.width == 224 and photo.height - bar == 112  # the photo's 2:1 aspect (enlarged: it is small)
    from ui.view import BADGE_BAND

    grid = Image.open(grid)                                  # square input, a white band on top for
    assert grid.size[1] - grid.size[0] == BADGE_BAND         # Gradio's label badge


def test_bad_file_gets_a_message_and_the_server_keeps_serving(client, tiny_name, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    out = analyze(client, bad)
    assert "not an image" in out[0] and not out[1]          # no stale predictions
    tiny = tmp_path / "dot.png"
    Image.new("RGB", (1, 1)).save(tiny)
    assert "too small" in (msg := analyze(client, tiny)[0]) and "1×1" in msg
    good = tmp_path / "ok.png"
    Image.new("RGB", (40, 40), (10, 200, 30)).save(good)
    assert analyze(client, good)[0].startswith("Analyzed")


def test_rgba_and_grayscale_uploads_are_analyzed(client, tiny_name, tmp_path):
    for mode, colour in (("RGBA", (255, 0, 0, 128)), ("L", 90), ("P", 3)):
        path = tmp_path / f"{mode}.png"
        Image.new(mode, (50, 30), colour).save(path)
        assert analyze(client, path)[0].startswith("Analyzed"), mode


def test_missing_model_is_a_message_not_a_crash(client, tiny_name, tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (40, 40)).save(path)
    status = analyze(client, path, model="no-such-org/no-such-model")[0]
    assert "could not be loaded" in status
    assert analyze(client, path)[0].startswith("Analyzed")


def test_public_mode_refuses_unlisted_models_and_sizes_through_the_api(tiny_vit_dir, tmp_path):
    """As on a Space (SPACE_ID set): the API offers only the selector's models and sizes, and says so
    in plain words, without exception text or paths; the server keeps serving."""
    import os

    import psutil
    from gradio_client import Client, handle_file

    import app
    from vitviz.core.settings import Settings
    from vitviz.service.context import AppContext

    on_a_space = Settings.from_env({**os.environ, "SPACE_ID": "someone/vitviz"})
    ctx = AppContext.create(on_a_space.overridden(model=tiny_vit_dir, device="cpu", dtype="float32"))
    assert ctx.policy.public
    demo = app.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    try:
        client = Client(demo.local_url, verbose=False)
        path = tmp_path / "p.png"
        Image.new("RGB", (50, 40), (200, 30, 30)).save(path)

        def ask(model, size, lang="en"):
            return client.predict(handle_file(str(path)), model, size, lang, api_name="/analyze")[0]

        assert ask(tiny_vit_dir, "32x32").startswith("Analyzed")          # warm: the idle size to compare with
        rss = psutil.Process().memory_info().rss
        answers = []
        for model in ("/etc", "../assets/models", "facebook/some-cached-model", "x" * 5000):
            msg = ask(model, "32x32")
            assert "offers only the models in the list" in msg and tiny_vit_dir in msg
            answers.append(msg)
        for size, lang, words in (("40x40", "en", "sizes offered here"), ("4000x4000", "en", "4000x4000"),
                                  ("abc", "ko", "크기"), ("32x32; rm -rf /", "ko", "크기"), ("9" * 400, "en", "size"),
                                  ("-32x32", "en", "size")):
            msg = ask(tiny_vit_dir, size, lang)
            assert words in msg, (size, msg)
            answers.append(msg)
        for msg in answers:                                  # the owner's model list aside, no path or exception
            msg = msg.replace(tiny_vit_dir, "the model")
            assert not any(w in msg for w in ("Error", "Traceback", "Exception", "errno", "/tmp/", "/work/",
                                              "site-packages", "x" * 50)), msg
        assert psutil.Process().memory_info().rss - rss < 300 * 2**20
        assert ask(tiny_vit_dir, "48x48").startswith("Analyzed")         # and it still serves
    finally:
        demo.close()


def test_the_page_language_switch_still_finds_gradios_changelocale():
    """Gradio has no public API to switch the page's language: the radio imports the frontend's core
    module and calls its changeLocale (ui/compat.py SET_LANG_JS). This fails the day Gradio renames it."""
    import re
    from pathlib import Path

    import gradio

    from ui.compat import SET_LANG_JS

    assets = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
    cores = [p for p in assets.glob("core-*.js") if re.search(r"/core-[^/]*\.js$", "/" + p.name)]
    assert cores and any(re.search(r"\bchangeLocale\b", p.read_text(errors="ignore")) for p in cores)
    assert "changeLocale" in SET_LANG_JS and "core-" in SET_LANG_JS


def test_korean_class_names_through_the_api(client, tiny_name, tmp_path):
    """In Korean the top-5 reads "한국어 (English)": for any model carrying the 1,000 standard ImageNet
    labels (recognised by its labels, not its id) and for the bundled Fashion-MNIST model."""
    import re

    from gradio_client import handle_file

    from vitviz.core.classnames import table

    from .conftest import save_tiny, tiny_vit_config

    standard = {i: english for i, (english, _) in enumerate(table("imagenet-1k"))}
    config = tiny_vit_config()
    config.num_labels, config.id2label = 1000, standard
    config.label2id = {v: k for k, v in standard.items()}
    imagenet = save_tiny(tmp_path / "imagenet-labels", config=config)
    photo = tmp_path / "p.png"
    Image.new("RGB", (40, 40), (30, 90, 200)).save(photo)
    hangul = re.compile("[가-힣]")
    for model, size in ((imagenet, "32x32"), ("bundled", "")):
        for lang in ("ko", "en"):
            out = client.predict(handle_file(str(photo)), model, size, lang, api_name="/analyze")
            names = [c["label"] for c in out[1]["confidences"]]
            assert len(names) == 5, (model, out[0])
            if lang == "ko":
                assert all(hangul.search(n) and n.endswith(")") for n in names), names
            else:
                assert not any(hangul.search(n) for n in names), names
