"""Measuring the evidence for one photo's maps: the perturbation curves and SaCo in one call (so ZeroGPU
schedules it once), and what ROAD's imputation and the sanity check's randomised copy may cost.
The tables of what was measured are vitviz.evidence.table's."""

from __future__ import annotations

import math

from ..core import limits
from ..core.limits import RequestRefused
from . import perturb, road
from .mprt import memory_bytes
from .saco import saco_scores

# ROAD's imputation (vitviz.evidence.road) factorises one sparse system per chunk of copies, THREADS chunks at a
# time, on the CPU; a photo's check perturbs COPIES copies (9 maps × 20 curve steps and 10 SaCo groups). Its
# memory: in road's nested-dissection order the factors of a copy of n pixels hold O(n·log2 n) entries, most
# when every pixel but one is removed, and the solve's peak is a small multiple of them (a value and an index
# each, SuperLU's growing work arrays). ROAD_BYTES per n·log2(n) per copy and ROAD_FIXED per thread (the
# thread's buffers, what the smallest inputs measure) are above the worst case's peak resident memory at every
# size benchmarks/road.py measures (28×28 to 448×448). Its time: a copy costs ROAD_SECONDS_COPY plus the
# factorisation's, ROAD_SECONDS_224 at 224×224 on one thread (the mean over a check's copies) and growing as
# n^ROAD_GROWTH: between n (copies with few pixels removed) and n^1.5 (nested dissection of a whole grid),
# as the check's mix of copies measures from 112×112 to 448×448.
ROAD_BYTES = 120
ROAD_FIXED = 32 * 2**20
ROAD_SECONDS_224 = 0.040
ROAD_SECONDS_COPY = 0.0003
ROAD_GROWTH = 1.2
COPIES = 270


# ---------------------------------------------------------------- measuring

def measure(loaded, an, maps: dict, fill: str = "mean", saco_groups: int = 10) -> dict:
    """{"curves": perturb.curves' curves and AUCs, "saco": saco.saco_scores} of `maps` for the
    predicted class, removed pixels becoming `fill` (perturb.FILLS)."""
    return {"curves": perturb.curves(loaded, an, maps, None, fill),
            "saco": saco_scores(loaded, an, maps, None, fill, saco_groups)}


def road_bytes(size: tuple[int, int], threads: int | None = None) -> int:
    """Peak memory of ROAD's imputation for an input of (H, W) pixels: `threads` (road.THREADS) chunks of
    copies at once, each ROAD_FIXED plus ROAD_BYTES · n·log2(n) per copy of n pixels."""
    n = max(2, size[0] * size[1])
    copies = max(1, road.CHUNK_PIXELS // n)
    return int((threads or road.THREADS) * (ROAD_FIXED + copies * ROAD_BYTES * n * math.log2(n)))


def road_allowed(size: tuple[int, int], budget: int) -> bool:
    """Whether ROAD's imputation for an input of (H, W) pixels fits in `budget` bytes (road_bytes)."""
    return road_bytes(size) <= budget


def road_seconds(size: tuple[int, int]) -> float:
    """Estimated seconds of imputation for one photo's check (COPIES copies) at (H, W) on one thread
    (THREADS divide it where as many cores are free)."""
    n = size[0] * size[1]
    return COPIES * (ROAD_SECONDS_COPY + ROAD_SECONDS_224 * (n / 224 ** 2) ** ROAD_GROWTH)


def check_fill(fill: str, size: tuple[int, int], budget: int) -> None:
    """RequestRefused("err_road_size") when ROAD is asked for an input whose imputation exceeds `budget` bytes."""
    if fill == "road" and not road_allowed(size, budget):
        raise RequestRefused("err_road_size", size=limits.format_size(size), need=limits.human_bytes(road_bytes(size)),
                             limit=limits.human_bytes(budget), seconds=f"{road_seconds(size):.0f}")


# ---------------------------------------------------------------- the sanity check's memory

def sanity_bytes(loaded, size: tuple[int, int]) -> int:
    """Memory a sanity check holds beyond the shared model: a copy of the model (its top blocks are
    re-initialised there), plus the forward and backward of the class maps at each step."""
    return memory_bytes(loaded) + limits.request_bytes(limits.Shape.of(loaded), size, kind="class")


def check_sanity_budget(loaded, size: tuple[int, int], budget: int) -> int:
    """The sanity check's memory for an input of `size`; RequestRefused("err_memory_sanity") over `budget`."""
    need = sanity_bytes(loaded, size)
    if need > budget:
        raise RequestRefused("err_memory_sanity", need=limits.human_bytes(need), limit=limits.human_bytes(budget))
    return need
