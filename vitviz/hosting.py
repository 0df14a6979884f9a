"""Who may ask for what: the policy of a public server (a Hugging Face Space) and of a local one.

Public mode is on where ``SPACE_ID`` is set (Hugging Face sets it in every Space) or when asked
for. There, only the models the selector offers can be loaded, checked by name before any file
system or network access, and only the input sizes the size list offers are accepted. Locally
any Hub id, folder and size works. In both, every request is held to a memory budget
(vitviz.limits).
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field

from . import limits
from .limits import RequestRefused

log = logging.getLogger("vitviz")
SIZE_FACTORS = (1.0, 1.5, 2.0)     # offered input sizes, as multiples of the model's own


def running_on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def running_on_zerogpu() -> bool:
    """Hugging Face's ZeroGPU hardware (the `spaces` package reads the same variable)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


def offered_models(start: str | None = None) -> tuple[str, ...]:
    """The selector's models: VITVIZ_MODELS (comma-separated ids, set by a Space's owner) or the
    built-in list, with the start model first when it is not among them."""
    from .models import KNOWN_MODELS

    env = [m.strip() for m in os.environ.get("VITVIZ_MODELS", "").split(",") if m.strip()]
    names = env or list(KNOWN_MODELS)
    if start and start not in names:
        names.insert(0, start)
    return tuple(dict.fromkeys(names))


def offered_sizes(input_size: tuple[int, int], patch_size: int) -> list[tuple[int, int]]:
    """The model's own input size, then larger multiples of the patch size."""
    h, w = input_size
    return [(int(round(h * f / patch_size)) * patch_size, int(round(w * f / patch_size)) * patch_size)
            for f in SIZE_FACTORS]


@dataclass(frozen=True)
class Policy:
    public: bool
    models: tuple[str, ...]                     # what the selector lists; in public mode all that loads
    request_budget: int = field(default_factory=limits.default_budget_bytes)   # bytes per request

    def check_model(self, name: str | None, default: str) -> str:
        """The model to load for a requested name (empty: the default). In public mode a name
        that is not offered is refused by comparing strings: no file or network is touched."""
        name = (name or "").strip() or default
        if self.public and name not in self.models:
            raise RequestRefused("err_model_not_offered", offered=", ".join(self.models))
        return name

    def check_size(self, text: str | None, input_size: tuple[int, int], patch_size: int) -> tuple[int, int] | None:
        """(H, W) to run at, or None for the model's own size; RequestRefused for anything else."""
        size = limits.parse_size(text, patch_size)
        if self.public and size is not None and size not in offered_sizes(input_size, patch_size):
            raise RequestRefused("err_size_not_offered", value=limits.format_size(size),
                                 offered=", ".join(limits.format_size(s)
                                                   for s in offered_sizes(input_size, patch_size)))
        return size


def policy(public: bool | None = None, start: str | None = None) -> Policy:
    """The policy for this process: public when asked, else when running on a Space."""
    return Policy(public=running_on_space() if public is None else public, models=offered_models(start))


def report_failure(what: str, exc: BaseException) -> str:
    """Log an unexpected failure with its traceback under a short request id; return the id,
    which the user's message shows so the log entry can be found."""
    request_id = uuid.uuid4().hex[:8]
    log.error("request %s: %s failed", request_id, what, exc_info=exc)
    return request_id
