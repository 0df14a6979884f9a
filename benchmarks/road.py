"""How fast is ROAD's imputation, and how much memory does it hold? The sparse solver against the old dense one.

    python benchmarks/road.py [--sizes 28 224 448] [--threads 1 2] [--old 28 224] [--sample 448=7]

One photo's evidence check perturbs COPIES copies of the input: 9 maps × (10 removal fractions × 2 orders
of perturb.removal_masks + 10 SaCo groups). The masks here are those of random maps on the patch grid
(patch 4 at 28×28 as the bundled model, 16 above), made as the evaluation makes them. For each size:

  new     vitviz.evidence.road.impute with road.THREADS = each of --threads: seconds per copy (mean over
          the check's copies, or over every k-th of them with --sample SIZE=k) and per check
  old     the dense block elimination vitviz used before (copied below), with one torch thread: with
          two, on a 2-core machine, it ran many times slower or stopped on MKL's pivot errors. Its cost
          does not depend on the mask (H dense W×W solves per copy), so two copies are timed at sizes
          above 64×64.
  memory  peak resident memory of one chunk (road.CHUNK_PIXELS) of copies whose every pixel but one is
          removed, the worst case, measured in a fresh process, beside measure.road_bytes' estimate.

CPU time would hide whether THREADS helps, so times are wall-clock: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from vitviz.core import ranking  # noqa: E402
from vitviz.evidence import measure, perturb, road  # noqa: E402

MAPS, GROUPS = 9, 10
COPIES = MAPS * (2 * len(perturb.FRACTIONS) + GROUPS)


# ---------------------------------------------------------------- the solver vitviz used before

ROW_MEMORY = 256 * 2**20      # bytes of row couplings held at once (B·H·W²·8): 2 copies of 224×224


def _bands(w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    one = torch.ones(w - 1, dtype=torch.float64, device=device)
    side = torch.diag(one, 1) + torch.diag(one, -1)
    return side / 6, torch.eye(w, dtype=torch.float64, device=device) / 6 + side / 12


def _solve_rows(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Block-tridiagonal elimination over the image's rows, all pixels as unknowns (kept ones: x_i = value)."""
    b, c, h, w = x.shape
    within, across = _bands(w, x.device)
    eye = torch.eye(w, dtype=torch.float64, device=x.device)
    degree = road.neighbour_sum(torch.ones(1, 1, h, w, dtype=torch.float64, device=x.device))[0, 0]
    unknown = removed.double()
    couplings, values = [], []
    for r in range(h):
        scale = (unknown[:, r] / degree[r])[..., None]
        m = eye - scale * within
        rhs = (x[:, :, r] * (1 - unknown[:, r])[:, None]).transpose(1, 2)
        if r > 0:
            low = -scale * across
            m = m - low @ couplings[-1]
            rhs = rhs - low @ values[-1]
        if r < h - 1:
            sol = torch.linalg.solve(m, torch.cat([-scale * across, rhs], -1))
            couplings.append(sol[..., :w])
            values.append(sol[..., w:])
        else:
            values.append(torch.linalg.solve(m, rhs))
    rows = [values[-1]]
    for r in range(h - 2, -1, -1):
        rows.append(values[r] - couplings[r] @ rows[-1])
    return torch.stack(rows[::-1], 1).permute(0, 3, 1, 2)


def old_impute(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """The imputation vitviz used before the sparse solver: x (B, C, H, W), removed (B, H, W) bool."""
    if not bool(removed.any()):
        return x.clone()
    wide = x.shape[-1] > x.shape[-2]
    xt, rt = (x.transpose(-1, -2), removed.transpose(-1, -2)) if wide else (x, removed)
    h, w = xt.shape[-2:]
    chunk = max(1, ROW_MEMORY // (h * w * w * 8))
    solved = torch.cat([_solve_rows(xt[i:i + chunk].double(), rt[i:i + chunk]) for i in range(0, len(xt), chunk)])
    solved = solved.transpose(-1, -2) if wide else solved
    return torch.where(removed[:, None], solved.to(x.dtype), x)


# ---------------------------------------------------------------- one check's masks

def check_masks(size: int, seed: int = 0) -> torch.Tensor:
    """The masks of one photo's check at size×size: (COPIES, H, W) bool, map by map, curves then groups."""
    g = torch.Generator().manual_seed(seed)
    grid = size // (4 if size <= 64 else 16)
    masks = []
    for _ in range(MAPS):
        relevance = torch.rand(grid, grid, generator=g).numpy()
        order = ranking.pixel_order(relevance, (size, size)).numpy()
        groups = np.zeros((GROUPS, size * size), dtype=bool)
        for k, members in enumerate(np.array_split(order, GROUPS)):    # sizes differing by at most one
            groups[k, members] = True
        masks += [perturb.removal_masks(relevance, (size, size)), torch.from_numpy(groups.reshape(-1, size, size))]
    return torch.cat(masks)


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_new(size: int, threads: int, sample: int) -> float:
    """Wall seconds per copy of the sparse solver, over every `sample`-th copy of one check."""
    masks = check_masks(size)[::sample]
    x = torch.rand(3, size, size).expand(len(masks), 3, size, size)
    road.THREADS = threads
    road.impute(x[:1], masks[1:2])                     # warm: the dissection order, the thread pool
    return seconds(lambda: road.impute(x, masks)) / len(masks)


def time_old(size: int) -> float:
    """Wall seconds per copy of the dense solver (mask-independent cost: two copies above 64×64)."""
    masks = check_masks(size)
    masks = masks if size <= 64 else masks[[5, 15]]
    x = torch.rand(3, size, size).expand(len(masks), 3, size, size)
    return seconds(lambda: old_impute(x, masks)) / len(masks)


# ---------------------------------------------------------------- memory, in a fresh process

def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_child(size: int) -> None:
    """Prints the peak bytes above the resident set of imputing one chunk of worst-case copies (Linux)."""
    road.THREADS = 1
    copies = max(1, road.CHUNK_PIXELS // (size * size))
    masks = torch.ones(copies, size, size, dtype=torch.bool)
    masks[:, 0, 0] = False
    x = torch.rand(copies, 3, size, size)
    road.dissection_rank(size, size)
    before = _status("VmRSS:")
    Path("/proc/self/clear_refs").write_text("5")                   # the peak restarts from here
    road.impute(x, masks)
    print(_status("VmHWM:") - before)


def peak_bytes(size: int) -> int | None:
    """peak_child's figure for one size, or None where /proc cannot say."""
    run = subprocess.run([sys.executable, __file__, "--peak-child", str(size)], capture_output=True, text=True)
    return int(run.stdout.split()[-1]) if run.returncode == 0 and run.stdout.strip() else None


# ---------------------------------------------------------------- the report

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 224, 448])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--old", type=int, nargs="*", default=[28, 224], help="sizes to time the old solver at")
    parser.add_argument("--sample", nargs="*", default=["448=7"], help="SIZE=k: time every k-th copy at SIZE")
    parser.add_argument("--peak-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child:
        return peak_child(args.peak_child)
    torch.set_num_threads(1)
    sample = {int(k): int(v) for k, v in (s.split("=") for s in args.sample)}
    print(f"{COPIES} copies per check; wall-clock seconds; torch threads 1; road.CHUNK_PIXELS {road.CHUNK_PIXELS}")
    for size in args.sizes:
        every = sample.get(size, 1)
        old = time_old(size) if size in args.old else None
        for threads in args.threads:
            copy = time_new(size, threads, every)
            ratio = f", {old / copy:.0f}× faster than the old" if old else ""
            print(f"{size}×{size} new, {threads} thread(s): {copy * 1e3:.1f} ms a copy, {copy * COPIES:.2f} s a check"
                  f"{f' (every {every}th copy timed)' if every > 1 else ''}{ratio}", flush=True)
        if old:
            print(f"{size}×{size} old, 1 torch thread: {old * 1e3:.1f} ms a copy, {old * COPIES:.1f} s a check")
        peak = peak_bytes(size)
        if peak is not None:
            print(f"{size}×{size} peak memory of one worst-case chunk: {peak / 2**20:.0f} MiB "
                  f"(road_bytes for one thread: {measure.road_bytes((size, size), threads=1) / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
