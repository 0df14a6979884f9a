"""Orders of pixels by relevance that float noise cannot change.

Gradient maps computed with 1 and with 2 CPU threads differ by ~1e-7 (the backward pass sums in
another order), and clamped gradients leave "zero" patches at 0 on one run and at 1e-9 on the
other. Ranked as they are, such near-ties flip, and the pixels removed by a perturbation step,
the groups of SaCo and the ranks of a rank correlation change with the thread count. So every
ranking here first rounds the map to a fixed share of its range (RESOLUTION): values closer than
that are equal, and equal values keep their index order (a stable sort, index = row-major pixel
or patch number). Rounding to a grid only moves a value that sits within the noise of a grid
boundary, which is rare; exact ties (zeros, flat regions, discrete maps) become exact.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

RESOLUTION = 1e-5   # share of a map's range below which two values count as equal


def quantise(m, resolution: float = RESOLUTION) -> np.ndarray:
    """A map rounded to steps of `resolution` of its range: int64 in [0, round(1/resolution)], same
    shape. 0 is the minimum; a constant map (or one that is not finite) becomes all zeros."""
    m = np.asarray(m, dtype=np.float64)
    if not 0.0 < resolution < 1.0:
        raise ValueError(f"resolution must be in (0, 1), got {resolution}")
    if m.size == 0 or not np.isfinite(m).all():
        return np.zeros(m.shape, dtype=np.int64)
    lo, hi = m.min(), m.max()
    if hi <= lo:
        return np.zeros(m.shape, dtype=np.int64)
    return np.rint((m - lo) / (hi - lo) / resolution).astype(np.int64)


def order(m, resolution: float = RESOLUTION) -> np.ndarray:
    """Flat indices of m, most relevant first; values equal after quantise() keep index order."""
    return np.argsort(-quantise(m, resolution).ravel(), kind="stable")


def ranks(m, resolution: float = RESOLUTION) -> np.ndarray:
    """Rank of each entry of m (flattened, 1 = least relevant), ties averaged, after quantise():
    the ranks of Spearman's correlation. float64 (n,)."""
    q = quantise(m, resolution).ravel()
    idx = np.argsort(q, kind="stable")
    sorted_q = q[idx]
    starts = np.flatnonzero(np.r_[True, sorted_q[1:] != sorted_q[:-1]])    # first position of each run of ties
    ends = np.r_[starts[1:], len(q)]
    mean_rank = (starts + ends + 1) / 2.0                                      # mean of positions start+1 .. end
    out = np.empty(len(q), dtype=np.float64)
    out[idx] = np.repeat(mean_rank, ends - starts)
    return out


def pixel_relevance(relevance, size: tuple[int, int]) -> torch.Tensor:
    """A patch map (gh, gw) enlarged to the input's pixels (H, W) by bilinear interpolation, as the
    perturbation protocol ranks pixels (Chefer et al.). float32."""
    rel = torch.as_tensor(np.asarray(relevance, dtype=np.float32))
    if rel.ndim != 2:
        raise ValueError(f"expected a relevance map of shape (gh, gw), got {tuple(rel.shape)}")
    return F.interpolate(rel[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0]


def pixel_order(relevance, size: tuple[int, int], resolution: float = RESOLUTION) -> torch.Tensor:
    """Pixels of an (H, W) input, most relevant first: (H·W,) int64 row-major indices."""
    return torch.from_numpy(order(pixel_relevance(relevance, size).numpy(), resolution))
