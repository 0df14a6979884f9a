"""How faithful is each explanation map? Perturbation AUCs and a pointing score, at research scale.

    python -m vitviz.evaluate --limit 1000 --out results/                        # bundled model, Fashion-MNIST
    torchrun --standalone --nproc_per_node 2 -m vitviz.evaluate --limit 1000 --out results/
    python -m vitviz.evaluate --model google/vit-base-patch16-224 --fill mean \\
        --imagenet-val VAL_DIR --labels VAL_LABELS.txt --out runs/vitb     # ImageNet validation layout
    python -m vitviz.evaluate --folder DIR --model MODEL --out runs/x       # DIR/<class>/* images
    python -m vitviz.evaluate --metrics saco mprt --fill road --methods chefer legrad random --out runs/y
    python -m vitviz.evaluate --preset chefer2021 --imagenet-val VAL_DIR --labels VAL_LABELS.txt --out runs/c

For each image, every map (each registered method, vitviz.methods; for the predicted class) removes 0 %..90 %
of the pixels, most relevant first (positive perturbation: accuracy should fall fast, lower AUC
is better) and least relevant first (negative: accuracy should hold, higher AUC is better), as
in Chefer et al. CVPR 2021. Pointing, where the data marks the object (Fashion-MNIST: its
non-black pixels), is the share of the map's mass on it. --metrics adds SaCo (Wu et al. CVPR
2024: do more salient pixel groups matter more? 1 best, a random map ≈ 0) and the sanity check
(Adebayo et al. 2018: the maps' Spearman correlation with the original as the model is randomised
from the top, as Quantus's MPRT does; it should fall). Each measure follows its reference's
convention by default (--saco-convention, --mprt-convention; settings.json names them). --fill
road fills removed pixels by ROAD's noisy linear imputation (Rong et al. 2022) instead of a
colour. --size 224x224 runs the images at another size (position embeddings interpolated).
--preset chefer2021 pins Chefer et al.'s protocol (ViT-B/16, removed pixels black as their code
does, 0..90 % in 10 % steps, AUC by the trapezoid rule from the unperturbed accuracy at 0 %).

Under torchrun each process takes every k-th remaining image (gloo on CPU, NCCL with one GPU per
process); results are appended per image under --out, so a killed run started again with the
same command skips what is done; the metrics are computed once, from every image's result, and
do not depend on the number of processes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import data, methods, models, quant
from ..core import limits
from ..core.i18n import say
from ..pictures import render as R
from . import mprt, saco
from .journal import Journal, SettingsChanged
from .mprt import Randomiser
from .perturb import FILLS
from .sample import METRICS, EvalSettings, evaluate_sample, metrics, perturbation_model

# Published protocols, pinned: the settings they fix (command-line values that differ are refused)
PRESETS = {
    # Chefer, Gur & Wolf, CVPR 2021, Table 1: ViT-B/16 on ImageNet val, maps of the predicted class,
    # 0..90 % of the pixels removed in 10 % steps; their code (baselines/ViT/pertubation_eval_from_hdf5.py)
    # zeroes the [0, 1] image before normalising, i.e. removed pixels are black.
    "chefer2021": {"model": "google/vit-base-patch16-224", "fill": "black", "steps": 10},
}
PRESET_DATA = {"chefer2021": ("imagenet_val", "--imagenet-val VAL_DIR --labels VAL_LABELS.txt")}
DEFAULTS = {"fill": "black", "steps": 10}     # without a preset (model: models.BUNDLED)

# ---------------------------------------------------------------- processes

class Group:
    """This process's place among the evaluation's processes (one process without torchrun)."""

    def __init__(self):
        self.rank, self.world, self.local_world = 0, 1, 1
        self.dist = None
        if "RANK" in os.environ and "WORLD_SIZE" in os.environ:       # started by torchrun (env://)
            import torch.distributed as dist

            self.rank, self.world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
            self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", self.world))
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if backend == "nccl":                  # one GPU per process; NCCL's collectives use it
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group(backend, timeout=timedelta(hours=12))   # the slowest shard sets the pace
            self.dist = dist

    @property
    def device(self) -> str:
        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if self.dist else "cuda"
        return "cpu"

    def barrier(self) -> None:
        if self.dist:
            self.dist.barrier()

    def share(self, value):
        """Rank 0's value, on every process."""
        if not self.dist:
            return value
        box = [value]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        if self.dist:
            self.dist.destroy_process_group()


def cpu_threads(local_world: int, requested: int = 0) -> int:
    """Threads per process: the machine's cores shared among the processes on it (two processes on
    two cores must not run four threads)."""
    return requested or max(1, (os.cpu_count() or 1) // local_world)


# ---------------------------------------------------------------- data and the run

def samples_for(a, loaded):
    if a.imagenet_val:
        if not a.labels:
            raise SystemExit("--imagenet-val needs --labels (one class index per image, the model's order)")
        return data.imagenet_val_samples(a.imagenet_val, a.labels)
    if a.folder:
        return data.class_folder_samples(a.folder, {v: k for k, v in loaded.id2label.items()})
    return data.FashionMNISTSamples(a.data_dir, "t10k")


def run(a, group: Group) -> dict | None:
    """Evaluate this process's share of the images not done yet; rank 0 returns the summary."""
    # int8 (--dtype int8): compiled and checked before the run, else float32; settings record which served
    loaded = quant.settle(models.load(a.model, group.device, a.dtype))
    fast = perturbation_model(loaded)
    samples = samples_for(a, loaded)
    limit = min(a.limit or len(samples), len(samples))
    settings = EvalSettings(model=a.model, data=samples.name, methods=tuple(a.methods), steps=a.steps, fill=a.fill,
                        dtype=loaded.dtype, metrics=tuple(m for m in METRICS if m in a.metrics), preset=a.preset,
                        size=run_size(a.size, loaded), saco_convention=a.saco_convention,
                        mprt_convention=a.mprt_convention)
    journal = Journal(a.out, group.rank, group.world)
    problem = None
    if group.rank == 0:
        try:
            journal.check_settings(settings.as_dict())
        except SettingsChanged as exc:
            problem = str(exc)
    problem = group.share(problem)
    if problem:
        raise SystemExit(problem)
    found = journal.records()
    group.barrier()                            # every process has read what was done before anyone writes
    todo = [i for i in range(limit) if i not in found][group.rank::group.world]
    randomiser = None
    if "mprt" in settings.metrics:           # one randomised copy, its random blocks kept for every image
        randomiser = Randomiser(loaded, settings.mprt_seed, keep_random=True, convention=settings.mprt_convention)
    t0 = time.perf_counter()
    journal.open()
    try:
        for i in progress(todo, group, sum(1 for i in range(limit) if i not in found)):
            image, label, mask = samples.sample(i)
            journal.append(evaluate_sample(loaded, fast, image, label, mask, i, settings, a.batch_size, randomiser))
    finally:
        journal.close()
    group.barrier()
    if group.rank != 0:
        return None
    seconds = time.perf_counter() - t0
    records = [r for i, r in journal.records().items() if i < limit]
    computed = limit - sum(1 for i in found if i < limit)
    return {"n": len(records), "model": a.model, "data": samples.name, "fill": a.fill,
            "results": metrics(records, settings), "settings": settings.as_dict(),
            "timing": {"processes": group.world, "threads_per_process": torch.get_num_threads(),
                       "device": group.device, "found": limit - computed, "computed": computed,
                       "seconds": seconds, "images_per_second": computed / seconds if seconds else None}}


def run_size(text: str | None, loaded) -> tuple[int, int] | None:
    """--size HxW as (H, W) (position embeddings interpolated, as in the app), or None for the model's own."""
    try:
        size = limits.parse_size(text, loaded.patch_size)
    except limits.RequestRefused as exc:
        raise SystemExit(f"--size: {say(exc.key, 'en', **exc.fields)}") from None
    return None if size is None or size == tuple(loaded.input_size) else size


def progress(todo: list[int], group: Group, total: int):
    """This process's images; rank 0 shows a bar over everybody's work (its own, times the processes)."""
    if group.rank != 0:
        yield from todo
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="evaluating", unit="img", mininterval=2.0, smoothing=0.1) as bar:
        for i in todo:
            yield i
            bar.update(min(group.world, total - bar.n))


# ---------------------------------------------------------------- output

def table(summary: dict) -> str:
    """results.md: one row per map; the random map's row (the control) with each score's 95 % interval
    over the images, so a map can be told from noise."""
    timing = summary["timing"]
    results = summary["results"].values()
    saco = any(r.get("saco") is not None for r in results)
    mprt = any(r.get("mprt") is not None for r in results)
    conventions = summary["settings"].get("conventions", {})
    saco_rule = conventions.get("saco", {}).get("name", "")
    mprt_rule = conventions.get("mprt", {}).get("name", "")
    head = ("| map | positive AUC ↓ | negative AUC ↑ | pointing ↑ |" + (f" SaCo ({saco_rule}) ↑ |" if saco else "")
            + (f" MPRT Spearman, all random ({mprt_rule}) ↓ |" if mprt else ""))
    size = summary["settings"].get("size")
    rows = [f"{summary['data']}: {summary['n']} images, model: {summary['model']}"
            + (f" at {size[0]}x{size[1]}" if size else "") + f", removed pixels set to "
            f"{summary['fill']}. Top-1 accuracy (%) under perturbation, AUC over 0–90% of pixels removed "
            "(normalised by the x-range); pointing = % of the map's mass on the object"
            + ("; SaCo in [-1, 1], a random map ≈ 0" if saco else "")
            + ("; MPRT: rank correlation with the original map once the whole model is randomised" if mprt else "")
            + ". The random map's row gives each mean ± the half-width of its 95 % interval over the images. "
            "Conventions (settings.json names each with its reference): "
            + "; ".join(f"{what}: {c['name']}" for what, c in conventions.items()) + ".",
            "", head, "|---|---:|---:|---:|" + "---:|" * (saco + mprt)]
    control = methods.get("random").name()
    for name, r in summary["results"].items():
        spread = (r.get("interval") or {}) if name == control else {}
        cells = [name, _fmt(r["pos_auc"], ".1f", spread.get("pos_auc")),
                 _fmt(r["neg_auc"], ".1f", spread.get("neg_auc")), _fmt(r["pointing"], ".1f", spread.get("pointing"))]
        if saco:
            cells.append(_fmt(r.get("saco"), ".3f", spread.get("saco")))
        if mprt:
            cells.append(_fmt((r.get("mprt") or [None])[-1], ".3f", spread.get("mprt")))
        rows.append("| " + " | ".join(cells) + " |")
    rows += ["", f"{timing['computed']} images computed in {timing['seconds']:.0f} s by {timing['processes']} "
                 f"process(es) ({timing['found']} found done)."]
    return "\n".join(rows) + "\n"


def _fmt(value, spec: str, spread=None) -> str:
    """value formatted, with ± the half-width of its interval where one is given ((mean, half-width))."""
    if value is None:
        return "–"
    return format(value, spec) + (f" ± {format(spread[1], spec)}" if spread else "")


def plot(summary: dict) -> np.ndarray:
    fractions = np.round(np.linspace(0, 0.9, summary["settings"]["steps"]), 4)
    return R.curves_figure(fractions, {n: (np.array(r["pos_curve"]), np.array(r["neg_curve"]))
                                       for n, r in summary["results"].items()},
                           "share of pixels removed", "top-1 accuracy")


def write(summary: dict, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(summary, indent=1))
    (out / "results.md").write_text(table(summary))
    Image.fromarray(plot(summary)).save(out / "curves.png")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vitviz.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="Hub id, folder or 'bundled' (default)")
    p.add_argument("--data-dir", default=str(data.FASHION_MNIST_DIR), help="Fashion-MNIST IDX files (default data)")
    p.add_argument("--folder", help="a folder of class subfolders instead")
    p.add_argument("--imagenet-val", help="a folder of images in the ImageNet validation layout instead")
    p.add_argument("--labels", help="with --imagenet-val: one class index per image (sorted file names), "
                                    "or 'file-name index' per line")
    p.add_argument("--limit", type=int, default=1000, help="the first N images (0: all)")
    p.add_argument("--n", dest="limit", type=int, help=argparse.SUPPRESS)   # the old name, for one process
    p.add_argument("--methods", nargs="+", choices=methods.ids(), default=list(methods.ids()),
                   help="maps to compare (default: every registered method)")
    p.add_argument("--metrics", nargs="+", choices=METRICS, default=[],
                   help="besides the AUCs and pointing: saco (Wu et al. 2024), mprt (the sanity check of "
                        "Adebayo et al. 2018)")
    p.add_argument("--steps", type=int, help="removal fractions from 0 to 90%% (default 10)")
    p.add_argument("--size", help="HxW the images run at, e.g. 224x224 (default: the model's own input size; "
                                  "other sizes interpolate the position embeddings, as the app does)")
    p.add_argument("--fill", choices=FILLS, help="what removed pixels become: black (default; Fashion-MNIST's "
                                                 "background, and what Chefer et al.'s code does), the data mean, or "
                                                 "road (noisy linear imputation from the neighbours, Rong et al. 2022)")
    p.add_argument("--saco-convention", choices=list(saco.CONVENTIONS), default=saco.DEFAULT,
                   help="how SaCo groups the pixels: "
                        + "; ".join(f"{c.name}: {c.does}" for c in saco.CONVENTIONS.values()))
    p.add_argument("--mprt-convention", choices=list(mprt.CONVENTIONS), default=mprt.DEFAULT,
                   help="how the sanity check randomises the model: "
                        + "; ".join(f"{c.name}: {c.does}" for c in mprt.CONVENTIONS.values()))
    p.add_argument("--preset", choices=sorted(PRESETS), help="pin a published protocol: chefer2021 = "
                                                             "google/vit-base-patch16-224, black, 10 steps")
    p.add_argument("--batch-size", type=int, default=64, help="perturbed copies per forward pass")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per process (default: cores / processes)")
    p.add_argument("--out", default="results", help="folder for results.md, results.json, curves.png, part files")
    return p


def apply_preset(a) -> None:
    """Fill in the preset's settings (refusing command-line values that differ) and the defaults."""
    for key, value in PRESETS.get(a.preset, {}).items():
        given = getattr(a, key)
        if given is not None and given != value:
            raise SystemExit(f"--preset {a.preset} pins --{key} {value}, got --{key} {given}")
        setattr(a, key, value)
    if a.preset in PRESET_DATA and not getattr(a, PRESET_DATA[a.preset][0]):
        raise SystemExit(f"--preset {a.preset} evaluates its paper's data: pass {PRESET_DATA[a.preset][1]}")
    for key, value in {**DEFAULTS, "model": models.BUNDLED}.items():
        if getattr(a, key) is None:
            setattr(a, key, value)


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
    apply_preset(a)
    group = Group()
    torch.set_num_threads(cpu_threads(group.local_world, a.threads))
    try:
        summary = run(a, group)
        if summary is not None:
            write(summary, Path(a.out))
            print(table(summary))
            t = summary["timing"]
            rate = f"{t['images_per_second']:.2f} images/s" if t["images_per_second"] else "nothing to compute"
            print(f"{t['computed']} images in {t['seconds']:.0f} s ({rate}); written to {a.out}/")
    finally:
        group.close()


if __name__ == "__main__":
    main()
