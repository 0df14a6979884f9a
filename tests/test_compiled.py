"""The compiled forward (vitviz/core/compiled.py): same outputs as eager, used only where it fits, off on request."""

import pytest
import torch

from vitviz import models
from vitviz.analysis import analyze, analyze_batch
from vitviz.core import compiled


@pytest.fixture(scope="module")
def compiled_pair(tiny_vit_dir):
    """(eager model, a separate copy of it whose compiled forward is ready)."""
    from dataclasses import replace

    eager = models.load(tiny_vit_dir, "cpu", "float32")
    fast = replace(eager, compiled=compiled.CompiledForward(), cache={})
    ok, why = compiled.wanted("cpu")
    if not ok:
        pytest.skip(f"no compiled forward here: {why}")
    fast.compiled.start(fast, background=False)
    ours = ("compiled attentions differ", "compiled logits differ", "compiled forward returned")
    if fast.compiled.state != "ready" and not any(m in fast.compiled.reason for m in ours):
        pytest.skip(f"inductor cannot build here: {fast.compiled.reason}")   # a toolchain, not our maths
    assert fast.compiled.state == "ready", fast.compiled.reason
    return eager, fast


def test_compiled_analysis_equals_eager(compiled_pair, photo):
    eager, fast = compiled_pair
    before = fast.compiled.calls
    a, b = analyze(eager, photo), analyze(fast, photo)
    many = analyze_batch(fast, [photo, photo.rotate(90), photo.transpose(0), photo])
    # regression: the warm-up's inputs were made outside inference mode, so every request's input
    # failed the compiled code's guards and silently ran eagerly
    assert fast.compiled.calls - before == 2 and fast.compiled.fallbacks == 0   # batch 1 and batch 4
    assert torch.allclose(a.att(), b.att(), atol=2e-3)
    assert abs(a.probs - b.probs).max() < 1e-4
    assert torch.allclose(many[0].att(), b.att(), atol=2e-3)


def test_calls_it_was_not_built_for_run_eagerly(compiled_pair, photo):
    _, fast = compiled_pair
    with torch.inference_mode():
        x = torch.zeros(1, 3, 32, 32)
        assert fast.compiled(x) is not None
        assert fast.compiled(torch.zeros(1, 3, 48, 64)) is None        # another resolution
        assert fast.compiled(x, interpolate_pos_encoding=True) is None  # other arguments
        assert fast.compiled(torch.zeros(5, 3, 32, 32)) is None        # a batch larger than the queue's
    assert fast.compiled(torch.zeros(1, 3, 32, 32)) is None            # gradients (class maps): eager
    assert analyze(fast, photo, size=(48, 64)).grid == (6, 8)          # and the analysis still works


def test_compile_can_be_turned_off(tiny_vit_dir):
    from vitviz.core.settings import Settings

    mode = Settings.from_env({"VITVIZ_COMPILE": "0"}).compile
    assert mode == "off" and not compiled.wanted("cpu", mode)[0]
    cf = compiled.CompiledForward()
    cf.start(models.load(tiny_vit_dir, "cpu", "float32"), background=False, mode=mode)
    assert cf.state == "failed" and "compiling is off" in cf.reason
    assert cf(torch.zeros(1, 3, 32, 32)) is None
    assert "eager" in cf.describe()


def test_a_compile_failure_leaves_eager_in_charge(monkeypatch, tiny_vit_dir):
    monkeypatch.setattr(torch, "compile", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no inductor")))
    cf = compiled.CompiledForward()
    cf.start(models.load(tiny_vit_dir, "cpu", "float32"), background=False)
    assert cf.state == "failed" and "no inductor" in cf.reason and not cf.wait(0)
