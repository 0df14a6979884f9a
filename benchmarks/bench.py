"""How much does seeing inside a ViT cost, compared with a bare prediction?

    python benchmarks/bench.py [--repeats 10] [--threads 0] [--dtypes auto float32 int8]

Builds the ViT-B/16 architecture with random weights (they cost the same as the real
ones), saves it as a local folder and loads it through vitviz's own loader. Times, in
one run, batch 1:

  baseline   transformers' default path: processor + float32 forward, default (SDPA)
             attention, no maps (what the source tutorial's code does)
  analysis   vitviz: one forward with attentions + prediction, patch grid, token strip,
             rollout over the input and over the photo, position-embedding similarity
  re-render  a control change (fusion / discard / opacity): rollout redrawn from cache
  class map  Chefer relevance for the top class: one extra forward + backward
  click      a patch clicked: its query maps redrawn from cache (server-side time)
  burst      32 uploads analyzed batched (4 at a time, as the app's queue) vs one by one

The models get the compiled forward the app uses (vitviz/core/compiled.py) before timing starts;
--compile off measures the eager path. Where the CPU has AVX512-VNNI, AVX-VNNI or AMX, the int8
rows (vitviz/quant.py: int8 Linear layers, float32 maps) follow, after the fidelity gate; when the
gate refuses, they say so and measure the float32 forward that serves instead.

and prints each as a ratio to the baseline, plus peak memory (RSS).
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "assets" / "examples" / "cat.jpg"


def timeit(fn, repeats: int, warmup: int = 2) -> float:
    """Median seconds of `repeats` calls after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timeit_interleaved(fns: dict, repeats: int, warmup: int = 2) -> dict:
    """Median seconds of each function, measured round-robin so that a slow spell of a shared
    machine hits every function alike (ratios stay fair)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def vit_b16_folder() -> str:
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    folder = Path(tempfile.mkdtemp(prefix="vitviz-bench-")) / "vit-b16-random"
    torch.manual_seed(0)
    ViTForImageClassification(ViTConfig(num_labels=1000)).save_pretrained(folder)   # ViT-B/16 at 224, ImageNet head
    ViTImageProcessor().save_pretrained(folder)
    return str(folder)


def cpu_flags() -> str:
    from vitviz.core import compat, cpu

    return (f"{cpu_name()}, {torch.get_num_threads()} threads, AMX={compat.amx_tile_supported()}, "
            f"AVX512-BF16={compat.avx512_bf16_supported()}, fast bf16={cpu.fast_bf16()}, "
            f"int8={cpu.int8_isa() or 'slow'}")


def cpu_name() -> str:
    """/proc/cpuinfo's model name, or what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def interactions(loaded, an, repeats: int) -> list[tuple[str, float]]:
    """What a click or a slider costs once the analysis is there, and a class-specific map."""
    from vitviz import methods
    from vitviz.pictures import maps as views

    settings = iter([("max", 0.5, 0.3), ("min", 0.0, 0.7), ("mean", 0.9, 0.5)] * 1000)

    def rerender():
        fusion, discard, alpha = next(settings)
        views.rollout(an, fusion, discard, alpha)

    targets = iter(range(10_000))

    def class_specific():   # a new target each call: what the class view computes for Chefer (its backward pass)
        maps = methods.class_maps(loaded, an, next(targets) % 1000, ("chefer", "grad_rollout"))
        views.class_specific(an, maps, "chefer", 0.5)

    patches = iter(range(10_000))

    def click():
        canvas = views.click_canvas(an, 0)
        views.patch_at(an, 100, 100, canvas.shape[:2])
        views.query_maps(loaded, an, next(patches) % 196, 5, None, 0.5)

    grads = "float32 weights of the int8 model" if loaded.dtype == "int8" else loaded.dtype   # vitviz.quant
    return [(f"re-render after a control change ({loaded.dtype})", timeit(rerender, repeats * 3)),
            (f"class-specific map, Chefer ({grads})", timeit(class_specific, repeats)),
            (f"click a patch: query maps redrawn ({loaded.dtype})", timeit(click, repeats * 3))]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--dtypes", nargs="+", default=["auto", "float32", "int8"], choices=["auto", "float32", "int8"],
                   help="the analyses to time beside the baseline (int8: refused where the CPU lacks VNNI/AMX)")
    p.add_argument("--compile", default="auto", choices=["auto", "off"], help="off: time the eager forward")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    from transformers import AutoImageProcessor, AutoModelForImageClassification

    from vitviz import models
    from vitviz.analysis import analyze, analyze_batch
    from vitviz.core.settings import Settings
    from vitviz.pictures import maps as views

    settings = Settings.from_env().overridden(offline=True, compile=a.compile)     # random weights: no Hub

    folder = vit_b16_folder()
    photo = Image.open(PHOTO).convert("RGB")

    # --- baseline: the tutorial's path
    plain = AutoModelForImageClassification.from_pretrained(folder).eval()   # default attention (SDPA)
    proc = AutoImageProcessor.from_pretrained(folder)

    def baseline():
        with torch.inference_mode():
            return plain(**proc(images=photo, return_tensors="pt")).logits.argmax(-1)

    def full(loaded):
        def run():
            an = analyze(loaded, photo)
            views.predictions(an)
            views.patches(an)
            views.rollout(an, "mean", 0.0, 0.5)
            views.position_similarity(loaded)
            return an
        return run

    rows = []
    loaded_by_dtype = {}
    for dtype in a.dtypes:                        # int8: refused (said on stderr) where the CPU lacks VNNI/AMX
        lm = models.load(folder, "cpu", dtype, settings)
        if lm.dtype not in loaded_by_dtype:
            lm.compiled.start(lm, background=False, mode=settings.compile)      # as the app does for its model
            print(f"{lm.dtype}: forward {lm.compiled.describe()}", flush=True)
            loaded_by_dtype[lm.dtype] = lm
    firsts = {"baseline": baseline} | {dt: full(lm) for dt, lm in loaded_by_dtype.items()}
    medians = timeit_interleaved(firsts, a.repeats)
    t_base = medians["baseline"]
    rows.append(("baseline: processor + float32 forward, SDPA, no maps", t_base))
    for dt, loaded in loaded_by_dtype.items():
        rows.append((f"vitviz full analysis, 4 outputs ({dt}, {loaded.compiled.describe()})", medians[dt]))
        rows += interactions(loaded, full(loaded)(), a.repeats)
        burst = [photo] * 32
        t_batched = timeit(lambda lm=loaded, b=burst: [analyze_batch(lm, b[i:i + 4]) for i in range(0, 32, 4)], 1,
                           warmup=1)
        t_single = timeit(lambda lm=loaded, b=burst: [analyze(lm, p) for p in b], 1, warmup=0)
        rows.append((f"burst of 32 uploads, batched by 4, per image ({loaded.dtype})", t_batched / 32))
        rows.append((f"burst of 32 uploads, one by one, per image ({loaded.dtype})", t_single / 32))
        print(f"{loaded.dtype}: burst throughput batched / one-by-one = {t_single / t_batched:.2f}×", flush=True)

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nvitviz benchmark · ViT-B/16 (random weights) · batch 1 · {cpu_flags()} · torch {torch.__version__}")
    print(f"{'what':72s} {'seconds':>9s} {'÷ baseline':>11s}")
    for name, t in rows:
        print(f"{name:72s} {t:9.4f} {t / t_base:10.2f}×")
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
