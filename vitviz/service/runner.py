"""Where model work runs: on Hugging Face ZeroGPU inside ``@spaces.GPU``, elsewhere on one thread.

- Locally and on CPU Spaces all torch work runs on one model thread: every new calling thread
  would get its own OpenMP team and oneDNN caches (the server's memory grew by ~1.5 GB over 300
  requests that way).
- On ZeroGPU only functions decorated with ``spaces.GPU`` see the GPU; they run in a forked
  worker, so their arguments and results travel by pickle: a model's *name*, tensors and
  analyses, never the loaded model. Decoding uploads and rendering stay on the CPU, outside
  the GPU's time. When a visitor's GPU quota is used up the same work runs on the CPU instead,
  and the result says so.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import models

log = logging.getLogger("vitviz")
_here = threading.local()        # .model_thread is True on a runner's model thread

# Seconds of GPU asked for per call (ZeroGPU's duration). Short requests are scheduled first, and
# an unauthenticated visitor has two minutes a day, so the ask follows the work: the worker's start
# and the model's move to the GPU, plus a per-image cost for ViT-B/16 at 224×224 (a forward takes
# ~10 ms on a GPU, the perturbation curves ~150 forwards) scaled by the images and the tokens:
# linear layers grow with the tokens, attention with their square.
START_SECONDS = 5
PER_IMAGE_SECONDS = {"forward": 1, "class": 2, "perturbation": 8,
                     "evidence": 12,      # the curves and SaCo's 10 groups per map: ~1.5× the curves alone
                     "sanity": 20,        # L+3 class-map passes (ViT-B: 15) and the randomised copy
                     "heads": 2,          # a forward that keeps every block's values: the heads' attribution
                     "knockout": 2,       # forwards with heads switched off (a greedy search: a few)
                     "queries": 1}        # per photo: a forward that keeps every block's queries and keys
MAX_SECONDS = 60
REFERENCE_PIXELS = 224 * 224


def gpu_seconds(kind: str, images: int, pixels: int) -> int:
    """Seconds to ask ZeroGPU for: ``images`` images of ``pixels`` pixels each."""
    tokens = max(1.0, pixels / REFERENCE_PIXELS)
    work = images * tokens * (1 + tokens) / 2
    return int(min(MAX_SECONDS, math.ceil(START_SECONDS + PER_IMAGE_SECONDS[kind] * work)))


def _work(args: tuple) -> tuple[int, int]:
    """(images, pixels per image) of a call: its (B, C, H, W) batch, or an analysis's or a
    single image's (C, H, W) pixels."""
    for arg in args:
        shape = tuple(getattr(getattr(arg, "pixel_values", arg), "shape", ()))
        if len(shape) in (3, 4):
            return (int(shape[0]) if len(shape) == 4 else 1), int(shape[-2] * shape[-1])
    return 1, REFERENCE_PIXELS


def _on_device(kind: str, fn, name: str, device: str, dtype: str, labels, *args):
    """Run ``fn(loaded, *args)`` with the model ``name``, loaded (or found in this process's
    cache) on ``device``, scoring ``labels`` where it takes typed labels (else None). Module level,
    so ZeroGPU's worker can run it; ``kind`` sets the GPU time asked for."""
    if device.startswith("cuda"):
        import torch

        # ZeroGPU's worker is a fork of the server: OpenMP's thread pool does not survive a fork (a
        # parallel CPU op there can hang), and the GPU does the work anyway.
        torch.set_num_threads(1)
    return fn(_labelled(models.load(name, device, dtype), labels), *args)


def _labelled(loaded, labels):
    return loaded.with_labels(labels) if labels else loaded


def _gpu_seconds(kind: str, fn, name: str, device: str, dtype: str, labels, *args) -> int:
    """ZeroGPU's duration callable: it receives the same arguments as _on_device."""
    return gpu_seconds(kind, *_work(args))


@dataclass
class Ran:
    """A result and where it ran."""
    value: object
    on_cpu_fallback: bool = False    # ZeroGPU refused (quota): it ran on the CPU instead


class ModelRunner:
    def __init__(self, zerogpu: bool = False, cpu_dtype: str | None = None):
        self.zerogpu = zerogpu
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="vitviz-model", initializer=_mark_model_thread)
        self.cpu_dtype = cpu_dtype
        self._gpu = None
        if self.zerogpu:
            import spaces  # only on ZeroGPU: it patches torch's CUDA functions when imported

            self._gpu = spaces.GPU(_on_device, duration=_gpu_seconds)

    def on_thread(self, fn, *args, **kwargs):
        """Run fn on the model thread; the request's context (ZeroGPU reads who is asking from it)
        goes along. Called from the model thread itself (a view that needs class maps), it runs
        fn at once: waiting for the thread it is on would never end."""
        if getattr(_here, "model_thread", False):
            return fn(*args, **kwargs)
        ctx = contextvars.copy_context()
        return self.thread.submit(ctx.run, fn, *args, **kwargs).result()

    def call(self, fn, loaded, *args, kind: str = "forward") -> Ran:
        """``fn(loaded, *args)`` where the model lives: the GPU worker on ZeroGPU, else the model
        thread. kind: a key of PER_IMAGE_SECONDS (how much GPU time to ask for)."""
        if kind not in PER_IMAGE_SECONDS:
            raise ValueError(f"kind must be one of {sorted(PER_IMAGE_SECONDS)}, got {kind!r}")
        if self._gpu is None:
            return Ran(self.on_thread(fn, loaded, *args))
        try:
            return Ran(self._gpu(kind, fn, loaded.name, loaded.device, loaded.dtype, loaded.bound_labels, *args))
        except Exception as exc:
            if not is_zerogpu_refusal(exc):
                raise
            log.warning("ZeroGPU refused (%s); running on the CPU", getattr(exc, "title", exc))
            cpu = _labelled(models.load(loaded.name, "cpu", self.cpu_dtype), loaded.bound_labels)
            return Ran(self.on_thread(fn, cpu, *args), on_cpu_fallback=True)


def _mark_model_thread() -> None:
    _here.model_thread = True


def is_zerogpu_refusal(exc: BaseException) -> bool:
    """ZeroGPU's scheduler says no (quota used up, no GPU free, duration too long) with a
    gr.Error titled "ZeroGPU ..."; our own failures inside the worker are not refusals."""
    title = str(getattr(exc, "title", "") or "")
    return title.startswith("ZeroGPU") and "worker error" not in title

