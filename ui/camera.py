"""See · Live camera: attention rollout drawn over each camera frame as it arrives.

Gradio's webcam streaming sends a frame every STREAM_EVERY seconds into one event per stream;
the server keeps only the newest frame that came while it was busy (a frame posted to a running
stream replaces the one waiting) and works on one at a time, so frames are dropped, never queued.
Keep the stream's trigger mode at Gradio's default ("multiple"): with "once" or "always_last" the
page would hold frames back instead of sending them into the running stream. The camera's gate
(vitviz.service.camera) drops a frame outright when another (from any tab) is being worked on: the
model thread serves the uploads too, and at most one frame may be in it.

Frames come in and go out as JPEG data URLs (no pre/postprocessing by Gradio): the pictures of the
people in front of the camera are never written to the server's disk, and the browser shows each
map without fetching a file. Where the model runs on ZeroGPU the view is not offered: every frame
would cost the visitors' GPU time. On a public CPU server it is, one stream at a time and for a
minute each, so the uploads of everybody else keep moving.
"""

from __future__ import annotations

import base64
import io

import gradio as gr
import numpy as np
from PIL import Image

from vitviz import live
from vitviz.core.loaded import LoadedModel
from vitviz.core.preprocess import BadImage
from vitviz.pictures import maps
from vitviz.service.context import AppContext, Opened, Session, failure_message

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
def available(ctx: AppContext) -> bool:
    """Offered unless the model runs on ZeroGPU (the composer leaves the view out then)."""
    return not ctx.runner.zerogpu


def mode(ctx: AppContext) -> str:
    return "public" if ctx.policy.public else "local"


def camera_model(ctx: AppContext, session: Session | None) -> LoadedModel:
    """The model the camera runs: the one of the tab's latest analysis (else the start model), or its
    int8 variant once it is ready (vitviz.service.camera)."""
    return ctx.camera.model(ctx.model(session.model if session else None))


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


def on_frame(ctx: AppContext, payload, session: Session | None, lang: str, key: str = "") -> dict | None:
    """The view's per-frame work: {"picture": data URL, "status": text}, or None when the frame is
    dropped because another is being worked on. Raises BadImage / ModelUnavailable / RequestRefused."""
    camera = ctx.camera
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

def render(ctx: AppContext, opened: Opened | None, lang: str) -> dict:
    """On show: the rollout over the tab's photo, until the camera is started."""
    if opened is None:
        return {"status": t("camera_idle", lang)}
    an = opened.an
    return {"picture": live.draw(an.upload, an.box, maps.rollout_map(an)), "status": t("camera_idle", lang)}


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
    return View(render, outputs={"picture": picture, "status": status}, extra={"camera": cam}, needs_session=False)


def wire(ctx: AppContext, view: View, shared: Shared) -> None:
    picture, status = view.outputs["picture"], view.outputs["status"]

    def stream(payload, session, lang, request: gr.Request):
        try:
            named = on_frame(ctx, payload, session, lang, getattr(request, "session_hash", "") or "")
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
