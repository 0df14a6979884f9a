"""The drawing input of "Guess where it looks": Gradio's image editor, brush only, with what it
accepts bounded.

The editor does not send its images with the event: before it, the browser posts each image
(background, drawing layers, composite) to the component's ``accept_blobs`` server function, which
keeps them in the component's ``blob_storage`` under an id until the event's preprocess takes them.
Gradio bounds neither the number of ids nor a layer's index nor the pixels a PNG decodes to, so a
public server must: here the posting is checked (bytes per image, layer index) and the pending
images are held to a count and a byte budget, and the preprocess reads each image's size from its
header before decoding it and decodes only the drawing layers. Whatever is refused reaches the
handler as ``refused(value)`` and the student gets a plain sentence. Gradio has no public API for
this, so the instance's methods are wrapped through ui.compat; the browser test
tests/test_browser_guess.py fails the day this stops working. Never send the editor a property
update (gr.update(visible=...)): Gradio would build a fresh copy of it without these bounds.
"""

from __future__ import annotations

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


def refused(value) -> bool:
    """The editor's value was refused by these bounds (too large, undecodable, too many layers)."""
    return isinstance(value, dict) and bool(value.get(_REFUSED))


def editor(label, elem_id: str, height: int | str | None = None) -> gr.ImageEditor:
    """A brush-only editor (no upload, crop or layers: the picture is the server's, so a drawing
    stays in its geometry) with bounded inputs. Its value's layers come as (h, w, 4) RGBA arrays."""
    brush = gr.Brush(default_size=BRUSH_RADIUS, colors=[BRUSH], default_color=BRUSH, color_mode="fixed")
    ed = gr.ImageEditor(label=label, type="numpy", image_mode="RGBA", sources=[], transforms=[], layers=False,
                        brush=brush, eraser=gr.Eraser(), format="png", buttons=[], elem_id=elem_id, height=height,
                        show_label=False, interactive=True)
    return bound(ed)


def bound(ed: gr.ImageEditor) -> gr.ImageEditor:
    """Wrap the instance's accept_blobs and preprocess with the bounds above."""
    accept, storage = ed.accept_blobs, compat.blob_storage(ed)
    lock = threading.Lock()
    rejected: dict[str, None] = {}          # ids refused while posting (ordered, bounded)

    def accept_blobs(data):
        meta = getattr(data, "data", None) or {}
        files = getattr(data, "files", None) or []
        key = str(meta.get("id", ""))
        with lock:
            if not files or len(files[0][1]) > MAX_IMAGE_BYTES or not _index_ok(meta):
                rejected[key] = None
                while len(rejected) > 4 * MAX_PENDING:
                    rejected.pop(next(iter(rejected)))
                storage.pop(key, None)
                return None
            accept(data)
            _prune(storage, keep=key)
        return None

    compat.server_function(ed, "accept_blobs", accept_blobs)

    def bounded(decode):
        def preprocess(payload):
            if payload is None:
                return None
            key = getattr(payload, "id", None)
            with lock:
                if key is not None and key in rejected:
                    rejected.pop(key)
                    storage.pop(key, None)
                    return {"background": None, "layers": [], "composite": None, _REFUSED: True}
            try:
                _check_and_trim(storage, payload)
                return decode(payload)
            except Exception:
                storage.pop(key, None)
                return {"background": None, "layers": [], "composite": None, _REFUSED: True}
        return preprocess

    compat.wrap_preprocess(ed, bounded)
    return ed


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
