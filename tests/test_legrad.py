"""LeGrad against its reference, WalBouss/LeGrad (legrad/wrapper.py, legrad/utils.py), reimplemented here.

Each model's encoder is written out block by block from its weights (checked against transformers' own
forward), and the reference's procedure is followed line by line on it:

- compute_legrad_clip (OpenCLIP ViTs): for the last two blocks (LeWrapper's layer_index=-2), the mean
  of ALL the block's output tokens through ln_post and the projection, normalised, dotted with the
  prompt's text embedding; its gradient with respect to that block's attention probabilities, clamped
  at 0, averaged over the heads and then over the query rows, the patch columns [1:]; each layer's
  map enlarged bilinearly by the patch size, the layers summed, min-max.
- compute_legrad_siglip (timm SigLIP): for the last two blocks, the attention pooler
  (hooked_attentional_pooler_timm_forward) on the block's output, normalised, dotted with the text
  embedding; the gradient with respect to the POOLER's attention probabilities, clamped, averaged over
  the heads, the first latent's row; the same for the prompt "a photo of a"; summed over the layers;
  where the empty prompt's map, min-max normalised, exceeds 0.8 the map is set to 0; min-max; enlarged.
- A classifier, which the reference does not wrap, is read as its CLIP branch reads a [CLS] ViT
  (vitviz.methods.legrad's module docstring says why): the token mean through the final norm and the
  classifier head.

vitviz returns maps on the patch grid; the reference's pixel maps are compared with vitviz's maps
enlarged the same way (min-max after enlarging: an affine change, see the module's docstring). Each
comparison also checks that the old convention (every block, the head's own read-out) gives a
different map, so the test fails if vitviz's default goes back to it.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vitviz import methods, models
from vitviz.analysis import analyze
from vitviz.core import i18n
from vitviz.methods import legrad as L

from . import tiny_families
from .conftest import LABELS, save_tiny

LAYERS = 3          # more blocks than the reference's two, so that "the last two" and "every block" differ
TINY = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=4,
            intermediate_size=64, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
            label2id={n: i for i, n in enumerate(LABELS)})


# ---------------------------------------------------------------- the encoder, written out

def block_forward(h: torch.Tensor, parts, heads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pre-norm block (the reference's hooked resblock: x + attn(ln_1(x)), then x + mlp(ln_2(x))):
    (1, N, D) -> (output (1, N, D), attention probabilities (1, H, N, N))."""
    ln1, q_proj, k_proj, v_proj, o_proj, ln2, mlp = parts
    n, d = h.shape[1], h.shape[2]
    y = ln1(h)
    q, k, v = (p(y).reshape(1, n, heads, d // heads).transpose(1, 2) for p in (q_proj, k_proj, v_proj))
    a = (q * (d // heads) ** -0.5 @ k.transpose(-1, -2)).softmax(-1)
    h = h + o_proj((a @ v).transpose(1, 2).reshape(1, n, d))
    return h + mlp(ln2(h)), a


def encoder_forward(h: torch.Tensor, blocks, parts_of, heads: int) -> tuple[list, list]:
    """Every block's output (1, N, D) and attention (1, H, N, N), first to last."""
    outputs, attentions = [], []
    for block in blocks:
        h, a = block_forward(h, parts_of(block), heads)
        outputs.append(h)
        attentions.append(a)
    return outputs, attentions


def clip_parts(b):
    return (b.layer_norm1, b.self_attn.q_proj, b.self_attn.k_proj, b.self_attn.v_proj, b.self_attn.out_proj,
            b.layer_norm2, b.mlp)


def vit_parts(b):
    return (b.layernorm_before, b.attention.q_proj, b.attention.k_proj, b.attention.v_proj, b.attention.o_proj,
            b.layernorm_after, b.mlp)


# ---------------------------------------------------------------- the reference's pieces

def min_max(m: torch.Tensor) -> torch.Tensor:
    """legrad/utils.py min_max, one map."""
    return (m - m.min()) / (m.max() - m.min())


def enlarge(m: torch.Tensor, patch: int) -> torch.Tensor:
    """(gh, gw) -> (gh·P, gw·P), bilinear as the reference enlarges (scale_factor=patch_size)."""
    return F.interpolate(m[None, None].float(), scale_factor=patch, mode="bilinear")[0, 0]


def positive_grad(score: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(score, [attention], retain_graph=True)[0].clamp(min=0.)


def encoder_relevance(score, attention, prefix: int, side: int, patch: int) -> torch.Tensor:
    """compute_legrad_clip's one layer: heads, then query rows; patch columns; enlarged. (1, 1, H, W)."""
    relevance = positive_grad(score, attention).mean(dim=1).mean(dim=1)[:, prefix:]
    return F.interpolate(relevance.reshape(1, 1, side, side), scale_factor=patch, mode="bilinear")


def text_embedding(full, tokenizer, prompt: str, siglip: bool) -> torch.Tensor:
    """The prompt's unit text embedding (1, E): SigLIP pads to the full length, CLIP projects its pooled token."""
    kw = dict(padding="max_length", max_length=full.config.text_config.max_position_embeddings) if siglip else {}
    tok = tokenizer([prompt], return_tensors="pt", **kw)
    pooled = full.text_model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).pooler_output
    return F.normalize(pooled if siglip else full.text_projection(pooled), dim=-1)


def attentional_pooler(head, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """hooked_attentional_pooler_timm_forward on transformers' copy of the pooler (timm's q and kv are the
    MultiheadAttention's in_proj thirds): (1, N, D) -> (pooled (1, D), attn_probs (1, H, 1, N))."""
    mha = head.attention
    b, n, c = x.shape
    heads = mha.num_heads
    w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
    b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
    q = F.linear(head.probe, w_q, b_q).reshape(b, 1, heads, c // heads).transpose(1, 2)
    k = F.linear(x, w_k, b_k).reshape(b, n, heads, c // heads).transpose(1, 2)
    v = F.linear(x, w_v, b_v).reshape(b, n, heads, c // heads).transpose(1, 2)
    attn = (q * (c // heads) ** -0.5 @ k.transpose(-2, -1)).softmax(dim=-1)
    x = mha.out_proj((attn @ v).transpose(1, 2).reshape(b, 1, c))
    x = x + head.mlp(head.layernorm(x))
    return x[:, 0], attn


# ---------------------------------------------------------------- the reference, per model kind

def reference_clip(full, tokenizer, x, prompt: str, layers: int = 2, read: str = "mean") -> torch.Tensor:
    """compute_legrad_clip on a transformers CLIP: (H, W) in [0, 1]. read="cls": [CLS] instead of the token
    mean (vitviz's old read-out, for the check that the test tells them apart)."""
    vision = full.vision_model
    heads = full.config.vision_config.num_attention_heads
    outputs, attentions = encoder_forward(vision.pre_layrnorm(vision.embeddings(x)), vision.encoder.layers,
                                          clip_parts, heads)
    assert torch.allclose(outputs[-1], vision(pixel_values=x).last_hidden_state, atol=1e-5)
    text = text_embedding(full, tokenizer, prompt, siglip=False)
    side, patch = math.isqrt(outputs[-1].shape[1] - 1), full.config.vision_config.patch_size
    total = 0
    for out, att in zip(outputs[-layers:], attentions[-layers:]):
        token = out.mean(dim=1) if read == "mean" else out[:, 0]
        feature = F.normalize(full.visual_projection(vision.post_layernorm(token)), dim=-1)
        total = total + encoder_relevance((text @ feature.T).sum(), att, 1, side, patch)
    return min_max(total)[0, 0]


def reference_siglip(full, tokenizer, x, prompt: str, layers: int = 2, correction: bool = True,
                     threshold: float = 0.8) -> torch.Tensor:
    """compute_legrad_siglip on a transformers SigLIP: (H, W) in [0, 1]."""
    vision = full.vision_model
    heads = full.config.vision_config.num_attention_heads
    outputs, _ = encoder_forward(vision.embeddings(x), vision.encoder.layers, clip_parts, heads)
    assert torch.allclose(vision.head(vision.post_layernorm(outputs[-1])),
                          vision(pixel_values=x).pooler_output, atol=1e-5)
    assert torch.allclose(attentional_pooler(vision.head, outputs[-1])[0], vision.head(outputs[-1]), atol=1e-5)
    text = text_embedding(full, tokenizer, prompt, siglip=True)
    empty = text_embedding(full, tokenizer, "a photo of a", siglip=True)
    side, patch = math.isqrt(outputs[-1].shape[1]), full.config.vision_config.patch_size
    total = total_empty = 0
    for out in outputs[-layers:]:
        pooled, probs = attentional_pooler(vision.head, out)
        pooled = F.normalize(pooled, dim=-1)
        total = total + positive_grad((text @ pooled.T).sum(), probs).mean(dim=1)[:, 0].reshape(1, 1, side, side)
        if correction:
            grad = positive_grad((pooled @ empty.T).sum(), probs)
            total_empty = total_empty + grad.mean(dim=1)[:, 0].reshape(1, 1, side, side)
    if correction:
        total[min_max(total_empty) > threshold] = 0
    return F.interpolate(min_max(total), scale_factor=patch, mode="bilinear")[0, 0]


HEADS = {"vit": lambda model, f: model.classifier(f),
         "deit": lambda model, f: (model.cls_classifier(f) + model.distillation_classifier(f)) / 2}


def reference_classifier(model, kind: str, x, target: int, prefix: int, layers: int = 2, read: str = "mean"
                         ) -> torch.Tensor:
    """The reference's CLIP branch with the classifier's final norm and head in place of ln_post, proj and
    the prompt: (H, W) in [0, 1]. read="head": the head's own read-out ([CLS]; DeiT's [CLS] and [DIST])."""
    base, head = model.base_model, HEADS[kind]
    heads = model.config.num_attention_heads
    outputs, attentions = encoder_forward(base.embeddings(x), base.layers, vit_parts, heads)
    assert torch.allclose(base.layernorm(outputs[-1]), base(pixel_values=x).last_hidden_state, atol=1e-5)
    side, patch = math.isqrt(outputs[-1].shape[1] - prefix), model.config.patch_size
    total = 0
    for out, att in zip(outputs[-layers:], attentions[-layers:]):
        normed = base.layernorm(out)
        if read == "mean":
            score = head(model, base.layernorm(out.mean(dim=1)))
        elif kind == "deit":
            score = (model.cls_classifier(normed[:, 0]) + model.distillation_classifier(normed[:, 1])) / 2
        else:
            score = model.classifier(normed[:, 0])
        total = total + encoder_relevance(score[0, target], att, prefix, side, patch)
    return min_max(total)[0, 0]


# ---------------------------------------------------------------- models

@pytest.fixture(scope="module")
def zero_shot(tmp_path_factory):
    """Tiny CLIP and SigLIP of LAYERS blocks (tests/tiny_families.py with a deeper encoder)."""
    out = {}
    for kind in ("clip", "siglip"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setitem(tiny_families.SIZE, "num_hidden_layers", LAYERS)
            out[kind] = tiny_families.save_zero_shot(tmp_path_factory.mktemp(kind), kind)
    return out


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """A tiny ViT ([CLS]) and a distilled DeiT ([CLS] + [DIST]) of LAYERS blocks."""
    from transformers import DeiTConfig, DeiTForImageClassificationWithTeacher, ViTConfig

    def distinct(model):          # random init leaves the prefix tokens and positions near zero
        emb = model.base_model.embeddings
        for p in (emb.cls_token, getattr(emb, "distillation_token", None), emb.position_embeddings):
            if p is not None:
                p.normal_(0, 0.5)

    return {"vit": save_tiny(tmp_path_factory.mktemp("vit"), config=ViTConfig(**TINY), init=distinct),
            "deit": save_tiny(tmp_path_factory.mktemp("deit"), DeiTForImageClassificationWithTeacher,
                              DeiTConfig(**TINY), init=distinct)}


def maps_of(loaded, an, target: int) -> dict[str, torch.Tensor]:
    return methods.class_maps(loaded, an, target, ("legrad", "legrad_all"))


def differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a - b).abs().max().item() > 1e-2


# ---------------------------------------------------------------- the tests

def test_clip_legrad_is_the_references(zero_shot, photo):
    import transformers

    loaded = models.load(zero_shot["clip"], "cpu", "float32").with_labels(("cat", "dog"))
    an = analyze(loaded, photo)
    full = transformers.AutoModel.from_pretrained(zero_shot["clip"], attn_implementation="eager").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(zero_shot["clip"])
    x = an.pixel_values[None]
    with torch.enable_grad():
        ours = min_max(enlarge(maps_of(loaded, an, 0)["legrad"], 8))
        reference = reference_clip(full, tokenizer, x, "a photo of a cat")
        assert torch.allclose(ours, reference, atol=1e-5)
        assert differs(reference, reference_clip(full, tokenizer, x, "a photo of a cat", layers=LAYERS))
        assert differs(reference, reference_clip(full, tokenizer, x, "a photo of a cat", read="cls"))


def test_siglip_legrad_is_the_references_with_its_correction(zero_shot, photo):
    import transformers

    loaded = models.load(zero_shot["siglip"], "cpu", "float32").with_labels(("cat", "dog"))
    an = analyze(loaded, photo)
    full = transformers.AutoModel.from_pretrained(zero_shot["siglip"], attn_implementation="eager").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(zero_shot["siglip"])
    x = an.pixel_values[None]
    with torch.enable_grad():
        maps = maps_of(loaded, an, 1)
        reference = reference_siglip(full, tokenizer, x, "a photo of a dog")
        assert torch.allclose(enlarge(maps["legrad"], 8), reference, atol=1e-5)
        for other in (reference_siglip(full, tokenizer, x, "a photo of a dog", layers=LAYERS),
                      reference_siglip(full, tokenizer, x, "a photo of a dog", correction=False),
                      enlarge(maps["legrad_all"], 8)):
            assert differs(reference, other)


@pytest.mark.parametrize("kind", ["vit", "deit"])
def test_classifier_legrad_reads_the_token_mean_of_the_last_two_blocks(classifiers, photo, kind):
    loaded = models.load(classifiers[kind], "cpu", "float32")
    an = analyze(loaded, photo)
    target = an.top(1)[0][0]
    x = an.pixel_values[None].clone().requires_grad_(True)      # vitviz's model keeps no weight gradients
    with torch.enable_grad():
        maps = maps_of(loaded, an, target)
        reference = reference_classifier(loaded.model, kind, x, target, an.prefix)
        assert torch.allclose(min_max(enlarge(maps["legrad"], 8)), reference, atol=1e-5)
        # the old convention, every block through the head's own read-out, is the variant legrad_all
        every_block = reference_classifier(loaded.model, kind, x, target, an.prefix, LAYERS, read="head")
        assert torch.allclose(min_max(enlarge(maps["legrad_all"], 8)), every_block, atol=1e-5)
        for other in (every_block, reference_classifier(loaded.model, kind, x, target, an.prefix, LAYERS),
                      reference_classifier(loaded.model, kind, x, target, an.prefix, read="head")):
            assert differs(reference, other)
    assert torch.allclose(L.legrad(loaded, an, target), maps["legrad"], atol=1e-6)
    assert torch.allclose(L.legrad(loaded, an, target, "all_layers"), maps["legrad_all"], atol=1e-6)


def test_the_correction_zeroes_what_the_empty_prompt_points_at():
    m = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    empty = torch.tensor([[0.0, 10.0], [8.5, 9.0]])        # min-max: 0, 1, 0.85, 0.9
    assert torch.equal(L.masked_where_empty(m, empty), torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
    assert torch.equal(L.masked_where_empty(m, empty, threshold=0.95), torch.tensor([[1.0, 0.0], [3.0, 4.0]]))
    assert torch.equal(L.masked_where_empty(m, torch.zeros(2, 2)), m)    # a constant map masks nothing


def test_conventions_are_named_and_registered():
    by_convention = {m.convention.name: m for m in methods.all_methods() if m.convention in L.CONVENTIONS.values()}
    assert L.DEFAULT == "reference" and by_convention[L.DEFAULT].id == "legrad"
    assert set(by_convention) == set(L.CONVENTIONS)
    for c in L.CONVENTIONS.values():
        method = by_convention[c.name]
        assert c.reference and c.does and method.class_specific
        assert i18n.has(f"map_{method.id}", "en") and i18n.has(f"map_{method.id}", "ko")
    with pytest.raises(ValueError, match="reference"):
        L.get_convention("cls")
