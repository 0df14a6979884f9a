"""The drawing input of "Guess where it looks": Gradio's image editor, brush only, with what it
accepts bounded.

A drawing reaches the server in one of two ways: its layers uploaded as files and named in the
event (Gradio 6.31's editor), or posted beforehand to the component's ``accept_blobs`` server
function, which keeps them under an id until the event's preprocess takes them (earlier editors, and
anyone who posts to /component_server). Gradio bounds neither the number of ids nor a layer's index
nor the pixels a PNG decodes to, so a public server must: here the posting is checked (bytes per
image, layer index), the pending images are held to a count and a byte budget, and the preprocess
reads each layer's size from its header before decoding it and decodes only the drawing layers.
Whatever is refused reaches the handler as ``refused(value)`` and the student gets a plain sentence.

The bounds live in a subclass, not on the instance: Gradio answers any update of a component in a
session (even an empty one, as a handler that leaves the editor alone sends) by building the
session a fresh copy from the class and its constructor arguments, so only the class and those
arguments reach the copy that decodes that browser's drawings. tests/test_browser_guess.py fails the
day a browser's drawing no longer passes through these bounds.
"""

from __future__ import annotations

import functools
import io
import os
import threading

import gradio as gr
from PIL import Image

from vitviz.activity import MAX_SIDE

from . import compat

BRUSH = "rgb(0, 200, 255)"
BRUSH_RADIUS = 8               # pixels of the picture (~450 px): a stroke half a patch wide
MAX_IMAGE_BYTES = 8 * 2**20     # one posted image; a drawing over a 450-px picture is ~10-400 KB as PNG
MAX_LAYERS = 2                  # the editor shows one layer (layers=False); a second is slack
MAX_PENDING = 32                # drawings posted and not yet taken by an event
MAX_PENDING_BYTES = 64 * 2**20
_REFUSED = "refused"


def refusal() -> dict:
    """The value the handler gets for a drawing these bounds refused (a fresh dict each time)."""
    return {"background": None, "layers": [], "composite": None, _REFUSED: True}


def refused(value) -> bool:
    """The editor's value was refused by these bounds (too large, undecodable, too many layers)."""
    return isinstance(value, dict) and bool(value.get(_REFUSED))


def editor(label, elem_id: str, height: int | str | None = None) -> BoundedEditor:
    """A brush-only editor (no upload, crop or layers: the picture is the server's, so a drawing
    stays in its geometry) with bounded inputs. Its value's layers come as (h, w, 4) RGBA arrays."""
    brush = gr.Brush(default_size=BRUSH_RADIUS, colors=[BRUSH], default_color=BRUSH, color_mode="fixed")
    return BoundedEditor(label=label, type="numpy", image_mode="RGBA", sources=[], transforms=[], layers=False,
                         brush=brush, eraser=gr.Eraser(), format="png", buttons=[], elem_id=elem_id,
                         height=height, show_label=False, interactive=True)


class Pending:
    """The images posted and not yet taken by an event (id -> background, layers, composite), with
    the ids refused while posting."""

    def __init__(self):
        self.lock = threading.Lock()
        self.storage: dict = {}
        self.rejected: dict[str, None] = {}      # ordered, bounded

    def reject(self, key: str) -> None:
        self.rejected[key] = None
        while len(self.rejected) > 4 * MAX_PENDING:
            self.rejected.pop(next(iter(self.rejected)))
        self.storage.pop(key, None)

    def take_rejected(self, key) -> bool:
        """Whether `key` was refused while posting (forgotten once asked)."""
        if key is None or key not in self.rejected:
            return False
        self.rejected.pop(key)
        self.storage.pop(key, None)
        return True


PENDING = Pending()     # one budget for the server: every editor and every session's copy of one


with compat.component_subclass():      # no type stub written beside this module
    class BoundedEditor(gr.ImageEditor):
        """gr.ImageEditor with the bounds above, served with the image editor's own frontend
        (``is_template``, as Gradio's gr.Sketchpad). Keyword arguments only."""

        is_template = True

        @functools.wraps(gr.ImageEditor.__init__)     # Gradio reads the component's props off this signature
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            compat.share_blob_storage(self, PENDING.storage)

        @compat.server_function
        def accept_blobs(self, data):
            meta = getattr(data, "data", None) or {}
            files = getattr(data, "files", None) or []
            key = str(meta.get("id", ""))
            with PENDING.lock:
                if not files or len(files[0][1]) > MAX_IMAGE_BYTES or not _index_ok(meta):
                    PENDING.reject(key)
                    return None
                super().accept_blobs(data)
                _prune(PENDING.storage, keep=key)
            return None

        def preprocess(self, payload):
            if payload is None:
                return None
            with PENDING.lock:
                if PENDING.take_rejected(getattr(payload, "id", None)):
                    return refusal()
            try:
                _check_and_trim(PENDING.storage, payload)
                return super().preprocess(payload)
            except Exception:
                PENDING.storage.pop(getattr(payload, "id", None), None)
                return refusal()


def _index_ok(meta: dict) -> bool:
    kind, index = meta.get("type"), meta.get("index")
    if kind in ("background", "composite"):
        return True
    try:
        return kind == "layer" and 0 <= int(index) < MAX_LAYERS
    except (TypeError, ValueError):
        return False


def _size(blob) -> int:
    return len(blob) if blob is not None else 0


def _held(entry) -> int:
    return _size(entry.background) + _size(entry.composite) + sum(_size(b) for b in entry.layers)


def _prune(storage: dict, keep: str) -> None:
    """The oldest pending drawings go while over the count or the byte budget (never `keep`
    unless it alone is over)."""
    while len(storage) > MAX_PENDING or sum(_held(e) for e in storage.values()) > MAX_PENDING_BYTES:
        oldest = next((k for k in storage if k != keep), keep)
        storage.pop(oldest)
        if oldest == keep:
            return


def _check_and_trim(storage: dict, payload) -> None:
    """ValueError unless every drawing layer is at most MAX_IMAGE_BYTES and MAX_SIDE pixels a side
    (read from the header, before decoding); the background and composite are dropped unread:
    the score needs only the layers."""
    key = getattr(payload, "id", None)
    if key is not None:
        entry = storage.get(key)
        if entry is None:
            return
        layers = [b for b in entry.layers if b is not None]
        entry.background = entry.composite = None
        sources = [(len(b), io.BytesIO(b)) for b in layers]
    else:
        layers = list(payload.layers or [])
        payload.background = payload.composite = None
        sources = [(os.path.getsize(f.path), f.path) for f in layers]
    if len(sources) > MAX_LAYERS:
        raise ValueError(f"expected at most {MAX_LAYERS} layers, got {len(sources)}")
    for nbytes, source in sources:
        if nbytes > MAX_IMAGE_BYTES:
            raise ValueError(f"expected a layer of at most {MAX_IMAGE_BYTES} bytes, got {nbytes}")
        with Image.open(source) as im:
            if max(im.size) > MAX_SIDE:
                raise ValueError(f"expected a layer of at most {MAX_SIDE} pixels a side, got {im.size}")
