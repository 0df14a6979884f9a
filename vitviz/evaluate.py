"""How faithful is each explanation map? Perturbation AUCs and a pointing score, at research scale.

    python -m vitviz.evaluate --limit 1000 --out results/                        # bundled model, Fashion-MNIST
    torchrun --standalone --nproc_per_node 2 -m vitviz.evaluate --limit 1000 --out results/
    python -m vitviz.evaluate --model google/vit-base-patch16-224 --fill mean \\
        --imagenet-val VAL_DIR --labels VAL_LABELS.txt --out runs/vitb     # ImageNet validation layout
    python -m vitviz.evaluate --folder DIR --model MODEL --out runs/x       # DIR/<class>/* images

For each image, every map (vitviz.views.STANDARD_MAPS, for the predicted class) removes 0 %..90 %
of the pixels, most relevant first (positive perturbation: accuracy should fall fast, lower AUC
is better) and least relevant first (negative: accuracy should hold, higher AUC is better), as
in Chefer et al. CVPR 2021. Pointing, where the data marks the object (Fashion-MNIST: its
non-black pixels), is the share of the map's mass on it.

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

from . import render as R
from . import views
from .faithfulness import Settings, evaluate_sample, metrics, perturbation_model
from .journal import Journal, SettingsChanged

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
    from . import data

    if a.imagenet_val:
        if not a.labels:
            raise SystemExit("--imagenet-val needs --labels (one class index per image, the model's order)")
        return data.imagenet_val_samples(a.imagenet_val, a.labels)
    if a.folder:
        return data.class_folder_samples(a.folder, {v: k for k, v in loaded.id2label.items()})
    return data.FashionMNISTSamples(a.data_dir, "t10k")


def run(a, group: Group) -> dict | None:
    """Evaluate this process's share of the images not done yet; rank 0 returns the summary."""
    from . import models

    loaded = models.load(a.model, group.device, a.dtype)
    fast = perturbation_model(loaded)
    samples = samples_for(a, loaded)
    limit = min(a.limit or len(samples), len(samples))
    settings = Settings(model=a.model, data=samples.name, methods=tuple(a.methods), steps=a.steps, fill=a.fill,
                        dtype=loaded.dtype)
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
    t0 = time.perf_counter()
    journal.open()
    try:
        for i in progress(todo, group, sum(1 for i in range(limit) if i not in found)):
            image, label, mask = samples.sample(i)
            journal.append(evaluate_sample(loaded, fast, image, label, mask, i, settings, a.batch_size))
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
    timing = summary["timing"]
    rows = [f"{summary['data']}: {summary['n']} images, model: {summary['model']}, removed pixels set to "
            f"{summary['fill']}. Top-1 accuracy (%) under perturbation, AUC over 0–90% of pixels removed "
            "(normalised by the x-range); pointing = % of the map's mass on the object.", "",
            "| map | positive AUC ↓ | negative AUC ↑ | pointing ↑ |", "|---|---:|---:|---:|"]
    for name, r in summary["results"].items():
        point = f"{r['pointing']:.1f}" if r["pointing"] is not None else "–"
        rows.append(f"| {name} | {r['pos_auc']:.1f} | {r['neg_auc']:.1f} | {point} |")
    rows += ["", f"{timing['computed']} images computed in {timing['seconds']:.0f} s by {timing['processes']} "
                 f"process(es) ({timing['found']} found done)."]
    return "\n".join(rows) + "\n"


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
    from . import data, models
    from .explain import FILLS

    p = argparse.ArgumentParser(prog="python -m vitviz.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=models.BUNDLED, help="Hub id, folder or 'bundled' (default)")
    p.add_argument("--data-dir", default=str(data.FASHION_MNIST_DIR), help="Fashion-MNIST IDX files (default data)")
    p.add_argument("--folder", help="a folder of class subfolders instead")
    p.add_argument("--imagenet-val", help="a folder of images in the ImageNet validation layout instead")
    p.add_argument("--labels", help="with --imagenet-val: one class index per image (sorted file names), "
                                    "or 'file-name index' per line")
    p.add_argument("--limit", type=int, default=1000, help="the first N images (0: all)")
    p.add_argument("--n", dest="limit", type=int, help=argparse.SUPPRESS)   # the old name, for one process
    p.add_argument("--methods", nargs="+", choices=views.STANDARD_MAPS, default=list(views.STANDARD_MAPS))
    p.add_argument("--steps", type=int, default=10, help="removal fractions from 0 to 90%% (default 10)")
    p.add_argument("--fill", choices=FILLS, default="black",
                   help="what removed pixels become: black (Fashion-MNIST's background) or the mean (Chefer et al.)")
    p.add_argument("--batch-size", type=int, default=64, help="perturbed copies per forward pass")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per process (default: cores / processes)")
    p.add_argument("--out", default="results", help="folder for results.md, results.json, curves.png, part files")
    return p


def main(argv: list[str] | None = None) -> None:
    a = parser().parse_args(argv)
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
