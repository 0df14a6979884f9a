"""The example photos: their order for the active model, and recognising one when it is uploaded.

Clicking an example sends a copy of its file (Gradio serves it from its own cache, under another
path), so an example is recognised by its bytes. Its analysis is then shared by everybody who
clicks it: on ZeroGPU that costs no visitor any GPU time after the first click.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from ..core.paths import example_photos


def order(loaded) -> list[list[str]]:
    """The examples the active model knows first: garments for a Fashion-MNIST model."""
    garments = loaded.label_set == "fashion-mnist"
    return [[str(p)] for p in sorted(example_photos(), key=lambda p: (p.name.startswith("fmnist") != garments, p.name))]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@lru_cache(maxsize=1)
def _known() -> dict[int, dict[str, str]]:
    """File size -> {digest: example name}: most uploads are ruled out by their size alone."""
    known: dict[int, dict[str, str]] = {}
    for p in example_photos():
        known.setdefault(p.stat().st_size, {})[_digest(p)] = p.name
    return known


def which(upload) -> str | None:
    """The example's name when ``upload`` (a file path) has exactly its bytes, else None."""
    if not isinstance(upload, (str, Path)):
        return None
    try:
        path = Path(upload)
        candidates = _known().get(path.stat().st_size)
        return candidates.get(_digest(path)) if candidates else None
    except OSError:
        return None
