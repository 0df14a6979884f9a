"""What the app shows: an Analysis plus control values -> pictures (uint8 arrays) and text.

Pure rendering over results already computed: nothing here runs the model. Forward and
backward passes live in vitviz.analysis, vitviz.methods and vitviz.mae; their results come in
as arguments. Work that depends only on the model's weights (position-embedding similarity,
embedding filters) is computed once per model and kept in ``LoadedModel.cache``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .. import attention as A
from .. import query as Q
from ..analysis import Analysis
from ..analysis import embedding_filters as filters_of
from ..attention import Head
from ..core.i18n import t
from ..posemb import NoAbsolutePositions, position_embeddings, similarity_tiles
from . import render as R

if TYPE_CHECKING:
    from ..core.loaded import LoadedModel

CMAP = "inferno"
OVERVIEW_TILE = 56  # pixels per tile of the layers × heads overview


def clamp_layer(an: Analysis, layer) -> int:
    """A layer index from a control, kept inside this analysis's layers."""
    return int(min(max(int(layer or 0), 0), an.num_layers - 1))


def head_maps(maps: torch.Tensor, head: Head) -> torch.Tensor:
    """(H, gh, gw) -> one head's map, or the mean over heads for head None."""
    return maps.mean(0) if head is None else maps[int(head) % maps.shape[0]]


# ---------------------------------------------------------------- see: patches, tokens, prediction

def predictions(an: Analysis, lang: str = "en", k: int = 5) -> dict[str, float]:
    """{class name in lang: probability}, the k best."""
    return {name: p for _, name, p in an.top(k, lang)}


def patches(an: Analysis) -> tuple[np.ndarray, np.ndarray]:
    """(the input cut into its patch grid with indices, the token sequence strip)."""
    grid = R.patch_grid(an.seen, an.grid, an.patch_size)
    return grid, R.token_sequence(an.seen, an.grid, an.patch_size, an.prefix_names)


def shapes_text(an: Analysis, hidden_size: int | None = None, lang: str = "en") -> str:
    gh, gw = an.grid
    p, h, w = an.patch_size, *an.seen.shape[:2]
    d = f"{hidden_size}" if hidden_size else "D"
    return t("shapes", lang, h=h, w=w, gh=gh, gw=gw, np=gh * gw, p=p, pp=3 * p * p, d=d, prefix=an.prefix,
             n=an.prefix + gh * gw, layers=an.num_layers, heads=an.num_heads)


# ---------------------------------------------------------------- explain: rollout and raw attention

def rollout_map(an: Analysis, fusion: str = "mean", discard: float = 0.0, start_layer: int = 0,
                query: int = 0) -> np.ndarray:
    """(gh, gw) rollout of one token (default [CLS]), normalised to [0, 1]."""
    m = Q.rollout(an, fusion, float(discard), clamp_layer(an, start_layer), query)
    return A.normalize(m).numpy()


def heat_pair(an: Analysis, m: np.ndarray, alpha: float, lang: str = "en", cmap: str = CMAP):
    """The map over the model's input (enlarged if tiny) and over the original photo, each with a colour bar."""
    seen, _ = R.enlarge(an.seen, 224)
    low, high = t("low", lang), t("high", lang)
    on_seen = R.with_colorbar(R.overlay(seen, m, alpha, cmap), cmap, low, high)
    on_photo = R.with_colorbar(R.overlay_on_upload(an.upload, an.box, m, alpha, cmap), cmap, low, high)
    return on_seen, on_photo


def rollout(an: Analysis, fusion: str, discard: float, alpha: float, start_layer: int = 0, lang: str = "en",
            query: int = 0):
    return heat_pair(an, rollout_map(an, fusion, discard, start_layer, query), alpha, lang)


def raw_attention(an: Analysis, layer: int, head: Head, shared_scale: bool, alpha: float,
                  lang: str = "en", query: int = 0):
    """(layers × heads small multiples, the selected map over the input and photo, head mean per layer).

    query: the token whose attention is shown ([CLS] = 0). shared_scale: one colour scale for
    all tiles, so maps compare.
    """
    maps = Q.layer_maps(an, query)                                   # (L, H, gh, gw)
    n_layers, n_heads = maps.shape[:2]
    layer = clamp_layer(an, layer)
    vmin, vmax = (0.0, float(maps.max())) if shared_scale else (None, None)
    labels = [f"L{i} H{j}" for i in range(n_layers) for j in range(n_heads)]
    chosen = head_maps(maps[layer], head)
    pick = None if head is None else layer * n_heads + int(head) % n_heads
    grid = R.tiles(maps.reshape(-1, *an.grid), n_heads, tile=OVERVIEW_TILE, labels=labels, vmin=vmin, vmax=vmax,
                   cmap=CMAP, highlight=pick)
    means = R.tiles(maps.mean(1), min(n_layers, 12), tile=56, labels=[f"L{i}" for i in range(n_layers)],
                    vmin=vmin, vmax=vmax, cmap=CMAP)
    m = chosen.numpy() / max(float(maps.max()), 1e-12) if shared_scale else A.normalize(chosen).numpy()
    on_seen, on_photo = heat_pair(an, m, alpha, lang)
    return grid, on_seen, on_photo, means


def overview_cell(an: Analysis, x: float, y: float) -> tuple[int, int]:
    """(layer, head) of the tile under pixel (x, y) of the layers × heads overview."""
    tile, gap, cap = OVERVIEW_TILE, R.TILE_GAP, R.CAPTION_H
    th = max(1, round(tile * an.grid[0] / an.grid[1]))
    head = int(min(max((x - gap) // (tile + gap), 0), an.num_heads - 1))
    return clamp_layer(an, (y - gap) // (th + gap + cap)), head


# ---------------------------------------------------------------- explain: class-specific maps

def class_choices(an: Analysis, lang: str = "en", k: int = 5) -> list[tuple[str, int]]:
    return [(f"{name} ({p:.1%})", i) for i, name, p in an.top(k, lang)]


def class_specific(an: Analysis, maps: dict[str, torch.Tensor], method: str, alpha: float, lang: str = "en"):
    """maps: methods.class_maps' result (method -> (gh, gw)); the chosen one over input and photo."""
    if method not in maps:
        raise ValueError(f"method must be one of {sorted(maps)}, got {method!r}")
    return heat_pair(an, A.normalize(maps[method]).numpy(), alpha, lang)


# ---------------------------------------------------------------- explain: DINO heads

def dino_heads(an: Analysis, mass: float, alpha: float = 0.6) -> np.ndarray:
    """Last-layer [CLS] attention per head, raw (top row) and thresholded to the top `mass` share."""
    maps = Q.last_heads(an)                                         # (H, gh, gw)
    masks = A.dino_threshold(maps, mass).float()
    seen, _ = R.enlarge(an.seen, 112)
    columns = []
    for m, k in zip(maps, masks):
        heat = R.overlay(seen, A.normalize(m).numpy(), alpha, CMAP)
        keep = R.upsample(k.numpy(), seen.shape[:2], smooth=False)[..., None]
        cut = (seen * (0.25 + 0.75 * keep)).astype(np.uint8)
        columns.append(np.concatenate([heat, cut], 0))
    return np.concatenate(columns, 1)


# ---------------------------------------------------------------- explain: click a patch


def click_canvas(an: Analysis, query: int | None = None) -> np.ndarray:
    """The model's input, enlarged, with its patch grid (and the clicked patch marked)."""
    img = R.patch_grid(an.seen, an.grid, an.patch_size, numbers=False)
    return R.mark_patch(img, query, an.grid) if query is not None else img


def patch_at(an: Analysis, x: float, y: float, canvas_hw: tuple[int, int]) -> int:
    """Patch index under pixel (x, y) of the click canvas (row-major over the grid)."""
    h, w = canvas_hw
    gh, gw = an.grid
    r = int(min(max(y, 0) * gh / h, gh - 1))
    c = int(min(max(x, 0) * gw / w, gw - 1))
    return r * gw + c


def query_maps(loaded: LoadedModel, an: Analysis, patch: int, layer: int, head: Head, alpha: float):
    """Where patch `patch` looks: (its attention at layer/head, the head mean at that layer, rollout
    from it, its position-embedding similarity) as overlays on the input, the patch marked."""
    token = an.prefix + patch
    att = an.att()
    layer = clamp_layer(an, layer)
    maps = A.raw_maps(att[layer:layer + 1], an.prefix, an.grid, token)[0]          # (H, gh, gw)
    out = [A.normalize(head_maps(maps, head)).numpy(), A.normalize(maps.mean(0)).numpy(),
           A.normalize(A.rollout(att, an.prefix, an.grid, query=token)).numpy()]
    sim = patch_similarity(loaded, an.grid)
    out.append(None if sim is None else (sim[patch].reshape(an.grid).numpy() + 1) / 2)   # cosine -1..1 -> 0..1
    seen, _ = R.enlarge(an.seen, 336)
    return [None if m is None else R.mark_patch(R.overlay(seen, m, alpha, CMAP), patch, an.grid) for m in out]


# ---------------------------------------------------------------- learn: what the weights hold

def patch_similarity(loaded: LoadedModel, grid: tuple[int, int]) -> torch.Tensor | None:
    """(P, P) position-embedding cosine similarity at `grid` (interpolated if needed); None for BEiT."""
    def make():
        try:
            return similarity_tiles(loaded.model, tuple(grid))[0]
        except NoAbsolutePositions:
            return None

    return loaded.cache.get(("posemb", tuple(grid)), make)


def position_similarity(loaded: LoadedModel, grid: tuple[int, int] | None = None,
                        highlight: int | None = None) -> np.ndarray:
    """The ViT-paper tile grid of the model's position-embedding similarity at `grid` (default: the
    training grid; another grid interpolates). Raises NoAbsolutePositions for BEiT."""
    if grid is None:
        grid = position_embeddings(loaded.model)[1]
    sim = patch_similarity(loaded, grid)
    if sim is None:
        position_embeddings(loaded.model)        # raises with the model's own explanation
    return loaded.cache.get(("posemb_image", tuple(grid), highlight),
                            lambda: R.similarity_grid(sim, grid, highlight=highlight))


def attention_distance_plot(an: Analysis, lang: str = "en") -> np.ndarray:
    """ViT paper Fig. 7 (right) for this image: mean attention distance (pixels) per head and layer."""
    dist = A.mean_attention_distance(an.att(), an.prefix, an.grid, an.patch_size).numpy()   # (L, H)
    width = an.grid[1] * an.patch_size
    return R.scatter_figure(dist, width, t("layer", lang), t("distance_y", lang), t("distance_ref", lang, w=width),
                            t("head", lang))


def embedding_filters(loaded: LoadedModel, k: int = 28) -> np.ndarray:
    return loaded.cache.get(("filters", k), lambda: R.rgb_tiles(filters_of(loaded.model, k), ncols=7, tile=64))


def token_norms(an: Analysis, norms: np.ndarray, lang: str = "en") -> tuple[np.ndarray, str]:
    """Hidden-state norms per layer: (L+1, N) -> (one map over the patch grid per layer on a shared
    scale, a Markdown table of the prefix tokens' norms and the patch tokens' spread)."""
    names = an.prefix_names
    patch = torch.from_numpy(norms[:, an.prefix:]).reshape(len(norms), *an.grid)
    labels = [t("embedding_short", lang)] + [f"L{i}" for i in range(1, len(norms))]
    picture = R.tiles(patch, min(len(norms), 7), tile=96, labels=labels, vmin=0.0, vmax=float(patch.max()),
                      cmap="magma")
    head = "| | " + " | ".join(names) + f" | {t('norm_patch_median', lang)} | {t('norm_patch_max', lang)} |"
    rows = [head, "|---|" + "---:|" * (len(names) + 2)]
    for i, row in enumerate(norms):
        p = row[an.prefix:]
        rows.append(f"| {labels[i]} | " + " | ".join(f"{v:.1f}" for v in row[:an.prefix])
                    + f" | {np.median(p):.1f} | {p.max():.1f} |")
    return picture, "\n".join(rows)


# ---------------------------------------------------------------- learn: inside the ViT, MAE

def inside_steps(loaded: LoadedModel, an: Analysis, projection: torch.Tensor,
                 lang: str = "en") -> list[tuple[str, np.ndarray | None]]:
    """The tutorial's pipeline for this photo, each step with its real tensor shape and a picture.
    projection: (P, D) the patch embedding of this input (analysis.patch_projection)."""
    gh, gw = an.grid
    p, n_p = an.patch_size, gh * gw
    flat = torch.tensor(an.seen, dtype=torch.float32).reshape(gh, p, gw, p, 3).permute(0, 2, 1, 3, 4)
    flat = flat.reshape(n_p, -1) / 255                                        # (P, P·P·3) pixel values
    fmt = dict(h=an.seen.shape[0], w=an.seen.shape[1], gh=gh, gw=gw, p=p, np=n_p, pp=p * p * 3,
               d=projection.shape[-1], n=an.prefix + n_p, prefix=an.prefix,
               names=", ".join(an.prefix_names), layers=an.num_layers, heads=an.num_heads)
    top = (", ".join(f"{lab} {pr:.1%}" for _, lab, pr in an.top(5, lang)) if an.probs is not None
           else t("inside_no_head", lang))
    head_key = "inside_6_distilled" if "[DIST]" in an.prefix_names else "inside_6"
    layer_means = Q.layer_maps(an).mean(1)                                      # (L, gh, gw)
    return [
        (t("inside_1", lang, **fmt), R.patch_grid(an.seen, an.grid, p, numbers=n_p <= 256)),
        (t("inside_2", lang, **fmt), R.matrix_image(flat, "gray")),
        (t("inside_3", lang, **fmt), R.matrix_image(projection, "coolwarm", symmetric=True)),
        (t("inside_4", lang, **fmt), _posemb_matrix(loaded)),
        (t("inside_5", lang, **fmt), R.tiles(layer_means, min(an.num_layers, 12), tile=64,
                                             labels=[f"L{i}" for i in range(an.num_layers)], cmap=CMAP)),
        (t(head_key, lang, top=top), None),
    ]


def _posemb_matrix(loaded: LoadedModel) -> np.ndarray | None:
    try:
        pos, _ = position_embeddings(loaded.model)
    except NoAbsolutePositions:
        return None
    return R.matrix_image(pos, "coolwarm", symmetric=True)


def mae_pictures(an: Analysis, reconstruction: np.ndarray, mask: np.ndarray):
    """MAE: (the input with its masked patches grey, the reconstruction, the reconstruction with the
    visible patches pasted back), each (H, W, 3) uint8. reconstruction (H, W, 3) uint8 and mask
    (gh, gw), 1 = masked, from vitviz.mae.reconstruct."""
    keep = R.upsample(1 - mask, an.seen.shape[:2], smooth=False)[..., None]
    masked = (an.seen * keep + 127 * (1 - keep)).astype(np.uint8)
    pasted = (an.seen * keep + reconstruction * (1 - keep)).astype(np.uint8)
    return tuple(R.enlarge(x, 224)[0] for x in (masked, reconstruction, pasted))
