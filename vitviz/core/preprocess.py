"""Photo -> model input, with the geometry kept so maps can be drawn back over the photo.

We read the model's image-processor settings (resize, centre crop, mean/std) into a
``PreprocessSpec`` and apply them ourselves: the result equals the processor's
(tests/test_preprocess.py), and we also know which box of the upload the model
saw, which is what lines a heatmap up with the photo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000   # refuse decompression bombs early; larger than any phone photo
MIN_SIDE = 4              # smaller than this carries no picture worth explaining


@dataclass(frozen=True)
class PreprocessSpec:
    resize: tuple[int, int] | None          # (h, w) to resize to, or None
    shortest_edge: int | None               # resize so the short side is this, keeping aspect (DeiT-style)
    crop: tuple[int, int] | None            # centre crop (h, w) after resizing, or None
    resample: int                           # PIL resampling filter
    mean: tuple[float, ...]
    std: tuple[float, ...]
    rescale: float = 1 / 255

    @property
    def input_size(self) -> tuple[int, int]:
        """(H, W) of the tensor the model receives."""
        if self.crop:
            return self.crop
        if self.resize:
            return self.resize
        raise ValueError("a shortest-edge resize without a crop has no fixed input size")

    def at_size(self, h: int, w: int) -> "PreprocessSpec":
        """The same preprocessing, producing (h, w) inputs (for 'any resolution' analysis)."""
        return replace(self, resize=(h, w), shortest_edge=None, crop=None)


def spec_from_processor(processor) -> PreprocessSpec:
    def hw(d):
        if d is None:
            return None
        d = d if isinstance(d, dict) else dict(d)
        if "height" in d and "width" in d:
            return int(d["height"]), int(d["width"])
        return None

    size = getattr(processor, "size", None) or {}
    size = size if isinstance(size, dict) else dict(size)
    do_resize = getattr(processor, "do_resize", True)
    shortest = size.get("shortest_edge") if do_resize else None
    crop = hw(getattr(processor, "crop_size", None)) if getattr(processor, "do_center_crop", False) else None
    mean = getattr(processor, "image_mean", None) or (0.5, 0.5, 0.5)
    std = getattr(processor, "image_std", None) or (0.5, 0.5, 0.5)
    if not getattr(processor, "do_normalize", True):
        mean, std = (0.0,) * len(mean), (1.0,) * len(std)
    resample = getattr(processor, "resample", Image.BILINEAR)
    return PreprocessSpec(
        resize=hw(size) if do_resize and not shortest else None,
        shortest_edge=int(shortest) if shortest else None,
        crop=crop, resample=int(resample) if resample is not None else int(Image.BILINEAR),
        mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std),
        rescale=float(getattr(processor, "rescale_factor", 1 / 255)) if getattr(processor, "do_rescale", True) else 1.0,
    )


class BadImage(ValueError):
    """The upload cannot be analyzed. ``key`` names the user's message in vitviz.core.i18n and
    ``fields`` fill it (the size where the size is the problem); the English text is for logs."""

    def __init__(self, message: str, key: str, **fields):
        super().__init__(message)
        self.key = key
        self.fields = fields


def _too_large(size: str) -> BadImage:
    return BadImage(f"The image is too large ({size}); the limit is {MAX_PIXELS // 1_000_000} megapixels.",
                    "err_too_large", size=size, limit=MAX_PIXELS // 1_000_000)


def open_image(source) -> Image.Image:
    """A path, bytes, numpy array or PIL image -> an upright RGB PIL image.

    EXIF orientation is applied, transparency is composited on white, palette and
    grey images become RGB. Raises BadImage with a plain message otherwise.
    """
    import io

    try:
        if isinstance(source, Image.Image):
            img = source
        elif isinstance(source, np.ndarray):
            arr = source
            if arr.dtype != np.uint8:
                arr = np.clip(arr * (255 if arr.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
            img = Image.fromarray(arr)
        elif isinstance(source, (bytes, bytearray)):
            img = Image.open(io.BytesIO(source))
        else:
            img = Image.open(source)
        if img.width * img.height > MAX_PIXELS:
            raise _too_large(f"{img.width}×{img.height}")
        img.load()  # decode now, so a truncated file fails here and not halfway through the analysis
        img = ImageOps.exif_transpose(img)
    except BadImage:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, TypeError) as exc:
        raise BadImage(f"This file is not an image that can be read ({type(exc).__name__}: {exc}).",
                       "err_not_image") from exc
    except Image.DecompressionBombError as exc:
        # PIL refuses before we learn the width and height: say how large it is at least
        raise _too_large(f"> {2 * (Image.MAX_IMAGE_PIXELS or 0) // 1_000_000} megapixels") from exc
    if min(img.size) < MIN_SIDE:
        raise BadImage(f"The image is {img.width}×{img.height} pixels; it needs at least "
                       f"{MIN_SIDE}×{MIN_SIDE}.", "err_too_small", size=f"{img.width}×{img.height}")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    return img.convert("RGB")


@dataclass
class Prepared:
    pixel_values: torch.Tensor    # (3, H, W) normalised, float32
    seen: np.ndarray              # (H, W, 3) uint8: the picture the model saw
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1) of the upload that `seen` shows, in upload pixels


def prepare(img: Image.Image, spec: PreprocessSpec) -> Prepared:
    """Resize / crop / normalise an RGB image as the spec says; remember the box it covers."""
    w0, h0 = img.size
    x0, y0, x1, y1 = 0.0, 0.0, float(w0), float(h0)
    if spec.shortest_edge:
        s = spec.shortest_edge
        # transformers: short side -> s, long side -> int(s * long / short)
        if w0 <= h0:
            size = (s, int(s * h0 / w0))
        else:
            size = (int(s * w0 / h0), s)
        img = img.resize(size, spec.resample)
    elif spec.resize:
        img = img.resize((spec.resize[1], spec.resize[0]), spec.resample)
    rw, rh = img.size
    if spec.crop:
        ch, cw = spec.crop
        left, top = (rw - cw) // 2, (rh - ch) // 2  # transformers' centre crop rounds down the same way
        img = _crop_padded(img, left, top, cw, ch)
        sx, sy = w0 / rw, h0 / rh
        x0, y0, x1, y1 = left * sx, top * sy, (left + cw) * sx, (top + ch) * sy
    seen = np.asarray(img, dtype=np.uint8)
    x = torch.from_numpy(seen.astype(np.float32) * spec.rescale).permute(2, 0, 1)
    mean = torch.tensor(spec.mean, dtype=torch.float32)[:, None, None]
    std = torch.tensor(spec.std, dtype=torch.float32)[:, None, None]
    return Prepared((x - mean) / std, seen, (x0, y0, x1, y1))


def _crop_padded(img: Image.Image, left: int, top: int, w: int, h: int) -> Image.Image:
    """Centre crop that pads with black when the image is smaller than the crop."""
    if left >= 0 and top >= 0:
        return img.crop((left, top, left + w, top + h))
    canvas = Image.new("RGB", (w, h))
    canvas.paste(img, (-left, -top))
    return canvas
