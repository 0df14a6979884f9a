"""How many camera frames per second does the live view draw?

    python benchmarks/camera.py [--seconds 8] [--models bundled vit-b16] [--compile auto|off]
                                [--int8 auto|off] [--profile]

Feeds webcam-like frames (640×480 JPEG data URLs, as Gradio's webcam sends them) through the
view's own per-frame function (ui.camera.on_frame: decode, the model thread, the forward pass,
rollout, the overlay, the JPEG answer) one after another, and prints the frames per second the
view would show (over its last frames) and the median time per frame, for the bundled model and
ViT-B/16 (random weights: they cost the same as real ones). Not measured: the browser and the
network (capturing, sending and showing a frame), which add their own time per frame.

Like the app: OMP_WAIT_POLICY=PASSIVE, the dtype the CPU does fastest ("auto": bfloat16 where it
has AMX or AVX512-BF16) and the compiled forward (off: --compile off). Each model is measured as
the camera starts (that dtype) and again once its int8 model (vitviz.quant: compiled, behind a
fidelity gate) is ready, which is what the camera then runs (off: --int8 off).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")      # as app.py, before torch loads OpenMP

import argparse  # noqa: E402
import base64  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from benchmarks.bench import cpu_flags, vit_b16_folder  # noqa: E402
from vitviz.live import FPS_WINDOW  # noqa: E402

PHOTOS = ("cat.jpg", "coffee.jpg", "rocket.jpg")


def frames(size: tuple[int, int] = (640, 480)) -> list[dict]:
    """Webcam-like frames: the example photos at VGA as JPEG data URLs (the browser sends quality 0.92)."""
    out = []
    for name in PHOTOS:
        buf = io.BytesIO()
        Image.open(ROOT / "assets" / "examples" / name).convert("RGB").resize(size).save(buf, "JPEG", quality=92)
        out.append({"url": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")})
    return out


def measure(ctx, seconds: float, warmup: int = 5) -> tuple[float, float, float, int]:
    """(frames per second as the view shows it, median seconds per frame, CPU seconds per frame
    (all threads), frames drawn). On a shared machine the wall times grow with the others' load;
    the CPU time much less: it is what a frame costs."""
    from ui import camera

    feed = frames()
    for i in range(warmup):
        camera.on_frame(ctx, feed[i % len(feed)], None, "en", "warmup")
    times, fps, end, cpu0 = [], None, time.perf_counter() + seconds, time.process_time()
    while time.perf_counter() < end or len(times) < 10:
        t0 = time.perf_counter()
        out = camera.on_frame(ctx, feed[len(times) % len(feed)], None, "en", "bench")
        times.append(time.perf_counter() - t0)
        fps = ctx.camera.rate("bench").fps()
        assert out is not None, "a frame was dropped with no other frame in flight"
    return fps or 0.0, statistics.median(times), (time.process_time() - cpu0) / len(times), len(times)


def context(name: str, compile_: str):
    from vitviz.core.settings import Settings
    from vitviz.service.context import AppContext

    model = vit_b16_folder() if name == "vit-b16" else name
    settings = Settings.from_env().overridden(model=model, device="cpu", public=False, offline=True,
                                              compile="off" if compile_ == "off" else "wait")
    ctx = AppContext.create(settings)
    ctx.start.compiled.start(ctx.start, background=False, mode=settings.compile)   # as app.main does for its model
    return ctx


def prepare_int8(ctx, timeout: float = 900.0) -> str:
    """Start the camera's int8 model as its first frame would, wait until it is ready or refused,
    and say which: "" when int8 serves the camera now, else why not."""
    from ui import camera
    from vitviz import models, quant
    from vitviz.service.camera import INT8_MIN_WIDTH

    why = quant.refusal(ctx.start.device)
    if why or not ctx.camera.wants_int8(ctx.start):
        return why or f"width {ctx.start.hidden_size} < {INT8_MIN_WIDTH}"
    camera.camera_model(ctx, None)                    # the first ask starts compiling and the gate
    base = ctx.start if ctx.start.dtype == "float32" else models.load(ctx.start.name, ctx.start.device, "float32",
                                                                      ctx.settings)
    int8 = quant.int8_model(base)
    int8.compiled.wait(timeout)
    ctx.camera = type(ctx.camera)()                   # a fresh camera state: it asks again at the next frame
    return "" if int8.compiled.state == "ready" else int8.compiled.describe()


def main() -> None:
    import torch

    from ui import camera

    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8.0, help="measuring time per model")
    p.add_argument("--models", nargs="+", default=["bundled", "vit-b16"])
    p.add_argument("--compile", default="auto", choices=["auto", "off"])
    p.add_argument("--int8", default="auto", choices=["auto", "off"],
                   help="auto: also measure the camera's int8 model (vitviz.quant) once prepared")
    p.add_argument("--profile", action="store_true", help="print where a frame's time goes (cProfile)")
    a = p.parse_args()
    rows = []
    for name in a.models:
        ctx = context(name, a.compile)
        for int8 in (False, True) if a.int8 == "auto" else (False,):
            ctx.camera.int8 = int8
            if int8 and (why := prepare_int8(ctx)):
                print(f"{name}: int8 not used by the camera: {why}", flush=True)
                continue
            loaded = camera.camera_model(ctx, None)
            fps, per_frame, cpu, n = measure(ctx, a.seconds)
            size = f"{ctx.start.input_size[0]}×{ctx.start.input_size[1]}"
            forward = "compiled" if loaded.compiled.state == "ready" else "eager"
            rows.append((f"{name} ({size}, {loaded.dtype}, {forward})", fps, per_frame, cpu, n))
            print(f"{rows[-1][0]}: {fps:.1f} frames/s, {per_frame * 1000:.0f} ms per frame, "
                  f"{cpu * 1000:.0f} ms CPU per frame ({n} frames)", flush=True)
            if a.profile:
                profile(ctx)
    load = os.getloadavg()
    print(f"\nlive camera · per-frame function of ui/camera.py · {cpu_flags()} · torch {torch.__version__}")
    print(f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs "
          "(above the CPU count: other work shared the machine)")
    print(f"{'model':44s} {'frames/s':>9s} {'ms/frame':>9s} {'CPU ms':>7s} {'alone≥':>7s} {'frames':>7s}")
    for label, fps, per_frame, cpu, n in rows:
        print(f"{label:44s} {fps:9.1f} {per_frame * 1000:9.0f} {cpu * 1000:7.0f} {1 / cpu:7.1f} {n:7d}")
    print(f"frames/s: what the view showed in this run (its last {FPS_WINDOW} frames); CPU ms: all threads' CPU "
          "time per frame; alone≥: 1000 / CPU ms, about the frames/s with the cores to itself (at least, while "
          "one core is kept busy: wall time ≤ CPU time)")


def profile(ctx, frames_: int = 20) -> None:
    """The slowest functions of a frame's work, run on this thread (the app runs it on its model thread),
    with the model the camera uses now."""
    import cProfile
    import pstats

    from ui import camera
    from vitviz import live

    feed = frames()
    prof = cProfile.Profile()
    prof.enable()
    for i in range(frames_):
        loaded = camera.camera_model(ctx, None)
        camera.data_url(live.live_map(loaded, camera.frame_bytes(feed[i % len(feed)])).picture)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
