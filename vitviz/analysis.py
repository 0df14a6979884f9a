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

from .core.cache import Cache
from .core.preprocess import Prepared, open_image, prepare

# Maps over the photo are drawn at most this large (render.overlay_on_upload), so an analysis keeps
# a copy of this size, not the upload: a 12-megapixel phone photo would hold 36 MB per session.
DISPLAY_SIDE = 640

# Attentions are kept in half precision between requests: plenty for display, and a
# ViT-B/16 analysis then takes 12·12·197·197·2 B ≈ 11 MB per session instead of 22 MB.
STORE_DTYPE = torch.float16


@dataclass
class Analysis:
    model_name: str
    upload: Image.Image                  # the photo, upright RGB, at most DISPLAY_SIDE on its long side
    seen: np.ndarray                     # (H, W, 3) uint8: what the model saw after resize / crop
    box: tuple[float, float, float, float]  # the part of `upload` that `seen` shows (its pixels)
    pixel_values: torch.Tensor           # (3, H, W) float32 model input (for class-specific maps)
    grid: tuple[int, int]                # (gh, gw)
    patch_size: int
    prefix_names: tuple[str, ...]        # the tokens before the patches: [CLS], [DIST], registers
    attentions: torch.Tensor             # (L, H, N, N) in STORE_DTYPE, N = prefix + gh·gw
    probs: np.ndarray | None             # (K,) softmax over classes; None for backbones without a head
    labels: dict[int, str]               # class index -> the model's own label
    class_names: dict[str, dict[int, str]]   # language -> class index -> the name shown (vitviz.core.classnames)
    memo: Cache = field(default_factory=lambda: Cache(max_entries=8))  # per-image results (class maps by target)
    probe: torch.Tensor | None = None    # (H, N) an attention-pooling probe's attention (SigLIP: no [CLS]), STORE_DTYPE

    @property
    def prefix(self) -> int:
        return len(self.prefix_names)

    @property
    def num_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def num_heads(self) -> int:
        return self.attentions.shape[1]

    def top(self, k: int = 5, lang: str = "en") -> list[tuple[int, str, float]]:
        """[(class index, name in lang, probability)] best first; [] without a classifier."""
        if self.probs is None:
            return []
        names = self.class_names.get(lang, self.labels)
        idx = np.argsort(-self.probs)[:k]
        return [(int(i), names.get(int(i), str(int(i))), float(self.probs[i])) for i in idx]

    def att(self) -> torch.Tensor:
        """Attentions as float32 for the maths."""
        return self.attentions.float()

    def nbytes(self) -> int:
        """Memory held: attentions, model input, the two pictures."""
        return (self.attentions.numel() * self.attentions.element_size() + self.pixel_values.numel() * 4
                + self.seen.nbytes + 3 * self.upload.width * self.upload.height)


def forward(loaded, pixel_values: torch.Tensor, output_attentions: bool = True, **kw):
    """Run the model on a (B, 3, H, W) batch as its adapter runs it; interpolate position embeddings
    when the input size differs from the model's."""
    x = pixel_values.to(loaded.device, loaded.torch_dtype)
    if tuple(x.shape[-2:]) != tuple(loaded.input_size):
        kw["interpolate_pos_encoding"] = True
    if output_attentions and not kw:
        out = loaded.compiled(x)          # None unless a checked compiled forward fits this call
        if out is not None:
            return out
    return loaded.forward(x, output_attentions=output_attentions, **kw)


def image_attentions(attentions, i: int) -> torch.Tensor:
    """Image i's attentions, L × (B, H, N, N) -> (L, H, N, N) in STORE_DTYPE on the CPU, in storage of
    its own: a view into the batch would keep the whole batch's attentions alive in every session
    holding one of its analyses (4× the memory after a classroom burst)."""
    buf = torch.empty((len(attentions), *attentions[0].shape[1:]), dtype=STORE_DTYPE)
    for layer, a in enumerate(attentions):
        buf[layer].copy_(a[i])                   # one pass: device, dtype and layout at once
    return buf


def display_copy(upload: Image.Image, box) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The upload shrunk to at most DISPLAY_SIDE on its long side, and the box in its pixels."""
    scale = DISPLAY_SIDE / max(upload.size)
    if scale >= 1:
        return upload, box
    small = upload.resize((max(1, round(upload.width * scale)), max(1, round(upload.height * scale))),
                          Image.BILINEAR)
    sx, sy = small.width / upload.width, small.height / upload.height
    x0, y0, x1, y1 = box
    return small, (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


@dataclass
class ModelOutput:
    """What the model returned for one image, on the CPU, ready to be sent between processes."""
    attentions: torch.Tensor             # (L, H, N, N) in STORE_DTYPE
    probs: np.ndarray | None             # (K,) or None without a classifier
    probe: torch.Tensor | None = None    # (H, N) a pooling probe's attention over the last layer's tokens


def run_model(loaded, batch: torch.Tensor) -> list[ModelOutput]:
    """The one forward pass: (B, 3, H, W) model inputs -> one ModelOutput per image."""
    with torch.inference_mode():
        out = forward(loaded, batch)
    if not out.attentions:
        raise RuntimeError("the model returned no attentions; load it with attn_implementation='eager'")
    logits = getattr(out, "logits", None) if loaded.has_classifier else None
    probs = logits.float().softmax(-1).cpu().numpy() if logits is not None else None
    probe = getattr(out, "probe_attentions", None)
    return [ModelOutput(image_attentions(out.attentions, i), None if probs is None else probs[i],
                        None if probe is None else probe[i, :, 0].to("cpu", STORE_DTYPE))
            for i in range(len(batch))]


def prepare_images(loaded, images, size: tuple[int, int] | None = None) -> list[tuple[Image.Image, Prepared]]:
    """Decode and preprocess (on the CPU; raises BadImage): [(upright upload, Prepared)]."""
    spec = loaded.spec if size is None else loaded.spec.at_size(*size)
    uploads = [open_image(im) for im in images]
    return [(u, prepare(u, spec)) for u in uploads]


def analyze_batch(loaded, images, size: tuple[int, int] | None = None, run=run_model) -> list[Analysis]:
    """Analyze several images in one forward pass (a classroom burst). size: (H, W) to run
    at instead of the model's input size (position embeddings are interpolated). run: the
    forward pass, ``run_model`` or a stand-in that calls it elsewhere (a GPU worker)."""
    prepared = prepare_images(loaded, images, size)
    batch = torch.stack([p.pixel_values for _, p in prepared])
    h, w = batch.shape[-2:]
    grid = loaded.grid((h, w))
    outputs = run(loaded, batch)
    n = outputs[0].attentions.shape[-1]
    if n != loaded.prefix + grid[0] * grid[1]:
        raise ValueError(f"expected {loaded.prefix} + {grid[0] * grid[1]} tokens for a {grid} grid, got {n}")
    analyses = []
    for (upload, p), out in zip(prepared, outputs):
        small, box = display_copy(upload, p.box)
        analyses.append(Analysis(model_name=loaded.name, upload=small, seen=p.seen, box=box,
                                 pixel_values=p.pixel_values, grid=grid, patch_size=loaded.patch_size,
                                 prefix_names=loaded.prefix_names, attentions=out.attentions, probs=out.probs,
                                 labels=loaded.id2label, class_names=loaded.class_names, probe=out.probe))
    return analyses


def patch_projection(loaded, pixel_values: torch.Tensor) -> torch.Tensor:
    """The patch embedding of one input (3, H, W): the linear projection of every patch, (P, D)
    float32 on the CPU. Reads the weights only (no encoder pass)."""
    emb = getattr(getattr(loaded.model, "base_model", loaded.model), "embeddings", None)
    if emb is None or not hasattr(emb, "patch_embeddings"):
        raise ValueError(f"{loaded.name} has no patch embedding to show")
    x = pixel_values[None].to(loaded.device, loaded.torch_dtype)
    kw = {"interpolate_pos_encoding": True} if _accepts(emb.patch_embeddings, "interpolate_pos_encoding") else {}
    with torch.inference_mode():
        proj = emb.patch_embeddings(x, **kw)
    proj = proj[0] if isinstance(proj, tuple) else proj
    return proj.float()[0].cpu()


def token_norms(loaded, pixel_values: torch.Tensor) -> np.ndarray:
    """‖hidden state‖ of every token after the embeddings and after each block: (L+1, N) float32,
    from one forward pass of one input (3, H, W). Large ViTs grow a few high-norm patch tokens that
    the model uses as scratch space (Darcet et al., ICLR 2024); register tokens take that role."""
    with torch.inference_mode():
        out = forward(loaded, pixel_values[None], output_attentions=False, output_hidden_states=True)
    return torch.stack([h[0].float().norm(dim=-1) for h in out.hidden_states]).cpu().numpy()


def _accepts(module, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def analyze(loaded, image, size: tuple[int, int] | None = None) -> Analysis:
    """Analyze one image (path, bytes, array or PIL image)."""
    return analyze_batch(loaded, [image], size)[0]


def embedding_filters(model, k: int = 28) -> np.ndarray:
    """ViT paper Fig. 7 (left): the leading principal components of the patch projection,
    each drawn as a P×P RGB patch. Returns (k, P, P, C) in [0, 1]."""
    if hasattr(model, "patch_embed"):                       # ScratchViT: Linear over (C, P, P) pixels
        cfg = model.config
        w = model.patch_embed.proj.weight.reshape(cfg.hidden_size, cfg.num_channels, cfg.patch_size, cfg.patch_size)
    else:
        w = model.base_model.embeddings.patch_embeddings.projection.weight  # Conv2d (D, C, P, P)
    d, c, p, q = w.shape
    flat = w.detach().float().reshape(d, -1)
    flat = flat - flat.mean(0, keepdim=True)
    _, _, vt = torch.linalg.svd(flat, full_matrices=False)
    comps = vt[:k].reshape(-1, c, p, q)
    lo = comps.amin((1, 2, 3), keepdim=True)
    hi = comps.amax((1, 2, 3), keepdim=True)
    return ((comps - lo) / (hi - lo).clamp_min(1e-12)).permute(0, 2, 3, 1).numpy()
