"""One keyed cache for results that depend only on their key.

A model's position-embedding similarity per grid, its pictures, the class maps of an analysis
per target class: each is computed once and then read. ``Memo.get(key, make)`` calls ``make()``
the first time a key is asked for; with ``max_entries`` the least recently used entries go first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Hashable, TypeVar

T = TypeVar("T")


class Memo:
    def __init__(self, max_entries: int | None = None):
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The value for key, made by make() the first time (outside the lock: making may be slow,
        and two threads making the same key at once both get a correct value)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while self.max_entries is not None and len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __getstate__(self) -> dict:
        """Pickled empty (an analysis sent to a GPU worker does not need its cached results)."""
        return {"max_entries": self.max_entries}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_entries"])
