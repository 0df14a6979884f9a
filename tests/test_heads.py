"""Direct logit attribution and heads switched off (vitviz.heads), the Heads view's model work and the
`heads` command. The attribution must add up to the model's own score on every family with an affine
read-out (the bundled DeiT, a ViT, a distilled DeiT read through [CLS] and [DIST], DINOv2 with registers,
CLIP's image–text score), and each part must be what the frozen read-out makes of that part alone; a
knock-out must equal a model whose weights say the same, and leave no hook behind."""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vitviz import attention as A
from vitviz import models
from vitviz import query as Q
from vitviz.analysis import analyze
from vitviz.commands.heads import heads_command
from vitviz.core.limits import RequestRefused
from vitviz.heads import attribution as attr_mod
from vitviz.heads import knockout
from vitviz.pictures import heads as pictures

from .conftest import app_context, structured_photo
from .test_block_parts import tiny
from .tiny_families import save_dinov2, save_zero_shot

ROOT = Path(__file__).resolve().parent.parent
KINDS = ["bundled", "vit", "deit", "beit", "dinov2_reg", "clip"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_vit_dir, tiny_deit_dir):
    return {"bundled": "bundled", "vit": tiny_vit_dir, "deit": tiny_deit_dir,
            "beit": tiny("beit", tmp_path_factory.mktemp("beit")),       # layer scales of 0.3, mean-pooled patches
            "dinov2_reg": save_dinov2(tmp_path_factory.mktemp("dinov2-reg"), registers=4, classifier=True),
            "clip": save_zero_shot(tmp_path_factory.mktemp("clip"), "clip"),
            "siglip": save_zero_shot(tmp_path_factory.mktemp("siglip"), "siglip")}


@pytest.fixture(scope="module")
def loaded_models(folders):
    out = {}
    for kind, folder in folders.items():
        m = models.load(folder, "cpu", "float32")
        out[kind] = m.with_labels(("cat", "dog", "car")) if m.typed_labels else m
    return out


@pytest.fixture(scope="module")
def analyses(loaded_models):
    bag = Image.open(ROOT / "assets" / "examples" / "fmnist-bag-test18.png")
    return {kind: analyze(m, bag if kind == "bundled" else structured_photo()) for kind, m in loaded_models.items()}


def plain_logits(loaded, an) -> torch.Tensor:
    """The model's own scores (K,) for the analysed image: a forward with no hook."""
    with torch.no_grad():
        return loaded.forward(an.pixel_values[None]).logits[0].float()


def hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# ---------------------------------------------------------------- attribution

@pytest.mark.parametrize("kind", KINDS)
def test_the_parts_sum_to_the_models_own_logit(loaded_models, analyses, kind):
    loaded, an = loaded_models[kind], analyses[kind]
    own = plain_logits(loaded, an)
    found = attr_mod.attribute(loaded, an, range(len(own)))
    assert [a.target for a in found] == list(range(len(own)))
    for a in found:
        assert a.heads.shape == (loaded.layers, loaded.heads) and a.mlp.shape == (loaded.layers,)
        assert math.isclose(a.logit, float(own[a.target]), rel_tol=1e-5, abs_tol=1e-5), (kind, a.target)
        assert math.isclose(a.total, a.logit, rel_tol=1e-4, abs_tol=1e-3), (kind, a.target, a.total, a.logit)
        # each head's sources (its patches and the prefix tokens it read) add up to its share
        by_source = a.sources.sum((2, 3)) + a.prefix_sources.sum(-1)
        assert np.allclose(by_source, a.heads, atol=1e-5), kind
    assert found[0].sources.shape[2:] == an.grid and found[0].prefix_sources.shape[-1] == an.prefix


def read_alone(loaded, an, piece: torch.Tensor, target: int) -> float:
    """What the frozen read-out makes of one part (N, D) of the last layer's stream, its constant taken away."""
    with torch.no_grad():
        last = loaded.forward(an.pixel_values[None], output_hidden_states=True).hidden_states[-1]
        read = loaded.frozen_readout(last)
        return float(read(piece[None])[0, target] - read(torch.zeros_like(piece)[None])[0, target])


@pytest.mark.parametrize("kind", KINDS)
def test_each_part_is_what_the_frozen_readout_makes_of_it_alone(loaded_models, analyses, kind):
    """Not only the sum: a head's share is the read-out of that head's own slice of the output projection
    (times the layer scale) and an MLP's the read-out of its output, recomputed here from hooks of the test."""
    loaded, an = loaded_models[kind], analyses[kind]
    target = an.top(1)[0][0]
    a = attr_mod.attribution(loaded, an, target)
    layer, d = loaded.layers - 1, loaded.hidden_size // loaded.heads
    parts, got = loaded.block_parts(layer), {}
    hooks = [parts.out.register_forward_pre_hook(lambda mod, args: got.__setitem__("heads", args[0][0])),
             parts.mlp.register_forward_hook(lambda mod, inp, out: got.__setitem__("mlp", out[0]))]
    try:
        plain_logits(loaded, an)
    finally:
        for h in hooks:
            h.remove()
    s1 = 1 if parts.attention_scale is None else parts.attention_scale
    s2 = 1 if parts.mlp_scale is None else parts.mlp_scale
    for head in range(loaded.heads):
        cut = slice(head * d, (head + 1) * d)
        piece = s1 * (got["heads"][:, cut] @ parts.out.weight[:, cut].T)
        assert math.isclose(read_alone(loaded, an, piece, target), a.heads[layer, head], abs_tol=1e-5), (kind, head)
    assert math.isclose(read_alone(loaded, an, s2 * got["mlp"], target), a.mlp[layer], abs_tol=1e-5), kind


def test_a_readout_that_is_not_affine_is_refused(loaded_models, analyses):
    with pytest.raises(attr_mod.NotAffine):
        attr_mod.attribute(loaded_models["siglip"], analyses["siglip"], [0])


def test_the_order_puts_the_largest_share_first(loaded_models, analyses):
    a = attr_mod.attribution(loaded_models["bundled"], analyses["bundled"], analyses["bundled"].top(1)[0][0])
    shares = [a.heads[pair] for pair in a.order()]
    assert len(shares) == a.heads.size and shares == sorted(shares, reverse=True)


# ---------------------------------------------------------------- knock-out

@pytest.mark.parametrize("kind", ["vit", "deit", "siglip"])
def test_knocking_out_nothing_is_the_plain_forward(loaded_models, analyses, kind):
    loaded, an = loaded_models[kind], analyses[kind]
    result = knockout.knock_out(loaded, an, [], "zero")
    own = plain_logits(loaded, an).numpy()
    assert np.allclose(result.logits, own, atol=1e-5) and np.allclose(result.base_logits, own, atol=1e-5)
    # the two rows of one batch agree to rounding, not always to the bit: on an Intel Xeon with AMX
    # SigLIP's change was -8.9e-8 (exactly 0 on AMD Zen)
    assert abs(result.change) < 1e-5 and result.heads == ()
    with torch.no_grad():
        out = loaded.forward(an.pixel_values[None], output_attentions=True)
    att = torch.stack([a[0] for a in out.attentions])
    probe = getattr(out, "probe_attentions", None)
    expected = (A.rollout(att, an.prefix, an.grid) if probe is None
                else Q.rollout(dataclasses.replace(an, attentions=att, probe=probe[0, :, 0])))
    assert np.allclose(result.rollout, expected.numpy(), atol=1e-5)


def zeroed_copy(loaded, heads) -> torch.nn.Module:
    """A deep copy of the model whose output projections read nothing from `heads`: the input columns of
    each head's slice zeroed."""
    model = copy.deepcopy(loaded.model)
    d = loaded.hidden_size // loaded.heads
    with torch.no_grad():
        for layer, head in heads:
            out = dict(model.named_modules())[module_name(loaded, loaded.block_parts(layer).out)]
            out.weight[:, head * d:(head + 1) * d] = 0
    return model


def module_name(loaded, module) -> str:
    return next(name for name, m in loaded.model.named_modules() if m is module)


def copy_logits(loaded, model, an) -> np.ndarray:
    """The scores (K,) of `model`, a changed copy of the loaded model's, run as the loaded model runs."""
    return plain_logits(dataclasses.replace(loaded, model=model), an).numpy()


@pytest.mark.parametrize("kind", ["vit", "deit", "beit", "dinov2_reg", "clip"])
def test_zero_ablation_is_a_model_whose_output_projection_skips_the_head(loaded_models, analyses, kind):
    loaded, an = loaded_models[kind], analyses[kind]
    heads = [(0, 1), (loaded.layers - 1, 2), (loaded.layers - 1, 3)]
    result = knockout.knock_out(loaded, an, heads, "zero")
    expected = copy_logits(loaded, zeroed_copy(loaded, heads), an)
    assert np.allclose(result.logits, expected, atol=1e-5), kind
    assert not np.allclose(result.logits, result.base_logits, atol=1e-4), kind    # the heads did something


def test_mean_ablation_by_hand(loaded_models, analyses):
    """Mean ablation of heads of one layer, by hand: every token gets the head's mean output over the N
    tokens, which the layers before it fix; a copy whose output projection skips those heads and adds
    W_o,h · mean_h to its bias says the same. On the bundled model: a random one's heads attend almost
    evenly, so their mean is almost what they say anyway."""
    kind = "bundled"
    loaded, an = loaded_models[kind], analyses[kind]
    layer, heads, d = 1, (0, 2), loaded.hidden_size // loaded.heads
    out = loaded.block_parts(layer).out
    got = {}
    hook = out.register_forward_pre_hook(lambda mod, args: got.__setitem__("heads", args[0][0]))
    try:
        plain_logits(loaded, an)
    finally:
        hook.remove()
    model = zeroed_copy(loaded, [(layer, h) for h in heads])
    copied = dict(model.named_modules())[module_name(loaded, out)]
    with torch.no_grad():
        for h in heads:
            cut = slice(h * d, (h + 1) * d)
            copied.bias += out.weight[:, cut] @ got["heads"][:, cut].mean(0)
    result = knockout.knock_out(loaded, an, [(layer, h) for h in heads], "mean")
    assert np.allclose(result.logits, copy_logits(loaded, model, an), atol=1e-5), kind
    assert not np.allclose(result.logits, result.base_logits, atol=1e-4), kind


def test_no_hook_is_left_after_an_exception(loaded_models, analyses):
    loaded, an = loaded_models["vit"], analyses["vit"]
    off = knockout.head_mask([(0, 0), (1, 3)], loaded.layers, loaded.heads)
    own = hook_count(loaded.model)                   # transformers' own (its output recorders)
    with pytest.raises(RuntimeError, match="inside"):
        with knockout.heads_off(loaded, off, "mean"):
            assert hook_count(loaded.model) == own + 2
            raise RuntimeError("inside")
    with pytest.raises(RuntimeError, match="inside"):
        with attr_mod.block_outputs(loaded):
            assert hook_count(loaded.model) == own + 3 * loaded.layers
            raise RuntimeError("inside")
    assert hook_count(loaded.model) == own
    assert np.allclose(knockout.knock_out(loaded, an, [], "zero").logits, plain_logits(loaded, an).numpy(), atol=1e-6)


def test_a_head_outside_the_model_is_refused(loaded_models):
    with pytest.raises(ValueError, match="no head 4 in layer 0"):
        knockout.head_mask([(0, 4)], 2, 4)


def test_the_greedy_set_changes_the_top1_and_one_fewer_does_not(loaded_models, analyses):
    loaded, an = loaded_models["bundled"], analyses["bundled"]
    top1 = an.top(1)[0][0]
    order = attr_mod.attribution(loaded, an, top1).order()
    search = knockout.fewest_heads(loaded, an, order, bound=len(order), batch=3)
    assert search.top1 == top1 and search.found is not None and search.heads == tuple(order[:search.found])
    off = knockout.knock_out(loaded, an, search.heads, "zero")
    assert off.top(1)[0] == search.new_top1 != top1
    if search.found > 1:
        assert knockout.knock_out(loaded, an, search.heads[:-1], "zero").top(1)[0] == top1


# ---------------------------------------------------------------- the view's model work

@pytest.fixture(scope="module")
def public_opened(tiny_vit_dir):
    ctx = app_context(tiny_vit_dir, public=True)
    loaded = ctx.model(ctx.start.name)
    return ctx, ctx.keep(loaded, analyze(loaded, structured_photo()))


def test_a_public_server_bounds_the_heads_switched_off(public_opened, monkeypatch):
    from vitviz.service import heads as work

    ctx, opened = public_opened
    monkeypatch.setattr(work, "MAX_OFF_PUBLIC", 3)            # the tiny model has 8 heads, fewer than the bound
    three = [(0, 0), (0, 1), (1, 3)]
    assert work.knock_out(ctx, opened, three + [(0, 0)], "zero", 0).heads == tuple(three)   # a repeat counts once
    with pytest.raises(RequestRefused) as refused:
        work.knock_out(ctx, opened, three + [(1, 0)], "mean", 0)
    assert refused.value.key == "err_heads_off" and refused.value.fields == {"count": 4, "limit": 3}
    assert work.search_bound(ctx, opened) == 3
    search = work.fewest_heads(ctx, opened)
    assert search.bound == 3 and len(search.heads) <= 3


# ---------------------------------------------------------------- the command

def test_the_command_writes_a_csv_whose_parts_sum_to_its_logit(tiny_deit_dir, tmp_path):
    path = tmp_path / "photo.png"
    structured_photo().save(path)
    assert heads_command([str(path), "--model", tiny_deit_dir, "--class", "dog", "--out", str(tmp_path / "out")]) == 0
    with open(tmp_path / "out" / "attribution.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    kinds = [r["component"] for r in rows]
    assert kinds.count("head") == 2 * 4 and kinds.count("mlp") == 2 and kinds[-1] == "logit"
    assert {"embeddings", "bias"} <= set(kinds)
    parts = sum(float(r["contribution"]) for r in rows if r["component"] != "logit")
    assert math.isclose(parts, float(rows[-1]["contribution"]), rel_tol=1e-4, abs_tol=1e-3)
    loaded = models.load(tiny_deit_dir, "cpu", "float32")
    assert math.isclose(float(rows[-1]["contribution"]), float(plain_logits(loaded, analyze(loaded, path))[1]),
                        abs_tol=1e-5)                                # "dog" is class 1 of the tiny models
    assert Image.open(tmp_path / "out" / "grid.png").size[0] >= pictures.MIN_WIDTH
    assert heads_command([str(path), "--model", tiny_deit_dir, "--class", "99", "--out", str(tmp_path)]) == 2


def test_the_command_splits_clips_score_of_a_typed_label(folders, tmp_path):
    path = tmp_path / "photo.png"
    structured_photo().save(path)
    clip, out = folders["clip"], str(tmp_path / "out")
    assert heads_command([str(path), "--model", clip, "--out", out]) == 2                  # no labels: said, not run
    assert heads_command([str(path), "--model", clip, "--labels", "cat, dog, car", "--class", "car", "--out", out]) == 0
    with open(tmp_path / "out" / "attribution.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    parts = sum(float(r["contribution"]) for r in rows if r["component"] != "logit")
    assert math.isclose(parts, float(rows[-1]["contribution"]), rel_tol=1e-4, abs_tol=1e-3)
    assert heads_command([str(path), "--model", folders["siglip"], "--labels", "cat, dog", "--out", out]) == 2


def test_a_click_on_the_grid_finds_its_cell():
    lay = pictures.grid_layout(12, 12)
    for layer in range(12):
        for head in range(12):
            x0, y0, x1, y1 = lay.head_box(layer, head)
            assert lay.head_at((x0 + x1) / 2, (y0 + y1) / 2) == (layer, head)
    mlp = lay.mlp_box(0)
    assert lay.head_at(mlp[0] + 1, mlp[1] + 1) is None and lay.head_at(0, 0) is None


# ---------------------------------------------------------------- the view

def cell_centre(loaded, layer: int, head: int):
    import gradio as gr

    from ui.view import BADGE_BAND

    x0, y0, x1, y1 = pictures.grid_layout(loaded.layers, loaded.heads).head_box(layer, head)
    return gr.SelectData(None, {"index": [(x0 + x1) // 2, (y0 + y1) // 2 + BADGE_BAND], "value": None,
                                "selected": True})


def test_the_view_draws_the_grid_at_once_and_two_clicks_switch_two_heads_off(tiny_vit_dir):
    from ui import heads as view

    ctx = app_context(tiny_vit_dir)
    loaded = ctx.model(ctx.start.name)
    opened = ctx.keep(loaded, analyze(loaded, structured_photo()))
    first = view.render(ctx, opened, "en")
    assert first["grid"].ndim == 3 and first["source"].ndim == 3 and first["rollout"] is None
    assert "Switch them off" in first["result"]                       # the hint: nothing switched off yet
    controls = dict(target=first["target"]["value"], shown=first["shown"]["value"], off=[], mode="zero",
                    click="toggle")
    once = view.pick(ctx, opened, "en", cell_centre(loaded, 0, 1), **controls)
    assert once["off"]["value"] == ["0.1"] and "→" in once["result"]          # the logit before → after
    twice = view.pick(ctx, opened, "ko", cell_centre(loaded, 1, 2), **{**controls, "off": once["off"]["value"]})
    assert twice["off"]["value"] == ["0.1", "1.2"] and "→" in twice["result"] and "2" in twice["result"]
    assert twice["rollout"].ndim == 3
    again = view.pick(ctx, opened, "en", cell_centre(loaded, 0, 1), **{**controls, "off": twice["off"]["value"]})
    assert again["off"]["value"] == ["1.2"]                           # a second click switches it back on
    shown = view.pick(ctx, opened, "en", cell_centre(loaded, 1, 3), **{**controls, "click": "show"})
    assert shown["shown"]["value"] == "1.3" and "Layer 1, head 3" in shown["caption"]


def test_the_view_says_why_a_pooling_head_has_no_split(folders):
    from ui import heads as view

    ctx = app_context(folders["siglip"])
    loaded = ctx.model(ctx.start.name).with_labels(("cat", "dog", "car"))
    opened = ctx.keep(loaded, analyze(loaded, structured_photo()))
    out = view.render(ctx, opened, "en", action="search")
    assert out["grid"] is None and "attention-pooling head" in out["note"]
    assert "cannot give" in out["result"]
    off = view.render(ctx, opened, "en", off=["0.0", "1.1"], action="knockout")
    assert "→" in off["result"] and off["rollout"].ndim == 3
