"""Pictures of the evidence: the perturbation curves (vitviz.evidence.perturb) and the sanity check
(vitviz.evidence.mprt: each method's map as 0, 1, …, L blocks are re-initialised from the top, and
beside it a small plot of its Spearman correlation and SSIM with the original map). Rendering only:
the results come in as arguments."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .. import methods
from ..core.i18n import t
from . import render as R

CMAP = "inferno"
GAP = 3
LABEL_H = 18         # a method's name above its row
PLOT_W, PLOT_H = 260, 96
SPEARMAN_RGB, SSIM_RGB = (31, 119, 180), (214, 39, 40)


def curves_plot(results: dict, fractions, lang: str = "en") -> np.ndarray:
    """perturb.curves' results for one photo: the class's probability as pixels go, per map and direction."""
    curves = {methods.get(n).name(lang): (r["positive"], r["negative"]) for n, r in results.items()}
    return R.curves_figure(fractions, curves, t("ev_curve_x", lang), t("ev_curve_y", lang),
                           t("ev_curve_pos", lang), t("ev_curve_neg", lang))


def tile_size(steps: int, width: int = 640) -> int:
    """Pixels per map tile so that a row of `steps` maps fits about `width` pixels (32 to 72)."""
    return int(min(72, max(32, (width - GAP * (steps + 1)) // steps)))


def curve(spearman: np.ndarray, ssim: np.ndarray, lang: str = "en", size=(PLOT_W, PLOT_H)) -> np.ndarray:
    """One method's small plot: Spearman (solid) and SSIM (dashed) against the randomised blocks."""
    fig, ax = R._figure((size[0] / 100, size[1] / 100))
    k = np.arange(len(spearman))
    ax.plot(k, spearman, "-o", ms=3, color=np.array(SPEARMAN_RGB) / 255, label="Spearman")
    ax.plot(k, ssim, "--s", ms=2.5, color=np.array(SSIM_RGB) / 255, label="SSIM")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_ylim(-0.35, 1.08)
    ax.set_yticks([0, 1])
    ax.set_xticks(k if len(k) <= 13 else k[::2])
    ax.tick_params(labelsize=7, pad=1)
    ax.set_xlabel(t("sanity_x_short", lang), fontsize=7, labelpad=1)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.97, bottom=0.3)
    picture = R.figure_to_array(fig)
    return picture


def sanity_picture(maps: dict[str, np.ndarray], spearman: dict[str, np.ndarray], ssim: dict[str, np.ndarray],
                   lang: str = "en") -> np.ndarray:
    """Rows of methods: the name, then its maps at 0 .. L randomised blocks (each on its own colour
    scale) and its small plot. maps: method -> (L+1, gh, gw) (mprt.SanityResult.maps)."""
    names = list(maps)
    steps, gh, gw = next(iter(maps.values())).shape
    tile = tile_size(steps)
    th = max(1, round(tile * gh / gw))
    strip_w = steps * (tile + GAP) + GAP
    row_h = LABEL_H + max(th, PLOT_H) + GAP
    head_h = 2 * LABEL_H + 4
    out = Image.new("RGB", (strip_w + PLOT_W + 2 * GAP, head_h + len(names) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    _header(draw, steps, tile, strip_w, lang)
    for i, name in enumerate(names):
        y = head_h + i * row_h
        draw.text((GAP, y + 2), methods.get(name).name(lang), fill=(0, 0, 0), font=R.font(13))
        for k in range(steps):
            rgb = R.colorize(maps[name][k], CMAP)
            out.paste(Image.fromarray(rgb).resize((tile, th), Image.NEAREST),
                      (GAP + k * (tile + GAP), y + LABEL_H + (max(th, PLOT_H) - th) // 2))
        plot = Image.fromarray(curve(spearman[name], ssim[name], lang))
        out.paste(plot, (strip_w + GAP, y + LABEL_H + (max(th, PLOT_H) - plot.height) // 2))
    return np.asarray(out)


def _header(draw: ImageDraw.ImageDraw, steps: int, tile: int, strip_w: int, lang: str) -> None:
    """The columns' meaning, the step numbers above the tiles, and the plot's legend."""
    draw.text((GAP, 2), t("sanity_columns", lang, last=steps - 1), fill=(0, 0, 0), font=R.font(12))
    for k in range(steps):
        draw.text((GAP + k * (tile + GAP) + tile // 2 - 4, LABEL_H + 2), str(k), fill=(60, 60, 60), font=R.font(12))
    x, y = strip_w + GAP + 4, LABEL_H + 10
    draw.line([x, y, x + 22, y], fill=SPEARMAN_RGB, width=2)
    draw.text((x + 26, y - 7), t("sanity_spearman", lang), fill=(0, 0, 0), font=R.font(12))
    x2 = x + 40 + int(R.font(12).getlength(t("sanity_spearman", lang)))
    for dx in range(0, 22, 6):
        draw.line([x2 + dx, y, x2 + dx + 3, y], fill=SSIM_RGB, width=2)
    draw.text((x2 + 26, y - 7), "SSIM", fill=(0, 0, 0), font=R.font(12))
