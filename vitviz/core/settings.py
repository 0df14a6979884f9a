"""The settings of one process, parsed once from the environment and the command line.

Every ``VITVIZ_*`` variable (and the few that Hugging Face and Gradio set for a Space) is read here and
nowhere else; the app parses them once, lets its command line override them, and carries the result in its
context. Library calls that are given no settings (a notebook, the CLI) ask ``Settings.from_env()``.
Nothing here writes to the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Mapping

TRUE = ("1", "true", "yes", "on", "t")
COMPILE_MODES = ("auto", "wait", "on", "off")      # off also takes 0/false/no; on also 1/true/yes


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUE


def _megabytes(value: str | None) -> float | None:
    return float(value) if value and value.strip() else None


def compile_mode(value: str | None) -> str:
    """auto (default: in the background on CPU) | wait (before serving) | on (also off the CPU) | off."""
    v = (value or "auto").strip().lower()
    if v in ("0", "off", "false", "no"):
        return "off"
    if v in ("1", "on", "true", "yes"):
        return "on"
    if v not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {COMPILE_MODES}, got {value!r}")
    return v


@dataclass(frozen=True)
class Settings:
    model: str | None = None             # VITVIZ_MODEL: the start model (None: the default Hub model)
    device: str = "auto"                 # VITVIZ_DEVICE: auto, cpu, cuda, mps
    dtype: str = "auto"                  # VITVIZ_DTYPE: auto, float32, bfloat16, float16, int8
    compile: str = "auto"                # VITVIZ_COMPILE (compile_mode)
    offline: bool = False                # VITVIZ_OFFLINE=1: never ask the Hugging Face Hub
    public: bool = False                 # only the listed models and sizes (default: on a Space)
    on_space: bool = False               # SPACE_ID is set (Hugging Face sets it in every Space)
    zerogpu: bool = False                # SPACES_ZERO_GPU: model work runs in ZeroGPU's worker
    models: tuple[str, ...] = ()         # VITVIZ_MODELS: the selector's models (empty: the built-in list)
    classroom: bool = False              # VITVIZ_CLASSROOM: the class board of "Guess where it looks"
    request_memory_mb: float | None = None   # VITVIZ_REQUEST_MEMORY_MB (None: a tenth of the RAM)
    session_memory_mb: float | None = None   # VITVIZ_SESSION_MEMORY_MB (None: an eighth of the RAM)
    max_models: int = 3                  # VITVIZ_MAX_MODELS: models kept loaded at once
    model_memory_mb: float = 1500.0      # VITVIZ_MODEL_MEMORY_MB: their weights together
    host: str = "127.0.0.1"              # GRADIO_SERVER_NAME (Gradio's own variable): where the app listens
    port: int = 7860                     # GRADIO_SERVER_PORT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        on_space = bool(env.get("SPACE_ID"))
        return cls(model=env.get("VITVIZ_MODEL") or None,
                   device=(env.get("VITVIZ_DEVICE") or "auto").strip().lower(),
                   dtype=(env.get("VITVIZ_DTYPE") or "auto").strip().lower(),
                   compile=compile_mode(env.get("VITVIZ_COMPILE")),
                   offline=_flag(env.get("VITVIZ_OFFLINE")),
                   public=on_space, on_space=on_space,
                   zerogpu=_flag(env.get("SPACES_ZERO_GPU")),
                   models=tuple(dict.fromkeys(m.strip() for m in env.get("VITVIZ_MODELS", "").split(",")
                                              if m.strip())),
                   classroom=_flag(env.get("VITVIZ_CLASSROOM")),
                   request_memory_mb=_megabytes(env.get("VITVIZ_REQUEST_MEMORY_MB")),
                   session_memory_mb=_megabytes(env.get("VITVIZ_SESSION_MEMORY_MB")),
                   max_models=int(env.get("VITVIZ_MAX_MODELS") or 3),
                   model_memory_mb=float(env.get("VITVIZ_MODEL_MEMORY_MB") or 1500),
                   host=env.get("GRADIO_SERVER_NAME") or "127.0.0.1",
                   port=int(env.get("GRADIO_SERVER_PORT") or 7860))

    def overridden(self, **values) -> "Settings":
        """These settings with every value that is not None replacing its own (a command line's flags)."""
        names = {f.name for f in fields(self)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"settings have no {sorted(unknown)}; expected among {sorted(names)}")
        given = {k: v for k, v in values.items() if v is not None}
        if "compile" in given:
            given["compile"] = compile_mode(given["compile"])
        return replace(self, **given)
