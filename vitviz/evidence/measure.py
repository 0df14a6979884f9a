"""Measuring the evidence for one photo's maps: the perturbation curves and SaCo in one call (so ZeroGPU
schedules it once), and what ROAD's imputation and the sanity check's randomised copy may cost.
The tables of what was measured are vitviz.evidence.table's."""

from __future__ import annotations

from ..core import limits
from ..core.limits import RequestRefused
from . import perturb
from .mprt import memory_bytes
from .saco import saco_scores

# ROAD solves one linear system per removed region and copy (vitviz.evidence.road): ~1.4 s for a 224×224 copy
# on one CPU core, and a photo's check perturbs ~270 copies (9 maps × 18 curve steps and 10 SaCo
# groups). The imputation runs where the input tensor is, the CPU, so ROAD is offered up to 64×64
# pixels: ~19 ms a copy, some 5 s for the check (measured on a shared 2-core Xeon).
ROAD_MAX_PIXELS = 64 * 64
ROAD_SECONDS_224 = 1.4          # per copy, for the estimate in the refusal
COPIES = 270


# ---------------------------------------------------------------- measuring

def measure(loaded, an, maps: dict, fill: str = "mean", saco_groups: int = 10) -> dict:
    """{"curves": perturb.curves' curves and AUCs, "saco": saco.saco_scores} of `maps` for the
    predicted class, removed pixels becoming `fill` (perturb.FILLS)."""
    return {"curves": perturb.curves(loaded, an, maps, None, fill),
            "saco": saco_scores(loaded, an, maps, None, fill, saco_groups)}


def road_allowed(size: tuple[int, int]) -> bool:
    """Whether ROAD's imputation is quick enough for an input of (H, W) pixels (ROAD_MAX_PIXELS)."""
    return size[0] * size[1] <= ROAD_MAX_PIXELS


def road_seconds(size: tuple[int, int]) -> float:
    """Estimated seconds of imputation for a check of one photo: each copy costs H dense W×W
    solves, so it grows with H·W³ (the longer side as W)."""
    h, w = sorted(size)
    return COPIES * ROAD_SECONDS_224 * h * w ** 3 / 224 ** 4


def check_fill(fill: str, size: tuple[int, int]) -> None:
    """RequestRefused when ROAD is asked for an input too large for it."""
    if fill == "road" and not road_allowed(size):
        raise RequestRefused("err_road_size", size=limits.format_size(size), limit=_side(ROAD_MAX_PIXELS),
                             seconds=f"{road_seconds(size):.0f}")


def _side(pixels: int) -> str:
    side = int(round(pixels ** 0.5))
    return f"{side}x{side}"


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
