"""The per-layer read-out (logit lens) and LeGrad, checked against a ViT forward written out by hand."""

import pytest
import torch

from vitviz import lens, methods, models
from vitviz.analysis import analyze
from vitviz.methods.legrad import legrad

from .conftest import save_tiny

KW = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
          intermediate_size=64, num_labels=6)


@pytest.fixture(scope="module")
def beit_dir(tmp_path_factory):
    from transformers import BeitConfig, BeitForImageClassification

    return save_tiny(tmp_path_factory.mktemp("beit"), BeitForImageClassification, BeitConfig(**KW))


@pytest.mark.parametrize("which", ["vit", "deit", "beit"])
def test_the_last_layers_read_out_is_the_models_logits(which, tiny_vit_dir, tiny_deit_dir, beit_dir, photo):
    """ViT reads [CLS]; distilled DeiT averages its [CLS] and [DIST] heads; BEiT mean-pools patches."""
    loaded = models.load({"vit": tiny_vit_dir, "deit": tiny_deit_dir, "beit": beit_dir}[which], "cpu", "float32")
    an = analyze(loaded, photo)
    per_layer = lens.layer_logits(loaded, an.pixel_values)
    assert per_layer.shape == (an.num_layers + 1, len(an.probs))
    assert torch.allclose(per_layer[-1].softmax(-1), torch.from_numpy(an.probs), atol=1e-6)


def by_hand(model, x: torch.Tensor, target: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A pre-norm ViT block by block from its weights: (logits, LeGrad maps over the patches (P,) under both
    conventions: "legrad", the token mean through the final norm and head, summed over the last two blocks
    (here: both); "legrad_all", [CLS] through them, averaged over every block)."""
    vit = model.vit
    h = vit.embeddings(x)
    heads = model.config.num_attention_heads
    n, d = h.shape[1], h.shape[2]
    attentions, outputs = [], []
    for block in vit.layers:
        y = block.layernorm_before(h)
        q, k, v = (proj(y).reshape(1, n, heads, d // heads).transpose(1, 2)
                   for proj in (block.attention.q_proj, block.attention.k_proj, block.attention.v_proj))
        a = (q @ k.transpose(-1, -2) / (d // heads) ** 0.5).softmax(-1)                 # (1, H, N, N)
        h = h + block.attention.o_proj((a @ v).transpose(1, 2).reshape(1, n, d))
        h = h + block.mlp(block.layernorm_after(h))
        attentions.append(a)
        outputs.append(h)

    def signal(score, a):
        grad = torch.autograd.grad(score, a, retain_graph=True)[0][0]                   # (H, N, N)
        return grad.clamp_min(0).mean(0).mean(0)[1:]                                      # heads, queries; patches

    read = {"legrad": lambda out: model.classifier(vit.layernorm(out.mean(1))),
            "legrad_all": lambda out: model.classifier(vit.layernorm(out)[:, 0])}
    maps = {}
    for name, reads in read.items():
        per_layer = torch.stack([signal(reads(out)[0, target], a) for a, out in zip(attentions, outputs)])
        m = per_layer.sum(0) if name == "legrad" else per_layer.mean(0)
        maps[name] = (m - m.min()) / (m.max() - m.min())
    return model.classifier(vit.layernorm(h)[:, 0]), maps


def test_legrad_matches_a_forward_written_by_hand(tiny_loaded, photo):
    an = analyze(tiny_loaded, photo)
    with torch.enable_grad():
        logits, expected = by_hand(tiny_loaded.model, an.pixel_values[None].requires_grad_(True), 2)
    assert torch.allclose(logits[0], lens.layer_logits(tiny_loaded, an.pixel_values)[-1], atol=1e-5)
    maps = methods.class_maps(tiny_loaded, an, 2, methods.class_specific())
    assert set(maps) == set(methods.class_specific()) and maps["legrad"].shape == an.grid
    for name in ("legrad", "legrad_all"):
        assert torch.allclose(maps[name].flatten(), expected[name].detach(), atol=1e-5)
    assert (expected["legrad"] - expected["legrad_all"]).abs().max() > 1e-2       # the two read-outs differ
    assert torch.allclose(legrad(tiny_loaded, an, 2), maps["legrad"])
    assert torch.allclose(legrad(tiny_loaded, an, 2, "all_layers"), maps["legrad_all"])
    assert torch.equal(methods.class_maps(tiny_loaded, an, 2, ("chefer",))["chefer"], maps["chefer"])
