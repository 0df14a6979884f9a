"""Loading models: the one door. Offline first, eager attention, device and dtype chosen once.

``load(name)`` asks the family registry (vitviz.core.family, the adapters in vitviz.families) which
adapter knows the model, lets it load, and keeps the result per process, so every request reuses
the same weights. The default Hub model is used when the local cache (or a reachable Hub) has it;
otherwise the model bundled under assets/models/ is used and ``LoadedModel.reason`` says why.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace

from . import (
    families,  # noqa: F401  (importing it registers the built-in families)
    quant,
)
from .core import cpu
from .core.cache import Cache
from .core.family import find, offered
from .core.loaded import DTYPES, LoadedModel
from .core.loading import BUNDLED, ModelUnavailable, resolve
from .core.paths import BUNDLED_DIR
from .core.settings import Settings
from .families.transformers import DEFAULT_MODEL

__all__ = ["BUNDLED", "DEFAULT_MODEL", "LoadedModel", "ModelUnavailable", "load", "known_models"]

BUNDLED_DESCRIPTION = "vitviz DeiT-Tiny, Fashion-MNIST (offline)"
DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}


def known_models() -> dict[str, str]:
    """What the model selector offers, id -> description: every registered family's models, then the
    bundled one."""
    return {**offered(), BUNDLED: BUNDLED_DESCRIPTION}


def display_name(name: str) -> str:
    """How the selector shows a model: its family's description and its id (the bundled model by
    description alone: its id is just "bundled")."""
    known = known_models()
    if name == BUNDLED or name not in known:
        return known.get(name, name)
    return f"{known[name]} — {name}"


def bundled_training_record() -> dict | None:
    """The bundled model's training record (teacher, heads, accuracy), None where it is missing."""
    path = BUNDLED_DIR / "training.json"
    return json.loads(path.read_text()) if path.exists() else None


# ---------------------------------------------------------------- device and dtype

def pick_device(requested: str | None = None) -> str:
    import torch

    requested = (requested or "auto").lower()
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def pick_dtype(device: str, requested: str | None = None) -> str:
    requested = (requested or "auto").lower()
    requested = DTYPE_ALIASES.get(requested, requested)
    if requested != "auto":
        if requested not in DTYPES:
            raise ValueError(f"dtype must be auto or one of {DTYPES}, got {requested!r}")
        if requested == "int8":        # only where the CPU multiplies int8 fast; else said once, float32
            return "float32" if quant.refuse(device) else "int8"
        return requested
    if device.startswith("cuda"):
        return "bfloat16"
    if device == "cpu" and cpu.fast_bf16():
        return "bfloat16"
    return "float32"


# ---------------------------------------------------------------- the per-process cache

class ModelStore:
    """The loaded models of this process, within a count and a byte budget (least recently used go)."""

    def __init__(self, max_models: int = 3, max_bytes: int = 1500 * 2**20):
        self.cache: Cache[LoadedModel] = Cache(max_entries=max_models, max_bytes=max_bytes,
                                               size_of=LoadedModel.weight_bytes)
        self.loading = threading.Lock()    # one load at a time: two requests for a new model load it once

    def get(self, name: str, device: str, dtype: str, offline: bool) -> LoadedModel:
        with self.loading:
            return self.cache.get((name, device, dtype), lambda: _load_or_explain(name, device, dtype, offline))


_STORE: ModelStore | None = None
_STORE_LOCK = threading.Lock()


def store() -> ModelStore:
    """This process's model store, sized by its settings (made on first use)."""
    global _STORE
    with _STORE_LOCK:
        if _STORE is None:
            s = Settings.from_env()
            _STORE = ModelStore(s.max_models, int(s.model_memory_mb * 2**20))
        return _STORE


def load(name: str | None = None, device: str | None = None, dtype: str | None = None,
         settings: Settings | None = None) -> LoadedModel:
    """Load (once per process) a model by Hub id, folder or "bundled".

    With no name: the settings' start model, else the default Hub model if it is cached or
    downloadable, else the bundled model, with `reason` saying why. Raises ModelUnavailable with a
    message for the user when the named model cannot be had. device and dtype: "auto" (or None) picks
    by the settings and the hardware."""
    settings = settings or Settings.from_env()
    device = pick_device(device or settings.device)
    dtype = pick_dtype(device, dtype or settings.dtype)
    if name is None:
        name = settings.model or DEFAULT_MODEL
        try:
            return load(name, device, dtype, settings)
        except ModelUnavailable as exc:
            # a copy that shares the weights and caches, so the cached entry keeps no stale reason
            return replace(load(BUNDLED, device, dtype, settings), fallback_from=exc,
                           reason=f"{exc} Using the bundled offline model instead.")
    if dtype == "int8":   # shares the float32 model's weights (gradients, fallback) and its cache entry
        return quant.int8_model(load(name, device, "float32", settings))
    return store().get(name, device, dtype, settings.offline)


def _load_or_explain(name: str, device: str, dtype: str, offline: bool) -> LoadedModel:
    quant.import_torchao_quietly()   # transformers imports torchao where installed; its GPU extensions warn on CPU
    import transformers

    transformers.logging.set_verbosity_error()  # the torchvision-fallback notice is noise for users
    try:
        source = resolve(name, offline)
        return find(source).load(source, device, dtype)
    except ModelUnavailable:
        raise
    except Exception as exc:  # a folder or repo that is not a model: say so, keep the details for the log
        raise ModelUnavailable("model_broken", f"{name} is not a model vitviz can load "
                               f"({type(exc).__name__}).", model=name) from exc


def clear_cache() -> None:
    store().cache.clear()

