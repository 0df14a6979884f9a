"""Removing pixels in the order of a map (Chefer et al. CVPR 2021): the perturbation curves and what
removed pixels become.

Pixels are removed in the order of vitviz.core.ranking, which rounds a map to 1e-5 of its range and
breaks ties by pixel index, so the removed pixels do not depend on float noise (thread count).
Most relevant first is the positive perturbation (the class should fall fast: lower AUC is better),
least relevant first the negative one (the class should hold: higher AUC is better).
"""

from __future__ import annotations

import numpy as np
import torch

from ..analysis import Analysis, forward
from ..core import ranking
from ..core.conventions import Convention
from .road import RoadFill

FRACTIONS = np.round(np.linspace(0.0, 0.9, 10), 2)   # share of pixels removed: 0%, 10%, ..., 90%
PROTOCOL = Convention("chefer2021", "Chefer, Gur & Wolf, CVPR 2021, 'Transformer Interpretability Beyond Attention "
                                    "Visualization'; hila-chefer/Transformer-Explainability, "
                                    "baselines/ViT/pertubation_eval_from_hdf5.py",
                      "Pixels ranked by the map enlarged bilinearly to the input, 0-90 % removed in 10 % steps, most "
                      "relevant first (positive) and least relevant first (negative); AUC by the trapezoid rule from "
                      "the unperturbed input. With the same order and baseline it equals quantus.PixelFlipping "
                      "(tests/test_perturb.py).")


def predict_probs(loaded, batch: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Softmax probabilities (B, K) for a batch of model inputs, without attentions."""
    outs = []
    with torch.inference_mode():
        for i in range(0, len(batch), chunk):
            outs.append(forward(loaded, batch[i:i + chunk], output_attentions=False).logits.float().softmax(-1).cpu())
    return torch.cat(outs)


def removal_masks(relevance, size: tuple[int, int], fractions=FRACTIONS) -> torch.Tensor:
    """Which pixels each step removes (Chefer et al. CVPR 2021): for each fraction, that share of the
    (H, W) pixels, most relevant first (positive), then least relevant first (negative).
    relevance (gh, gw) -> (2·F, H, W) bool. The order is vitviz.core.ranking's: noise-proof ties."""
    h, w = size
    rank = torch.empty(h * w, dtype=torch.long)
    rank[ranking.pixel_order(relevance, size)] = torch.arange(h * w)              # 0 = most relevant
    counts = torch.as_tensor(np.round(np.asarray(fractions, dtype=np.float64) * h * w).astype(np.int64))
    most_first = rank[None] < counts[:, None]                                     # (F, H·W)
    least_first = (h * w - 1 - rank)[None] < counts[:, None]
    return torch.cat([most_first, least_first]).reshape(-1, h, w)


def apply_fill(pixel_values: torch.Tensor, removed: torch.Tensor, fill=0.0) -> torch.Tensor:
    """Copies of one input (3, H, W) with the pixels of each mask (B, H, W) replaced: by a constant
    (a number, or a (3,) tensor with a colour per channel, in normalised space) or by a callable
    fill(pixel_values, removed) -> (B, 3, H, W) such as road.RoadFill. Returns (B, 3, H, W)."""
    if callable(fill):
        return fill(pixel_values, removed)
    c, h, w = pixel_values.shape
    value = torch.as_tensor(fill, dtype=pixel_values.dtype).reshape(-1, 1, 1).expand(c, h, w)
    return torch.where(removed[:, None], value, pixel_values)


def perturbed_inputs(pixel_values: torch.Tensor, relevance, fractions=FRACTIONS, fill=0.0) -> torch.Tensor:
    """Chefer et al. CVPR 2021 protocol on one input (3, H, W): for each fraction, remove that share
    of pixels (see apply_fill for what they become), most relevant first (positive) and least
    relevant first (negative). Returns (2·F, 3, H, W): positive steps, then negative steps."""
    return apply_fill(pixel_values, removal_masks(relevance, pixel_values.shape[-2:], fractions), fill)


def auc(values, fractions=FRACTIONS) -> float:
    """Area under a curve over the removed fractions, normalised by the x-range: the curve's mean level."""
    values, fractions = np.asarray(values, dtype=np.float64), np.asarray(fractions, dtype=np.float64)
    return float(np.trapezoid(values, fractions) / (fractions[-1] - fractions[0]))


# What removed pixels become: the data mean, black (what Chefer et al.'s code does: it zeroes the
# [0, 1] image before normalising), or ROAD's noisy linear imputation from the neighbours.
FILLS = ("mean", "black", "road")


def fill_value(loaded, fill: str, seed: int = 0):
    """What removed pixels become, for apply_fill: 0.0 (the data mean in normalised space), a (3,)
    tensor (black; Fashion-MNIST's background, i.e. "nothing there" for a model trained on it), or
    a road.RoadFill whose noise is seeded with `seed` (the evaluation uses the sample's index)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    if fill == "mean":
        return 0.0
    if fill == "road":
        return RoadFill(std=tuple(float(s) for s in loaded.spec.std), seed=seed)
    mean, std = torch.tensor(loaded.spec.mean), torch.tensor(loaded.spec.std)
    return (0.0 - mean) / std


def curves(loaded, an: Analysis, maps: dict[str, np.ndarray], target: int | None = None, fill: str = "mean"):
    """The positive and negative perturbation curves of several maps on one image.

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
