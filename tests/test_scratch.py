"""The from-scratch ViT: equivalence with transformers, and one regression test per bug
in the source tutorial's code (each would fail on the tutorial's version)."""

import ast
from pathlib import Path

import pytest
import torch
from torch import nn

from vitviz import attention as A
from vitviz.scratch import Block, HybridViT, PatchEmbedding, ScratchConfig, ScratchViT, from_hf, patchify, to_hf

from .conftest import tiny_vit_config


def small_cfg(**kw):
    base = dict(image_size=(16, 24), patch_size=4, hidden_size=32, num_layers=2, num_heads=4, mlp_size=48,
                num_classes=5)
    base.update(kw)
    return ScratchConfig(**base)


@pytest.mark.parametrize("size", [32, (32, 48), (48, 16)])
def test_same_logits_and_attentions_as_transformers(size):
    from transformers import ViTForImageClassification

    torch.manual_seed(0)
    hf = ViTForImageClassification(tiny_vit_config(image_size=list(size) if isinstance(size, tuple) else size))
    hf.set_attn_implementation("eager")
    hf.eval()
    ours = from_hf(hf).eval()
    h, w = size if isinstance(size, tuple) else (size, size)
    x = torch.randn(3, 3, h, w)
    with torch.no_grad():
        theirs_out = hf(pixel_values=x, output_attentions=True)
        ours_out = ours(x, output_attentions=True)
    assert torch.allclose(ours_out.logits, theirs_out.logits, atol=1e-5)
    assert len(ours_out.attentions) == len(theirs_out.attentions) == 2
    for a, b in zip(ours_out.attentions, theirs_out.attentions):
        assert torch.allclose(a, b, atol=1e-5)


def test_weights_round_trip_to_transformers():
    torch.manual_seed(1)
    ours = ScratchViT(small_cfg()).eval()
    hf = to_hf(ours, {i: f"c{i}" for i in range(5)})
    x = torch.randn(2, 3, 16, 24)
    with torch.no_grad():
        assert torch.allclose(hf(pixel_values=x).logits, ours(x).logits, atol=1e-5)
    assert hf.config.id2label[3] == "c3"


def test_scratch_attentions_work_with_vitviz_maps():
    model = ScratchViT(small_cfg()).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 16, 24), output_attentions=True)
    att = torch.stack(out.attentions, 1)[0]               # (L, H, N, N)
    assert att.shape == (2, 4, 1 + 4 * 6, 1 + 4 * 6)
    assert torch.allclose(att.sum(-1), torch.ones(2, 4, 25), atol=1e-5)
    assert A.rollout(att, 1, (4, 6)).shape == (4, 6)


# ---- the tutorial's bugs, one test each ----

def test_tutorial_bug_missing_comment_hash_every_module_parses():
    """The tutorial's code had a Korean comment line without '#': a SyntaxError."""
    for f in Path(__file__).resolve().parent.parent.joinpath("vitviz").glob("*.py"):
        ast.parse(f.read_text(encoding="utf-8"), filename=str(f))


def test_tutorial_bug_patch_zero_is_the_top_left_block():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 3 * 4 * 4)
    assert torch.equal(p[:, 0], x[:, :, :4, :4].reshape(2, -1))


def test_tutorial_bug_view_after_unfold_every_patch_keeps_its_pixels():
    x = torch.randn(2, 3, 8, 12)
    p = patchify(x, 4)
    gw = 12 // 4
    for k in range(p.shape[1]):
        r, c = divmod(k, gw)
        assert torch.equal(p[:, k], x[:, :, 4 * r:4 * r + 4, 4 * c:4 * c + 4].reshape(2, -1))
    # the tutorial's version: unfold then view, which reinterprets memory and mixes patches
    tutorial = x.unfold(2, 4, 4).unfold(3, 4, 4).contiguous().view(2, -1, 3 * 4 * 4)
    assert not torch.equal(tutorial, p)


def test_tutorial_bug_permute_keeps_sequence_then_features():
    """The tutorial's last permute gave (B, C·P·P, N): the projection then sees the wrong width."""
    cfg = small_cfg(image_size=(8, 16), patch_size=4)        # N = 8 patches, C·P·P = 48
    tokens = PatchEmbedding(cfg)(torch.randn(2, 3, 8, 16))
    assert tokens.shape == (2, 8, cfg.hidden_size)


def test_tutorial_bug_batch_first_images_do_not_mix():
    """nn.TransformerEncoderLayer without batch_first attends across the images of a batch."""
    torch.manual_seed(0)
    model = ScratchViT(small_cfg()).eval()
    x = torch.randn(3, 3, 16, 24)
    y = x.clone()
    y[1] = torch.randn(3, 16, 24)                             # change image 2 only
    with torch.no_grad():
        a, b = model(x).logits, model(y).logits
    assert torch.allclose(a[0], b[0], atol=1e-6) and torch.allclose(a[2], b[2], atol=1e-6)
    assert not torch.allclose(a[1], b[1])
    # the tutorial's layer mixes images: show the test detects that failure mode
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0).eval()   # batch_first=False
    t = torch.randn(3, 5, 32)
    u = t.clone()
    u[1] = torch.randn(5, 32)
    with torch.no_grad():
        assert not torch.allclose(layer(t)[0], layer(u)[0])


def test_tutorial_bug_block_is_pre_norm():
    """Pre-LN keeps LayerNorm inside the residual branches: x + MSA(LN(x)), then + MLP(LN(.)).
    With both branches' output layers zeroed the block is the identity; a post-LN block
    (the tutorial's) would still normalise its output."""
    torch.manual_seed(0)
    block = Block(small_cfg()).eval()
    x = 5 * torch.randn(2, 7, 32) + 3
    with torch.no_grad():
        expected = x + block.attn(block.norm1(x))[0]
        expected = expected + block.mlp(block.norm2(expected))
        assert torch.allclose(block(x)[0], expected, atol=1e-5)
        for layer in (block.attn.out, block.mlp[-1]):
            layer.weight.zero_()
            layer.bias.zero_()
        assert torch.equal(block(x)[0], x)
    post = nn.TransformerEncoderLayer(32, 4, 48, dropout=0.0, batch_first=True, norm_first=False).eval()
    with torch.no_grad():
        for layer in (post.self_attn.out_proj, post.linear2):
            layer.weight.zero_()
            layer.bias.zero_()
        assert not torch.allclose(post(x), x, atol=1e-3)


def test_tutorial_bug_mlp_uses_gelu_not_relu():
    block = Block(small_cfg())
    acts = [m for m in block.mlp if not isinstance(m, (nn.Linear, nn.Dropout))]
    assert len(acts) == 1 and isinstance(acts[0], nn.GELU)
    assert acts[0](torch.tensor([-1.0])).item() < 0            # ReLU would give 0


def test_hybrid_reads_the_cnn_feature_map_as_one_by_one_patches():
    cfg = small_cfg(image_size=(16, 24), patch_size=4)
    model = HybridViT(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 16, 24), output_attentions=True)
    assert out.logits.shape == (2, 5)
    assert out.attentions[0].shape == (2, 4, 1 + 4 * 6, 1 + 4 * 6)
    assert model.proj.kernel_size == (1, 1)


def test_config_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="multiple of patch_size"):
        ScratchConfig(image_size=30, patch_size=4)
    with pytest.raises(ValueError, match="expected images of"):
        ScratchViT(small_cfg())(torch.randn(1, 3, 16, 16))


@pytest.mark.parametrize("size", [16, (16, 24)])
def test_distilled_vit_converts_to_transformers_deit_with_the_same_logits(size, tmp_path):
    """The [DIST] token and head map onto DeiTForImageClassificationWithTeacher: same logits both ways,
    and the saved folder loads by its config's architecture."""
    from transformers import AutoModelForImageClassification, DeiTForImageClassificationWithTeacher

    torch.manual_seed(2)
    ours = ScratchViT(small_cfg(image_size=size, distilled=True)).eval()
    hf = to_hf(ours, {i: f"c{i}" for i in range(5)})
    assert isinstance(hf, DeiTForImageClassificationWithTeacher)
    h, w = size if isinstance(size, tuple) else (size, size)
    x = torch.randn(3, 3, h, w)
    with torch.no_grad():
        mine = ours(x, output_attentions=True)
        hf.set_attn_implementation("eager")
        theirs = hf(pixel_values=x, output_attentions=True)
    assert torch.allclose(mine.logits, theirs.logits, atol=1e-5)
    assert torch.allclose(mine.cls_logits, theirs.cls_logits, atol=1e-5)
    assert torch.allclose(mine.dist_logits, theirs.distillation_logits, atol=1e-5)
    assert mine.attentions[0].shape[-1] == 2 + (h // 4) * (w // 4)     # [CLS], [DIST], patches
    hf.save_pretrained(tmp_path)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path)
    assert type(loaded).__name__ == "DeiTForImageClassificationWithTeacher"
    back = from_hf(loaded).eval()
    assert back.config.distilled
    with torch.no_grad():
        assert torch.allclose(back(x).logits, mine.logits, atol=1e-5)


def test_dist_token_starts_different_from_cls():
    model = ScratchViT(small_cfg(distilled=True))
    assert not torch.equal(model.encoder.cls_token, model.encoder.dist_token)
