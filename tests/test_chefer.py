"""Chefer et al. ICCV 2021 ("generic attention-model explainability"), checked against the authors'
procedure written out here (hila-chefer/Transformer-MM-Explainability, the ViT notebook's
``generate_relevance``: hooks keep every block's attention and its gradient of the class score; per
block ``cam = (grad * cam).clamp(min=0).mean(heads)`` (rule 5) and ``R += cam @ R`` (rule 6) from
R = I; the map is R's [CLS] row over the patches). Only transformers and torch are used to compute it:
none of vitviz's code."""

from __future__ import annotations

import pytest
import torch

from vitviz import methods, models
from vitviz.analysis import analyze


def reference_relevance(model, pixel_values: torch.Tensor, target: int, prefix: int) -> torch.Tensor:
    """The authors' generate_relevance on a transformers model: (N - prefix,) for one image."""
    out = model(pixel_values=pixel_values, output_attentions=True)
    for att in out.attentions:                       # what the authors' hook (register_hook) keeps
        att.retain_grad()
    one_hot = torch.zeros_like(out.logits)
    one_hot[0, target] = 1
    model.zero_grad()
    torch.sum(one_hot * out.logits).backward(retain_graph=True)
    n = out.attentions[0].shape[-1]
    r = torch.eye(n)
    for att in out.attentions:
        cam, grad = att.detach()[0], att.grad[0]
        cam = (grad * cam).clamp(min=0).mean(dim=0)          # rule 5: gradient-weighted heads, positive part
        r = r + torch.matmul(cam, r)                          # rule 6: the self-attention update
    return r[0, prefix:]


@pytest.mark.parametrize("which", ["tiny_vit_dir", "tiny_deit_dir"])
def test_the_chefer_map_equals_the_authors_procedure(which, request, photo):
    folder = request.getfixturevalue(which)
    loaded = models.load(folder, "cpu", "float32")
    an = analyze(loaded, photo)
    reference_model = type(loaded.model).from_pretrained(folder, attn_implementation="eager").eval()
    for target in range(3):
        ours = methods.class_maps(loaded, an, target, ("chefer",))["chefer"]
        theirs = reference_relevance(reference_model, an.pixel_values[None], target, loaded.prefix)
        assert torch.allclose(ours.flatten(), theirs, atol=1e-6), (target, (ours.flatten() - theirs).abs().max())


def test_the_reference_check_tells_another_rule_apart(tiny_loaded, tiny_vit_dir, photo):
    """Rollout of the same gradient-weighted attentions (no identity kept, rows renormalised) is a
    different map: the comparison above can fail."""
    an = analyze(tiny_loaded, photo)
    reference_model = type(tiny_loaded.model).from_pretrained(tiny_vit_dir, attn_implementation="eager").eval()
    other = methods.class_maps(tiny_loaded, an, 1, ("grad_rollout",))["grad_rollout"]
    theirs = reference_relevance(reference_model, an.pixel_values[None], 1, tiny_loaded.prefix)
    assert not torch.allclose(other.flatten(), theirs, atol=1e-6)
