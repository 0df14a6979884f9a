"""int8 inference on CPUs that multiply int8 fast (AVX512-VNNI, AVX-VNNI, AMX), behind a fidelity gate.

What runs in int8: the Linear layers (query, key, value, output, MLP, head), with int8 weights and
activations quantized per token at run time (torchao's ``Int8DynamicActivationInt8WeightConfig``),
compiled by inductor, which hands them to oneDNN's int8 kernels. What stays float32: the patch
embedding, layer norms, the softmax and so the attention maps, and every explanation.

Why a gate: a quantized model is a slightly different model. Before int8 serves, it is compared
with the float32 model on the example photos (top-1 agreement, Pearson r of the rollout maps and
of each layer's attention); below THRESHOLDS, float32 serves and the page says why. And int8 is
only worth that difference where it is faster: the gate then times the compiled int8 forward
against the compiled float32 forward on a photo (interleaved runs, medians) and serves int8 only
when it takes at most FASTER of float32's time. On a CPU where oneDNN or inductor fall back to a
reference int8 kernel (int8 weights prepacked for AMX on a CPU without it), int8 is many times
slower and float32 serves, saying so. The check runs once per model, on the thread that compiles
it, and its result stays with the model.

Why gradients use float32: dynamic activation quantization rounds, and torchao's int8 Linear
returns no gradient (backward through it raises "does not require grad"), so class-specific maps,
LeGrad and hidden states run on the float32 weights the int8 model keeps for them.

Where int8 is used: only when asked (``--dtype int8``), and by the live camera through
``fast_model`` whenever the gate passed. ``auto`` keeps float32 / bfloat16 for the analysis:
researchers explain the real model.
"""

from __future__ import annotations

import copy
import importlib
import logging
import sys
import threading
import time
from dataclasses import dataclass, replace

from .analysis import prepare_images
from .attention import rollout
from .core import compat, cpu
from .core.compiled import MAX_BATCH, CompiledForward, wanted
from .core.paths import example_photos

# Lowest fidelity at which int8 may serve, chosen from what benchmarks/int8_fidelity.py measured
# (results/int8_fidelity.json; the reasoning in results/measured.md, "int8 fidelity gate"): well below
# the loss measured on real and random-weight models, far above a broken quantization's.
THRESHOLDS = {"top1": 0.9, "rollout": 0.98, "attention": 0.98}

MIN_TORCH = (2, 8)

# int8 serves when its forward takes at most this share of float32's: a smaller gain is within what
# two shared cores' timings move between runs, and not worth a slightly different model
FASTER = 0.9
SPEED_RUNS = 5

_said: set[str] = set()
_said_lock = threading.Lock()


# ---------------------------------------------------------------- can int8 run here?

def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def torchao_version() -> str:
    """The installed torchao's version, or "" when it is missing (found without importing it)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torchao")
    except PackageNotFoundError:
        return ""


def refusal(device: str, compile_mode: str = "auto") -> str:
    """Why int8 cannot serve on `device`, in plain English; "" when it can."""
    import torch

    if device != "cpu":
        return f"int8 runs on the CPU only, not on {device}"
    if not cpu.int8_isa():
        return "this CPU has no AVX512-VNNI, AVX-VNNI or AMX, so int8 would not be faster"
    if _version(torch.__version__) < MIN_TORCH:
        return f"int8 needs torch 2.8 or newer (this is {torch.__version__})"
    ao = torchao_version()
    if not ao:
        return "int8 needs the torchao package (pip install torchao)"
    if _version(ao) >= (0, 18) and _version(torch.__version__) < (2, 11):
        return f"torchao {ao} needs torch 2.11 or newer (this is {torch.__version__})"
    ok, why = wanted(device, compile_mode)
    if not ok:        # eager int8 is slower than float32: only the compiled forward is fast
        return f"int8 needs the compiled forward ({why})"
    return ""


def refuse(device: str) -> str:
    """refusal(), said once per reason on stderr for whoever started vitviz."""
    why = refusal(device)
    if why:
        _say_once(f"vitviz: int8 refused: {why}. Using float32.")
    return why


def _say_once(message: str) -> None:
    with _said_lock:
        first = message not in _said
        _said.add(message)
    if first:
        print(message, file=sys.stderr, flush=True)


def import_torchao_quietly() -> None:
    """Import torchao (where installed) with its loggers quiet: transformers imports it while loading
    any model, and on a CPU-only torch its GPU extensions each print a warning."""
    if "torchao" in sys.modules or not torchao_version():
        return
    with _quiet("torchao", "torch.utils._pytree"):
        for module in ("torchao.quantization", "torchao.prototype.safetensors.safetensors_support"):
            try:    # the second is what transformers imports
                importlib.import_module(module)
            except Exception:  # a torchao this torch cannot import: int8 fails later, float32 serves
                pass


# ---------------------------------------------------------------- quantizing

def quantized_copy(model):
    """A copy of a float32 model whose Linear layers are int8 (dynamic activation scales)."""
    with _quiet("torchao", "torch.utils._pytree"):   # its import warns about GPU-only extensions
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    q = copy.deepcopy(model)
    quantize_(q, Int8DynamicActivationInt8WeightConfig())
    return q


class _quiet:
    """Raise the named loggers to ERROR for a while."""

    def __init__(self, *names: str):
        self.loggers = [logging.getLogger(n) for n in names]

    def __enter__(self):
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)


# ---------------------------------------------------------------- the gate

@dataclass
class Fidelity:
    """int8 against float32 on the same photos."""
    photos: int
    top1: float                    # share of photos with the same top class (1.0 without a classifier)
    rollout: float                 # lowest Pearson r of the rollout maps over the photos
    attention: tuple[float, ...]   # per layer: Pearson r of the attentions (all photos, heads, entries)

    def verdict(self, thresholds: dict | None = None) -> tuple[bool, str]:
        """(passed, why not, in English)."""
        t = THRESHOLDS if thresholds is None else thresholds
        worst = min(self.attention)
        failed = [f"top-1 agreement {self.top1:.0%} < {t['top1']:.0%}" if self.top1 < t["top1"] else "",
                  f"rollout r {self.rollout:.3f} < {t['rollout']}" if not self.rollout >= t["rollout"] else "",
                  f"attention r {worst:.3f} < {t['attention']}" if not worst >= t["attention"] else ""]
        failed = [f for f in failed if f]
        return not failed, "; ".join(failed)

    def as_dict(self) -> dict:
        return {"photos": self.photos, "top1_agreement": self.top1, "rollout_r_min": self.rollout,
                "attention_r_min": min(self.attention), "attention_r": list(self.attention)}


def pearson(a, b) -> float:
    """Pearson r of two tensors' entries (float64); 1.0 for two equal constant tensors."""
    import torch

    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    den = float(a.norm() * b.norm())
    if den == 0.0:
        return 1.0 if torch.equal(a, b) else 0.0
    return float((a @ b) / den)


def outputs(fn, batch, chunk: int = MAX_BATCH):
    """(logits (B, K) or None, attentions (L, B, H, N, N)) float32 from fn(pixel_values=..., output_attentions=True)."""
    import torch

    logits, atts = [], []
    with torch.inference_mode():
        for i in range(0, len(batch), chunk):
            out = fn(pixel_values=batch[i:i + chunk].clone(), output_attentions=True)
            lg = getattr(out, "logits", None)
            logits.append(None if lg is None else lg.float())
            atts.append(torch.stack([a.float() for a in out.attentions]))
    return (None if logits[0] is None else torch.cat(logits)), torch.cat(atts, dim=1)


def measure(loaded, float_fn, int8_fn, photos=None) -> Fidelity:
    """Compare two forwards of one model on photos (default: the example photos)."""
    import torch

    prepared = prepare_images(loaded, photos if photos is not None else example_photos())
    batch = torch.stack([p.pixel_values for _, p in prepared])
    f_logits, f_att = outputs(float_fn, batch)
    q_logits, q_att = outputs(int8_fn, batch)
    top1 = 1.0 if f_logits is None else float((f_logits.argmax(-1) == q_logits.argmax(-1)).float().mean())
    grid = loaded.grid(tuple(batch.shape[-2:]))
    roll = min(pearson(rollout(f_att[:, i], loaded.prefix, grid), rollout(q_att[:, i], loaded.prefix, grid))
               for i in range(len(batch)))
    return Fidelity(len(batch), top1, roll, tuple(pearson(f, q) for f, q in zip(f_att, q_att)))


# ---------------------------------------------------------------- is it faster?

@dataclass
class Speed:
    """Median seconds of one forward (batch 1) of the compiled int8 and float32 models."""
    int8_s: float
    float32_s: float

    @property
    def ratio(self) -> float:
        return self.int8_s / self.float32_s

    @property
    def faster(self) -> bool:
        return self.ratio <= FASTER

    def as_dict(self) -> dict:
        return {"int8_ms": round(self.int8_s * 1e3, 2), "float32_ms": round(self.float32_s * 1e3, 2),
                "int8_over_float32": round(self.ratio, 3), "serves_int8_at_most": FASTER}


def race(int8_fn, float_fn, pixel_values, runs: int = SPEED_RUNS) -> Speed:
    """Time two forwards (each called with a (B, 3, H, W) batch) on the same input, interleaved (so
    that a busy moment slows both), after one warm-up call each: medians over `runs`."""
    import statistics

    import torch

    times: dict[str, list[float]] = {"int8": [], "float32": []}
    with torch.inference_mode():
        for fn in (int8_fn, float_fn):
            fn(pixel_values.clone())
        for _ in range(runs):
            for name, fn in (("int8", int8_fn), ("float32", float_fn)):
                batch = pixel_values.clone()
                t0 = time.perf_counter()
                fn(batch)
                times[name].append(time.perf_counter() - t0)
    return Speed(statistics.median(times["int8"]), statistics.median(times["float32"]))


def timed(loaded, base, int8_fn) -> Speed:
    """int8 against what serves when int8 does not (the float32 model's compiled forward, else its eager
    forward) on one photo."""
    if base.compiled.state == "compiling":
        base.compiled.wait()

    def float32(x):      # what serves when int8 does not: the compiled forward, else (None) the eager model
        out = base.compiled(x) if base.compiled.state == "ready" else None
        return out if out is not None else base.model(pixel_values=x, output_attentions=True)

    photo = prepare_images(loaded, example_photos()[:1])[0][1].pixel_values[None]
    return race(lambda x: int8_fn(pixel_values=x, output_attentions=True), float32, photo)


# ---------------------------------------------------------------- the int8 forward

class Int8Forward(CompiledForward):
    """The int8 compiled forward of a model, serving only once the gate passed.

    state: "compiling" (float32 serves meanwhile), "ready" (int8 serves), "failed" (float32 serves;
    ``fidelity`` holds the measurement when the gate said no, ``reason`` says why in English).
    """

    def __init__(self, base):
        super().__init__()
        self.base = base                     # the float32 LoadedModel: reference, gradients, fallback
        self.fidelity: Fidelity | None = None
        self.speed: Speed | None = None
        self.gate_failed = False          # the fidelity gate said no
        self.slower = False               # faithful, but not faster than float32 here

    def start(self, loaded, background: bool = True, mode: str = "auto") -> None:
        """As CompiledForward.start (mode: the compile setting; int8 needs the compiled forward)."""
        with self._lock:
            off = self.state == "off"
        why = off and (refusal(loaded.device, mode) or
                       ("" if loaded.int8 else f"{loaded.name} runs in float32 (its family is not quantized)"))
        if why:
            with self._lock:
                self.state, self.reason = "failed", why
                self._done.set()
            self._float_instead()
            return
        super().start(loaded, background, mode)

    def _build(self, loaded) -> None:
        t0 = time.perf_counter()
        try:
            # float32's compiled forward first: torch.compile caches code per function, and a float32
            # forward compiled after the int8 one failed its guards at request time (it ran eagerly)
            self.base.compiled.start(self.base, background=False)
            with _quiet("torchao", "torch.utils._pytree"):   # GPU-only extensions, deprecations
                self._compile(loaded)
            self.fidelity = measure(loaded, self.base.model, self._fn)
            ok, why = self.fidelity.verdict()
            if not ok:
                self.state, self.reason, self.gate_failed = "failed", f"fidelity gate: {why}", True
            else:
                self.speed = timed(loaded, self.base, self._fn)
                if self.speed.faster:
                    self.state = "ready"
                else:
                    self.state, self.slower = "failed", True
                    self.reason = (f"int8 was slower here: {self.speed.int8_s * 1e3:.0f} ms against "
                                   f"{self.speed.float32_s * 1e3:.0f} ms for float32 per forward")
        except Exception as exc:  # any failure leaves float32 in charge
            self.state, self.reason = "failed", f"{type(exc).__name__}: {str(exc)[:200]}"
        finally:
            self.seconds = time.perf_counter() - t0
            if self.state == "failed":
                self._fn = None                  # free the quantized copy
                self._float_instead()
            self._done.set()

    def _compile(self, loaded) -> None:
        """Quantize a copy of the float32 model, compile it and warm it up for the app's batches."""
        import torch

        qmodel = quantized_copy(self.base.model)
        # freezing turns the weights into constants, which inductor needs to prepack them for
        # oneDNN's int8 kernels (torch.compile's options={"freezing": True} was not applied in torch 2.13)
        with compat.inductor_freezing():
            fn = torch.compile(qmodel)
            h, w = loaded.input_size
            g = torch.Generator().manual_seed(0)
            for b in (1, 2, 3):      # as CompiledForward: batch 1, then one dynamic-batch version
                with torch.inference_mode():
                    fn(pixel_values=torch.randn(b, 3, h, w, generator=g), output_attentions=True)
        self._fn, self._input_size = fn, (h, w)

    @property
    def int8_forward(self):
        """The compiled int8 model (called as the model is), None until built or after a failure."""
        return self._fn

    def _float_instead(self) -> None:
        """Where int8 will not serve, the float32 model's own compiled forward does (in the background)."""
        if self.base.compiled.state == "off":
            self.base.compiled.start(self.base, background=True)

    def __call__(self, pixel_values, **kw):
        import torch

        if self.state == "ready":
            return super().__call__(pixel_values.to(torch.float32), **kw)
        if self.state == "failed":
            return self.base.compiled(pixel_values, **kw)
        return None

    def describe(self) -> str:
        if self.state == "ready":
            return (f"compiled ({self.seconds:.0f} s), fidelity gate passed, {self.speed.ratio:.2f}× "
                    "float32's time per forward")
        if self.state == "compiling":
            return "float32 while int8 is prepared and checked…"
        return f"float32 (int8 off: {self.reason}); float32 forward {self.base.compiled.describe()}"


# ---------------------------------------------------------------- the models

def int8_model(base):
    """The int8 variant of a float32 LoadedModel: it shares the float32 weights (gradients, eager
    fallback) and caches; made once per model. Its forward is prepared by ``.compiled.start``.
    A model int8 does not serve (its ``int8`` fact) gets `base` back, said once on stderr."""
    if base.dtype != "float32":
        raise ValueError(f"int8 is made from a float32 model, got {base.dtype}")
    if not base.int8:
        _say_once(f"vitviz: int8 refused: {base.name} ({base.family}) runs in float32; its family is not "
                  "quantized.")
        return base
    return base.cache.get(("int8-model",), lambda: replace(base, dtype="int8", compiled=Int8Forward(base)))


def serving_dtype(loaded) -> str:
    """What the analysis forward runs in now: "int8" once the gate passed, else the weights' dtype."""
    if loaded.dtype != "int8":
        return loaded.dtype
    return "int8" if loaded.compiled.state == "ready" else "float32"


def record(loaded) -> dict:
    """What a run's settings say about precision: the dtype that served, and the int8 gate's figures."""
    out = {"dtype": serving_dtype(loaded), "forward": loaded.compiled.describe()}
    fid = getattr(loaded.compiled, "fidelity", None)
    if fid is not None:
        out["int8_fidelity"] = fid.as_dict()
    speed = getattr(loaded.compiled, "speed", None)
    if speed is not None:
        out["int8_speed"] = speed.as_dict()
    return out


def settle(loaded, background: bool = False):
    """For batch work (the CLI, the evaluation): prepare an int8 model now and return it when the
    gate passed, else its float32 model (saying why on stderr). Other models come back unchanged."""
    if loaded.dtype != "int8":
        return loaded
    loaded.compiled.start(loaded, background=background)
    loaded.compiled.wait()
    if loaded.compiled.state == "ready":
        return loaded
    print(f"vitviz: int8 not used: {loaded.compiled.reason}. Using float32.", file=sys.stderr, flush=True)
    return loaded.compiled.base


def fast_model(base):
    """For the live camera: the int8 variant of the float32 model `base` when its gate passed, else None
    (int8 unsupported here, the gate failed, or it is still being prepared: use the float model
    meanwhile). The first call starts the preparation in the background (compile and gate: tens of
    seconds); calls are cheap, so ask on every frame. A model served in bfloat16 gets its int8 variant
    from a float32 copy of the same weights (the caller loads it: vitviz.models.load)."""
    if base.dtype == "int8":
        int8 = base
    else:
        if refusal(base.device) or not base.int8:
            return None
        int8 = int8_model(base)
    if int8.compiled.state == "off":
        int8.compiled.start(int8, background=True)
    return int8 if int8.compiled.state == "ready" else None
