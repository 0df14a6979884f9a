"""Live camera frames: rollout drawn over each frame as it arrives, one frame at a time.

A frame is decoded small (JPEG's draft mode decodes at 1/2, 1/4 or 1/8 scale for almost nothing),
analyzed with the one forward pass every view uses (vitviz.analysis), and drawn as attention
rollout over the frame at a modest size without a colour bar: a live picture is looked at, not
measured. A frame that arrives while another is being worked on is dropped, never queued:
``Gate`` is a lock that is only ever tried. ``FrameRate`` says how many frames per second were
drawn, over the last few.
"""

from __future__ import annotations

import io
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from . import attention as A
from .analysis import analyze_batch, forward
from .core.preprocess import BadImage, prepare
from .pictures import maps as views
from .pictures import render

# Webcams send 0.3–2 megapixels; 4K is the most a browser camera gives. Larger is refused unread.
MAX_FRAME_PIXELS = 3840 * 2160
DISPLAY_SIDE = 480         # the live map's long side: sharp enough on a projector, cheap to draw
ALPHA = 0.5                # overlay opacity of the live map
FPS_WINDOW = 20            # frames per second are measured over this many drawn frames
FPS_GAP_S = 2.0            # a pause longer than this (stream stopped) starts the measurement anew


@dataclass
class LiveFrame:
    """One frame drawn: the picture and the model's best guess for it."""
    picture: np.ndarray                    # (H, W, 3) uint8, rollout over the frame
    top: tuple[int, str, float] | None     # (class index, name in the page's language, probability)
    seconds: float                         # time spent on this frame (decode, model, drawing)


class Gate:
    """A lock that is only tried: a frame that finds it taken is dropped, so frames never wait."""

    def __init__(self):
        self._lock = threading.Lock()
        self.dropped = 0

    @contextmanager
    def frame(self) -> Iterator[bool]:
        """``with gate.frame() as mine:`` — mine is False when another frame is being worked on."""
        mine = self._lock.acquire(blocking=False)
        if not mine:
            self.dropped += 1
        try:
            yield mine
        finally:
            if mine:
                self._lock.release()


class FrameRate:
    """Frames per second over the last ``window`` frames drawn."""

    def __init__(self, window: int = FPS_WINDOW, gap_s: float = FPS_GAP_S):
        if window < 2:
            raise ValueError(f"window must be at least 2 frames, got {window}")
        self.gap_s = gap_s
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, now: float | None = None) -> float | None:
        """A frame was drawn at ``now`` (monotonic seconds); returns the rate so far."""
        now = time.monotonic() if now is None else now
        if self._times and now - self._times[-1] > self.gap_s:
            self._times.clear()
        self._times.append(now)
        return self.fps()

    def fps(self) -> float | None:
        """(frames − 1) / seconds between the first and last of the window; None before two frames."""
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return None
        return (len(self._times) - 1) / (self._times[-1] - self._times[0])


def decode_frame(frame, need: tuple[int, int], max_side: int = DISPLAY_SIDE) -> Image.Image:
    """A camera frame (JPEG/PNG bytes, an (H, W, 3) uint8 array or a PIL image) -> an RGB image
    whose long side is at most about ``max_side`` (never smaller than ``need`` = (H, W) allows).
    BadImage for what is not a picture or is larger than MAX_FRAME_PIXELS (checked before decoding)."""
    try:
        img = Image.open(io.BytesIO(frame)) if isinstance(frame, (bytes, bytearray)) else frame
        if isinstance(img, np.ndarray):
            if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (3, 4):
                raise ValueError(f"expected an (H, W, 3) uint8 array, got {img.shape} {img.dtype}")
            img = Image.fromarray(img)
        if not isinstance(img, Image.Image):
            raise TypeError(f"expected bytes, an array or a PIL image, got {type(frame).__name__}")
        if img.width * img.height > MAX_FRAME_PIXELS:
            raise BadImage(f"The camera frame is {img.width}×{img.height}; the limit is {MAX_FRAME_PIXELS} pixels.",
                           "err_too_large", size=f"{img.width}×{img.height}", limit=MAX_FRAME_PIXELS // 1_000_000)
        # draft: decode a JPEG at the smallest 1/k scale that still covers what is needed
        img.draft("RGB", _target(img.size, need, max_side))
        img = img.convert("RGB")
    except BadImage:
        raise
    except (OSError, SyntaxError, ValueError, TypeError) as exc:
        raise BadImage(f"The camera frame is not a picture that can be read ({type(exc).__name__}).",
                       "err_not_image") from exc
    w, h = _target(img.size, need, max_side)
    if (w, h) != img.size and w < img.width:
        img = img.resize((w, h), Image.BILINEAR)
    return img


def _target(size: tuple[int, int], need: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(w, h) with the frame's aspect ratio: long side max_side, but the short side no smaller than
    the model needs (need = (H, W)), and never larger than the frame."""
    w, h = size
    scale = min(1.0, max_side / max(w, h))
    scale = max(scale, min(1.0, max(need) / min(w, h)))
    return max(1, round(w * scale)), max(1, round(h * scale))


def live_map(loaded, frame, lang: str = "en", alpha: float = ALPHA, max_side: int = DISPLAY_SIDE) -> LiveFrame:
    """One camera frame -> rollout over it, at the model's own input size. Torch work: call it
    where the model runs (the app's model thread)."""
    t0 = time.perf_counter()
    img = decode_frame(frame, _needed(loaded), max_side)
    m, box, probs = frame_rollout(loaded, img)
    return LiveFrame(draw(img, box, m, alpha, max_side), _best(loaded, probs, lang), time.perf_counter() - t0)


def draw(img: Image.Image, box, m: np.ndarray, alpha: float = ALPHA, max_side: int = DISPLAY_SIDE) -> np.ndarray:
    """The live picture: map m (gh, gw) over the frame, outside the box the model saw dimmed; no colour bar."""
    return render.overlay_on_upload(img, box, m, alpha, views.CMAP, max_side=max_side, min_side=min(max_side, 224))


def frame_rollout(loaded, img: Image.Image) -> tuple[np.ndarray, tuple, torch.Tensor | None]:
    """(rollout of [CLS] as (gh, gw) in [0, 1], the box of img the model saw, class probabilities (K,)).

    An upload's analysis keeps every head's attention for the other views; a frame needs only the
    rollout, so the heads are averaged per layer as the forward returns them (in float32, as
    attention.fuse_heads does) and nothing is copied for storage (results/measured.md, "Live frames").
    A model read by a pooling probe instead of [CLS] (SigLIP) takes the analysis's own way."""
    if loaded.query_name != "[CLS]" or not loaded.prefix:
        an = analyze_batch(loaded, [img])[0]
        return views.rollout_map(an), an.box, None if an.probs is None else torch.from_numpy(an.probs)
    p = prepare(img, loaded.spec)
    with torch.inference_mode():
        # contiguous, as a stacked batch is: the compiled forward is guarded on the input's strides and
        # would run eagerly for prepare()'s permuted (3, H, W) view
        out = forward(loaded, p.pixel_values[None].contiguous())
        fused = torch.stack([a[0].mean(0, dtype=torch.float32) for a in out.attentions])     # (L, N, N)
        logits = getattr(out, "logits", None) if loaded.has_classifier else None
        probs = None if logits is None else logits[0].float().softmax(-1)
    grid = loaded.grid(tuple(p.pixel_values.shape[-2:]))
    m = A.normalize(A.rollout(fused[:, None], loaded.prefix, grid)).numpy()     # one "head": their mean
    return m, p.box, probs


def _best(loaded, probs, lang: str) -> tuple[int, str, float] | None:
    """(class index, its name in lang, probability) of the most likely class; None without a head."""
    if probs is None:
        return None
    i = int(probs.argmax())
    names = loaded.class_names.get(lang, loaded.id2label)
    return i, names.get(i, str(i)), float(probs[i])


def _needed(loaded) -> tuple[int, int]:
    """(H, W) a frame must keep for the model's preprocessing to see full detail."""
    spec = loaded.spec
    if spec.shortest_edge:
        return spec.shortest_edge, spec.shortest_edge
    return spec.resize or loaded.input_size
