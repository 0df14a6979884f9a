"""Inductive bias, measured: a CNN, a pure ViT and a hybrid ViT trained on growing subsets of
Fashion-MNIST under equal budgets, tested on all 10,000 test images.

    python -m vitviz.study --out results/inductive-bias                     # 1k, 5k, 20k, 60k images
    python -m vitviz.study --sizes 500 2000 --budget 20000 --out /tmp/s     # a quick look

The tutorial says a ViT's weak inductive bias (no locality, no 2-D neighbourhood, no translation
equivariance built in) makes it need more data than a CNN, and that a hybrid (a CNN stem whose
feature map is read as 1×1 patches) sits in between. Every model here sees the same number of
training images (``--budget``: small subsets are repeated for more epochs), with the same
augmentation, optimiser and schedule, and a fixed class-balanced subset per size.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .cnn import CNNConfig, SmallCNN
from .scratch import HybridViT, ScratchConfig, ScratchViT
from .train import TrainSettings, train

MODELS = ("cnn", "hybrid", "vit")
SIZES = (1000, 5000, 20000, 60000)
BUDGET = 300_000          # training images each run sees (5 epochs of the full set)
# Smaller than the bundled model so the whole study fits an hour on two cores; the two ViTs share
# their encoder (D 64, 4 blocks, 4 heads), the hybrid adds a 2-conv stem; the CNN has 3 stages.
VIT = dict(image_size=28, patch_size=4, hidden_size=64, num_layers=4, num_heads=4, mlp_size=128)
CNN = dict(widths=(16, 32, 64))


def build(kind: str, num_classes: int = 10, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if kind == "cnn":
        return SmallCNN(CNNConfig(**CNN, num_classes=num_classes))
    cfg = ScratchConfig(**VIT, num_classes=num_classes)
    if kind == "vit":
        return ScratchViT(cfg)
    if kind == "hybrid":
        return HybridViT(cfg, stem_channels=32)
    raise ValueError(f"model must be one of {MODELS}, got {kind!r}")


def balanced_subset(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Indices of `size` training images, as equal a share of every class as possible, fixed by seed."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    take = [size // len(classes) + (i < size % len(classes)) for i in range(len(classes))]
    if any(t > len(p) for t, p in zip(take, per_class)):
        raise ValueError(f"cannot take {size} images: the smallest class has {min(len(p) for p in per_class)}")
    return np.sort(np.concatenate([p[:t] for p, t in zip(per_class, take)]))


def run_one(kind: str, size: int, data: tuple, budget: int, settings: TrainSettings, log=print) -> dict:
    """Train one model on one subset; its record for the table."""
    train_x, train_y, test_x, test_y = data
    idx = balanced_subset(train_y, size, settings.seed)
    epochs = max(1, round(budget / size))
    s = TrainSettings(**{**asdict(settings), "epochs": epochs, "eval_every": 0,
                         "warmup_epochs": max(1.0, epochs / 20)})
    model = build(kind, int(train_y.max()) + 1, settings.seed)
    result = train(model, train_x[idx], train_y[idx], test_x, test_y, s, log=lambda *_: None)
    params = sum(p.numel() for p in model.parameters())
    record = {"model": kind, "train_images": size, "epochs": epochs, "images_seen": epochs * size,
              "test_accuracy": result.test_accuracy, "seconds": result.seconds, "parameters": params,
              "final_loss": result.history[-1]["loss"]}
    log(f"{kind:7s} {size:6d} images × {epochs:3d} epochs: test accuracy {100 * result.test_accuracy:.2f} % "
        f"({result.seconds:.0f} s)")
    return record


def study(data: tuple, sizes=SIZES, models=MODELS, budget: int = BUDGET, settings: TrainSettings | None = None,
          log=print) -> list[dict]:
    settings = settings or TrainSettings(batch_size=64, lr=1e-3, progress=False)
    return [run_one(kind, size, data, budget, settings, log) for size in sizes for kind in models]


def table(records: list[dict], lang: str = "en") -> str:
    """Markdown: one row per training-set size, test accuracy (%) per model."""
    from .core.i18n import t

    sizes = sorted({r["train_images"] for r in records})
    kinds = [k for k in MODELS if any(r["model"] == k for r in records)]
    acc = {(r["model"], r["train_images"]): r["test_accuracy"] for r in records}
    head = f"| {t('study_images', lang)} | " + " | ".join(t(f"study_name_{k}", lang) for k in kinds) + " |"
    rows = [head, "|---:|" + "---:|" * len(kinds)]
    for n in sizes:
        rows.append(f"| {n:,} | " + " | ".join(f"{100 * acc[(k, n)]:.2f}" for k in kinds) + " |")
    return "\n".join(rows) + "\n"


def plot(records: list[dict], lang: str = "en") -> np.ndarray:
    """Test accuracy against the number of training images, one line per model."""
    from .core.i18n import t
    from .pictures import render as R

    fig, ax = R._figure((6.4, 4.0))
    colours = {"cnn": "tab:blue", "hybrid": "tab:green", "vit": "tab:red"}
    for kind in MODELS:
        rs = sorted((r for r in records if r["model"] == kind), key=lambda r: r["train_images"])
        if rs:
            ax.plot([r["train_images"] for r in rs], [100 * r["test_accuracy"] for r in rs], "-o",
                    color=colours[kind], label=t(f"study_{kind}", lang))
    ax.set_xscale("log")
    ax.set_xlabel(t("study_x", lang))
    ax.set_ylabel(t("study_y", lang))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return R.figure_to_array(fig)


def main(argv: list[str] | None = None) -> None:
    from PIL import Image

    from . import data

    p = argparse.ArgumentParser(prog="python -m vitviz.study", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/inductive-bias")
    p.add_argument("--data-dir", default=str(data.FASHION_MNIST_DIR))
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--budget", type=int, default=BUDGET, help="training images each run sees")
    p.add_argument("--test-limit", type=int, default=0, help="test on the first N test images (0: all)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)

    train_x, train_y = data.load_idx_split(a.data_dir, "train")
    test_x, test_y = data.load_idx_split(a.data_dir, "t10k")
    if a.test_limit:
        test_x, test_y = test_x[:a.test_limit], test_y[:a.test_limit]
    settings = TrainSettings(batch_size=64, lr=1e-3, progress=False, seed=a.seed)
    t0 = time.perf_counter()
    records = study((train_x, train_y, test_x, test_y), a.sizes, a.models, a.budget, settings)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    args = argv if argv is not None else sys.argv[1:]
    summary = {"records": records, "budget": a.budget, "settings": asdict(settings), "vit": VIT,
               "cnn": {"widths": list(CNN["widths"])}, "test_images": len(test_x),
               "seconds": time.perf_counter() - t0, "torch": torch.__version__, "threads": torch.get_num_threads(),
               "command": "python -m vitviz.study " + " ".join(args)}
    (out / "study.json").write_text(json.dumps(summary, indent=1))
    (out / "study.md").write_text(table(records))
    Image.fromarray(plot(records)).save(out / "study.png")
    print(table(records))
    print(f"{len(records)} runs in {math.ceil(summary['seconds'] / 60)} min; written to {out}/")


if __name__ == "__main__":
    main()
