"""Pointing: the share of a map's mass on the object, where the data says where the object is."""

from __future__ import annotations

import numpy as np

from ..pictures import render as R

BLACK_BORDER = 0.5    # share of a photo's border pixels that are black in Fashion-MNIST's style


def object_mask(label_set: str | None, seen: np.ndarray) -> np.ndarray | None:
    """Where the object is, when the data set says so: (H, W) bool, or None.

    Fashion-MNIST's photos are garments on a black background, and the evaluation takes the
    non-black pixels as the object; a photo in that style (at least half of its border pixels
    exactly black, as in every example garment and in no camera photo among the examples) shown to
    a model trained on it gets the same mask. Any other photo has no mask: nothing says where its
    object is."""
    if label_set != "fashion-mnist" or seen.ndim != 3:
        return None
    border = np.concatenate([seen[0], seen[-1], seen[:, 0], seen[:, -1]])
    lit = seen.max(-1) > 0
    if (border.max(-1) == 0).mean() < BLACK_BORDER or not lit.any():
        return None
    return lit


def pointing(m: np.ndarray, mask: np.ndarray) -> float:
    """Share of a non-negative map's mass on the mask's pixels; m (gh, gw), mask (H, W) bool."""
    up = np.clip(R.upsample(np.clip(m, 0, None), mask.shape), 0, None)
    total = up.sum()
    return float((up * mask).sum() / total) if total > 0 else float("nan")


def pointing_scores(maps: dict, mask: np.ndarray | None) -> dict[str, float] | None:
    """Share of each map's mass on the object (pointing), or None without a mask."""
    if mask is None:
        return None
    return {name: pointing(np.asarray(m, dtype=np.float32), mask) for name, m in maps.items()}
