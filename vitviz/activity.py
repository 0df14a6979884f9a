"""Guess where it looks: a student's drawing scored against a model's map.

The student draws over a picture of the model's input (enlarged or shrunk, same aspect ratio), so
a drawing goes back to the model's patch grid by area: each patch gets the share of its pixels the
drawing covers, computed exactly for any scale, integer or not. The score is then

- ``mass``: the share of the map's mass inside the drawing, Σ m·cover / Σ m over patches, negatives
  clipped (the app passes each map as it shows it, scaled to 0..1: rollout's near-uniform floor
  would otherwise hold most of the mass and every drawing would score close to its area);
- ``peak_inside``: whether the drawing covers at least half of the map's brightest patch;
- ``area``: the share of the picture the drawing covers, which is what a map spread evenly over
  the picture would score, the baseline a class can compare against.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .pictures import render as R

MAX_SIDE = 2048        # a drawing layer larger than this on a side is refused (the picture is ~450 px)
PEAK_COVER = 0.5       # the peak counts as found when the drawing covers this share of its patch
ASPECT_TOLERANCE = 0.02  # relative difference of the two scales allowed between drawing and input
PEAK_RESOLUTION = 1e-5   # values closer than this share of the maximum tie for the peak (thread-count noise is ~1e-7)
OUTLINE_RGB = (0, 255, 255)
PEAK_RGB = (255, 255, 255)


@dataclass(frozen=True)
class Score:
    mass: float                  # share of the map's mass inside the drawing, in [0, 1]
    peak_inside: bool            # the drawing covers at least PEAK_COVER of the peak patch
    area: float                  # share of the picture the drawing covers, in [0, 1]
    peak: int                    # the peak patch, row-major over the grid


def drawn_mask(layers: list[np.ndarray], fill: bool = True) -> np.ndarray:
    """(h, w) bool: where any layer has paint, and (fill) what the strokes enclose: a student who
    circles a region means all of it. layers: the editor's layers, (h, w, 4) RGBA (the alpha says
    where the brush went), all of one size."""
    if not layers:
        raise ValueError("expected at least one drawing layer, got none")
    mask = None
    for layer in layers:
        a = np.asarray(layer)
        if a.ndim != 3 or a.shape[2] != 4:
            raise ValueError(f"expected an (h, w, 4) RGBA layer, got shape {a.shape}")
        if max(a.shape[:2]) > MAX_SIDE or min(a.shape[:2]) < 1:
            raise ValueError(f"expected a layer of 1..{MAX_SIDE} pixels a side, got {a.shape[:2]}")
        if mask is not None and a.shape[:2] != mask.shape:
            raise ValueError(f"expected layers of one size {mask.shape}, got {a.shape[:2]}")
        mask = (a[..., 3] > 0) if mask is None else mask | (a[..., 3] > 0)
    return fill_enclosed(mask) if fill else mask


def fill_enclosed(mask: np.ndarray, max_steps: int | None = None) -> np.ndarray:
    """(h, w) bool with the regions the drawing encloses filled: every undrawn pixel that cannot be
    reached from the picture's border through undrawn pixels (4-neighbours). The border region is
    grown one pixel a step; a scribble so winding that it needs more than max_steps (default
    2·(h + w)) steps is returned unfilled rather than filled wrongly."""
    free = ~mask
    reached = np.zeros_like(mask)
    reached[0], reached[-1], reached[:, 0], reached[:, -1] = free[0], free[-1], free[:, 0], free[:, -1]
    for _ in range(max_steps or 2 * sum(mask.shape)):
        grown = reached.copy()
        grown[1:] |= reached[:-1]
        grown[:-1] |= reached[1:]
        grown[:, 1:] |= reached[:, :-1]
        grown[:, :-1] |= reached[:, 1:]
        grown &= free
        if np.array_equal(grown, reached):
            return ~reached
        reached = grown
    return mask


def check_aspect(drawn_hw: tuple[int, int], seen_hw: tuple[int, int]) -> None:
    """ValueError unless a drawing of drawn_hw pixels can be a scaled copy of the input seen_hw."""
    sy, sx = drawn_hw[0] / seen_hw[0], drawn_hw[1] / seen_hw[1]
    if abs(sy - sx) > ASPECT_TOLERANCE * max(sy, sx):
        raise ValueError(f"expected a drawing with the input's aspect ratio {seen_hw}, got {drawn_hw}")


def _overlap(pixels: int, cells: int) -> np.ndarray:
    """(cells, pixels): the length of pixel j's interval [j, j+1) inside cell i's [i·s, (i+1)·s),
    s = pixels / cells. Each row sums to s, each column to 1."""
    s = pixels / cells
    lo = np.arange(cells, dtype=np.float64)[:, None] * s
    j = np.arange(pixels, dtype=np.float64)[None, :]
    return np.clip(np.minimum(lo + s, j + 1) - np.maximum(lo, j), 0.0, None)


def patch_cover(mask: np.ndarray, grid: tuple[int, int], seen_hw: tuple[int, int] | None = None) -> np.ndarray:
    """(h, w) drawing -> (gh, gw) share of each patch's area the drawing covers, in [0, 1]. The
    drawing spans the whole input; seen_hw, the input's (H, W), checks that its shape fits."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected an (h, w) mask, got shape {mask.shape}")
    gh, gw = grid
    if seen_hw is not None:
        check_aspect(mask.shape, seen_hw)
    h, w = mask.shape
    oy, ox = _overlap(h, gh), _overlap(w, gw)
    cover = oy @ mask.astype(np.float64) @ ox.T
    return np.clip(cover / ((h / gh) * (w / gw)), 0.0, 1.0)


def score(m, cover: np.ndarray) -> Score:
    """A map (gh, gw) against a drawing's patch cover (gh, gw)."""
    m = np.clip(R.to_numpy(m).astype(np.float64), 0.0, None)
    cover = np.asarray(cover, dtype=np.float64)
    if m.shape != cover.shape:
        raise ValueError(f"expected a map of the cover's shape {cover.shape}, got {m.shape}")
    total = m.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("expected a map with positive mass, got none")
    peak = int(np.argmax(np.rint(m / m.max() / PEAK_RESOLUTION)))   # near-ties go to the first patch, not float noise
    return Score(mass=float((m * cover).sum() / total), peak_inside=bool(cover.flat[peak] >= PEAK_COVER),
                 area=float(cover.mean()), peak=peak)


# ---------------------------------------------------------------- pictures

def resize_mask(mask: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(h, w) bool -> (H, W) bool, nearest: the drawing at a picture's size."""
    if mask.shape == tuple(hw):
        return mask
    img = Image.fromarray(mask.astype(np.uint8) * 255).resize((hw[1], hw[0]), Image.NEAREST)
    return np.asarray(img) > 127


def outline(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """(h, w) bool: the drawing's border, `width` pixels inside its edge."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:] &= inner[:-1]
        shrunk[:-1] &= inner[1:]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def reveal(picture: np.ndarray, m, mask: np.ndarray, grid: tuple[int, int], peak: int, alpha: float = 0.5,
           cmap: str = "inferno") -> np.ndarray:
    """The map over the picture the student drew on (H, W, 3), the drawing's outline and the peak
    patch marked on top."""
    out = np.array(R.overlay(picture, R.to_numpy(m), alpha, cmap))
    out[outline(resize_mask(mask, out.shape[:2]), width=max(2, out.shape[0] // 150))] = OUTLINE_RGB
    return frame(out, peak, grid)


def frame(image: np.ndarray, index: int, grid: tuple[int, int], colour=PEAK_RGB) -> np.ndarray:
    """A thin square around patch `index` (row-major over grid) of an image showing the whole grid."""
    gh, gw = grid
    r, c = divmod(int(index), gw)
    ph, pw = image.shape[0] / gh, image.shape[1] / gw
    img = Image.fromarray(image)
    ImageDraw.Draw(img).rectangle([c * pw, r * ph, (c + 1) * pw - 1, (r + 1) * ph - 1], outline=colour,
                                  width=max(2, round(min(ph, pw) / 16)))
    return np.asarray(img)
