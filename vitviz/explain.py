"""Class-specific maps (one extra forward + backward) and faithfulness by perturbation.

Gradients of the class score with respect to the attention probabilities come from
``torch.autograd.grad`` on the attentions of a fresh forward pass: no hooks are
registered, so nothing can leak from one request into the next (popular
implementations keep hooks and stale ``.grad`` buffers between calls).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import attention as A
from .analysis import Analysis, forward

CLASS_METHODS = ("chefer", "grad_rollout")
FRACTIONS = np.round(np.linspace(0.0, 0.9, 10), 2)   # share of pixels removed: 0%, 10%, ..., 90%


def attention_gradients(loaded, an: Analysis, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(attentions, ∂logit_target/∂attentions), both (L, H, N, N) float32, from one forward + backward."""
    if not loaded.has_classifier:
        raise ValueError(f"{loaded.name} has no classifier: class-specific maps need class scores")
    x = an.pixel_values[None].clone().requires_grad_(True)   # makes the graph without weight gradients
    with torch.enable_grad():
        out = forward(loaded, x)
        n_classes = out.logits.shape[-1]
        if not 0 <= target < n_classes:
            raise ValueError(f"target class must be in [0, {n_classes}), got {target}")
        grads = torch.autograd.grad(out.logits[0, target], out.attentions)
    att = torch.stack([a[0] for a in out.attentions]).detach().float().cpu()
    return att, torch.stack([g[0] for g in grads]).float().cpu()


def class_maps(loaded, an: Analysis, target: int) -> dict[str, torch.Tensor]:
    """Both class-specific maps for `target` from one forward + backward: method -> (gh, gw)."""
    att, grads = attention_gradients(loaded, an, target)
    return {
        "chefer": A.token_map(A.chefer_relevance(att, grads)[0], an.prefix, an.grid),
        "grad_rollout": A.token_map(A.grad_rollout_matrix(att, grads, keep=max(an.prefix, 1))[0], an.prefix, an.grid),
    }


def class_map(loaded, an: Analysis, target: int, method: str = "chefer") -> torch.Tensor:
    """Relevance of each patch for class `target`: (gh, gw), not normalised."""
    if method not in CLASS_METHODS:
        raise ValueError(f"method must be one of {CLASS_METHODS}, got {method!r}")
    return class_maps(loaded, an, target)[method]


def predict_probs(loaded, batch: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Softmax probabilities (B, K) for a batch of model inputs, without attentions."""
    outs = []
    with torch.inference_mode():
        for i in range(0, len(batch), chunk):
            outs.append(forward(loaded, batch[i:i + chunk], output_attentions=False).logits.float().softmax(-1).cpu())
    return torch.cat(outs)


def perturbed_inputs(pixel_values: torch.Tensor, relevance, fractions=FRACTIONS, fill=0.0) -> torch.Tensor:
    """Chefer et al. CVPR 2021 protocol on one input (3, H, W): for each fraction, remove that share
    of pixels (set them to `fill`: 0 is the data mean in normalised space, as in the paper; a
    (3,) tensor gives a colour per channel), most relevant first (positive) and least relevant
    first (negative). Returns (2·F, 3, H, W): positive steps, then negative steps. Ties in the
    relevance keep a fixed order."""
    c, h, w = pixel_values.shape
    rel = torch.as_tensor(np.asarray(relevance, dtype=np.float32))[None, None]
    rel = F.interpolate(rel, size=(h, w), mode="bilinear", align_corners=False).flatten()
    rank = torch.empty(h * w, dtype=torch.long)
    rank[torch.argsort(rel, descending=True, stable=True)] = torch.arange(h * w)   # 0 = most relevant
    counts = torch.as_tensor(np.round(np.asarray(fractions, dtype=np.float64) * h * w).astype(np.int64))
    most_first = rank[None] < counts[:, None]                                     # (F, H·W)
    least_first = (h * w - 1 - rank)[None] < counts[:, None]
    removed = torch.cat([most_first, least_first]).reshape(-1, 1, h, w)
    fill = torch.as_tensor(fill, dtype=pixel_values.dtype).reshape(-1, 1, 1).expand(c, h, w)
    return torch.where(removed, fill, pixel_values)


def auc(values, fractions=FRACTIONS) -> float:
    """Area under a curve over the removed fractions, normalised by the x-range: the curve's mean level."""
    values, fractions = np.asarray(values, dtype=np.float64), np.asarray(fractions, dtype=np.float64)
    return float(np.trapezoid(values, fractions) / (fractions[-1] - fractions[0]))


FILLS = ("mean", "black")   # what removed pixels become: the data mean (Chefer et al.) or black


def fill_value(loaded, fill: str):
    """The normalised value removed pixels get: 0 is the data mean; black is Fashion-MNIST's
    background, i.e. "nothing there" for a model trained on it. Returns 0.0 or a (3,) tensor."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    if fill == "mean":
        return 0.0
    mean, std = torch.tensor(loaded.spec.mean), torch.tensor(loaded.spec.std)
    return (0.0 - mean) / std


def faithfulness(loaded, an: Analysis, maps: dict[str, np.ndarray], target: int | None = None, fill: str = "mean"):
    """Deletion (positive) and insertion-style negative perturbation curves for several maps on one image.

    Returns {name: {"positive": probs (F,), "negative": probs (F,), "auc_pos": float, "auc_neg": float}};
    probabilities of the target class (default: the predicted one). Lower positive AUC and higher
    negative AUC mean a more faithful map. All maps go through the model in one batched pass.
    """
    target = int(np.argmax(an.probs)) if target is None else target
    names = list(maps)
    value = fill_value(loaded, fill)
    batch = torch.cat([perturbed_inputs(an.pixel_values, maps[n], fill=value) for n in names])
    probs = predict_probs(loaded, batch)[:, target].numpy().reshape(len(names), 2, len(FRACTIONS))
    return {n: {"positive": probs[i, 0], "negative": probs[i, 1], "auc_pos": auc(probs[i, 0]),
                "auc_neg": auc(probs[i, 1])} for i, n in enumerate(names)}


def random_map(grid: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(grid).astype(np.float32)


def embedding_filters(model, k: int = 28) -> np.ndarray:
    """ViT paper Fig. 7 (left): the leading principal components of the patch projection,
    each drawn as a P×P RGB patch. Returns (k, P, P, C) in [0, 1]."""
    if hasattr(model, "patch_embed"):                       # ScratchViT: Linear over (C, P, P) pixels
        cfg = model.config
        w = model.patch_embed.proj.weight.reshape(cfg.hidden_size, cfg.num_channels, cfg.patch_size, cfg.patch_size)
    else:
        w = model.base_model.embeddings.patch_embeddings.projection.weight  # Conv2d (D, C, P, P)
    d, c, p, q = w.shape
    flat = w.detach().float().reshape(d, -1)
    flat = flat - flat.mean(0, keepdim=True)
    _, _, vt = torch.linalg.svd(flat, full_matrices=False)
    comps = vt[:k].reshape(-1, c, p, q)
    lo = comps.amin((1, 2, 3), keepdim=True)
    hi = comps.amax((1, 2, 3), keepdim=True)
    return ((comps - lo) / (hi - lo).clamp_min(1e-12)).permute(0, 2, 3, 1).numpy()
