"""Arrays -> pictures. Heatmaps are coloured with a colormap lookup table on numpy
arrays (microseconds), not by drawing matplotlib figures (tens of milliseconds).

Images are uint8 (H, W, 3) RGB arrays; maps are float arrays in [0, 1].
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

GRID_RGB = (255, 255, 255)
MARK_RGB = (0, 255, 255)
TILE_GAP = 3      # pixels between small multiples
CAPTION_H = 14    # pixels above a tile for its caption
# The machine's fonts with Hangul, used only without the one vitviz ships (vitviz.fonts, from pip)
CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
             "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
             "/System/Library/Fonts/AppleSDGothicNeo.ttc")


@lru_cache(maxsize=16)
def lut(cmap: str) -> np.ndarray:
    """(256, 3) uint8 colours of a matplotlib colormap."""
    from matplotlib import colormaps

    return (colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)


@lru_cache(maxsize=8)
def font(size: int = 12):
    """The font with Hangul that vitviz ships (Latin too; Korean colour-bar labels), else the machine's, else PIL's."""
    from ..core import fonts

    for path in filter(None, (fonts.hangul_font(), *CJK_FONTS)):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def to_numpy(m) -> np.ndarray:
    return m.detach().float().cpu().numpy() if isinstance(m, torch.Tensor) else np.asarray(m, dtype=np.float32)


def colorize(m, cmap: str = "inferno", vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """(h, w) values -> (h, w, 3) uint8. Without vmin/vmax the map's own range is used."""
    m = to_numpy(m)
    lo = np.nanmin(m) if vmin is None else vmin
    hi = np.nanmax(m) if vmax is None else vmax
    idx = (m - np.float32(lo)) * np.float32(255 / max(hi - lo, 1e-12)) + np.float32(0.5)   # in place from here
    np.nan_to_num(idx, copy=False)
    np.clip(idx, 0, 255, out=idx)
    return np.take(lut(cmap), idx.astype(np.uint8), axis=0)


def upsample(m, size: tuple[int, int], smooth: bool = True) -> np.ndarray:
    """(gh, gw) patch map -> (H, W) pixels. Bilinear with align_corners=False puts each
    patch's value at its patch centre, so the map lines up with the image."""
    t = torch.as_tensor(to_numpy(m))[None, None]
    mode = "bilinear" if smooth else "nearest"
    out = F.interpolate(t, size=size, mode=mode, **({"align_corners": False} if smooth else {}))
    return out[0, 0].numpy()


def blend(image: np.ndarray, colour: np.ndarray, alpha: float) -> np.ndarray:
    """(1-alpha)·image + alpha·colour in 8-bit fixed point (alpha in 1/256 steps): a tenth of the
    time of the float version, and within one grey level of it."""
    a = int(round(min(max(alpha, 0.0), 1.0) * 256))
    mixed = image.astype(np.uint16) * (256 - a)
    mixed += colour.astype(np.uint16) * a
    mixed += 128
    mixed >>= 8
    return mixed.astype(np.uint8)


def overlay(image: np.ndarray, m, alpha: float = 0.5, cmap: str = "inferno", smooth: bool = True,
            vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Heatmap (gh, gw) over the image the model saw (H, W, 3)."""
    h, w = image.shape[:2]
    return blend(image, colorize(upsample(m, (h, w), smooth), cmap, vmin, vmax), alpha)


def overlay_on_upload(upload: Image.Image, box, m, alpha: float = 0.5, cmap: str = "inferno",
                      max_side: int = 640, vmin=None, vmax=None, min_side: int = 224) -> np.ndarray:
    """Heatmap over the original photo at its own aspect ratio.

    box = (x0, y0, x1, y1): the part of the upload the model saw (all of it after a
    plain resize; the centre after a crop). Outside the box the photo is dimmed: the
    model never saw it.
    """
    long = max(upload.size)
    scale = min(1.0, max_side / long)
    if long * scale < min_side:          # tiny uploads (a 28×28 garment) are enlarged to be seen
        scale = min_side / long
    w, h = max(1, round(upload.width * scale)), max(1, round(upload.height * scale))
    photo = np.asarray(upload.resize((w, h), Image.NEAREST if scale > 2 else Image.BILINEAR), dtype=np.uint8)
    x0, y0, x1, y1 = (round(v * scale) for v in box)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if (x0, y0, x1, y1) == (0, 0, w, h):   # the model saw the whole photo: nothing to dim
        return overlay(photo, m, alpha, cmap, vmin=vmin, vmax=vmax)
    out = ((photo.astype(np.uint16) * 90) >> 8).astype(np.uint8)      # dimmed to 35%
    region = photo[y0:y1, x0:x1]
    if region.size:
        out[y0:y1, x0:x1] = overlay(region, m, alpha, cmap, vmin=vmin, vmax=vmax)
    return out


def enlarge(image: np.ndarray, min_side: int = 448) -> tuple[np.ndarray, int]:
    """Nearest-neighbour upscale by an integer factor so small inputs (28×28) stay crisp."""
    k = max(1, int(np.ceil(min_side / max(1, min(image.shape[:2])))))
    if k == 1:
        return image, k
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:   # PIL does it 3× faster
        h, w = image.shape[:2]
        return np.asarray(Image.fromarray(image).resize((w * k, h * k), Image.NEAREST)), k
    return image.repeat(k, 0).repeat(k, 1), k


def with_colorbar(image: np.ndarray, cmap: str = "inferno", low: str = "low", high: str = "high",
                  height: int = 14) -> np.ndarray:
    """Append a horizontal colour bar with end labels under an image."""
    w = image.shape[1]
    bar = lut(cmap)[np.linspace(0, 255, w).astype(np.uint8)][None].repeat(height, 0)
    strip = Image.new("RGB", (w, height + 16), (255, 255, 255))
    strip.paste(Image.fromarray(bar), (0, 0))
    d = ImageDraw.Draw(strip)
    d.text((2, height + 1), low, fill=(0, 0, 0), font=font(12))
    d.text((w - 2, height + 1), high, fill=(0, 0, 0), font=font(12), anchor="ra")
    return np.concatenate([image, np.asarray(strip)], 0)


def patch_grid(seen: np.ndarray, grid: tuple[int, int], patch_size: int, numbers: bool = True) -> np.ndarray:
    """The image the model saw with its patch grid and patch indices (row by row)."""
    big, k = enlarge(seen)
    colours, opacity = _grid_layer(grid, patch_size * k, numbers)   # drawn once per grid, then pasted
    out = Image.fromarray(big)
    out.paste(colours, (0, 0), opacity)
    return np.asarray(out)


@lru_cache(maxsize=32)
def _grid_layer(grid: tuple[int, int], p: int, numbers: bool) -> tuple[Image.Image, Image.Image]:
    """Grid lines and patch indices for a gh×gw grid of p-pixel patches: (RGB colours, L opacity)."""
    gh, gw = grid
    img = Image.new("RGBA", (gw * p, gh * p), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    for r in range(1, gh):
        d.line([(0, r * p), (gw * p, r * p)], fill=GRID_RGB + (255,), width=1)
    for c in range(1, gw):
        d.line([(c * p, 0), (c * p, gh * p)], fill=GRID_RGB + (255,), width=1)
    if numbers:
        size = max(7, min(14, int(p * 0.38)))
        for i in range(gh * gw):
            r, c = divmod(i, gw)
            d.text((c * p + 2, r * p + 1), str(i), fill=(255, 255, 0, 255), font=font(size),
                   stroke_width=1, stroke_fill=(0, 0, 0, 255))
    return img.convert("RGB"), img.getchannel("A")


def token_sequence(seen: np.ndarray, grid: tuple[int, int], patch_size: int, prefix_names=("[CLS]",),
                   shown: int = 7, tile: int = 56) -> np.ndarray:
    """The token sequence the encoder reads: prefix tokens, then patches 0, 1, 2, ... in order."""
    gh, gw = grid
    n = gh * gw
    shown = min(shown, n)
    labels = list(prefix_names) + [str(i) for i in range(shown)] + (["…", str(n - 1)] if shown < n else [])
    width = len(labels) * (tile + 6) + 6
    img = Image.new("RGB", (width, tile + 24), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for j, label in enumerate(labels):
        x = 6 + j * (tile + 6)
        if j < len(prefix_names):   # registers apart from [CLS] / [DIST]: they carry no class, only scratch
            d.rectangle([x, 2, x + tile, tile + 2], fill=(0, 130, 120) if label.startswith("[REG") else (60, 90, 200))
            d.text((x + tile / 2, tile / 2 + 2), label, fill=(255, 255, 255), font=font(11), anchor="mm")
            continue
        if label == "…":
            d.text((x + tile / 2, tile / 2 + 2), "…", fill=(0, 0, 0), font=font(20), anchor="mm")
            continue
        r, c = divmod(int(label), gw)
        patch = seen[r * patch_size:(r + 1) * patch_size, c * patch_size:(c + 1) * patch_size]
        img.paste(Image.fromarray(patch).resize((tile, tile), Image.NEAREST), (x, 2))
        d.text((x + tile / 2, tile + 6), label, fill=(0, 0, 0), font=font(11), anchor="mt")
    return np.asarray(img)


def tiles(maps, ncols: int, tile: int = 64, gap: int = TILE_GAP, cmap: str = "inferno", labels=None,
          vmin: float | None = None, vmax: float | None = None, highlight: int | None = None) -> np.ndarray:
    """Small multiples: K maps (K, gh, gw) -> one image, `ncols` per row, optional captions.

    vmin/vmax None: each tile uses its own range; given: one shared colour scale.
    """
    maps = to_numpy(maps)
    k, gh, gw = maps.shape
    th = max(1, round(tile * gh / gw))
    cap = CAPTION_H if labels is not None else 0
    nrows = -(-k // ncols)
    out = Image.new("RGB", (ncols * (tile + gap) + gap, nrows * (th + gap + cap) + gap), (255, 255, 255))
    d = ImageDraw.Draw(out)
    for i in range(k):
        r, c = divmod(i, ncols)
        x, y = gap + c * (tile + gap), gap + r * (th + gap + cap)
        rgb = colorize(maps[i], cmap, vmin, vmax)
        out.paste(Image.fromarray(rgb).resize((tile, th), Image.NEAREST), (x, y + cap))
        if labels is not None:
            d.text((x + 1, y), labels[i], fill=(0, 0, 0), font=font(11))
        if highlight == i:
            d.rectangle([x - 2, y + cap - 2, x + tile + 1, y + cap + th + 1], outline=(0, 200, 255), width=2)
    return np.asarray(out)


def similarity_grid(sim, grid: tuple[int, int], cmap: str = "viridis", size: int = 560,
                    highlight: int | None = None) -> np.ndarray:
    """ViT paper Fig. 7 (centre): tile (r, c) shows patch (r, c)'s similarity with all patches.

    sim: (P, P) cosine similarities, drawn on the fixed scale [-1, 1] so models compare.
    """
    gh, gw = grid
    sim = to_numpy(sim).reshape(gh * gw, gh, gw)
    gap = 1 if gh * gw > 100 else 2
    tile = max(4, (size - gap * (gw + 1)) // gw)
    return tiles(sim, gw, tile=tile, gap=gap, cmap=cmap, vmin=-1.0, vmax=1.0, highlight=highlight)


def mark_patch(image: np.ndarray, index: int, grid: tuple[int, int], colour=MARK_RGB) -> np.ndarray:
    """Outline patch `index` (row-major over grid) on an image that shows the whole grid."""
    gh, gw = grid
    h, w = image.shape[:2]
    r, c = divmod(index, gw)
    ph, pw = h / gh, w / gw
    img = Image.fromarray(image)
    ImageDraw.Draw(img).rectangle([c * pw, r * ph, (c + 1) * pw - 1, (r + 1) * ph - 1], outline=colour,
                                  width=max(2, round(min(ph, pw) / 8)))
    return np.asarray(img)


def rgb_tiles(patches: np.ndarray, ncols: int, tile: int = 64, gap: int = 3) -> np.ndarray:
    """(K, P, P, 3) floats in [0, 1] -> one image of enlarged RGB patches."""
    k = len(patches)
    nrows = -(-k // ncols)
    out = Image.new("RGB", (ncols * (tile + gap) + gap, nrows * (tile + gap) + gap), (255, 255, 255))
    for i, p in enumerate(patches):
        r, c = divmod(i, ncols)
        img = Image.fromarray((np.clip(p, 0, 1) * 255).round().astype(np.uint8)).resize((tile, tile), Image.NEAREST)
        out.paste(img, (gap + c * (tile + gap), gap + r * (tile + gap)))
    return np.asarray(out)


def figure_to_array(fig) -> np.ndarray:
    fig.canvas.draw()
    arr = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return arr


def _figure(size=(6.4, 4.0)):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    plt.rcParams["font.family"] = _plot_fonts()
    return plt.subplots(figsize=size, dpi=100)


@lru_cache(maxsize=1)
def _plot_fonts() -> list[str]:
    """DejaVu Sans for Latin, then a font with Hangul (the one vitviz ships, else the machine's): matplotlib
    (>= 3.6) falls back glyph by glyph, so Korean axis labels are drawn, not boxes."""
    from matplotlib import font_manager

    from ..core import fonts

    if bundled := fonts.matplotlib_family():
        return ["DejaVu Sans", bundled]
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return ["DejaVu Sans"] + [f for f in ("Noto Sans CJK KR", "Noto Sans CJK JP", "NanumGothic", "Apple SD Gothic Neo")
                              if f in installed][:1]


def scatter_figure(values: np.ndarray, reference: float, xlabel: str, ylabel: str, ref_label: str,
                   series: str = "head") -> np.ndarray:
    """(L, H) values: one dot per head at x = layer (ViT paper Fig. 7 right), with a reference line."""
    fig, ax = _figure()
    n_layers, n_heads = values.shape
    cmap = lut("tab10") if n_heads <= 10 else lut("viridis")
    for h in range(n_heads):
        colour = cmap[int(h * (len(cmap) - 1) / max(1, n_heads - 1))] / 255
        ax.scatter(np.arange(n_layers), values[:, h], s=18, color=colour,
                   label=f"{series} {h}" if n_heads <= 12 else None)
    ax.axhline(reference, color="grey", ls="--", lw=1)
    ax.text(0, reference, ref_label, va="bottom", fontsize=8, color="grey")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, reference * 1.05)
    ax.set_xticks(range(n_layers))
    if n_heads <= 12:
        ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    return figure_to_array(fig)


def curves_figure(x, curves: dict, xlabel: str, ylabel: str, pos_label: str = "most relevant removed first",
                  neg_label: str = "least relevant first") -> np.ndarray:
    """Perturbation curves: name -> (positive, negative); positive solid, negative dashed."""
    fig, ax = _figure((7.2, 4.2))
    colours = lut("tab10")
    for i, (name, (pos, neg)) in enumerate(curves.items()):
        c = colours[int((i % 10) * 255 / 9)] / 255
        ax.plot(x, pos, "-o", ms=3, color=c, label=f"{name}: {pos_label}")
        ax.plot(x, neg, "--", color=c, label=f"{name}: {neg_label}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return figure_to_array(fig)


def matrix_image(m, cmap: str = "coolwarm", symmetric: bool = False, max_side: int = 480) -> np.ndarray:
    """A (rows, cols) matrix as a picture, each entry at least one pixel, rows top to bottom."""
    m = to_numpy(m)
    lim = float(np.abs(m).max()) or 1.0
    rgb = colorize(m, cmap, -lim if symmetric else None, lim if symmetric else None)
    h, w = m.shape
    k = max(1, min(max_side // max(h, w), 8))
    img = Image.fromarray(rgb).resize((w * k, h * k), Image.NEAREST)
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.NEAREST)
    return np.asarray(img)
