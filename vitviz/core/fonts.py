"""The Hangul font vitviz ships through pip, so Korean labels are drawn on any machine, without the OS's fonts.

It is NanumGothic (SIL Open Font License 1.1; all 11,172 Hangul syllables and Latin), the file that the
`koreanize-matplotlib` package bundles. That package is located, never imported: importing it restyles
matplotlib globally (and needs distutils, gone in Python 3.12).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

PACKAGE = "koreanize_matplotlib"
FILE = "fonts/NanumGothic.ttf"
FAMILY = "NanumGothic"      # the family name matplotlib reads from the file


@lru_cache(maxsize=1)
def hangul_font() -> str | None:
    """Path of the bundled font file with Hangul, or None where the package is not installed."""
    spec = importlib.util.find_spec(PACKAGE)      # a top-level name: found, not run
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / FILE
        if path.is_file():
            return str(path)
    return None


@lru_cache(maxsize=1)
def matplotlib_family() -> str | None:
    """Register the bundled font with matplotlib once; its family name, or None without the file."""
    path = hangul_font()
    if path is None:
        return None
    from matplotlib import font_manager

    font_manager.fontManager.addfont(path)
    return FAMILY
