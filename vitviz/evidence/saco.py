"""SaCo, the salience-guided faithfulness coefficient (Wu et al., CVPR 2024, "On the Faithfulness of
Vision Transformer Explanations"; reference code adreamwu/SaCo, compute_SaCo.py).

Deletion AUCs barely tell a map from a random one. SaCo asks instead whether the pixels a map calls
more salient really matter more: rank the pixels by salience into K equal groups G_1 .. G_K (G_1
the most salient), remove each group on its own, and measure the drop in the target class's
probability, ∇pred(G_i) = p(x) - p(x with G_i removed). For every pair i < j (so s(G_i) >= s(G_j),
s = the group's summed salience) the weight s(G_i) - s(G_j) is added when ∇pred(G_i) >= ∇pred(G_j)
(the order agrees; ties agree, as in the reference's ``>=``) and subtracted when not; the sum is
divided by the sum of the weights' magnitudes:

    F = Σ_{i<j} ±(s(G_i) - s(G_j)) / Σ_{i<j} |s(G_i) - s(G_j)|   in [-1, 1]

F = 1: every more salient group matters more; a random map scores about 0. This is the reference's
variant (weights are salience differences, K = 10). Where the reference raises on a zero total
weight (a constant map), this returns NaN.

Salience here is the map enlarged to the input's pixels and rounded by vitviz.core.ranking (steps of
1e-5 of its range, so integers): the groups and their sums do not move with float noise. Groups
are exactly equal in size (the < K least salient pixels left over are never removed; see
groups()), so a shift of the map, as min-max normalising does, changes no weight. Removed pixels
become the evaluation's fill (the paper uses the image's mean).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core import ranking
from .perturb import apply_fill, fill_value, predict_probs

K = 10   # groups, as in the paper


def groups(relevance, size: tuple[int, int], k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Split the (H, W) pixels into k groups of equal size by salience, most salient first.
    relevance (gh, gw) -> (group of each pixel (H·W,) int64 in [0, k), or -1 for the fewer than k
    least salient pixels left over when k does not divide H·W; salience sum of each group (k,) int64).

    Equal sizes matter: a group with one pixel more both sums more salience and, removed, takes more
    of the image away, which on a 28×28 input (78 or 79 pixels per group) makes a random map score
    above 0. The left-over pixels are never removed."""
    h, w = size
    if not 2 <= k <= h * w:
        raise ValueError(f"groups must be in [2, {h * w}] for {h}x{w} pixels, got {k}")
    q = ranking.quantise(ranking.pixel_relevance(relevance, size).numpy()).ravel()
    order = np.argsort(-q, kind="stable")
    per_group = h * w // k
    group = np.full(h * w, -1, dtype=np.int64)
    group[order[:per_group * k]] = np.arange(per_group * k) // per_group
    inside = group >= 0
    sums = np.zeros(k, dtype=np.int64)
    np.add.at(sums, group[inside], q[inside])
    return group, sums


def coefficient(saliences, drops, tol: float = 0.0) -> float:
    """F from the groups' salience sums (K,) (most salient first) and confidence drops (K,).
    Drops closer than `tol` count as equal (the comparison is >=, so they agree). NaN when every
    group has the same salience."""
    s = np.asarray(saliences, dtype=np.float64)
    d = np.asarray(drops, dtype=np.float64)
    if s.shape != d.shape or s.ndim != 1 or len(s) < 2:
        raise ValueError(f"expected saliences and drops of the same shape (K,), K >= 2, got {s.shape} and {d.shape}")
    i, j = np.triu_indices(len(s), k=1)                       # every pair i < j
    weight = s[i] - s[j]
    sign = np.where(d[i] >= d[j] - tol, 1.0, -1.0)
    total = np.abs(weight).sum()
    return float((sign * weight).sum() / total) if total > 0 else float("nan")


def group_inputs(pixel_values: torch.Tensor, group: np.ndarray, k: int = K, fill=0.0) -> torch.Tensor:
    """One copy of the input (3, H, W) per group, with that group's pixels removed: (k, 3, H, W)."""
    h, w = pixel_values.shape[-2:]
    g = torch.from_numpy(group).reshape(h, w)
    removed = g[None] == torch.arange(k)[:, None, None]                        # (k, H, W)
    return apply_fill(pixel_values, removed, fill)


def saco_scores(loaded, an, maps: dict, target: int | None = None, fill: str = "mean", k: int = K,
                seed: int = 0) -> dict[str, dict]:
    """SaCo of several maps on one analysed photo: {name: {"saco": F, "saliences": (k,) int64,
    "drops": (k,) float}}; the target class defaults to the predicted one. One batched pass of
    k copies per map, plus the unperturbed input (so the drops compare outputs of one batch)."""
    target = int(np.argmax(an.probs)) if target is None else int(target)
    value = fill_value(loaded, fill, seed)
    names = list(maps)
    parts = [groups(maps[n], an.pixel_values.shape[-2:], k) for n in names]
    batch = torch.cat([an.pixel_values[None]] + [group_inputs(an.pixel_values, g, k, value) for g, _ in parts])
    probs = predict_probs(loaded, batch)[:, target].double().numpy()
    drops = probs[0] - probs[1:].reshape(len(names), k)
    return {n: {"saco": coefficient(s, drops[i]), "saliences": s, "drops": drops[i]}
            for i, (n, (_, s)) in enumerate(zip(names, parts))}
