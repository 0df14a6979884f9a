"""One forward pass per image: everything the class-agnostic views need.

``analyze(loaded, image)`` runs the model once with attentions returned and keeps
what the maps are computed from, so changing a rendering control (fusion, discard,
opacity, clicked patch) re-renders without running the model again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .preprocess import Prepared, open_image, prepare

# Attentions are kept in half precision between requests: plenty for display, and a
# ViT-B/16 analysis then takes 12·12·197·197·2 B ≈ 11 MB per session instead of 22 MB.
STORE_DTYPE = torch.float16


@dataclass
class Analysis:
    model_name: str
    upload: Image.Image                  # the photo, upright RGB
    seen: np.ndarray                     # (H, W, 3) uint8: what the model saw after resize / crop
    box: tuple[float, float, float, float]  # the part of the upload that `seen` shows (upload pixels)
    pixel_values: torch.Tensor           # (3, H, W) float32 model input (for class-specific maps)
    grid: tuple[int, int]                # (gh, gw)
    patch_size: int
    prefix: int                          # tokens before the patches: [CLS], [DIST], registers
    attentions: torch.Tensor             # (L, H, N, N) in STORE_DTYPE, N = prefix + gh·gw
    probs: np.ndarray | None             # (K,) softmax over classes; None for backbones without a head
    labels: dict[int, str]
    extras: dict = field(default_factory=dict)   # per-image results worth keeping (class maps by target)

    @property
    def num_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def num_heads(self) -> int:
        return self.attentions.shape[1]

    def top(self, k: int = 5) -> list[tuple[int, str, float]]:
        """[(class index, label, probability)] best first; [] without a classifier."""
        if self.probs is None:
            return []
        idx = np.argsort(-self.probs)[:k]
        return [(int(i), self.labels.get(int(i), str(int(i))), float(self.probs[i])) for i in idx]

    def att(self) -> torch.Tensor:
        """Attentions as float32 for the maths."""
        return self.attentions.float()

    def nbytes(self) -> int:
        return self.attentions.numel() * self.attentions.element_size() + self.pixel_values.numel() * 4


def prefix_names(family: str, prefix: int) -> list[str]:
    if family == "deit" and prefix == 2:
        return ["[CLS]", "[DIST]"]
    return ["[CLS]"] + [f"[REG{i}]" for i in range(prefix - 1)]


def forward(loaded, pixel_values: torch.Tensor, output_attentions: bool = True, **kw):
    """Run the model on a (B, 3, H, W) batch; interpolate position embeddings when the
    input size differs from the model's."""
    model = loaded.model
    x = pixel_values.to(loaded.device, getattr(torch, loaded.dtype))
    if tuple(x.shape[-2:]) != tuple(loaded.input_size):
        kw["interpolate_pos_encoding"] = True
    if output_attentions and not kw:
        out = loaded.compiled(x)          # None unless a checked compiled forward fits this call
        if out is not None:
            return out
    if loaded.family == "vit_mae" and "noise" not in kw:
        # Attention views need every patch in order: MAE shuffles tokens by argsort(noise) even at
        # mask ratio 0, so give it increasing noise (identity order). The masked pass is separate.
        n = (x.shape[-2] // loaded.patch_size) * (x.shape[-1] // loaded.patch_size)
        kw["noise"] = torch.arange(n, dtype=torch.float32, device=x.device).expand(x.shape[0], n)
    return model(pixel_values=x, output_attentions=output_attentions, **kw)


def image_attentions(attentions, i: int) -> torch.Tensor:
    """Image i's attentions, L × (B, H, N, N) -> (L, H, N, N) in STORE_DTYPE on the CPU, in storage of
    its own: a view into the batch would keep the whole batch's attentions alive in every session
    holding one of its analyses (4× the memory after a classroom burst)."""
    buf = torch.empty((len(attentions), *attentions[0].shape[1:]), dtype=STORE_DTYPE)
    for layer, a in enumerate(attentions):
        buf[layer].copy_(a[i])                   # one pass: device, dtype and layout at once
    return buf


def analyze_batch(loaded, images, size: tuple[int, int] | None = None) -> list[Analysis]:
    """Analyse several images in one forward pass (a classroom burst). size: (H, W) to run
    at instead of the model's input size (position embeddings are interpolated)."""
    spec = loaded.spec if size is None else loaded.spec.at_size(*size)
    uploads = [open_image(im) for im in images]
    prepared: list[Prepared] = [prepare(u, spec) for u in uploads]
    batch = torch.stack([p.pixel_values for p in prepared])
    h, w = batch.shape[-2:]
    grid = (h // loaded.patch_size, w // loaded.patch_size)
    with torch.inference_mode():
        out = forward(loaded, batch)
    if not out.attentions:
        raise RuntimeError("the model returned no attentions; load it with attn_implementation='eager'")
    n = out.attentions[0].shape[-1]
    prefix = n - grid[0] * grid[1]
    if prefix < 0:
        raise ValueError(f"expected at least {grid[0] * grid[1]} tokens for a {grid} grid, got {n}")
    logits = getattr(out, "logits", None) if loaded.has_classifier else None
    probs = logits.float().softmax(-1).cpu().numpy() if logits is not None else None
    return [Analysis(model_name=loaded.name, upload=u, seen=p.seen, box=p.box, pixel_values=p.pixel_values,
                     grid=grid, patch_size=loaded.patch_size, prefix=prefix,
                     attentions=image_attentions(out.attentions, i),
                     probs=None if probs is None else probs[i], labels=loaded.id2label)
            for i, (u, p) in enumerate(zip(uploads, prepared))]


def analyze(loaded, image, size: tuple[int, int] | None = None) -> Analysis:
    """Analyse one image (path, bytes, array or PIL image)."""
    return analyze_batch(loaded, [image], size)[0]
