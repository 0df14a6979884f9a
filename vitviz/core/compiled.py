"""A compiled inference forward (torch.compile / inductor), prepared in the background.

Why: on a CPU without AMX, bfloat16 matrix products already run at the cores' peak; what is left is
the work between them — layer norms, GELU, the softmax, copies, weight reordering — which inductor
fuses into a few loops and, with freezing, does once (the gain measured on ViT-B/16: results/measured.md,
"Compiled forward").

Compiling takes tens of seconds on two cores, so it runs once per model on its own thread while the
eager model keeps answering; requests switch to the compiled forward when it is ready and has been
checked against the eager one. A call the compiled code was not built for (another resolution,
gradients, MAE's token order) runs eagerly instead of recompiling inside somebody's request. Which
models compile is a fact of the model (``LoadedModel.compiles``, stated by its family's adapter);
whether to compile is the process's setting (vitviz.core.settings: auto, wait, on, off).
"""

from __future__ import annotations

import shutil
import sys
import threading
import time

MAX_BATCH = 4          # the app's queue batches at most this many uploads
ATOL = 0.02            # attention probabilities: compiled vs eager (bfloat16 rounding is ~0.004)


def wanted(device: str, mode: str = "auto") -> tuple[bool, str]:
    """(compile?, why not) for a model on `device` under the compile setting `mode`."""
    import torch

    if mode == "off":
        return False, "compiling is off (--compile off)"
    if not hasattr(torch, "compile"):
        return False, "this torch has no torch.compile"
    if device != "cpu" and mode != "on":
        return False, "compiled forward is only used on CPU"
    if not any(shutil.which(c) for c in ("g++", "c++", "clang++")):
        return False, "no C++ compiler for inductor"
    return True, ""


class CompiledForward:
    """The compiled forward of one loaded model, and where it stands.

    state: "off" (not asked for), "compiling", "ready", "failed" (reason says why; eager is used).
    """

    def __init__(self):
        self.state = "off"
        self.reason = ""
        self.seconds = 0.0
        self.calls = 0               # calls answered by the compiled code
        self.fallbacks = 0           # calls that fitted but ran eagerly (see __call__)
        self._fn = None
        self._input_size: tuple[int, int] | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ preparing

    def start(self, loaded, background: bool = True, mode: str = "auto") -> None:
        """Compile `loaded.model` (once; later calls do nothing) and check it against eager.
        mode: the compile setting (vitviz.core.settings.compile_mode)."""
        with self._lock:
            if self.state != "off":
                return
            ok, why = wanted(loaded.device, mode)
            if ok and not loaded.compiles:
                ok, why = False, f"{loaded.name} runs eagerly (its family is not compiled)"
            if not ok:
                self.state, self.reason = "failed", why
                self._done.set()
                return
            self.state = "compiling"
        if background:
            threading.Thread(target=self._build, args=(loaded,), name="vitviz-compile", daemon=True).start()
        else:
            self._build(loaded)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until compiling has finished; True if the compiled forward is in use."""
        self._done.wait(timeout)
        return self.state == "ready"

    def _build(self, loaded) -> None:
        import torch

        t0 = time.perf_counter()
        try:
            fn = torch.compile(loaded.model, options={"freezing": True})
            dtype = loaded.torch_dtype
            h, w = loaded.input_size
            g = torch.Generator().manual_seed(0)
            # batch 1 gets its own specialised code; 2..MAX_BATCH share one dynamic-batch version
            for b in (1, 2, 3):
                # made inside inference mode, as vitviz.analysis makes its inputs: the compiled code
                # is guarded on that (a tensor made outside it would not match at request time)
                with torch.inference_mode():
                    x = torch.randn(b, 3, h, w, generator=g).to(loaded.device, dtype)
                    got = fn(pixel_values=x, output_attentions=True)
                    want = loaded.model(pixel_values=x, output_attentions=True)
                _check(got, want)
            self._fn, self._input_size = fn, (h, w)
            self.state = "ready"
        except Exception as exc:  # any failure leaves the eager model in charge
            self.state, self.reason = "failed", f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            self.seconds = time.perf_counter() - t0
            self._done.set()

    # ------------------------------------------------------------ using

    def __call__(self, pixel_values, **kw):
        """The model's outputs for a (B, 3, H, W) batch from the compiled code, or None when this call
        should run eagerly."""
        import torch

        if (self.state != "ready" or kw or torch.is_grad_enabled()
                or tuple(pixel_values.shape[-2:]) != self._input_size or pixel_values.shape[0] > MAX_BATCH):
            return None
        if torch.is_inference_mode_enabled() and not pixel_values.is_inference():
            pixel_values = pixel_values.clone()   # the compiled code is guarded on inference tensors
        try:
            # never compile inside a request: an unforeseen shape raises here and runs eagerly
            with torch.compiler.set_stance("fail_on_recompile"):
                out = self._fn(pixel_values=pixel_values, output_attentions=True)
            self.calls += 1
            return out
        except Exception as exc:
            self.fallbacks += 1
            if self.fallbacks == 1:           # say it once, for whoever runs the server
                print(f"vitviz: a call ran eagerly instead of compiled: {type(exc).__name__}: {str(exc)[:2000]}",
                      file=sys.stderr, flush=True)
            return None

    def describe(self) -> str:
        if self.state == "ready":
            return f"compiled ({self.seconds:.0f} s)"
        if self.state == "compiling":
            return "compiling…"
        return "eager" + (f" ({self.reason})" if self.reason else "")


def _check(got, want) -> None:
    """Raise if the compiled outputs differ from eager ones beyond bfloat16 rounding."""
    if len(got.attentions) != len(want.attentions):
        raise RuntimeError("compiled forward returned a different number of attention maps")
    worst = max(float((a.float() - b.float()).abs().max()) for a, b in zip(got.attentions, want.attentions))
    if worst > ATOL:
        raise RuntimeError(f"compiled attentions differ from eager by {worst:.3g}")
    g, w = getattr(got, "logits", None), getattr(want, "logits", None)
    if g is not None and float((g.float() - w.float()).abs().max()) > 0.05 * float(w.float().abs().max()) + 0.05:
        raise RuntimeError("compiled logits differ from eager ones")
