"""Each tab's record for "Guess where it looks": whether it has been given the picture to draw on (so a
redraw does not wipe a drawing) and its last drawing (so the answer can be redrawn in another
language without drawing again)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.cache import Cache

MAX_TABS = 4096
MAX_BYTES = 32 * 2**20     # a drawing over a 448-px picture packs to 25 KB: this holds a large school's tabs


@dataclass(frozen=True, eq=False)       # arrays inside: compared by identity
class Guess:
    """A tab's record: None fields until the student reveals a drawing."""
    cover: np.ndarray | None = None      # (gh, gw) share of each patch the drawing covers
    packed: np.ndarray | None = None     # the drawing at the picture's size, np.packbits (an eighth of a bool mask)
    shape: tuple[int, int] = (0, 0)      # (h, w) of that drawing

    def nbytes(self) -> int:
        return 256 + sum(a.nbytes for a in (self.cover, self.packed) if a is not None)

    def mask(self) -> np.ndarray:
        return np.unpackbits(self.packed, count=self.shape[0] * self.shape[1]).reshape(self.shape).astype(bool)


class Guesses(Cache[Guess]):
    """Session key -> Guess, bounded by tabs and bytes (the oldest go first)."""

    def __init__(self, max_entries: int = MAX_TABS, max_bytes: int = MAX_BYTES):
        super().__init__(max_entries=max_entries, max_bytes=max_bytes, size_of=Guess.nbytes)

    def __getstate__(self) -> dict:
        return {"max_entries": self.max_entries, "max_bytes": self.max_bytes}
