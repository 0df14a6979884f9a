"""Pictures written as files for the web page to serve."""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid

import numpy as np
from PIL import Image


class PictureSpool:
    """Writes pictures as files quickly into one folder, deleting files older than `max_age_s` as it
    goes. Serving a path spares the web layer from encoding each picture itself, which cost more than
    the model. Per-upload pictures are JPEG (quality 90, no chroma subsampling, so thin coloured
    lines and digits stay sharp): an order of magnitude faster and a third of the bytes of PNG
    (results/measured.md, "Pictures as files") — CPU a classroom burst needs for the model, and bytes a
    classroom's Wi-Fi has to carry. `lossless=True` writes PNG (pictures drawn once per model)."""

    def __init__(self, directory: str | None = None, max_age_s: float = 900.0):
        self.dir = directory or tempfile.mkdtemp(prefix="vitviz-pictures-")
        self.max_age_s = max_age_s
        self._count = 0
        self._lock = threading.Lock()

    def save(self, image: np.ndarray | None, lossless: bool = False) -> str | None:
        if image is None:
            return None
        if lossless:
            path = os.path.join(self.dir, f"{uuid.uuid4().hex}.png")
            Image.fromarray(image).save(path, compress_level=1)
        else:
            path = os.path.join(self.dir, f"{uuid.uuid4().hex}.jpg")
            Image.fromarray(image).convert("RGB").save(path, quality=90, subsampling=0)
        with self._lock:
            self._count += 1
            sweep = self._count % 200 == 0
        if sweep:
            self.sweep()
        return path

    def sweep(self) -> None:
        cutoff = time.time() - self.max_age_s
        for entry in os.scandir(self.dir):
            try:
                if entry.stat().st_mtime < cutoff:
                    os.remove(entry.path)
            except OSError:
                pass
