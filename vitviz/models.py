"""Loading ViT-family models: offline first, eager attention, device and dtype chosen once.

``load(name)`` returns a ``LoadedModel`` and caches it per process, so every request
reuses the same weights. The default Hub model is used when the local cache (or a
reachable Hub) has it; otherwise the model bundled under assets/models/ is used and
``LoadedModel.reason`` says why.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import facts
from .cache import Cache
from .compiled import CompiledForward

if TYPE_CHECKING:
    from transformers import BaseImageProcessor, PreTrainedModel

    from .preprocess import PreprocessSpec

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_DIR = ROOT / "assets" / "models" / "deit-tiny-fashion-mnist"
BUNDLED = "bundled"                      # the name the UI and CLI use for the bundled model
DEFAULT_MODEL = "google/vit-base-patch16-224"

# The model families the classroom selector offers; locally any other Hub id or folder works too.
KNOWN_MODELS = {
    DEFAULT_MODEL: "ViT-B/16 (ImageNet-1k)",
    "facebook/deit-tiny-patch16-224": "DeiT-Tiny",
    "facebook/deit-base-distilled-patch16-224": "DeiT-B distilled ([CLS] + [DIST])",
    "microsoft/beit-base-patch16-224": "BEiT-B (relative position bias)",
    "facebook/dino-vitb16": "DINO ViT-B/16 (self-supervised)",
    "facebook/vit-mae-base": "MAE ViT-B (masked autoencoder)",
    "facebook/dinov2-small": "DINOv2-S/14 (self-supervised)",
    "facebook/dinov2-with-registers-small": "DINOv2-S/14 with registers ([CLS] + 4 registers)",
    "openai/clip-vit-base-patch32": "CLIP ViT-B/32 (labels you type)",
    "google/siglip-base-patch16-224": "SigLIP B/16 (labels you type, no [CLS])",
    "google/siglip2-base-patch16-224": "SigLIP 2 B/16 (labels in many languages, no [CLS])",
    "timm/vit_small_patch16_224.augreg_in21k_ft_in1k": "timm ViT-S/16 (ImageNet-1k)",
    BUNDLED: "vitviz DeiT-Tiny, Fashion-MNIST (offline)",
}

HUB_TIMEOUT_S = 3.0


def display_name(name: str) -> str:
    """How the selector shows a model: its family's description and its id (the bundled model by
    description alone: its id is just "bundled")."""
    if name == BUNDLED or name not in KNOWN_MODELS:
        return KNOWN_MODELS.get(name, name)
    return f"{KNOWN_MODELS[name]} — {name}"


def bundled_training_record() -> dict | None:
    """The bundled model's training record (teacher, heads, accuracy), None where it is missing."""
    path = BUNDLED_DIR / "training.json"
    return json.loads(path.read_text()) if path.exists() else None


class ModelUnavailable(RuntimeError):
    """A model could not be loaded. ``key`` names the user's message in vitviz.i18n (``fields``
    fill it); the English text, for logs and the command line, names no server path.

    keys: model_not_cached (not in the local cache, Hub unreachable), model_download (the Hub
    refused or failed), model_broken (files found but not a model vitviz can load),
    bundled_missing (the offline model is not in this checkout)."""

    def __init__(self, key: str, message: str, **fields):
        super().__init__(message)
        self.key = key
        self.fields = fields


@dataclass
class LoadedModel(facts.ModelFacts):
    """A model ready to run, with its facts (vitviz.facts: sizes, prefix tokens, capabilities)."""
    name: str                   # what the user asked for (Hub id, folder, or "bundled")
    model: PreTrainedModel      # in eval mode, eager attention, no weight gradients
    processor: BaseImageProcessor
    spec: PreprocessSpec        # the processor's resize / crop / normalisation
    device: str
    dtype: str                  # "float32" | "bfloat16" | "float16" | "int8" (vitviz.quant: float32 weights kept)
    source: str = "local"       # "cache", "hub", "local", "bundled"
    reason: str = ""            # why this model, in English (when it is not the one asked for)
    fallback_from: ModelUnavailable | None = None  # the failure that made this the model: its key says why
    cache: Cache = field(default_factory=Cache)  # model-only results (position-embedding similarity, filters)
    compiled: CompiledForward = field(default_factory=CompiledForward)  # shared by copies, like the cache

    @property
    def input_size(self) -> tuple[int, int]:
        return self.spec.input_size

    @property
    def torch_dtype(self):
        """The dtype of the weights and inputs of `model` (an int8 model keeps float32 ones)."""
        import torch

        return torch.float32 if self.dtype == "int8" else getattr(torch, self.dtype)


# ---------------------------------------------------------------- device and dtype

def pick_device(requested: str | None = None) -> str:
    import torch

    requested = (requested or os.environ.get("VITVIZ_DEVICE") or "auto").lower()
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def cpu_has_fast_bf16() -> bool:
    """AMX or AVX512-BF16: there bfloat16 matmuls beat float32 (DESIGN.md, 'Precision and speed')."""
    import torch

    cpu = getattr(torch, "cpu", None)
    checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(cpu, c, lambda: False)() for c in checks)


def pick_dtype(device: str, requested: str | None = None) -> str:
    requested = (requested or os.environ.get("VITVIZ_DTYPE") or "auto").lower()
    aliases = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}
    requested = aliases.get(requested, requested)
    if requested != "auto":
        if requested not in ("float32", "bfloat16", "float16", "int8"):
            raise ValueError(f"dtype must be auto, float32, bfloat16, float16 or int8, got {requested!r}")
        if requested == "int8":        # only where the CPU multiplies int8 fast; else said once, float32
            from .quant import refuse
            return "float32" if refuse(device) else "int8"
        return requested
    if device.startswith("cuda"):
        return "bfloat16"
    if device == "cpu" and cpu_has_fast_bf16():
        return "bfloat16"
    return "float32"


# ---------------------------------------------------------------- finding the weights

def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """True if huggingface.co answers a TCP connect within `timeout` seconds.

    Runs in a thread because DNS lookups ignore socket timeouts; a machine without
    internet must not sit in the Hub client's retry loop for minutes.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("VITVIZ_OFFLINE") == "1":
        return False
    host = constants.ENDPOINT.split("://")[-1].split("/")[0]
    ok = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def _resolve(name: str) -> tuple[str, str]:
    """(path or id to load, source). Local folders and the bundled model need no network."""
    if name == BUNDLED:
        if not (BUNDLED_DIR / "config.json").exists():
            raise ModelUnavailable("bundled_missing", "The bundled model is missing from this copy of vitviz; "
                                   "train it with: python -m vitviz.train (see its model card)", model=name)
        return str(BUNDLED_DIR), "bundled"
    if Path(name).is_dir():
        return name, "local"
    return name, "hub"


def cache_first(fetch, name: str):
    """(fetch(local_files_only=True), "cache") when the local cache has it; else, only if the Hub answers
    quickly, (fetch(local_files_only=False), "hub"). ModelUnavailable says which failed. A missing cache
    entry is an OSError in transformers and huggingface_hub alike (LocalEntryNotFoundError)."""
    try:
        return fetch(local_files_only=True), "cache"
    except OSError:
        pass
    if not hub_reachable():
        raise ModelUnavailable("model_not_cached", f"{name} is not in the local cache and the Hugging Face Hub "
                               "cannot be reached.", model=name)
    try:
        return fetch(local_files_only=False), "hub"
    except Exception as exc:
        raise ModelUnavailable("model_download", f"{name} could not be downloaded.", model=name) from exc


def _from_pretrained(loader, path: str, source: str, **kw):
    """Cache first (no network); the Hub only if it answers quickly."""
    if source != "hub":
        return loader.from_pretrained(path, **kw), source
    return cache_first(lambda local_files_only: loader.from_pretrained(path, local_files_only=local_files_only,
                                                                        **kw), path)


def _load_uncached(name: str, device: str, dtype: str) -> LoadedModel:
    from .quant import import_torchao_quietly
    import_torchao_quietly()   # transformers imports torchao where installed; its GPU extensions warn on CPU
    import torch
    import transformers
    from transformers import AutoConfig, AutoImageProcessor

    from . import timm_vit, zeroshot
    from .preprocess import spec_from_processor

    transformers.logging.set_verbosity_error()  # the torchvision-fallback notice is noise for users
    path, source = _resolve(name)
    if timm_vit.is_timm(name, path):          # timm's Hub layout: its own loader (vitviz.timm_vit)
        return timm_vit.load(name, path, source, device, dtype)
    config, source = _from_pretrained(AutoConfig, path, source)
    family = config.model_type
    if family in zeroshot.FAMILIES:           # CLIP / SigLIP: the vision tower scores typed labels
        return zeroshot.load(name, path, source, config, device, dtype)
    if family == "vit_mae":
        loader = transformers.ViTMAEForPreTraining
    elif getattr(config, "architectures", None) and any("ImageClassification" in a for a in config.architectures):
        loader = transformers.AutoModelForImageClassification
    else:  # self-supervised backbones (DINO): attention views only
        loader = transformers.AutoModel
    kw = {"attn_implementation": "eager", "dtype": getattr(torch, dtype)}
    if family == "vit_mae":
        kw["mask_ratio"] = 0.0  # attention views see every patch; mae.reconstruct masks on demand
    if loader is transformers.AutoModel and family == "vit":
        kw["add_pooling_layer"] = False
    model, _ = _from_pretrained(loader, path, source, **kw)
    processor, _ = _from_pretrained(AutoImageProcessor, path, source)
    model = model.to(device).eval()
    model.requires_grad_(False)  # class-specific maps ask for gradients of attentions, not weights
    known = facts.read(config, has_classifier=loader is transformers.AutoModelForImageClassification)
    return LoadedModel(**vars(known), name=name, model=model, processor=processor,
                       spec=spec_from_processor(processor), device=device, dtype=dtype, source=source)


# ---------------------------------------------------------------- the per-process cache

MAX_MODELS = int(os.environ.get("VITVIZ_MAX_MODELS", "3"))
# Memory budget for cached weights (ViT-B/16 is ~350 MB in float32, ~175 MB in bfloat16).
MAX_MODEL_BYTES = int(float(os.environ.get("VITVIZ_MODEL_MEMORY_MB", "1500")) * 2**20)


def model_bytes(loaded: LoadedModel) -> int:
    return sum(p.numel() * p.element_size() for p in loaded.model.parameters())


_MODELS: Cache[LoadedModel] = Cache(max_entries=MAX_MODELS, max_bytes=MAX_MODEL_BYTES, size_of=model_bytes)
_LOADING = threading.Lock()    # one load at a time: two requests for a new model load it once


def load(name: str | None = None, device: str | None = None, dtype: str | None = None) -> LoadedModel:
    """Load (once per process) a model by Hub id, folder or "bundled".

    With no name: the default Hub model if it is cached or downloadable, else the
    bundled model, with `reason` saying why. Raises ModelUnavailable with a message
    for the user when the named model cannot be had.
    """
    device = pick_device(device)
    dtype = pick_dtype(device, dtype)
    if name is None:
        name = os.environ.get("VITVIZ_MODEL") or DEFAULT_MODEL
        try:
            return load(name, device, dtype)
        except ModelUnavailable as exc:
            # a copy that shares the weights and caches, so the cached entry keeps no stale reason
            return replace(load(BUNDLED, device, dtype), fallback_from=exc,
                           reason=f"{exc} Using the bundled offline model instead.")
    if dtype == "int8":   # shares the float32 model's weights (gradients, fallback) and its cache entry
        from .quant import int8_model
        return int8_model(load(name, device, "float32"))
    key = (name, device, dtype)
    with _LOADING:
        return _MODELS.get(key, lambda: _load_or_explain(name, device, dtype))


def _load_or_explain(name: str, device: str, dtype: str) -> LoadedModel:
    try:
        return _load_uncached(name, device, dtype)
    except ModelUnavailable:
        raise
    except Exception as exc:  # a folder or repo that is not a model: say so, keep the details for the log
        raise ModelUnavailable("model_broken", f"{name} is not a model vitviz can load "
                               f"({type(exc).__name__}).", model=name) from exc


def clear_cache() -> None:
    _MODELS.clear()
