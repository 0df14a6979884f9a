"""Who may ask for what: the policy of a public server (a Hugging Face Space) and of a local one.

Public mode is on where ``SPACE_ID`` is set (Hugging Face sets it in every Space) or when asked
for (vitviz.core.settings). There, only the models the selector offers can be loaded, checked by
name before any file system or network access, and only the input sizes the size list offers are
accepted. Locally any Hub id, folder and size works. In both, every request is held to a memory
budget (vitviz.core.limits).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from ..core import limits
from ..core.limits import RequestRefused
from ..core.settings import Settings
from ..models import known_models

log = logging.getLogger("vitviz")
SIZE_FACTORS = (1.0, 1.5, 2.0)     # offered input sizes, as multiples of the model's own


def offered_models(settings: Settings, start: str | None = None) -> tuple[str, ...]:
    """The selector's models: the settings' list (VITVIZ_MODELS, set by a Space's owner) or every
    family's, with the start model first when it is not among them."""
    names = list(settings.models) or list(known_models())
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
    request_budget: int                         # bytes one request may hold

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


def policy(settings: Settings, start: str | None = None) -> Policy:
    """The policy of a process with these settings (public: asked for, or on a Space)."""
    return Policy(public=settings.public, models=offered_models(settings, start),
                  request_budget=limits.default_budget_bytes(settings.request_memory_mb))


def report_failure(what: str, exc: BaseException) -> str:
    """Log an unexpected failure with its traceback under a short request id; return the id,
    which the user's message shows so the log entry can be found."""
    request_id = uuid.uuid4().hex[:8]
    log.error("request %s: %s failed", request_id, what, exc_info=exc)
    return request_id
