"""See · Live camera: attention rollout drawn over each camera frame as it arrives.

Gradio's webcam streaming sends a frame every STREAM_EVERY seconds into one event per stream;
the server keeps only the newest frame that came while it was busy (a frame posted to a running
stream replaces the one waiting) and works on one at a time, so frames are dropped, never queued.
Keep the stream's trigger mode at Gradio's default ("multiple"): with "once" or "always_last" the
page would hold frames back instead of sending them into the running stream. ``Camera.gate`` drops
a frame outright when another (from any tab) is being worked on: the model thread serves the
uploads too, and at most one frame may be in it.

Frames come in and go out as JPEG data URLs (no pre/postprocessing by Gradio): the pictures of the
people in front of the camera are never written to the server's disk, and the browser shows each
map without fetching a file. Where the model runs on ZeroGPU the view is not offered: every frame
would cost the visitors' GPU time. On a public CPU server it is, one stream at a time and for a
minute each, so the uploads of everybody else keep moving.
"""

from __future__ import annotations

import base64
import io
import time

import gradio as gr
import numpy as np
from PIL import Image

from vitviz import live, quant, views
from vitviz.cache import Cache
from vitviz.models import LoadedModel
from vitviz.preprocess import BadImage

from .context import AppContext, Expired, Session, failure_message
from .text import L, t
from .view import Shared, View, out_image

ID = "camera"
STREAM_EVERY = {"local": 0.05, "public": 0.1}   # seconds between frames the page sends (public: half the bytes)
TIME_LIMIT_S = {"local": 600, "public": 60}     # a stream ends after this; press Record again to go on
MAX_FRAME_CHARS = 8_000_000                     # a data URL longer than this (~6 MB of JPEG) is refused unread
JPEG_QUALITY = 85
# The browser's camera at about VGA: its frames are JPEG-encoded in the page at the camera's own size
# (Gradio asks for 1920×1440 by default), and the map is drawn at live.DISPLAY_SIDE anyway.
CONSTRAINTS = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}}}
# Live frames run in int8 where vitviz.quant can serve it and its fidelity gate passed (a map that
# follows the camera, not one to measure); the analyses of uploads keep the model's own dtype. Only
# for models wide enough that the matrix products dominate: on 2 cores of a Xeon with AMX (benchmarks/
# camera.py) int8 took 0.83–0.91× the CPU time of compiled bfloat16 per ViT-B/16 frame (width 768) but
# 1.7× per frame of the bundled DeiT (width 96), where quantizing the activations costs more than it saves.
INT8 = True
INT8_MIN_WIDTH = 384
INT8_ASK_EVERY_S = 2.0
_int8: Cache[tuple] = Cache(max_entries=16)     # (model, dtype, device) -> (last asked, int8 model or None)


class Camera:
    """The server's camera state: the gate (one frame at a time) and each tab's frame rate."""

    def __init__(self):
        self.gate = live.Gate()
        self.rates: Cache[live.FrameRate] = Cache(max_entries=64)

    def rate(self, key: str) -> live.FrameRate:
        return self.rates.get(key, live.FrameRate)


def available(ctx: AppContext) -> bool:
    """Offered unless the model runs on ZeroGPU (the composer leaves the view out then)."""
    return not ctx.runner.zerogpu


def mode(ctx: AppContext) -> str:
    return "public" if ctx.policy.public else "local"


def camera_model(ctx: AppContext, session: Session | None) -> LoadedModel:
    """The model the camera runs: the one of the tab's latest analysis (else the start model), or
    its int8 variant once vitviz.quant has prepared it and its fidelity gate passed (the first ask
    starts the preparation in the background; the float model serves meanwhile). Every frame
    comes through here: the one place that picks the camera's model."""
    loaded = ctx.model(session.model if session else None)
    if not wants_int8(loaded):
        return loaded
    key = (loaded.name, loaded.dtype, loaded.device)
    asked_at, fast = _int8.lookup(key) or (float("-inf"), None)
    # quant.fast_model looks at the CPU and the installed packages each time (~3 ms): ask again
    # only every few seconds while the int8 model is not ready; once ready it stays ready
    if fast is None and time.monotonic() - asked_at > INT8_ASK_EVERY_S:
        fast = quant.fast_model(loaded)
        _int8.put(key, (time.monotonic(), fast))
    return fast or loaded


def wants_int8(loaded: LoadedModel) -> bool:
    return INT8 and loaded.hidden_size >= INT8_MIN_WIDTH


# ---------------------------------------------------------------- one frame

def frame_bytes(payload) -> bytes:
    """The encoded picture of a frame as Gradio's webcam sends it ({"url": "data:image/jpeg;base64,..."}).
    BadImage when it is not one, or too long."""
    if isinstance(payload, (bytes, bytearray)):
        data = bytes(payload)
    elif isinstance(payload, dict) and str(payload.get("url") or "").startswith("data:"):
        url = payload["url"]
        if len(url) > MAX_FRAME_CHARS:
            raise BadImage(f"The camera frame is {len(url)} characters long; the limit is {MAX_FRAME_CHARS}.",
                           "camera_too_large", size=f"{len(url) * 3 / 4 / 1e6:.1f} MB",
                           limit=f"{MAX_FRAME_CHARS * 3 / 4 / 1e6:.0f} MB")
        try:
            data = base64.b64decode(url.partition(",")[2], validate=False)
        except ValueError as exc:
            raise BadImage("The camera frame is not base64.", "err_not_image") from exc
    else:       # never a {"path": ...}: unprocessed, it would be whatever file the sender names
        raise BadImage(f"Expected a camera frame, got {type(payload).__name__}.", "err_not_image")
    return data


def data_url(picture: np.ndarray) -> dict:
    """A picture as the value of an image output that Gradio passes through unchanged."""
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, "JPEG", quality=JPEG_QUALITY)
    return {"url": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")}


def on_frame(ctx: AppContext, camera: Camera, payload, session: Session | None, lang: str,
             key: str = "") -> dict | None:
    """The view's per-frame work: {"picture": data URL, "status": text}, or None when the frame is
    dropped because another is being worked on. Raises BadImage / ModelUnavailable / RequestRefused."""
    with camera.gate.frame() as mine:
        if not mine:
            return None
        data = frame_bytes(payload)
        loaded = camera_model(ctx, session)
        frame = ctx.runner.on_thread(live.live_map, loaded, data, lang)
    fps = camera.rate(key).tick()
    return {"picture": data_url(frame.picture), "status": status_line(frame, fps, lang)}


def status_line(frame: live.LiveFrame, fps: float | None, lang: str) -> str:
    line = t("camera_fps", lang, fps="–" if fps is None else f"{fps:.1f}", ms=f"{frame.seconds * 1000:.0f}")
    if frame.top:
        _, name, p = frame.top
        line += t("camera_guess", lang, name=name, p=f"{p:.0%}")
    return line


# ---------------------------------------------------------------- the view

def render(ctx: AppContext, session: Session | None, lang: str) -> dict:
    """On show: the rollout over the tab's photo, until the camera is started."""
    try:
        _, an = ctx.open(session)
    except Expired:
        return {"status": t("camera_idle", lang)}
    return {"picture": live.draw(an.upload, an.box, views.rollout_map(an)), "status": t("camera_idle", lang)}


def build(ctx: AppContext, shared: Shared) -> View:
    gr.Markdown(L("camera_help"))
    if ctx.policy.public:
        gr.Markdown(L("camera_public"), elem_id="camera-public")     # its words say "a minute": TIME_LIMIT_S
    with gr.Row():
        cam = gr.Image(sources=["webcam"], streaming=True, label=L("camera_in"), elem_id="camera-in",
                       webcam_options=gr.WebcamOptions(constraints=CONSTRAINTS))
        with gr.Column():
            picture = out_image("camera_map", "camera-map")
            status = gr.Markdown(elem_id="camera-fps")
    return View(render, outputs={"picture": picture, "status": status}, extra={"camera": cam})


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    camera = Camera()
    picture, status = view.outputs["picture"], view.outputs["status"]

    def stream(payload, session, lang, request: gr.Request):
        try:
            named = on_frame(ctx, camera, payload, session, lang, getattr(request, "session_hash", "") or "")
        except Exception as exc:      # ends this stream with a plain message (details in the log)
            raise gr.Error(failure_message(exc, lang, "camera frame")) from None
        if named is None:
            return gr.skip()
        return named["picture"], named["status"]

    m = mode(ctx)
    view.extra["camera"].stream(stream, [view.extra["camera"], shared.session, shared.lang], [picture, status],
                                stream_every=STREAM_EVERY[m], time_limit=TIME_LIMIT_S[m], concurrency_limit=1,
                                concurrency_id="camera", preprocess=False, postprocess=False,
                                show_progress="hidden", api_visibility="private")
