"""Pictures of queries and keys (vitviz.heads.qk): one head's scatter (matplotlib; it also returns where
each point was drawn, so a click on the picture finds its point), a layer's heads as small multiples
(drawn with numpy: twelve matplotlib axes would take a second), and a clicked token's patch and attention.
Rendering only: the embeddings come in as arguments."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from ..core.i18n import t
from ..heads.qk import KINDS, Embedding, Tokens
from . import render as R

COLOURINGS = ("kind", "row", "column", "brightness", "colour")
KIND_RGB = {"query": (0.12, 0.62, 0.35), "key": (0.87, 0.27, 0.55)}    # AttentionViz's green queries, pink keys
PREFIX_RGB = (0.35, 0.35, 0.35)
CMAPS = {"row": "viridis", "column": "plasma", "brightness": "gray"}
MARKERS = {"query": "o", "key": "^"}
PLURAL = {"query": "qk_queries", "key": "qk_keys"}
OVERVIEW_TILE = 168            # pixels per head in the small multiples
ATTENTION_CMAP = "inferno"


def point_colours(emb: Embedding, tokens: Tokens, by: str) -> np.ndarray:
    """(2·B·N, 3) RGB in [0, 1] of every point (Embedding.flat's order), coloured `by` one of COLOURINGS.
    Prefix tokens, which have no patch, are grey except when coloured by kind."""
    if by not in COLOURINGS:
        raise ValueError(f"by must be one of {COLOURINGS}, got {by!r}")
    _, b, n, _ = emb.xy.shape
    if by == "kind":
        return np.concatenate([np.tile(KIND_RGB[kind], (b * n, 1)) for kind in KINDS])
    if by == "colour":
        rgb = np.concatenate([tokens.colour.reshape(-1, 3)] * 2)
    else:
        values = np.concatenate([getattr(tokens, by).reshape(-1)] * 2)
        lo, hi = _range(tokens, by)
        level = np.nan_to_num((values - lo) / max(hi - lo, 1e-12) * 255)
        rgb = R.lut(CMAPS[by])[np.clip(level, 0, 255).astype(np.uint8)] / 255
        rgb[~np.isfinite(values)] = np.nan
    rgb = np.array(rgb, np.float64)
    rgb[~np.isfinite(rgb).all(1)] = PREFIX_RGB
    return rgb


def _range(tokens: Tokens, by: str) -> tuple[float, float]:
    if by == "row":
        return 0.0, float(tokens.grid[0] - 1)
    if by == "column":
        return 0.0, float(tokens.grid[1] - 1)
    return 0.0, 1.0


def scatter(emb: Embedding, tokens: Tokens, by: str = "kind", lang: str = "en", selected: int | None = None,
            size: tuple[float, float] = (6.4, 4.8)) -> tuple[np.ndarray, np.ndarray]:
    """One head's queries (circles) and keys (triangles) of every photo: (picture (h, w, 3) uint8, where
    each point of Embedding.flat() was drawn, (2·B·N, 2) pixels (x right, y down) of the picture)."""
    fig, ax = R._figure(size)
    xy, rgb = emb.flat(), point_colours(emb, tokens, by)
    _, b, n, _ = emb.xy.shape
    prefix = np.zeros((2, b, n), bool)
    prefix[..., :tokens.prefix] = True
    prefix = prefix.reshape(-1)
    for k, kind in enumerate(KINDS):
        part = slice(k * b * n, (k + 1) * b * n)
        patches = ~prefix[part]
        ax.scatter(*xy[part][patches].T, s=14 if b * n < 2000 else 6, c=rgb[part][patches], marker=MARKERS[kind],
                   linewidths=0, alpha=0.85)
        ax.scatter(*xy[part][~patches].T, s=70, c=rgb[part][~patches], marker=MARKERS[kind],
                   edgecolors="black", linewidths=1.2)
    if selected is not None and 0 <= selected < len(xy):
        ax.scatter(*xy[selected], s=260, facecolors="none", edgecolors=(0, 0.75, 1), linewidths=2.5)
    ax.set_title(t("qk_title", lang, layer=emb.layer, head=emb.head, photos=b, method=t(f"qk_{emb.method}", lang)),
                 fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(handles=_legend(by, lang), fontsize=8, loc="best")
    if by in CMAPS:
        _colour_bar(fig, ax, tokens, by, lang)
    fig.tight_layout()
    fig.canvas.draw()
    height = fig.canvas.get_width_height()[1]
    px = ax.transData.transform(xy)
    px[:, 1] = height - px[:, 1]
    return R.figure_to_array(fig), px


def _legend(by: str, lang: str) -> list:
    """Circles are queries, triangles keys: in their own colours when coloured by kind, else in grey."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], ls="", marker=MARKERS[kind], ms=7, label=t(PLURAL[kind], lang),
                   color=KIND_RGB[kind] if by == "kind" else PREFIX_RGB) for kind in KINDS]


def _colour_bar(fig, ax, tokens: Tokens, by: str, lang: str) -> None:
    import matplotlib as mpl

    lo, hi = _range(tokens, by)
    bar = fig.colorbar(mpl.cm.ScalarMappable(mpl.colors.Normalize(lo, hi), CMAPS[by]), ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(t(f"qk_by_{by}", lang), fontsize=9)
    if by != "brightness":
        bar.locator = mpl.ticker.MaxNLocator(integer=True)
        bar.update_ticks()


def nearest(points_px: np.ndarray, x: float, y: float) -> int:
    """The point drawn nearest to pixel (x, y) of the scatter."""
    return int(np.argmin(((points_px - (x, y)) ** 2).sum(1)))


def overview(embs: list[Embedding], tokens: Tokens, by: str, corr: list[dict[str, float]], lang: str = "en",
             selected: int | None = None, ncols: int | None = None, tile: int = OVERVIEW_TILE) -> np.ndarray:
    """A layer's heads as small multiples, each captioned with its position and brightness correlations
    (R of row, column, brightness: vitviz.heads.qk.correlations); the selected head outlined."""
    ncols = ncols or min(len(embs), 6)
    nrows = -(-len(embs) // ncols)
    gap, cap = R.TILE_GAP + 3, 2 * R.CAPTION_H + 2
    out = Image.new("RGB", (ncols * (tile + gap) + gap, nrows * (tile + gap + cap) + gap), (255, 255, 255))
    d = ImageDraw.Draw(out)
    for i, (emb, c) in enumerate(zip(embs, corr)):
        r, col = divmod(i, ncols)
        x, y = gap + col * (tile + gap), gap + r * (tile + gap + cap)
        out.paste(Image.fromarray(_raster(emb, tokens, by, tile)), (x, y + cap))
        d.text((x + 1, y), t("qk_tile", lang, head=emb.head, brightness=f"{c['brightness']:.2f}"), fill=(0, 0, 0),
               font=R.font(10))
        d.text((x + 1, y + R.CAPTION_H), t("qk_tile_r", lang, row=f"{c['row']:.2f}", column=f"{c['column']:.2f}"),
               fill=(60, 60, 60), font=R.font(10))
        if selected == emb.head:
            d.rectangle([x - 3, y + cap - 3, x + tile + 2, y + cap + tile + 2], outline=(0, 190, 255), width=3)
    return np.asarray(out)


def overview_head(n_heads: int, x: float, y: float, ncols: int | None = None,
                  tile: int = OVERVIEW_TILE) -> int | None:
    """The head whose tile of overview() is under pixel (x, y), or None between tiles."""
    ncols = ncols or min(n_heads, 6)
    gap, cap = R.TILE_GAP + 3, 2 * R.CAPTION_H + 2
    col, r = int((x - gap) // (tile + gap)), int((y - gap) // (tile + gap + cap))
    head = r * ncols + col
    return head if 0 <= col < ncols and r >= 0 and 0 <= head < n_heads else None


def _raster(emb: Embedding, tokens: Tokens, by: str, tile: int) -> np.ndarray:
    """The scatter as a (tile, tile, 3) picture: each point a 2×2 dot (queries first, keys over them)."""
    xy, rgb = emb.flat(), (point_colours(emb, tokens, by) * 255).astype(np.uint8)
    lo, hi = xy.min(0), xy.max(0)
    span = np.maximum(hi - lo, 1e-12).max()            # one scale for both axes, as in the scatter
    pix = ((xy - (lo + hi) / 2) / span * (tile - 8) + tile / 2).astype(int)
    img = np.full((tile, tile, 3), 250, np.uint8)
    for dy in (0, 1):
        for dx in (0, 1):
            img[np.clip(tile - 1 - pix[:, 1] - dy, 0, tile - 1), np.clip(pix[:, 0] + dx, 0, tile - 1)] = rgb
    return img


def token_picture(seen: np.ndarray, tokens: Tokens, token: int, attention: np.ndarray | None,
                  side: int = 224) -> np.ndarray:
    """A clicked token: its patch enlarged (a prefix token has none: a grey square), beside its photo with
    the token's attention map (gh, gw) over it and its patch outlined."""
    gh, gw = tokens.grid
    photo, _ = R.enlarge(seen, side)
    if attention is not None:
        photo = R.overlay(photo, attention / max(float(attention.max()), 1e-12), 0.55, ATTENTION_CMAP, smooth=False)
    patch = np.full((side, side, 3), 150, np.uint8)
    if token >= tokens.prefix:
        index = token - tokens.prefix
        photo = R.mark_patch(photo, index, tokens.grid)
        r, c = divmod(index, gw)
        ph, pw = seen.shape[0] // gh, seen.shape[1] // gw
        cut = np.ascontiguousarray(seen[r * ph:(r + 1) * ph, c * pw:(c + 1) * pw])
        patch = np.asarray(Image.fromarray(cut).resize((side, side), Image.NEAREST))
    photo = np.asarray(Image.fromarray(photo).resize((round(side * photo.shape[1] / photo.shape[0]), side)))
    return np.concatenate([patch, np.full((side, 8, 3), 255, np.uint8), photo], 1)
