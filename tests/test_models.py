"""Loading through the app's own path, prefix tokens and grids read from the model, analysis outputs."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from vitviz import models
from vitviz.analysis import analyze, analyze_batch
from vitviz.core import cpu, loading
from vitviz.core.settings import Settings


def test_load_saved_folder_uses_eager_attention_and_caches(tiny_vit_dir):
    a = models.load(tiny_vit_dir, "cpu", "float32")
    assert a.model.config._attn_implementation == "eager"
    assert a.family == "vit" and a.patch_size == 8 and a.input_size == (32, 32)
    assert a.has_classifier and a.id2label[0] == "cat"
    assert models.load(tiny_vit_dir, "cpu", "float32") is a


def test_analysis_shapes_and_probabilities(tiny_loaded, photo):
    an = analyze(tiny_loaded, photo)
    assert an.grid == (4, 4) and an.prefix == 1
    assert an.attentions.shape == (2, 4, 17, 17)
    assert np.isclose(an.probs.sum(), 1.0, atol=1e-5)
    top = an.top(5)
    assert len(top) == 5 and top[0][2] >= top[-1][2]
    assert an.seen.shape == (32, 32, 3)
    assert torch.allclose(an.att().sum(-1), torch.ones(2, 4, 17), atol=2e-3)   # stored in float16


def test_distilled_deit_has_two_prefix_tokens_and_a_cropped_box(tiny_deit_dir, photo):
    loaded = models.load(tiny_deit_dir, "cpu", "float32")
    an = analyze(loaded, photo)
    assert an.prefix == 2 and an.grid == (4, 4)
    w, h = photo.size
    assert an.box == pytest.approx((w * 4 / 40, h * 4 / 40, w * 36 / 40, h * 36 / 40))


def test_non_square_model_grid(tmp_path, photo):
    from .conftest import save_tiny, tiny_vit_config

    path = save_tiny(tmp_path / "wide", config=tiny_vit_config(image_size=[16, 40]))
    an = analyze(models.load(path, "cpu", "float32"), photo)
    assert an.grid == (2, 5) and an.attentions.shape[-1] == 11


def test_any_resolution_interpolates_position_embeddings(tiny_loaded, photo):
    an = analyze(tiny_loaded, photo, size=(48, 64))
    assert an.grid == (6, 8) and an.attentions.shape[-1] == 1 + 48


def test_batch_equals_one_by_one(tiny_loaded, photo):
    imgs = [photo, photo.rotate(90, expand=True), photo.transpose(0)]
    batch = analyze_batch(tiny_loaded, imgs)
    for img, b in zip(imgs, batch):
        single = analyze(tiny_loaded, img)
        assert np.allclose(single.probs, b.probs, atol=1e-5)
        assert torch.allclose(single.att(), b.att(), atol=1e-3)


def test_batch_analyses_do_not_keep_the_whole_batch_alive(tiny_loaded, photo):
    """Regression: each analysis held a view of the batch's attentions, so a session that kept one
    image's analysis kept the whole batch's (the app's memory grew ~50% after classroom bursts)."""
    batch = analyze_batch(tiny_loaded, [photo] * 4)
    for an in batch:
        own = an.attentions.numel() * an.attentions.element_size()
        assert an.attentions.untyped_storage().nbytes() == own
    ptrs = {an.attentions.untyped_storage().data_ptr() for an in batch}
    assert len(ptrs) == 4


def test_missing_hub_model_without_network_falls_back_to_bundled(monkeypatch, tiny_vit_dir):
    monkeypatch.setattr(loading, "BUNDLED_DIR", __import__("pathlib").Path(tiny_vit_dir))
    monkeypatch.setattr(loading, "hub_reachable", lambda offline=False, timeout=0: False)
    monkeypatch.setenv("VITVIZ_MODEL", "no-such-org/no-such-model")
    loaded = models.load(None, "cpu", "float32")
    assert loaded.name == models.BUNDLED
    assert "not in the local cache" in loaded.reason and "bundled" in loaded.reason
    assert models.load(models.BUNDLED, "cpu", "float32").reason == ""   # the cached entry stays clean


def test_unavailable_model_says_so(monkeypatch):
    monkeypatch.setattr(loading, "hub_reachable", lambda offline=False, timeout=0: False)
    with pytest.raises(models.ModelUnavailable, match="cannot be reached"):
        models.load("no-such-org/no-such-model", "cpu", "float32")


def test_dtype_choice(monkeypatch):
    monkeypatch.setattr(cpu, "fast_bf16", lambda: True)
    assert models.pick_dtype("cpu") == "bfloat16"
    assert models.pick_dtype("cuda") == "bfloat16"
    monkeypatch.setattr(cpu, "fast_bf16", lambda: False)
    assert models.pick_dtype("cpu") == "float32"
    assert models.pick_dtype("cpu", "fp32") == "float32"
    assert models.pick_dtype("cpu", Settings.from_env({"VITVIZ_DTYPE": "bf16"}).dtype) == "bfloat16"
    with pytest.raises(ValueError):
        models.pick_dtype("cpu", "int4")           # int8 is a choice (vitviz.quant, tests/test_quant.py)


def test_device_override(monkeypatch, tiny_vit_dir):
    monkeypatch.setenv("VITVIZ_DEVICE", "cpu")
    assert models.pick_device(Settings.from_env().device) == "cpu"
    assert models.load(tiny_vit_dir, dtype="float32").device == "cpu"       # the settings' device
    assert models.pick_device("cuda:1") == "cuda:1"


def test_importing_vitviz_does_not_import_gradio():
    code = ("import sys, vitviz, vitviz.models, vitviz.analysis, vitviz.pictures.maps, vitviz.attention, "
            "vitviz.posemb, vitviz.pictures.render, vitviz.scratch, vitviz.train, vitviz.core.i18n; "
            "assert 'gradio' not in sys.modules, 'gradio imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_model_cache_respects_the_memory_budget(monkeypatch, tiny_vit_dir, tiny_deit_dir):
    models.clear_cache()
    a = models.load(tiny_vit_dir, "cpu", "float32")
    monkeypatch.setattr(models.store().cache, "max_bytes", a.weight_bytes() + 1)   # room for one tiny model
    b = models.load(tiny_deit_dir, "cpu", "float32")
    assert models.store().cache.values() == [b]
    assert models.load(tiny_vit_dir, "cpu", "float32") is not a               # was evicted, loaded again
