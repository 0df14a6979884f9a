"""Labels a user types for a model that scores typed labels (CLIP, SigLIP): parsed and bounded here,
before any model sees them."""

from __future__ import annotations

import re

from .limits import RequestRefused

MAX_LABELS = 20
MAX_LABEL_CHARS = 40
# What the example photos show, so the first analysis of an example ranks something sensible.
DEFAULT_LABELS = ("cat", "coffee", "rocket", "astronaut", "person", "dog")
_SEPARATORS = re.compile(r"[,，、]")     # the ASCII comma, the full-width comma and the ideographic one


def parse_labels(text: str | None) -> tuple[str, ...]:
    """'cat, dog,  고양이' -> ('cat', 'dog', '고양이'): split at commas, trimmed, empties and repeats
    dropped; nothing typed -> DEFAULT_LABELS. RequestRefused past MAX_LABELS labels or
    MAX_LABEL_CHARS characters in one label (checked before any splitting of a huge text)."""
    text = "" if text is None else str(text)
    if len(text) > MAX_LABELS * (MAX_LABEL_CHARS + 2):
        raise RequestRefused("err_labels_many", limit=MAX_LABELS)
    labels = tuple(dict.fromkeys(s.strip() for s in _SEPARATORS.split(text) if s.strip()))
    if not labels:
        return DEFAULT_LABELS
    if len(labels) > MAX_LABELS:
        raise RequestRefused("err_labels_many", limit=MAX_LABELS)
    long = [s for s in labels if len(s) > MAX_LABEL_CHARS]
    if long:
        raise RequestRefused("err_labels_long", label=long[0][:MAX_LABEL_CHARS] + "…", limit=MAX_LABEL_CHARS)
    return labels
