"""Pictures and tables of the logit lens (vitviz.lens.read_layers): the probability of the final
top classes layer by layer, the top classes of each layer, and each patch's top class at a layer.
Rendering only: the read-out comes in as an argument."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..core.i18n import t
from . import render as R

MAX_COLOURS = 12       # classes with a colour of their own in the patch map; the rest share grey
OTHER_RGB = (150, 150, 150)
LEGEND_W = 250


def layer_label(layer: int, lang: str = "en") -> str:
    """Row 0 reads the embeddings, row l the output of block l."""
    return t("embedding_short", lang) if layer == 0 else str(layer)


def probabilities(logits: torch.Tensor) -> np.ndarray:
    """(L+1, K) logits -> (L+1, K) softmax per layer, float64."""
    return torch.as_tensor(logits).double().softmax(-1).numpy()


def top_plot(logits: torch.Tensor, names: dict[int, str], lang: str = "en", k: int = 5) -> np.ndarray:
    """The probability of the last layer's top-k classes at every layer's read-out."""
    probs = probabilities(logits)
    final = np.argsort(-probs[-1], kind="stable")[:k]
    fig, ax = R._figure((6.4, 3.8))
    colours = R.lut("tab10")
    x = np.arange(len(probs))
    for i, c in enumerate(final):
        ax.plot(x, probs[:, c], "-o", ms=3, color=colours[int(i * 255 / 9)] / 255, label=names.get(int(c), str(c)))
    ax.set_xticks(x, [layer_label(int(i), lang) for i in x])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(t("lens_x", lang))
    ax.set_ylabel(t("lens_y", lang))
    ax.legend(fontsize=7, loc="best", title=t("lens_legend", lang), title_fontsize=7)
    fig.tight_layout()
    return R.figure_to_array(fig)


def top_table(logits: torch.Tensor, names: dict[int, str], lang: str = "en", k: int = 3) -> str:
    """Markdown: per layer, its read-out's top-k classes with their probability, and the probability
    of the model's final answer."""
    probs = probabilities(logits)
    answer = int(np.argmax(probs[-1]))
    head = (f"| {t('layer', lang)} | " + " | ".join(t("lens_rank", lang, n=i + 1) for i in range(k))
            + f" | {t('lens_answer', lang, name=names.get(answer, str(answer)))} |")
    rows = [head, "|---|" + "---|" * k + "---:|"]
    for layer, p in enumerate(probs):
        best = np.argsort(-p, kind="stable")[:k]
        cells = [f"{names.get(int(c), str(c))} {p[c]:.0%}" for c in best]
        rows.append(f"| {layer_label(layer, lang)} | " + " | ".join(cells) + f" | {p[answer]:.1%} |")
    return "\n".join(rows)


def palette(patch_class: torch.Tensor) -> dict[int, tuple[int, int, int]]:
    """A colour per class, the same at every layer: the MAX_COLOURS classes that hold the most patches
    over all layers (ties by class index) get tab20's colours; any other class maps to OTHER_RGB."""
    classes, counts = np.unique(np.asarray(patch_class).ravel(), return_counts=True)
    order = sorted(zip(-counts, classes))[:MAX_COLOURS]
    colours = R.lut("tab20")
    return {int(c): tuple(int(v) for v in colours[int(i * 255 / 19)]) for i, (_, c) in enumerate(order)}


def patch_class_map(seen: np.ndarray, grid: tuple[int, int], patch_size: int, classes: np.ndarray,
                    colours: dict[int, tuple[int, int, int]], names: dict[int, str], lang: str = "en",
                    alpha: float = 0.6) -> np.ndarray:
    """The input (in grey) with each patch coloured by its top class at one layer and the patch grid
    drawn, beside a legend of the classes present (patches per class). classes: (P,) for that
    layer, row by row; colours: palette()."""
    gh, gw = grid
    classes = np.asarray(classes).reshape(gh, gw)
    rgb = np.array([[colours.get(int(c), OTHER_RGB) for c in row] for row in classes], dtype=np.uint8)
    h, w = seen.shape[:2]
    paint = np.asarray(Image.fromarray(rgb).resize((gw * patch_size, gh * patch_size), Image.NEAREST))
    paint = np.asarray(Image.fromarray(paint).resize((w, h), Image.NEAREST)).astype(np.float32)
    grey = seen.astype(np.float32).mean(-1, keepdims=True)
    picture = R.patch_grid((grey * (1 - alpha) + paint * alpha).astype(np.uint8), grid, patch_size, numbers=False)
    return np.concatenate([picture, legend(classes, colours, names, picture.shape[0], lang)], 1)


def legend(classes: np.ndarray, colours: dict, names: dict[int, str], height: int, lang: str) -> np.ndarray:
    """Swatches of the classes present, most patches first, with their names and counts."""
    present, counts = np.unique(classes.ravel(), return_counts=True)
    order = sorted(zip(-counts, present))
    out = Image.new("RGB", (LEGEND_W, height), (255, 255, 255))
    draw = ImageDraw.Draw(out)
    draw.text((8, 4), t("lens_legend_title", lang), fill=(0, 0, 0), font=R.font(13))
    y, other = 26, 0
    for negative, c in order:
        if int(c) not in colours or y > height - 20:
            other += -negative
            continue
        draw.rectangle([8, y, 24, y + 14], fill=colours[int(c)])
        draw.text((30, y), _fit(f"{names.get(int(c), str(c))} ({-negative})", LEGEND_W - 34), fill=(0, 0, 0),
                  font=R.font(12))
        y += 20
    if other:
        draw.rectangle([8, y, 24, y + 14], fill=OTHER_RGB)
        draw.text((30, y), t("lens_other", lang, n=other), fill=(0, 0, 0), font=R.font(12))
    return np.asarray(out)


def _fit(text: str, width: int) -> str:
    """The text, cut with an ellipsis to fit `width` pixels in the legend's font."""
    f = R.font(12)
    if f.getlength(text) <= width:
        return text
    while text and f.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"
