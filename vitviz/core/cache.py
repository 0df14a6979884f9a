"""One bounded, thread-safe cache: loaded models, results computed once, the sessions' analyses.

Least recently used entries go first when the cache holds more than ``max_entries`` or, with a
``size_of`` function, more than ``max_bytes``. The newest entry always stays, even alone over
the budget: a session must be able to read back the analysis it has just stored, and the model
it has just loaded. (cachetools' LRUCache bounds one quantity and refuses an entry larger than
its budget, so it cannot serve both.)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Generic, Hashable, TypeVar

V = TypeVar("V")


class Cache(Generic[V]):
    def __init__(self, max_entries: int | None = None, max_bytes: int | None = None,
                 size_of: Callable[[V], int] | None = None):
        if max_bytes is not None and size_of is None:
            raise ValueError("max_bytes needs size_of, the bytes one value holds")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size_of = size_of
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def lookup(self, key: Hashable) -> V | None:
        """The value for key (now the most recently used), or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key: Hashable, value: V) -> V:
        """Keep value under key; older entries go while over a bound. Returns value."""
        size = self.size_of(value) if self.size_of else 0
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > 1 and self._over():
                self._bytes -= self._items.popitem(last=False)[1][1]
        return value

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        """The value for key, made by make() the first time. make() runs outside the lock: it may
        be slow, and two threads making the same key at once both get a correct value."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
        return self.put(key, make())

    def _over(self) -> bool:
        return ((self.max_entries is not None and len(self._items) > self.max_entries)
                or (self.max_bytes is not None and self._bytes > self.max_bytes))

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def values(self) -> list[V]:
        with self._lock:
            return [v for v, _ in self._items.values()]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """What the entries hold, by size_of (0 without it)."""
        return self._bytes

    def __getstate__(self) -> dict:
        """Pickled empty: an analysis sent to a GPU worker does not need what was cached with it."""
        return {"max_entries": self.max_entries, "max_bytes": self.max_bytes, "size_of": self.size_of}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)
