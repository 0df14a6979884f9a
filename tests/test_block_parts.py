"""What reads a model's heads one by one asks its adapter where they are (Family.block_parts) and how its
head reads the residual stream with the norms frozen (Family.frozen_readout). Checked on every family
with a classifier or typed labels: each block's output is rebuilt from the parts (the heads' values
weighted by their attention, the output projection, the MLP, the layer scales), and the frozen read-out
is affine and equals the model's scores on its own last layer."""

from __future__ import annotations

import pytest
import torch

from vitviz import models
from vitviz.analysis import forward

from .conftest import LABELS, save_tiny
from .tiny_families import save_dinov2, save_zero_shot


def tiny(kind: str, folder) -> str:
    from transformers import BeitConfig, BeitForImageClassification, DeiTConfig, DeiTForImageClassificationWithTeacher

    labels = {"num_labels": len(LABELS), "id2label": dict(enumerate(LABELS)),
              "label2id": {n: i for i, n in enumerate(LABELS)}}
    size = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64)
    if kind == "vit":
        return save_tiny(folder)
    if kind == "deit":
        return save_tiny(folder, DeiTForImageClassificationWithTeacher, DeiTConfig(**size, **labels))
    if kind == "beit":         # layer scale on both branches, mean-pooled patches read by its own norm
        return save_tiny(folder, BeitForImageClassification,
                         BeitConfig(**size, **labels, use_mean_pooling=True, layer_scale_init_value=0.3))
    if kind == "dinov2_reg":
        return save_dinov2(folder, registers=4, classifier=True)
    return save_zero_shot(folder, kind)


KINDS = ["vit", "deit", "beit", "dinov2_reg", "clip", "siglip"]


@pytest.fixture(scope="module")
def loaded_models(tmp_path_factory):
    out = {}
    for kind in KINDS:
        m = models.load(tiny(kind, tmp_path_factory.mktemp(kind)), "cpu", "float32")
        out[kind] = m.with_labels(("cat", "dog", "car")) if m.typed_labels else m
    return out


def run_with_parts(loaded, x):
    """The forward's hidden states and attentions, and per block what the parts saw: the values (B, N, H·d),
    the output projection's input and output and the MLP's output."""
    seen, hooks = [], []
    for i in range(loaded.layers):
        parts, got = loaded.block_parts(i), {}
        seen.append((parts, got))
        hooks.append(parts.value.module.register_forward_hook(
            lambda mod, inp, out, got=got, parts=parts: got.__setitem__("v", parts.value.of(out))))
        hooks.append(parts.out.register_forward_hook(
            lambda mod, inp, out, got=got: got.update(heads=inp[0], attn=out)))
        hooks.append(parts.mlp.register_forward_hook(lambda mod, inp, out, got=got: got.__setitem__("mlp", out)))
    try:
        with torch.no_grad():
            out = forward(loaded, x, output_hidden_states=True)
    finally:
        for h in hooks:
            h.remove()
    return out, seen


@pytest.mark.parametrize("kind", KINDS)
def test_each_block_is_its_heads_and_its_mlp(loaded_models, kind):
    loaded = loaded_models[kind]
    x = torch.randn(2, 3, *loaded.input_size, generator=torch.Generator().manual_seed(0))
    out, seen = run_with_parts(loaded, x)
    h, d = loaded.heads, loaded.hidden_size // loaded.heads
    for i, (parts, got) in enumerate(seen):
        v = got["v"].reshape(*got["v"].shape[:2], h, d).transpose(1, 2)                   # (B, H, N, d)
        heads = (out.attentions[i] @ v).transpose(1, 2).flatten(2)                      # (B, N, H·d)
        assert torch.allclose(heads, got["heads"], atol=1e-5), kind                     # the heads, side by side
        one = lambda t, s: t if s is None else t * s                                    # noqa: E731
        rebuilt = out.hidden_states[i] + one(got["attn"], parts.attention_scale) + one(got["mlp"], parts.mlp_scale)
        assert torch.allclose(rebuilt, out.hidden_states[i + 1], atol=1e-5), kind       # x + s1·attn + s2·mlp


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "siglip"])
def test_the_frozen_readout_is_affine_and_the_models_own_scores(loaded_models, kind):
    loaded = loaded_models[kind]
    x = torch.randn(1, 3, *loaded.input_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = forward(loaded, x, output_hidden_states=True)
        last = out.hidden_states[-1]
        read = loaded.frozen_readout(last)
        assert torch.allclose(read(last), out.logits, atol=1e-5)
        g = torch.Generator().manual_seed(2)
        a, b = torch.randn(last.shape, generator=g), torch.randn(last.shape, generator=g)
        zero = read(torch.zeros_like(last))
        assert torch.allclose(read(a + b) - zero, (read(a) - zero) + (read(b) - zero), atol=1e-4)


def test_an_attention_pooling_head_is_not_affine(loaded_models):
    """SigLIP's probe (a softmax over the tokens, then an MLP) stays non-linear with its norms frozen: no
    frozen read-out, so nothing claims an exact split of its scores."""
    loaded = loaded_models["siglip"]
    with torch.no_grad():
        last = forward(loaded, torch.zeros(1, 3, *loaded.input_size), output_hidden_states=True).hidden_states[-1]
    assert loaded.frozen_readout(last) is None
