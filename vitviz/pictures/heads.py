"""Pictures and tables of direct logit attribution and head knock-out (vitviz.heads): the layers × heads
grid of contributions beside each layer's MLP, a head's sources over the input, the top classes before
and after heads are switched off, and rollout with and without them. Rendering only: the results come in
as arguments. The grid is drawn with PIL at a known geometry (grid_layout), so a click maps to its cell."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .. import attention as A
from ..core.i18n import t
from . import render as R

CMAP = "RdBu_r"          # diverging: red adds to the logit, blue takes away, white is zero
ROLLOUT_CMAP = "inferno"
OFF_RGB = (40, 40, 40)
SELECTED_RGB = (0, 200, 255)
MIN_WIDTH = 440          # room for the summary lines under a narrow grid


@dataclass(frozen=True)
class GridLayout:
    """Where the cells of the layers × heads grid and the MLP column are, in the picture's pixels."""
    layers: int
    heads: int
    cell: int
    left: int = 40           # row labels
    top: int = 58            # title, axes line, column labels
    gap: int = 12            # between the heads and the MLP column

    @property
    def mlp_x(self) -> int:
        return self.left + self.heads * self.cell + self.gap

    @property
    def bottom(self) -> int:
        return self.top + self.layers * self.cell

    @property
    def width(self) -> int:
        return max(self.mlp_x + self.cell + 16, MIN_WIDTH)

    def head_box(self, layer: int, head: int) -> tuple[int, int, int, int]:
        x, y = self.left + head * self.cell, self.top + layer * self.cell
        return x, y, x + self.cell - 1, y + self.cell - 1

    def mlp_box(self, layer: int) -> tuple[int, int, int, int]:
        y = self.top + layer * self.cell
        return self.mlp_x, y, self.mlp_x + self.cell - 1, y + self.cell - 1

    def head_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(layer, head) of the cell under pixel (x, y), or None off the heads (the MLP column, the margins)."""
        col, row = (x - self.left) // self.cell, (y - self.top) // self.cell
        if 0 <= col < self.heads and 0 <= row < self.layers:
            return int(row), int(col)
        return None


def grid_layout(layers: int, heads: int) -> GridLayout:
    """The geometry for a model's grid: cells as large as fit about 520 pixels, at least 20."""
    return GridLayout(layers, heads, cell=int(min(56, max(20, 520 // max(layers, heads + 1)))))


def signed_limit(*values) -> float:
    """The colour scale's end: the largest magnitude among the values (1 where all are zero)."""
    m = max((float(np.abs(np.asarray(v)).max()) for v in values if np.size(v)), default=0.0)
    return m or 1.0


def contribution_grid(attr, name: str, lang: str = "en", selected: tuple[int, int] | None = None,
                      off=()) -> np.ndarray:
    """The attribution (vitviz.heads.attribution.Attribution) as a picture: every head's contribution
    (L × H cells) beside each layer's MLP, on one diverging colour scale with its bar, then the
    embeddings, the sums by kind, the bias, their total and the model's own logit. `selected`: a
    (layer, head) outlined; `off`: (layer, head) pairs crossed out (switched off)."""
    lay = grid_layout(*attr.heads.shape)
    m = signed_limit(attr.heads, attr.mlp)
    height = lay.bottom + 118
    img = Image.new("RGB", (lay.width, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    d.text((4, 2), t("heads_title", lang, name=name), fill=(0, 0, 0), font=R.font(14))
    d.text((4, 22), t("heads_axes", lang), fill=(80, 80, 80), font=R.font(11))
    _draw_cells(img, lay, attr, m, lang)
    for layer, head in off:
        if 0 <= layer < lay.layers and 0 <= head < lay.heads:
            x0, y0, x1, y1 = lay.head_box(layer, head)
            d.line([(x0 + 3, y0 + 3), (x1 - 3, y1 - 3)], fill=OFF_RGB, width=3)
            d.line([(x0 + 3, y1 - 3), (x1 - 3, y0 + 3)], fill=OFF_RGB, width=3)
    if selected is not None and 0 <= selected[0] < lay.layers and 0 <= selected[1] < lay.heads:
        d.rectangle(lay.head_box(*selected), outline=SELECTED_RGB, width=3)
    _colour_bar(img, lay, m, lang)
    _summary(d, lay, attr, lang)
    return np.asarray(img)


def _draw_cells(img: Image.Image, lay: GridLayout, attr, m: float, lang: str) -> None:
    d = ImageDraw.Draw(img)
    small = R.font(10 if lay.cell < 44 else 11)
    for h in range(lay.heads):
        x0, _, x1, _ = lay.head_box(0, h)
        d.text(((x0 + x1) / 2, lay.top - 2), str(h), fill=(0, 0, 0), font=R.font(11), anchor="mb")
    d.text((lay.mlp_x + lay.cell / 2, lay.top - 2), t("heads_mlp", lang), fill=(0, 0, 0), font=R.font(11), anchor="mb")
    for layer in range(lay.layers):
        _, y0, _, y1 = lay.head_box(layer, 0)
        d.text((lay.left - 6, (y0 + y1) / 2), str(layer), fill=(0, 0, 0), font=R.font(11), anchor="rm")
        boxes = [(lay.head_box(layer, h), attr.heads[layer, h]) for h in range(lay.heads)]
        for box, value in boxes + [(lay.mlp_box(layer), attr.mlp[layer])]:
            colour = tuple(int(c) for c in R.colorize(np.array([[value]]), CMAP, -m, m)[0, 0])
            d.rectangle(box, fill=colour, outline=(255, 255, 255))
            if lay.cell >= 34:
                ink = (255, 255, 255) if abs(value) > 0.6 * m else (0, 0, 0)
                d.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), _short(value), fill=ink, font=small,
                       anchor="mm")


def _colour_bar(img: Image.Image, lay: GridLayout, m: float, lang: str) -> None:
    x0, x1, y = lay.left, lay.mlp_x + lay.cell, lay.bottom + 10
    bar = R.lut(CMAP)[np.linspace(0, 255, x1 - x0).astype(np.uint8)][None].repeat(10, 0)
    img.paste(Image.fromarray(bar), (x0, y))
    d = ImageDraw.Draw(img)
    d.text((x0, y + 12), f"-{m:.3g} {t('heads_against', lang)}", fill=(0, 0, 0), font=R.font(11))
    d.text(((x0 + x1) / 2, y + 12), "0", fill=(0, 0, 0), font=R.font(11), anchor="ma")
    d.text((x1, y + 12), f"+{m:.3g} {t('heads_for', lang)}", fill=(0, 0, 0), font=R.font(11), anchor="ra")


def _summary(d: ImageDraw.ImageDraw, lay: GridLayout, attr, lang: str) -> None:
    y = lay.bottom + 44
    parts = t("heads_parts", lang, emb=_signed(attr.embeddings), heads=_signed(attr.heads.sum()),
              mlp=_signed(attr.mlp.sum()), bias=_signed(attr.bias))
    d.text((4, y), parts, fill=(0, 0, 0), font=R.font(12))
    d.text((4, y + 20), t("heads_total", lang, total=f"{attr.total:.3f}", logit=f"{attr.logit:.3f}"),
           fill=(0, 0, 0), font=R.font(12))
    d.text((4, y + 40), t("heads_bias_is", lang), fill=(100, 100, 100), font=R.font(10))


def _signed(v: float) -> str:
    return f"{float(v):+.2f}"


def _short(v: float) -> str:
    """A cell's value in at most five characters."""
    v = float(v)
    return f"{v:+.2f}" if abs(v) < 10 else f"{v:+.0f}" if abs(v) < 1000 else f"{v:+.0e}"


def source_map(seen: np.ndarray, attr, layer: int, head: int, lang: str = "en", alpha: float = 0.6) -> np.ndarray:
    """Where head (layer, head)'s contribution came from: its sources (gh, gw) over the model's input,
    patch by patch, red where a patch's value added to the logit and blue where it took away (scale
    symmetric about zero), with the colour bar."""
    sources = attr.sources[layer, head]
    m = signed_limit(sources)
    big, _ = R.enlarge(seen, 336)
    picture = R.overlay(big, sources, alpha, CMAP, smooth=False, vmin=-m, vmax=m)
    return R.with_colorbar(picture, CMAP, f"-{m:.3g} {t('heads_against', lang)}", f"+{m:.3g} {t('heads_for', lang)}")


def all_sources(attr) -> np.ndarray:
    """Every head's sources as small multiples, layers as rows, on one diverging scale."""
    maps = attr.sources.reshape(-1, *attr.sources.shape[2:])
    m = signed_limit(maps)
    labels = [f"L{layer} H{head}" for layer in range(attr.heads.shape[0]) for head in range(attr.heads.shape[1])]
    return R.tiles(maps, attr.heads.shape[1], tile=64, cmap=CMAP, labels=labels, vmin=-m, vmax=m)


def top_change_table(result, names: dict[int, str], lang: str = "en", k: int = 5) -> str:
    """Markdown: the top-k classes with every head on and with the heads off, with their probabilities."""
    before = [int(c) for c in np.argsort(-result.base_logits, kind="stable")[:k]]
    after = result.top(k)
    probs, base = result.probs, result.base_probs
    rows = [f"| # | {t('heads_before', lang)} | {t('heads_after', lang)} |", "|---:|---|---|"]
    for i, (b, a) in enumerate(zip(before, after)):
        rows.append(f"| {i + 1} | {names.get(b, str(b))} {base[b]:.1%} | {names.get(a, str(a))} {probs[a]:.1%} |")
    return "\n".join(rows)


def rollout_pair(seen: np.ndarray, before: np.ndarray, after: np.ndarray, count: int, lang: str = "en",
                 alpha: float = 0.6) -> np.ndarray:
    """Rollout (gh, gw) with every head on and with `count` heads off, side by side over the input, each
    scaled to its own range, with captions."""
    big, _ = R.enlarge(seen, 224)
    tiles = [R.overlay(big, A.normalize(_tensor(m)).numpy(), alpha, ROLLOUT_CMAP) for m in (before, after)]
    captions = [t("heads_rollout_on", lang), t("heads_rollout_off", lang, n=count)]
    h, w = tiles[0].shape[:2]
    out = Image.new("RGB", (2 * w + 8, h + 20), (255, 255, 255))
    d = ImageDraw.Draw(out)
    for i, (tile, caption) in enumerate(zip(tiles, captions)):
        out.paste(Image.fromarray(tile), (i * (w + 8), 20))
        d.text((i * (w + 8) + 2, 2), caption, fill=(0, 0, 0), font=R.font(13))
    return R.with_colorbar(np.asarray(out), ROLLOUT_CMAP, t("low", lang), t("high", lang))


def _tensor(m):
    import torch

    return torch.as_tensor(np.asarray(m, dtype=np.float32))
