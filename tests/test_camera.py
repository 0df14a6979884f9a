"""The live camera: frames bounded and decoded small, rollout equal to the analysis's, frames dropped
(never queued) while one is being worked on, frames per second, and the view left out on ZeroGPU."""

import base64
import io
import threading
import time

import numpy as np
import pytest
import torch
from PIL import Image

from vitviz import live
from vitviz.core.preprocess import BadImage
from vitviz.service.camera import Camera

from .conftest import app_settings


def jpeg(size=(640, 480), seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def data_url(data: bytes) -> dict:
    return {"url": "data:image/jpeg;base64," + base64.b64encode(data).decode()}


@pytest.fixture(autouse=True)
def no_int8(request, monkeypatch):
    """Frames run on the float model here: int8 would compile in the background (its own tests)."""
    if "ctx" in request.fixturenames:
        monkeypatch.setattr(request.getfixturevalue("ctx").camera, "int8", False)


def fresh_camera(ctx, monkeypatch) -> Camera:
    """The context's camera state made anew for one test (no gate history, no frame rates), on floats."""
    monkeypatch.setattr(ctx, "camera", Camera(int8=False))
    return ctx.camera


# ---------------------------------------------------------------- frames per second

def test_frame_rate_over_the_last_frames():
    rate = live.FrameRate(window=3)
    assert rate.tick(0.0) is None                       # one frame: no rate yet
    assert rate.tick(0.1) == pytest.approx(10.0)
    rate.tick(0.2)
    assert rate.tick(1.7) == pytest.approx(2 / 1.6)     # window of 3: frames at 0.1, 0.2, 1.7
    assert rate.tick(5.0) is None                       # a pause (stream stopped) starts anew
    with pytest.raises(ValueError, match="at least 2"):
        live.FrameRate(window=1)


# ---------------------------------------------------------------- decoding, bounded

def test_frames_are_decoded_small_keeping_aspect_and_what_the_model_needs():
    img = live.decode_frame(jpeg((640, 480)), need=(28, 28))
    assert img.size == (live.DISPLAY_SIDE, live.DISPLAY_SIDE * 3 // 4) and img.mode == "RGB"
    img = live.decode_frame(jpeg((1280, 480)), need=(256, 256))          # a wide frame, DeiT's short side 256
    assert img.size[1] >= 256 and img.size[0] == round(1280 * img.size[1] / 480)
    assert live.decode_frame(jpeg((160, 120)), need=(224, 224)).size == (160, 120)     # never enlarged
    arr = np.zeros((300, 400, 3), np.uint8)
    assert live.decode_frame(arr, need=(28, 28)).size == (400, 300)


def test_absurd_or_broken_frames_are_refused_plainly(tmp_path):
    big = io.BytesIO()
    Image.new("L", (4000, 3000)).save(big, "PNG")       # 12 megapixels, a few kB as PNG
    with pytest.raises(BadImage) as refused:
        live.decode_frame(big.getvalue(), need=(28, 28))
    assert refused.value.key == "err_too_large" and refused.value.fields["size"] == "4000×3000"
    for bad in (b"not a picture", np.zeros((10, 10), np.float32), 42):
        with pytest.raises(BadImage) as refused:
            live.decode_frame(bad, need=(28, 28))
        assert refused.value.key == "err_not_image"


def test_a_too_long_frame_is_refused_unread_in_the_users_language(monkeypatch):
    from ui import camera
    from vitviz.service.context import failure_message

    monkeypatch.setattr(camera, "MAX_FRAME_CHARS", 1000)
    with pytest.raises(BadImage) as refused:
        camera.frame_bytes(data_url(jpeg()))
    message = failure_message(refused.value, "ko")
    assert "카메라" in message and "MB" in message and "Traceback" not in message
    assert camera.frame_bytes(data_url(b"abc")) == b"abc"
    for other in ("data:image/jpeg;base64,AAAA", {"path": __file__}, {"url": "https://example.com/a.jpg"}):
        with pytest.raises(BadImage):                          # not the webcam's payload: nothing is read
            camera.frame_bytes(other)


# ---------------------------------------------------------------- the map

@pytest.mark.parametrize("which", ["tiny_vit_dir", "tiny_deit_dir"])
def test_live_rollout_equals_rollout_over_every_head(which, request):
    """The frame's shortcut (heads averaged per layer as they come, nothing stored) is the rollout of
    all heads (attention.rollout on (L, H, N, N)), over the box the analysis of the same frame uses."""
    from vitviz import attention as A
    from vitviz import models
    from vitviz.analysis import analyze
    from vitviz.core.preprocess import prepare
    from vitviz.pictures import maps as views

    loaded = models.load(request.getfixturevalue(which), "cpu", "float32")
    img = live.decode_frame(jpeg((320, 240), seed=3), live._needed(loaded))
    m, box, probs = live.frame_rollout(loaded, img)
    with torch.inference_mode():
        out = loaded.model(pixel_values=prepare(img, loaded.spec).pixel_values[None], output_attentions=True)
    an = analyze(loaded, img)
    reference = A.normalize(A.rollout(torch.stack(out.attentions)[:, 0], an.prefix, an.grid)).numpy()
    np.testing.assert_allclose(m, reference, atol=1e-5)
    # the stored analysis keeps half-precision attentions: the same map within their rounding
    assert np.corrcoef(m.ravel(), views.rollout_map(an).ravel())[0, 1] > 0.99
    assert box == pytest.approx(an.box) and int(probs.argmax()) == an.top(1)[0][0]
    frame = live.live_map(loaded, jpeg((320, 240), seed=3), "en")
    assert frame.picture.shape == (240, 320, 3) and frame.top[0] == an.top(1)[0][0]
    if an.prefix == 2:                                  # DeiT's [CLS] and [DIST]; it crops the centre
        assert box[0] > 0


def test_regression_a_frame_reaches_the_compiled_forward_with_its_strides(tiny_loaded, monkeypatch):
    """prepare() gives a permuted (3, H, W) view; the compiled forward is guarded on strides, so the
    frames of ViT-B/16 once ran eagerly (and the int8 model's frames in float32) without a word."""
    from vitviz import analysis

    seen = []
    monkeypatch.setattr(live, "forward", lambda loaded, x: seen.append(x) or analysis.forward(loaded, x))
    live.live_map(tiny_loaded, jpeg((320, 240)))
    assert seen[0].is_contiguous() and seen[0].shape == (1, 3, 32, 32)


# ---------------------------------------------------------------- the view's per-frame function

def test_on_frame_answers_a_picture_the_fps_and_the_guess(ctx, monkeypatch):
    from ui import camera

    fresh_camera(ctx, monkeypatch)
    first = camera.on_frame(ctx, data_url(jpeg()), None, "en", "tab")
    assert "frames per second" in first["status"] and "–" in first["status"]      # no rate after one frame
    out = camera.on_frame(ctx, data_url(jpeg(seed=1)), None, "ko", "tab")
    assert out["picture"]["url"].startswith("data:image/jpeg;base64,")
    shown = Image.open(io.BytesIO(base64.b64decode(out["picture"]["url"].split(",")[1])))
    assert shown.size == (live.DISPLAY_SIDE, live.DISPLAY_SIDE * 3 // 4)
    assert "1초에" in out["status"] and "모델의 답" in out["status"] and "–" not in out["status"]


def test_a_frame_that_arrives_while_one_is_worked_on_is_dropped_at_once(ctx, monkeypatch):
    """Never queued: the second frame returns None without waiting and without model work."""
    from ui import camera

    cam, inside, release, calls = fresh_camera(ctx, monkeypatch), threading.Event(), threading.Event(), []
    real = live.live_map

    def slow(loaded, data, lang):
        calls.append(1)
        inside.set()
        release.wait(10)
        return real(loaded, data, lang)

    monkeypatch.setattr(live, "live_map", slow)
    results = []
    first = threading.Thread(target=lambda: results.append(camera.on_frame(ctx, data_url(jpeg()), None, "en")))
    first.start()
    assert inside.wait(10)
    t0 = time.perf_counter()
    assert camera.on_frame(ctx, data_url(jpeg(seed=2)), None, "en") is None
    assert time.perf_counter() - t0 < 0.5 and len(calls) == 1 and cam.gate.dropped == 1
    release.set()
    first.join(10)
    assert results and results[0]["picture"]
    assert camera.on_frame(ctx, data_url(jpeg()), None, "en") is not None      # free again


def test_the_still_before_streaming_is_the_photos_rollout(ctx):
    from ui import camera, upload
    from ui.view import opened_session

    named = upload.analyze_group(ctx, {}, [jpeg((320, 200))], ctx.start.name, "", ["en"])[0]
    out = camera.render(ctx, ctx.open(named["session"]), "en")
    assert out["picture"].shape[:2] == (200, 320) and "Record" in out["status"]
    # no analysis yet: the view (needs_session=False) is handed no session, and says how to start
    assert set(camera.render(ctx, opened_session(ctx, None, needed=False), "ko")) == {"status"}


def test_the_camera_model_hook_follows_the_tab_and_takes_int8_once_ready(ctx, monkeypatch):
    from dataclasses import replace

    from ui import camera
    from vitviz import quant
    from vitviz.service import camera as service_camera
    from vitviz.service.context import Session

    assert camera.camera_model(ctx, None) is ctx.start
    assert camera.camera_model(ctx, Session("gone", ctx.start.name)) is ctx.start
    int8, asked, ready = replace(ctx.start, dtype="int8"), [], []
    monkeypatch.setattr(ctx, "camera", Camera(int8=True))            # int8 on, nothing asked for yet
    monkeypatch.setattr(quant, "fast_model", lambda loaded: asked.append(loaded) or (int8 if ready else None))
    assert camera.camera_model(ctx, None) is ctx.start and asked == []      # too narrow for int8 to pay
    assert not ctx.camera.wants_int8(ctx.start)
    monkeypatch.setattr(service_camera, "INT8_MIN_WIDTH", ctx.start.hidden_size)
    assert ctx.camera.wants_int8(ctx.start)
    assert camera.camera_model(ctx, None) is ctx.start and asked == [ctx.start]      # preparing: float serves
    assert camera.camera_model(ctx, None) is ctx.start and len(asked) == 1          # not asked again at once
    ready.append(True)
    monkeypatch.setattr(service_camera, "INT8_ASK_EVERY_S", 0.0)
    assert camera.camera_model(ctx, None) is int8 and len(asked) == 2
    assert camera.camera_model(ctx, None) is int8 and len(asked) == 2               # ready stays ready


# ---------------------------------------------------------------- where it is offered, and how it streams

def stream_dependency(demo) -> dict:
    config = demo.get_config_file()
    ids = {c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "camera-in"}
    deps = [d for d in config["dependencies"] if any(t[0] in ids and t[1] == "stream" for t in d["targets"])]
    assert len(deps) == 1
    return deps[0]


@pytest.mark.parametrize("public", [False, True])
def test_one_stream_at_a_time_with_a_time_limit(tiny_vit_dir, public):
    import app
    from ui import camera
    from vitviz.service.context import AppContext

    demo = app.build(AppContext.create(app_settings(tiny_vit_dir, public=public)))
    dep = stream_dependency(demo)
    mode = "public" if public else "local"
    fn = [f for f in demo.fns.values() if f.connection == "stream"]
    assert len(fn) == 1 and fn[0].concurrency_limit == 1 and fn[0].concurrency_id == "camera"
    assert not fn[0].preprocess and not fn[0].postprocess     # frames in and out as data URLs, never on disk
    assert dep["time_limit"] == camera.TIME_LIMIT_S[mode] and dep["stream_every"] == camera.STREAM_EVERY[mode]
    # "once" or "always_last" would hold frames back in the page instead of sending them into the stream
    assert dep["trigger_mode"] == "multiple"


def test_the_camera_is_not_offered_on_zerogpu(tiny_vit_dir, monkeypatch):
    import app
    from vitviz.service.context import AppContext

    ctx = AppContext.create(app_settings(tiny_vit_dir, public=True))
    monkeypatch.setattr(ctx.runner, "zerogpu", True)
    config = app.build(ctx).get_config_file()
    keys = {getattr(c["props"].get("label"), "key", c["props"].get("label"))
            for c in config["components"] if c.get("type") == "tabitem"}
    assert "vv_tab_camera" not in keys and "vv_tab_patches" in keys
    assert not any(c.get("props", {}).get("elem_id") == "camera-in" for c in config["components"])


def test_camera_words_in_both_languages():
    from ui import strings

    keys = [k for k in strings.STRINGS["en"] if k.startswith("camera_") or k == "tab_camera"]
    assert len(keys) >= 8
    for key in keys:
        assert strings.STRINGS["ko"][key] and strings.STRINGS["ko"][key] != strings.STRINGS["en"][key]
