"""How faithful is each explanation map? Perturbation AUCs and a pointing score on Fashion-MNIST.

    python -m vitviz.evaluate --n 1000 --out results/

For each test image: every map of views.standard_maps (for the predicted class) is
used to remove 0%..90% of the pixels, most relevant first (positive perturbation:
accuracy should fall fast, lower AUC is better) and least relevant first (negative:
accuracy should hold, higher AUC is better), as in Chefer et al. CVPR 2021. The
pointing score is the share of the map's mass on the garment (Fashion-MNIST's
background is exactly black, so the garment mask is free).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import render as R
from .analysis import analyze_batch
from .explain import FRACTIONS, auc, class_maps, fill_value, perturbed_inputs, predict_probs


def pointing_score(m: np.ndarray, mask: np.ndarray) -> float:
    """Share of a non-negative map's mass on the mask's pixels; m (gh, gw), mask (H, W) bool."""
    up = R.upsample(np.clip(m, 0, None), mask.shape)
    up = np.clip(up, 0, None)
    total = up.sum()
    return float((up * mask).sum() / total) if total > 0 else float("nan")


def evaluate(loaded, images: np.ndarray, labels: np.ndarray, batch: int = 64, progress: bool = True,
             fill="black") -> dict:
    """images uint8 (N, H, W) grey; fill: "black" (the background) or "mean" (0 in normalised space,
    as in Chefer et al.). Returns {method: {"pos_auc", "neg_auc", "pointing", "pos_curve", "neg_curve"}}."""
    from . import views

    try:
        from tqdm.auto import tqdm
    except ImportError:
        def tqdm(it, **_):
            return it
    removed = fill_value(loaded, fill)
    sums: dict[str, dict] = {}
    n_done = 0
    for start in tqdm(range(0, len(images), batch), disable=not progress, desc="evaluating"):
        chunk = images[start:start + batch]
        ans = analyze_batch(loaded, [Image.fromarray(x).convert("RGB") for x in chunk])
        for an, raw, label in zip(ans, chunk, labels[start:start + batch]):
            target = an.top(1)[0][0]
            maps = views.standard_maps(an, class_maps(loaded, an, target) if loaded.has_classifier else None)
            maps = {views.map_name(k): m for k, m in maps.items()}
            names = list(maps)
            inputs = torch.cat([perturbed_inputs(an.pixel_values, maps[n], fill=removed) for n in names])
            pred = predict_probs(loaded, inputs).argmax(-1).numpy().reshape(len(names), 2, len(FRACTIONS))
            correct = (pred == label).astype(np.float64)
            mask = F.interpolate(torch.from_numpy(raw > 0).float()[None, None], size=an.seen.shape[:2]).bool()[0, 0].numpy()
            for i, n in enumerate(names):
                s = sums.setdefault(n, {"pos": np.zeros(len(FRACTIONS)), "neg": np.zeros(len(FRACTIONS)),
                                        "pointing": 0.0})
                s["pos"] += correct[i, 0]
                s["neg"] += correct[i, 1]
                s["pointing"] += pointing_score(maps[n], mask)
            n_done += 1
    out = {}
    for n, s in sums.items():
        pos, neg = s["pos"] / n_done, s["neg"] / n_done
        out[n] = {"pos_auc": 100 * auc(pos), "neg_auc": 100 * auc(neg), "pointing": 100 * s["pointing"] / n_done,
                  "pos_curve": pos.tolist(), "neg_curve": neg.tolist()}
    return out


def table(results: dict, n: int, model: str, fill: str) -> str:
    rows = [f"Fashion-MNIST test images: {n}, model: {model}, removed pixels set to {fill}. Top-1 accuracy (%) "
            "under perturbation, AUC over 0–90% of pixels removed (normalised by the x-range); "
            "pointing = % of the map's mass on the garment.", "",
            "| map | positive AUC ↓ | negative AUC ↑ | pointing ↑ |", "|---|---:|---:|---:|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['pos_auc']:.1f} | {r['neg_auc']:.1f} | {r['pointing']:.1f} |")
    return "\n".join(rows) + "\n"


def plot(results: dict) -> np.ndarray:
    return R.curves_figure(FRACTIONS, {n: (np.array(r["pos_curve"]), np.array(r["neg_curve"]))
                                       for n, r in results.items()},
                           "share of pixels removed", "top-1 accuracy")


def main(argv: list[str] | None = None) -> None:
    from . import data, models

    p = argparse.ArgumentParser(prog="python -m vitviz.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=models.BUNDLED, help="model to evaluate (default: the bundled one)")
    p.add_argument("--data-dir", default=str(data.FASHION_MNIST_DIR))
    p.add_argument("--n", type=int, default=1000, help="number of test images (the first N)")
    p.add_argument("--out", default="results", help="folder for results.md, results.json and curves.png")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--fill", choices=["black", "mean"], default="black",
                   help="what removed pixels become: black (the background) or the mean (Chefer et al.)")
    a = p.parse_args(argv)

    loaded = models.load(a.model, "cpu", a.dtype)
    x, y = data.load_idx_split(a.data_dir, "t10k")
    x, y = x[:a.n, 0], y[:a.n]
    t0 = time.perf_counter()
    results = evaluate(loaded, x, y, fill=a.fill)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    md = table(results, len(x), a.model, a.fill)
    (out / "results.md").write_text(md)
    (out / "results.json").write_text(json.dumps({"n": len(x), "model": a.model, "fill": a.fill, "results": results,
                                                  "seconds": time.perf_counter() - t0}, indent=1))
    Image.fromarray(plot(results)).save(out / "curves.png")
    print(md)
    print(f"{len(x)} images in {time.perf_counter() - t0:.0f} s; written to {out}/")


if __name__ == "__main__":
    main()
