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
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from vitviz import hosting, models

log = logging.getLogger("vitviz")
_here = threading.local()        # .model_thread is True on a runner's model thread

# Seconds of GPU asked for per call: short requests are scheduled first on ZeroGPU, and an
# unauthenticated visitor has two minutes a day. A ViT-B/16 analysis takes well under a second
# on the GPU; the rest is the worker's start.
GPU_SECONDS = {"forward": 10, "class": 15, "faithfulness": 20}


def _on_device(kind: str, fn, name: str, device: str, dtype: str, *args):
    """Run ``fn(loaded, *args)`` with the model ``name``, loaded (or found in this process's
    cache) on ``device``. Module level, so ZeroGPU's worker can run it; ``kind`` sets the
    GPU time asked for."""
    if device.startswith("cuda"):
        import torch

        # ZeroGPU's worker is a fork of the server: OpenMP's thread pool does not survive a fork (a
        # parallel CPU op there can hang), and the GPU does the work anyway.
        torch.set_num_threads(1)
    return fn(models.load(name, device, dtype), *args)


def _gpu_seconds(kind: str, *_) -> int:
    """ZeroGPU's duration callable: it receives the same arguments as _on_device."""
    return GPU_SECONDS[kind]


@dataclass
class Ran:
    """A result and where it ran."""
    value: object
    on_cpu_fallback: bool = False    # ZeroGPU refused (quota): it ran on the CPU instead


class ModelRunner:
    def __init__(self, zerogpu: bool | None = None, cpu_dtype: str | None = None):
        self.zerogpu = hosting.running_on_zerogpu() if zerogpu is None else zerogpu
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
        thread. kind: "forward", "class" or "faithfulness" (how much GPU time to ask for)."""
        if kind not in GPU_SECONDS:
            raise ValueError(f"kind must be one of {sorted(GPU_SECONDS)}, got {kind!r}")
        if self._gpu is None:
            return Ran(self.on_thread(fn, loaded, *args))
        try:
            return Ran(self._gpu(kind, fn, loaded.name, loaded.device, loaded.dtype, *args))
        except Exception as exc:
            if not is_zerogpu_refusal(exc):
                raise
            log.warning("ZeroGPU refused (%s); running on the CPU", getattr(exc, "title", exc))
            cpu = models.load(loaded.name, "cpu", self.cpu_dtype)
            return Ran(self.on_thread(fn, cpu, *args), on_cpu_fallback=True)


def _mark_model_thread() -> None:
    _here.model_thread = True


def is_zerogpu_refusal(exc: BaseException) -> bool:
    """ZeroGPU's scheduler says no (quota used up, no GPU free, duration too long) with a
    gr.Error titled "ZeroGPU ..."; our own failures inside the worker are not refusals."""
    title = str(getattr(exc, "title", "") or "")
    return title.startswith("ZeroGPU") and "worker error" not in title

