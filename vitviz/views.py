"""The app's pictures: an Analysis plus control values -> images (uint8 arrays) and text.

Pure rendering over cached tensors: nothing here runs the model, except where a
function says so. Model-only work is cached on the LoadedModel.
"""

from __future__ import annotations

import numpy as np

from . import attention as A
from . import render as R
from .analysis import Analysis, prefix_names
from .i18n import t

CMAP = "inferno"


def predictions(an: Analysis, k: int = 5) -> dict[str, float]:
    return {label: p for _, label, p in an.top(k)}


def patches(an: Analysis, family: str = "vit") -> tuple[np.ndarray, np.ndarray]:
    """(the input cut into its patch grid with indices, the token sequence strip)."""
    names = prefix_names(family, an.prefix)
    return (R.patch_grid(an.seen, an.grid, an.patch_size),
            R.token_sequence(an.seen, an.grid, an.patch_size, names))


def shapes_text(an: Analysis, hidden_size: int | None = None) -> str:
    gh, gw = an.grid
    p, h, w = an.patch_size, *an.seen.shape[:2]
    n = an.prefix + gh * gw
    d = f"{hidden_size}" if hidden_size else "D"
    return (f"`{h}×{w}×3` image → `{gh}×{gw} = {gh * gw}` patches of `{p}×{p}×3 = {3 * p * p}` values → "
            f"linear projection to `{d}` → + {an.prefix} prefix token(s) = `{n}` tokens of width `{d}` → "
            f"{an.num_layers} encoder blocks with {an.num_heads} heads, attention `({an.num_heads}, {n}, {n})` each.")


def rollout_maps(an: Analysis, fusion: str = "mean", discard: float = 0.0, start_layer: int = 0,
                 query: int = 0) -> np.ndarray:
    """(gh, gw) rollout of one token, normalised to [0, 1]."""
    start_layer = int(min(max(start_layer, 0), an.num_layers - 1))
    m = A.rollout(an.att(), an.prefix, an.grid, fusion, float(discard), start_layer, query)
    return A.normalize(m).numpy()


def heat_pair(an: Analysis, m: np.ndarray, alpha: float, lang: str = "en", cmap: str = CMAP):
    """The map over the model's input (enlarged if tiny) and over the original photo, each with a colour bar."""
    seen, _ = R.enlarge(an.seen, 224)
    on_seen = R.with_colorbar(R.overlay(seen, m, alpha, cmap), cmap, t("low", lang), t("high", lang))
    on_photo = R.with_colorbar(R.overlay_on_upload(an.upload, an.box, m, alpha, cmap), cmap,
                               t("low", lang), t("high", lang))
    return on_seen, on_photo


def rollout(an: Analysis, fusion: str, discard: float, alpha: float, start_layer: int = 0, lang: str = "en"):
    return heat_pair(an, rollout_maps(an, fusion, discard, start_layer), alpha, lang)


def position_similarity(loaded, grid: tuple[int, int] | None = None, highlight: int | None = None) -> np.ndarray:
    """The ViT-paper tile grid of the model's position-embedding similarity, cached per model and grid."""
    from .posemb import similarity_tiles

    key = ("posemb", tuple(grid) if grid else None)
    if key not in loaded.cache:
        pos_grid = _model_grid(loaded)
        sim, g = similarity_tiles(loaded.model, None if grid is None or tuple(grid) == pos_grid else grid)
        loaded.cache[key] = (sim, g)
    sim, g = loaded.cache[key]
    return R.similarity_grid(sim, g, highlight=highlight)


def _model_grid(loaded) -> tuple[int, int]:
    from .posemb import position_embeddings

    return position_embeddings(loaded.model)[1]
