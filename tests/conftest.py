"""Shared fixtures: tiny random ViTs saved as local folders, so every code path runs offline in seconds."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("VITVIZ_OFFLINE", "1")      # never probe the Hub from tests
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
import pytest
import torch
from PIL import Image

LABELS = ["cat", "dog", "cup", "car", "tree", "boat"]


def tiny_vit_config(image_size=32, patch_size=8, **kw):
    from transformers import ViTConfig

    return ViTConfig(image_size=image_size, patch_size=patch_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=4, intermediate_size=64, num_labels=len(LABELS),
                     id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)}, **kw)


def save_tiny(path, model_cls=None, config=None, processor=None, seed=0, init=None):
    from transformers import ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(seed)
    config = config or tiny_vit_config()
    model = (model_cls or ViTForImageClassification)(config).eval()
    if init is not None:
        with torch.no_grad():
            init(model)
    model.save_pretrained(path)
    size = config.image_size if isinstance(config.image_size, (list, tuple)) else (config.image_size,) * 2
    processor = processor or ViTImageProcessor(size={"height": size[0], "width": size[1]},
                                               image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_vit_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny-vit"))


@pytest.fixture(scope="session")
def tiny_deit_dir(tmp_path_factory):
    """A distilled DeiT: [CLS] and [DIST] prefix tokens, resize 40 then centre-crop 32."""
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher, DeiTImageProcessor

    cfg = DeiTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                     label2id={n: i for i, n in enumerate(LABELS)})
    proc = DeiTImageProcessor(size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32})

    def distinct_tokens(model):       # random init leaves [CLS], [DIST] and positions all zero
        emb = model.deit.embeddings
        for p in (emb.cls_token, emb.distillation_token, emb.position_embeddings):
            p.normal_(0, 0.5)

    return save_tiny(tmp_path_factory.mktemp("tiny-deit"), DeiTForImageClassificationWithTeacher, cfg, proc,
                     init=distinct_tokens)


def app_settings(model, **overrides):
    """The environment's settings on a model, on the CPU in float32, private unless said otherwise."""
    from vitviz.core.settings import Settings

    return Settings.from_env().overridden(**{"model": str(model), "device": "cpu", "dtype": "float32",
                                             "public": False, **overrides})


def app_context(model, **overrides):
    """The app's context on a model (app_settings)."""
    from vitviz.service.context import AppContext

    return AppContext.create(app_settings(model, **overrides))


@pytest.fixture(scope="module")
def ctx(tiny_vit_dir):
    """The app's context on the tiny ViT (private mode), one per test module."""
    return app_context(tiny_vit_dir)


@pytest.fixture(scope="session")
def tiny_loaded(tiny_vit_dir):
    from vitviz import models

    return models.load(tiny_vit_dir, "cpu", "float32")


@pytest.fixture
def photo():
    """A non-square RGB photo with structure (a bright square on a gradient)."""
    return structured_photo()


def structured_photo() -> Image.Image:
    """The photo fixture's picture, for module-scoped fixtures (the same every time)."""
    rng = np.random.default_rng(0)
    arr = np.zeros((60, 90, 3), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, 90, dtype=np.uint8)[None]
    arr[10:30, 50:80] = 255
    arr += rng.integers(0, 10, arr.shape, dtype=np.uint8)
    return Image.fromarray(arr)


def random_attention(L=3, H=2, N=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(L, H, N, N, generator=g).softmax(-1)


# ---------------------------------------------------------------- the app in a browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def serving(model: str, **overrides):
    """The app on a model, launched in this process (closed after): the Gradio Blocks. overrides:
    settings (app_settings), e.g. classroom=True."""
    import app

    demo = app.create_demo(settings=app_settings(model, public=None, **overrides))
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    try:
        yield demo
    finally:
        demo.close()


@contextmanager
def chromium(*args: str):
    """Debian's headless Chromium through Playwright (skips the test where either is missing)."""
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", *args])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def app_url(tiny_vit_dir):
    """The app on the tiny ViT, for the browser tests."""
    with serving(tiny_vit_dir) as demo:
        yield demo.local_url


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"


def page_with_photo(browser, url: str, lang: str = "en", size: tuple[int, int] = (1280, 800),
                    photo: str = "coffee.jpg"):
    """A page at a window size in a browser language, with an example photo analyzed."""
    from ui.text import t

    page = browser.new_page(viewport={"width": size[0], "height": size[1]}, locale="ko-KR" if lang == "ko" else "en-US")
    page.goto(url)
    page.wait_for_selector("#upload", timeout=60_000)
    page.wait_for_function(f"() => document.body.innerText.includes({t('image', lang)!r})", timeout=30_000)
    page.locator("#upload input[type=file]").set_input_files(str(EXAMPLES / photo))
    done = "Analyzed" if lang == "en" else "분석했어요"     # words the page's first status line lacks
    page.wait_for_function(f"() => document.querySelector('#status').innerText.includes({done!r})", timeout=60_000)
    return page
