"""How close is int8 to float32? Accuracy, top-1 agreement and rollout correlation, per image.

    python benchmarks/int8_fidelity.py [--limit 0] [--vit-b 100] [--out results/int8_fidelity.json]

Two models, each compared in the forward the app serves (vitviz/quant.py: compiled int8 Linear
layers, float32 softmax and maps) against its float32 eager forward on the same inputs:

  bundled   the bundled DeiT-Tiny on the Fashion-MNIST test images (all 10,000 with --limit 0):
            accuracy of each, top-1 agreement, Pearson r of each image's rollout map (median,
            5th percentile, worst) and of each layer's attention (worst layer, per batch)
  ViT-B/16  random weights (the architecture of the default model) on the example photos and
            Fashion-MNIST test images up to --vit-b images: the same figures except accuracy.
            A lower bound: random weights spread attention evenly and their logits nearly tie,
            so small int8 errors move maps and top-1 more than in a trained model.

The fidelity gate's thresholds (vitviz.quant.THRESHOLDS) were chosen from these figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def compare(int8, images, labels=None, batch: int = 64, log_every: int = 1000) -> dict:
    """int8 vs float32 figures for PIL images (labels: class indices for accuracy, or None)."""
    from vitviz import quant
    from vitviz.analysis import prepare_images
    from vitviz.attention import rollout

    base, fn = int8.compiled.base, int8.compiled.int8_forward
    agree, correct_f, correct_q, roll_r, att_r = [], [], [], [], []
    t0 = time.perf_counter()
    for start in range(0, len(images), batch):
        x = torch.stack([p.pixel_values for _, p in prepare_images(base, images[start:start + batch])])
        f_logits, f_att = quant.outputs(base.model, x, chunk=16)
        q_logits, q_att = quant.outputs(fn, x)
        f_top, q_top = f_logits.argmax(-1), q_logits.argmax(-1)
        agree += (f_top == q_top).tolist()
        if labels is not None:
            y = torch.as_tensor(labels[start:start + batch])
            correct_f += (f_top == y).tolist()
            correct_q += (q_top == y).tolist()
        grid = base.grid(tuple(x.shape[-2:]))
        roll_r += [quant.pearson(rollout(f_att[:, i], base.prefix, grid), rollout(q_att[:, i], base.prefix, grid))
                   for i in range(len(x))]
        att_r.append(min(quant.pearson(f, q) for f, q in zip(f_att, q_att)))
        done = start + len(x)
        if done // log_every != start // log_every or done == len(images):
            print(f"  {done}/{len(images)} images, {time.perf_counter() - t0:.0f} s, agreement so far "
                  f"{np.mean(agree):.4f}, median rollout r {np.median(roll_r):.4f}", flush=True)
    r = np.array(roll_r)
    out = {"images": len(images), "top1_agreement": float(np.mean(agree)),
           "rollout_r_median": float(np.median(r)), "rollout_r_p5": float(np.percentile(r, 5)),
           "rollout_r_min": float(r.min()), "attention_r_min_layer_worst_batch": float(min(att_r)),
           "seconds": time.perf_counter() - t0}
    if labels is not None:
        out |= {"accuracy_float32": float(np.mean(correct_f)), "accuracy_int8": float(np.mean(correct_q))}
    return out


def ready_int8(folder_or_name: str):
    """The int8 model, compiled and gated (the gate's verdict is reported, not enforced, here)."""
    from vitviz import models, quant
    from vitviz.core.settings import Settings

    base = models.load(folder_or_name, "cpu", "float32", Settings.from_env().overridden(offline=True))
    why = quant.refusal("cpu")
    if why:
        raise SystemExit(f"int8 cannot run here: {why}")
    int8 = quant.int8_model(base)
    real, quant.THRESHOLDS = quant.THRESHOLDS, dict.fromkeys(quant.THRESHOLDS, -1.0)   # measure, never refuse
    try:
        int8.compiled.start(int8, background=False)
    finally:
        quant.THRESHOLDS = real
    if int8.compiled.int8_forward is None:
        raise SystemExit(f"int8 could not be built: {int8.compiled.reason}")
    verdict = int8.compiled.fidelity.verdict()
    print(f"{folder_or_name}: {int8.compiled.describe()}; gate: {int8.compiled.fidelity}; "
          f"passes the thresholds: {verdict}", flush=True)
    return int8


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--limit", type=int, default=0, help="Fashion-MNIST test images for the bundled model (0: all)")
    p.add_argument("--vit-b", type=int, default=100, help="images for random-weight ViT-B/16 (0: skip)")
    p.add_argument("--out", default=str(ROOT / "results" / "int8_fidelity.json"))
    a = p.parse_args()

    from benchmarks.bench import cpu_flags, vit_b16_folder
    from vitviz import data, quant
    from vitviz.core import cpu
    from vitviz.core.paths import example_photos

    fm = data.FashionMNISTSamples()
    n = a.limit or len(fm)
    report = {"cpu": cpu_flags(), "int8_isa": cpu.int8_isa(), "torch": torch.__version__,
              "torchao": quant.torchao_version(), "thresholds": quant.THRESHOLDS}
    int8 = ready_int8("bundled")
    report["bundled_gate"] = int8.compiled.fidelity.as_dict()
    images = [fm.sample(i)[0] for i in range(n)]
    report["bundled"] = compare(int8, images, fm.labels[:n].tolist())
    print(json.dumps(report["bundled"], indent=1), flush=True)
    if a.vit_b:
        from PIL import Image

        int8 = ready_int8(vit_b16_folder())
        report["vit_b16_random_gate"] = int8.compiled.fidelity.as_dict()
        photos = [Image.open(f).convert("RGB") for f in example_photos()]
        photos += [fm.sample(i)[0] for i in range(max(0, a.vit_b - len(photos)))]
        report["vit_b16_random"] = compare(int8, photos[:a.vit_b], batch=16, log_every=16)
        print(json.dumps(report["vit_b16_random"], indent=1), flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(report, indent=1))
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
