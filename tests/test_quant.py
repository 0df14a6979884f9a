"""int8 (vitviz/quant.py): refused plainly where the CPU cannot run it fast, served only after the
fidelity gate passed, float32 maps and gradients, and the dtype recorded by the CLI and the evaluation."""

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.conftest import save_tiny, tiny_vit_config
from vitviz import methods, models, quant
from vitviz.analysis import analyze
from vitviz.core import compat, cpu
from vitviz.core.cache import Cache
from vitviz.core.compiled import CompiledForward
from vitviz.core.paths import example_photos

ROOT = Path(__file__).resolve().parent.parent


def fresh_float(folder):
    """A float32 model with caches and a compiled forward of its own (tests stay independent);
    its float32 compiled forward is marked failed so that no fallback compiles in the background."""
    base = replace(models.load(folder, "cpu", "float32"), cache=Cache(), compiled=CompiledForward())
    base.compiled.state, base.compiled.reason = "failed", "not in tests"
    return base


FAST = quant.Speed(int8_s=0.010, float32_s=0.020)


def build_with(monkeypatch, forward_model, speed: "quant.Speed" = FAST):
    """Int8Forward serves `forward_model` (eager) instead of quantizing and compiling: the gate's
    logic without inductor; the race against float32 reports `speed`."""
    def _compile(self, loaded):
        self._fn, self._input_size = forward_model, loaded.input_size
    monkeypatch.setattr(quant.Int8Forward, "_compile", _compile)
    monkeypatch.setattr(quant.Int8Forward, "_float_instead", lambda self: None)
    monkeypatch.setattr(quant, "timed", lambda loaded, base, int8_fn: speed)


@pytest.fixture
def supported(monkeypatch):
    """int8 treated as available whatever this machine is (the refusal tests say otherwise)."""
    monkeypatch.setattr(quant, "refusal", lambda device, compile_mode="auto": "")


@pytest.fixture(scope="module")
def other_tiny(tmp_path_factory):
    """Another random tiny ViT of the same shape: a 'quantization' that broke everything."""
    return save_tiny(tmp_path_factory.mktemp("tiny-other"), seed=7)


# ---------------------------------------------------------------- refused where it cannot help

def test_int8_is_refused_plainly_where_the_cpu_has_no_vnni_or_amx(monkeypatch, capsys, tiny_vit_dir):
    monkeypatch.setattr(cpu, "flags", lambda: frozenset({"avx2", "avx512f"}))
    monkeypatch.setattr(compat, "amx_tile_supported", lambda: False)
    monkeypatch.setattr(quant, "_said", set())
    assert cpu.int8_isa() == ""
    assert models.pick_dtype("cpu", "int8") == "float32"
    assert models.load(tiny_vit_dir, "cpu", "int8").dtype == "float32"
    err = capsys.readouterr().err
    assert err.count("int8 refused") == 1 and "VNNI" in err and "float32" in err and "Traceback" not in err
    assert quant.fast_model(models.load(tiny_vit_dir, "cpu", "float32")) is None


@pytest.mark.parametrize("flags, amx, isa", [({"avx512_vnni"}, False, "AVX512-VNNI"), ({"avx_vnni"}, False, "AVX-VNNI"),
                                             ({"amx_int8", "avx512_vnni"}, False, "AMX"), (set(), True, "AMX")])
def test_the_instruction_sets_that_make_int8_fast(monkeypatch, flags, amx, isa):
    monkeypatch.setattr(cpu, "flags", lambda: frozenset(flags))
    monkeypatch.setattr(compat, "amx_tile_supported", lambda: amx)
    assert cpu.int8_isa() == isa


def test_refused_on_a_gpu_without_torchao_and_with_a_torch_too_old(monkeypatch):
    monkeypatch.setattr(cpu, "int8_isa", lambda: "AVX512-VNNI")
    assert "CPU only" in quant.refusal("cuda")
    monkeypatch.setattr(quant, "torchao_version", lambda: "")
    assert "torchao" in quant.refusal("cpu")
    monkeypatch.setattr(quant, "torchao_version", lambda: "0.18.0")
    monkeypatch.setattr(torch, "__version__", "2.10.0+cpu")
    assert "2.11" in quant.refusal("cpu")
    monkeypatch.setattr(torch, "__version__", "2.7.1")
    assert "2.8" in quant.refusal("cpu")


def test_families_int8_does_not_serve_stay_float32(monkeypatch, capsys, tiny_vit_dir):
    base = fresh_float(tiny_vit_dir)
    monkeypatch.setattr(quant, "_said", set())
    from transformers import BeitConfig

    from vitviz.families.transformers import facts

    beit = facts(BeitConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=64), None, classifier=False)
    assert not beit["int8"]                                 # the adapter's fact: int8 does not serve BEiT
    assert quant.int8_model(replace(base, family="beit", int8=beit["int8"])).dtype == "float32"
    assert "int8 refused" in capsys.readouterr().err
    with pytest.raises(ValueError, match="float32"):
        quant.int8_model(replace(base, dtype="bfloat16"))


# ---------------------------------------------------------------- the gate

def test_fidelity_verdict_and_pearson_by_hand(monkeypatch):
    assert quant.pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 4.0, 6.0])) == pytest.approx(1.0)
    assert quant.pearson(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    assert quant.pearson(torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])) == pytest.approx(-0.5)
    monkeypatch.setattr(quant, "THRESHOLDS", {"top1": 0.9, "rollout": 0.95, "attention": 0.95})
    good = quant.Fidelity(12, 11 / 12, 0.99, (0.999, 0.998))
    assert good.verdict() == (True, "")
    ok, why = quant.Fidelity(12, 10 / 12, 0.99, (0.999, 0.90)).verdict()
    assert not ok and "top-1 agreement 83% < 90%" in why and "attention r 0.900" in why and "rollout" not in why
    assert not quant.Fidelity(12, 1.0, float("nan"), (1.0,)).verdict()[0]      # NaN never passes


def test_the_gate_lets_a_faithful_int8_serve(monkeypatch, supported, tiny_vit_dir, photo):
    base = fresh_float(tiny_vit_dir)
    build_with(monkeypatch, base.model)              # identical outputs: fidelity 1
    int8 = quant.int8_model(base)
    assert int8 is quant.int8_model(base) and int8.dtype == "int8" and int8.model is base.model
    int8.compiled.start(int8, background=False)
    fid = int8.compiled.fidelity
    assert int8.compiled.state == "ready" and fid.photos == len(example_photos()) >= 10
    assert fid.top1 == 1.0 and fid.rollout == pytest.approx(1.0) and min(fid.attention) == pytest.approx(1.0)
    before = int8.compiled.calls
    an = analyze(int8, photo)
    assert int8.compiled.calls == before + 1           # the int8 forward answered
    assert quant.serving_dtype(int8) == "int8" and quant.record(int8)["dtype"] == "int8"
    assert quant.settle(int8) is int8 and quant.fast_model(int8) is int8
    assert an.att().dtype == torch.float32


def test_the_gate_falls_back_to_float32_when_fidelity_is_low(monkeypatch, supported, tiny_vit_dir, other_tiny,
                                                            photo):
    base = fresh_float(tiny_vit_dir)
    build_with(monkeypatch, models.load(other_tiny, "cpu", "float32").model)   # a broken "quantization"
    int8 = quant.int8_model(base)
    int8.compiled.start(int8, background=False)
    assert int8.compiled.state == "failed" and int8.compiled.gate_failed
    assert "fidelity gate" in int8.compiled.reason and int8.compiled.int8_forward is None
    before = int8.compiled.calls
    a, b = analyze(int8, photo), analyze(base, photo)
    assert int8.compiled.calls == before and torch.equal(a.attentions, b.attentions)   # float32 answered
    assert quant.serving_dtype(int8) == "float32" and quant.settle(int8) is base
    assert quant.record(int8)["int8_fidelity"]["top1_agreement"] == int8.compiled.fidelity.top1

    from ui import upload

    for lang in ("en", "ko"):
        note = upload.model_notes(int8, lang)
        assert "int8" in note and f"{min(int8.compiled.fidelity.attention):.3f}" in note
        assert upload.precision(int8, lang).startswith("float32")


def test_a_threshold_forced_high_fails_even_a_perfect_int8(monkeypatch, supported, tiny_vit_dir):
    monkeypatch.setattr(quant, "THRESHOLDS", {"top1": 1.0, "rollout": 1.01, "attention": 0.5})
    base = fresh_float(tiny_vit_dir)
    build_with(monkeypatch, base.model)
    int8 = quant.int8_model(base)
    assert quant.settle(int8) is base and "rollout r" in int8.compiled.reason
    assert quant.fast_model(int8) is None


def test_explanations_of_an_int8_model_are_float32_and_use_the_float32_weights(monkeypatch, supported,
                                                                                 tiny_vit_dir, photo):
    base = fresh_float(tiny_vit_dir)
    build_with(monkeypatch, base.model)
    int8 = quant.int8_model(base)
    int8.compiled.start(int8, background=False)
    an = analyze(int8, photo)
    ids = methods.class_specific()
    maps, ref = methods.class_maps(int8, an, 2, ids), methods.class_maps(base, an, 2, ids)
    for name, m in maps.items():
        assert m.dtype == torch.float32 and torch.allclose(m, ref[name], atol=1e-6), name


# ---------------------------------------------------------------- only where it is faster

def test_a_faithful_int8_that_is_slower_than_float32_does_not_serve(monkeypatch, supported, tiny_vit_dir):
    """Regression: on a CPU where int8 ran oneDNN's reference kernel (700× slower), the gate passed it."""
    from ui.upload import int8_note

    base = fresh_float(tiny_vit_dir)
    build_with(monkeypatch, base.model, speed=quant.Speed(int8_s=12.0, float32_s=0.017))
    int8 = quant.int8_model(base)
    int8.compiled.start(int8, background=False)
    assert int8.compiled.state == "failed" and int8.compiled.slower and not int8.compiled.gate_failed
    assert "slower" in int8.compiled.reason and "12000 ms" in int8.compiled.reason
    assert quant.serving_dtype(int8) == "float32"
    record = quant.record(int8)
    assert record["dtype"] == "float32" and record["int8_speed"]["int8_over_float32"] > 700
    for lang, word in (("en", "slower"), ("ko", "느렸")):
        note = int8_note(int8, lang)
        assert word in note and "12000" in note.replace(",", "")


def test_a_faithful_int8_that_is_faster_serves_and_says_how_much(monkeypatch, supported, tiny_vit_dir):
    base = fresh_float(tiny_vit_dir)
    build_with(monkeypatch, base.model, speed=quant.Speed(int8_s=0.006, float32_s=0.020))
    int8 = quant.int8_model(base)
    int8.compiled.start(int8, background=False)
    assert int8.compiled.state == "ready" and "0.30×" in int8.compiled.describe()
    assert quant.record(int8)["int8_speed"] == {"int8_ms": 6.0, "float32_ms": 20.0, "int8_over_float32": 0.3,
                                                "serves_int8_at_most": quant.FASTER}


@pytest.mark.parametrize("int8_ms,float_ms,faster", [(5, 10, True), (9, 10, True), (9.5, 10, False),
                                                     (12000, 17, False)])
def test_int8_must_take_at_most_a_fixed_share_of_float32s_time(int8_ms, float_ms, faster):
    assert quant.Speed(int8_ms / 1e3, float_ms / 1e3).faster is faster


def test_the_race_times_both_forwards_interleaved_and_takes_medians():
    import time as clock

    calls = []

    def slow(x):
        calls.append("int8")
        clock.sleep(0.02)

    def quick(x):
        calls.append("float32")
        clock.sleep(0.002)

    speed = quant.race(slow, quick, torch.zeros(1, 3, 4, 4), runs=3)
    assert calls == ["int8", "float32"] + ["int8", "float32"] * 3       # warm-up, then alternating
    assert speed.int8_s >= 0.02 and speed.float32_s < speed.int8_s and not speed.faster


# ---------------------------------------------------------------- the real int8 forward

@pytest.fixture(scope="module")
def real_int8(tmp_path_factory):
    """A tiny ViT quantized by torchao and compiled (once: inductor takes a while on two cores)."""
    why = quant.refusal("cpu")
    if why:
        pytest.skip(f"int8 cannot run here: {why}")

    def confident_head(model):         # clear margins between classes, as a trained classifier has
        model.classifier.weight.mul_(20.0)
    folder = save_tiny(tmp_path_factory.mktemp("tiny-int8"), config=tiny_vit_config(), init=confident_head)
    base = fresh_float(folder)
    int8 = quant.int8_model(base)
    # a tiny model's speed says nothing about a ViT's (benchmarks/bench.py times ViT-B): fidelity only here
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(quant, "timed", lambda loaded, base, int8_fn: FAST)
        int8.compiled.start(int8, background=False)
    assert int8.compiled.int8_forward is not None or int8.compiled.gate_failed, int8.compiled.reason
    return base, int8


def test_torchao_int8_keeps_maps_float32_and_close_to_float32(real_int8, photo):
    base, int8 = real_int8
    fid = int8.compiled.fidelity
    assert int8.compiled.state == "ready", (int8.compiled.reason, fid)
    linear = next(m for m in int8.compiled.int8_forward.modules() if isinstance(m, torch.nn.Linear))
    assert "Int8" in type(linear.weight).__name__               # torchao's int8 weights, not float
    with torch.inference_mode():
        out = int8.compiled(torch.zeros(2, 3, 32, 32))
    assert out is not None and out.logits.dtype == torch.float32
    assert all(a.dtype == torch.float32 for a in out.attentions)   # softmax and maps in float32
    a, b = analyze(int8, photo), analyze(base, photo)
    assert quant.pearson(a.att(), b.att()) > 0.99
    assert min(fid.attention) > 0.99 and fid.rollout > 0.99


# ---------------------------------------------------------------- the dtype on record

def test_the_command_line_records_the_dtype_that_served(monkeypatch, supported, tmp_path, photo):
    from vitviz.__main__ import main

    folder = save_tiny(tmp_path / "model", seed=3)
    build_with(monkeypatch, models.load(folder, "cpu", "float32").model)
    photo.save(tmp_path / "p.png")
    assert main(["explain", str(tmp_path / "p.png"), "--out", str(tmp_path / "out"), "--model", folder,
                 "--dtype", "int8"]) == 0
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["dtype"] == "int8" and settings["int8_fidelity"]["top1_agreement"] == 1.0
    assert (tmp_path / "out" / "p" / "rollout.png").exists()

    monkeypatch.setattr(quant, "refusal", lambda device, compile_mode="auto": "no VNNI here")
    assert main(["explain", str(tmp_path / "p.png"), "--out", str(tmp_path / "out2"), "--model", folder,
                 "--dtype", "int8"]) == 0
    assert json.loads((tmp_path / "out2" / "settings.json").read_text())["dtype"] == "float32"


def test_the_evaluation_records_the_dtype_that_served(monkeypatch, supported, tmp_path):
    from PIL import Image

    from vitviz.evidence import evaluate

    data = tmp_path / "data"
    for name in ("cat", "dog"):
        (data / name).mkdir(parents=True)
        Image.new("RGB", (40, 48), (200, 30, 30) if name == "cat" else (30, 30, 200)).save(data / name / "0.png")
    model = save_tiny(tmp_path / "model", seed=4)
    build_with(monkeypatch, models.load(model, "cpu", "float32").model)
    args = ["--model", model, "--folder", str(data), "--limit", "2", "--steps", "3", "--methods", "rollout_mean",
            "--threads", str(torch.get_num_threads()), "--dtype", "int8"]
    evaluate.main(args + ["--out", str(tmp_path / "int8")])
    assert json.loads((tmp_path / "int8" / "settings.json").read_text())["dtype"] == "int8"

    monkeypatch.setattr(quant, "THRESHOLDS", {"top1": 2.0, "rollout": 0.0, "attention": 0.0})   # the gate says no
    models.clear_cache()
    evaluate.main(args + ["--out", str(tmp_path / "fell-back")])
    assert json.loads((tmp_path / "fell-back" / "settings.json").read_text())["dtype"] == "float32"


def test_an_int8_start_model_takes_the_apps_compile_setting(monkeypatch, tiny_vit_dir):
    """Regression: app.main and benchmarks/bench.py start every model's forward with mode=...; the int8
    forward's start did not take it (TypeError: the app could not start with --dtype int8)."""
    monkeypatch.setattr(quant, "refusal", lambda device, compile_mode="auto": "" if compile_mode != "off" else "off")
    int8 = quant.int8_model(fresh_float(tiny_vit_dir))
    int8.compiled.start(int8, background=False, mode="off")
    assert int8.compiled.state == "failed" and int8.compiled.reason == "off"
