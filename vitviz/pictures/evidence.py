"""Pictures of the evidence: the perturbation curves (vitviz.evidence.perturb) and the sanity check
(vitviz.evidence.mprt: each method's map at each step of the randomisation from the top, the trained
model first, and beside it a small plot of its Spearman correlation and SSIM with the original map).
Rendering only: the results come in as arguments."""

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


# Short names of the sanity check's steps (mprt.SanityResult.steps); a block is numbered from 1, as the lens does
STEP_TICKS = {"original": "0", "head": "H", "embeddings": "E", "all": "A"}


def step_ticks(steps) -> list[str]:
    """A label per step for the picture: 0 (the trained model), H (head and final norm), a block's
    number from 1, E (the embeddings), A (everything at once); the step numbers where the steps are
    single modules."""
    ticks = [STEP_TICKS.get(s) or (str(int(s[6:]) + 1) if s.startswith("block ") else None) for s in steps]
    return ticks if None not in ticks else [str(k) for k in range(len(ticks))]


def tile_size(steps: int, width: int = 640) -> int:
    """Pixels per map tile so that a row of `steps` maps fits about `width` pixels (32 to 72)."""
    return int(min(72, max(32, (width - GAP * (steps + 1)) // steps)))


def curve(spearman: np.ndarray, ssim: np.ndarray, lang: str = "en", size=(PLOT_W, PLOT_H),
          ticks: list[str] | None = None) -> np.ndarray:
    """One method's small plot: Spearman (solid) and SSIM (dashed) against the steps of randomisation
    (ticks: their labels, step_ticks; default the step numbers)."""
    fig, ax = R._figure((size[0] / 100, size[1] / 100))
    k = np.arange(len(spearman))
    ticks = ticks or [str(i) for i in k]
    ax.plot(k, spearman, "-o", ms=3, color=np.array(SPEARMAN_RGB) / 255, label="Spearman")
    ax.plot(k, ssim, "--s", ms=2.5, color=np.array(SSIM_RGB) / 255, label="SSIM")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_ylim(-0.35, 1.08)
    ax.set_yticks([0, 1])
    shown = k if len(k) <= 15 else k[::2]
    ax.set_xticks(shown, [ticks[i] for i in shown])
    ax.tick_params(labelsize=7, pad=1)
    ax.set_xlabel(t("sanity_x_short", lang), fontsize=7, labelpad=1)
    fig.subplots_adjust(left=0.08, right=0.99, top=0.97, bottom=0.3)
    picture = R.figure_to_array(fig)
    return picture


def sanity_picture(maps: dict[str, np.ndarray], spearman: dict[str, np.ndarray], ssim: dict[str, np.ndarray],
                   lang: str = "en", steps: tuple[str, ...] | None = None) -> np.ndarray:
    """Rows of methods: the name, then its map at each step (each on its own colour scale) and its
    small plot. maps: method -> (S, gh, gw) (mprt.SanityResult.maps); steps: the S steps' labels
    (mprt.SanityResult.steps; default: numbered)."""
    names = list(maps)
    n_steps, gh, gw = next(iter(maps.values())).shape
    ticks = step_ticks(steps) if steps is not None else [str(k) for k in range(n_steps)]
    if len(ticks) != n_steps:
        raise ValueError(f"expected a label for each of {n_steps} steps, got {len(ticks)}")
    tile = tile_size(n_steps)
    th = max(1, round(tile * gh / gw))
    strip_w = n_steps * (tile + GAP) + GAP
    row_h = LABEL_H + max(th, PLOT_H) + GAP
    head_h = 2 * LABEL_H + 4
    out = Image.new("RGB", (strip_w + PLOT_W + 2 * GAP, head_h + len(names) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    blocks = sum(1 for s in steps or () if s.startswith("block "))
    _header(draw, ticks, tile, strip_w, lang, blocks)
    for i, name in enumerate(names):
        y = head_h + i * row_h
        draw.text((GAP, y + 2), methods.get(name).name(lang), fill=(0, 0, 0), font=R.font(13))
        for k in range(n_steps):
            rgb = R.colorize(maps[name][k], CMAP)
            out.paste(Image.fromarray(rgb).resize((tile, th), Image.NEAREST),
                      (GAP + k * (tile + GAP), y + LABEL_H + (max(th, PLOT_H) - th) // 2))
        plot = Image.fromarray(curve(spearman[name], ssim[name], lang, ticks=ticks))
        out.paste(plot, (strip_w + GAP, y + LABEL_H + (max(th, PLOT_H) - plot.height) // 2))
    return np.asarray(out)


def _header(draw: ImageDraw.ImageDraw, ticks: list[str], tile: int, strip_w: int, lang: str, blocks: int) -> None:
    """The columns' meaning, the steps' labels above the tiles, and the plot's legend."""
    draw.text((GAP, 2), t("sanity_columns", lang, last=len(ticks) - 1, top=blocks), fill=(0, 0, 0), font=R.font(12))
    for k, tick in enumerate(ticks):
        width = int(R.font(12).getlength(tick))
        draw.text((GAP + k * (tile + GAP) + (tile - width) // 2, LABEL_H + 2), tick, fill=(60, 60, 60),
                  font=R.font(12))
    x, y = strip_w + GAP + 4, LABEL_H + 10
    draw.line([x, y, x + 22, y], fill=SPEARMAN_RGB, width=2)
    draw.text((x + 26, y - 7), t("sanity_spearman", lang), fill=(0, 0, 0), font=R.font(12))
    x2 = x + 40 + int(R.font(12).getlength(t("sanity_spearman", lang)))
    for dx in range(0, 22, 6):
        draw.line([x2 + dx, y, x2 + dx + 3, y], fill=SSIM_RGB, width=2)
    draw.text((x2 + 26, y - 7), "SSIM", fill=(0, 0, 0), font=R.font(12))
