"""Returning freed memory to the operating system between requests.

A server that allocates ~100 MB of temporaries per request from many worker threads makes glibc
keep one heap arena per thread, and the resident size creeps up for good. Limiting the arenas
and trimming after each batch keeps it flat. No effect (and no error) off glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8


def _libc():
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


_LIBC = _libc()


def limit_arenas(n: int = 2) -> bool:
    """Fewer malloc arenas: less memory held per worker thread."""
    return bool(_LIBC is not None and hasattr(_LIBC, "mallopt") and _LIBC.mallopt(M_ARENA_MAX, n))


def trim() -> bool:
    """Give free heap memory back to the OS (glibc malloc_trim)."""
    return bool(_LIBC is not None and hasattr(_LIBC, "malloc_trim") and _LIBC.malloc_trim(0))
