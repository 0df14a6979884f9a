"""The sessions' latest analyses, held within a memory budget.

Every browser tab keeps its last analysis so that a click or a slider re-renders without running
the model again. On a public server the number of tabs has no bound, so the analyses live here,
in one store with a byte budget (least recently used dropped first), and a session holds only a
short key. A key whose analysis was dropped gets None: the app asks for the photo again.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import OrderedDict

from . import limits
from .analysis import Analysis


def default_budget_bytes() -> int:
    """VITVIZ_SESSION_MEMORY_MB, else an eighth of the machine's memory, between 256 MiB and 2 GiB
    (a ViT-B/16 analysis takes about 12 MB: 2 GiB keeps some 170 sessions)."""
    env = os.environ.get("VITVIZ_SESSION_MEMORY_MB")
    if env:
        return int(float(env) * limits.MiB)
    return int(min(max(limits.host_memory_bytes() // 8, 256 * limits.MiB), 2 * limits.GiB))


class AnalysisStore:
    def __init__(self, budget_bytes: int | None = None):
        self.budget = default_budget_bytes() if budget_bytes is None else budget_bytes
        self._items: OrderedDict[str, Analysis] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, an: Analysis) -> str:
        """Keep an analysis; returns its key. Older analyses go when the budget is exceeded
        (the newest always stays, so its own session can use it)."""
        key = uuid.uuid4().hex
        with self._lock:
            self._items[key] = an
            self._bytes += an.nbytes()
            while len(self._items) > 1 and self._bytes > self.budget:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes()
        return key

    def get(self, key: str | None) -> Analysis | None:
        with self._lock:
            an = self._items.get(key) if key else None
            if an is not None:
                self._items.move_to_end(key)
            return an

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes
