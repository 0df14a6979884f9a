"""SaCo, the salience-guided faithfulness coefficient (Wu et al., CVPR 2024, "On the Faithfulness of
Vision Transformer Explanations"; reference code adreamwu/SaCo, compute_SaCo.py).

Deletion AUCs barely tell a map from a random one. SaCo asks instead whether the pixels a map calls
more salient really matter more: rank the pixels by salience into K groups G_1 .. G_K (G_1 the most
salient), remove each group on its own, and measure the drop in the target class's probability,
∇pred(G_i) = p(x) - p(x with G_i removed). For every pair i < j (so s(G_i) >= s(G_j), s = the
group's summed salience) the weight s(G_i) - s(G_j) is added when ∇pred(G_i) >= ∇pred(G_j) (the
order agrees; ties agree, as in the reference's ``>=``) and subtracted when not; the sum is divided
by the sum of the weights' magnitudes:

    F = Σ_{i<j} ±(s(G_i) - s(G_j)) / Σ_{i<j} |s(G_i) - s(G_j)|   in [-1, 1]

F = 1: every more salient group matters more; a random map scores about 0. The coefficient is the
reference's (weights are salience differences, K = 10). Where the reference raises on a zero total
weight (a constant map), this returns NaN.

How the pixels are split into groups is a convention (CONVENTIONS, DEFAULT "paper"). The paper
splits all H·W pixels into K groups of equal size; compute_SaCo.py leaves the split out
(``s_G = ...``), and neither says where the H·W mod K pixels left over go, so "paper" gives them to
the most salient groups, one each, as numpy.array_split does. "equal" is vitviz's earlier split:
exactly ⌊H·W/K⌋ pixels a group, the < K least salient never removed. For a random map of independent
pixel values equal groups are exchangeable, so its expected F is 0 (ties aside: they count as
agreeing); under "paper" the groups holding an extra pixel are the most salient ones and take more
away, which lifts a random map above 0 as groups get small.
Measured (numbers in results/measured.md, "SaCo grouping"): on a synthetic model whose drop is the
summed importance of the removed pixels the lift is clear at 7×9 pixels (groups of 6 or 7) and
small at 28×28 (tests/test_saco.py); on the bundled model (random, Chefer and rollout maps of the
first 200 and 2000 Fashion-MNIST test images, black fill, K = 10, a random map seeded by the image's
index as in ``python -m vitviz.evaluate --methods chefer rollout_mean random --metrics saco``) the
random map's mean under either split lies within its 95 % interval of 0 and the two means differ
by less than their uncertainty, while single images move by much more. So "paper" is the default,
and "equal" stays for inputs with few pixels per group and to reproduce results made before.

Salience here is the map enlarged to the input's pixels and rounded by vitviz.core.ranking (steps of
1e-5 of its range, so integers): the groups and their sums do not move with float noise. Removed
pixels become the evaluation's fill (the paper uses the image's mean).
"""

from __future__ import annotations

import numpy as np
import torch

from ..core import ranking
from ..core.conventions import Convention, Conventions
from .perturb import apply_fill, fill_value, predict_probs

K = 10   # groups, as in the paper


CONVENTIONS = Conventions("SaCo", (
    Convention("paper", "Wu et al., CVPR 2024, 'On the Faithfulness of Vision Transformer Explanations', "
                        "Algorithm 1; adreamwu/SaCo, compute_SaCo.py",
               "Every pixel is in one of the K groups ranked by salience, sizes differing by at most one: the "
               "H·W mod K most salient groups hold one pixel more (as numpy.array_split splits)."),
    Convention("equal", "vitviz before issue 25 (vitviz/evidence/saco.py)",
               "Exactly floor(H·W/K) pixels in each group ranked by salience; the fewer than K least salient "
               "pixels are never removed."),
), default="paper")
DEFAULT = CONVENTIONS.default


def get_convention(name: str) -> Convention:
    """The named convention; ValueError naming the choices for any other name."""
    return CONVENTIONS.named(name)


def group_sizes(pixels: int, k: int, name: str = DEFAULT) -> np.ndarray:
    """Pixels in each of the k groups, most salient first: (k,) int64, under the named convention."""
    get_convention(name)                              # ValueError for a name not in CONVENTIONS
    base, extra = divmod(pixels, k)
    if name == "equal":
        return np.full(k, base, dtype=np.int64)
    return base + (np.arange(k) < extra).astype(np.int64)


def groups(relevance, size: tuple[int, int], k: int = K,
           convention: str = DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """Split the (H, W) pixels into k groups by salience, most salient first, under the named
    convention (CONVENTIONS). relevance (gh, gw) -> (group of each pixel (H·W,) int64 in [0, k), or -1
    for a pixel in no group ("equal" leaves the < k least salient out); salience sum of each group
    (k,) int64)."""
    h, w = size
    if not 2 <= k <= h * w:
        raise ValueError(f"groups must be in [2, {h * w}] for {h}x{w} pixels, got {k}")
    sizes = group_sizes(h * w, k, convention)
    q = ranking.quantise(ranking.pixel_relevance(relevance, size).numpy()).ravel()
    order = np.argsort(-q, kind="stable")          # most salient first; ties by pixel index
    group = np.full(h * w, -1, dtype=np.int64)
    group[order[:sizes.sum()]] = np.repeat(np.arange(k), sizes)
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
                seed: int = 0, convention: str = DEFAULT) -> dict[str, dict]:
    """SaCo of several maps on one analysed photo, groups split by the named convention:
    {name: {"saco": F, "saliences": (k,) int64, "drops": (k,) float}}; the target class defaults to
    the predicted one. One batched pass of k copies per map, plus the unperturbed input (so the drops
    compare outputs of one batch)."""
    target = int(np.argmax(an.probs)) if target is None else int(target)
    value = fill_value(loaded, fill, seed)
    names = list(maps)
    parts = [groups(maps[n], an.pixel_values.shape[-2:], k, convention) for n in names]
    batch = torch.cat([an.pixel_values[None]] + [group_inputs(an.pixel_values, g, k, value) for g, _ in parts])
    probs = predict_probs(loaded, batch)[:, target].double().numpy()
    drops = probs[0] - probs[1:].reshape(len(names), k)
    return {n: {"saco": coefficient(s, drops[i]), "saliences": s, "drops": drops[i]}
            for i, (n, (_, s)) in enumerate(zip(names, parts))}
