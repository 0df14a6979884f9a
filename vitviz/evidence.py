"""The evidence for believing each map on one photo, side by side: perturbation AUCs (Chefer et al.
CVPR 2021), SaCo (Wu et al. CVPR 2024), the sanity check at full randomisation (Adebayo et al. 2018)
and pointing, with the random map as a row; and how the methods' ranking moves with what removed
pixels become (Rong et al. ICML 2022).

Measuring runs the model (``measure``, one call for the curves and SaCo, so ZeroGPU schedules it
once); the tables are plain Markdown from results already computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import explain, limits
from .faithfulness import pointing
from .i18n import t
from .limits import RequestRefused

# ROAD solves one linear system per removed region and copy (vitviz.road): ~1.4 s for a 224×224 copy
# on one CPU core, and a photo's check perturbs ~270 copies (9 maps × 18 curve steps and 10 SaCo
# groups). The imputation runs where the input tensor is, the CPU, so ROAD is offered up to 64×64
# pixels: ~19 ms a copy, some 5 s for the check (measured on a shared 2-core Xeon).
ROAD_MAX_PIXELS = 64 * 64
ROAD_SECONDS_224 = 1.4          # per copy, for the estimate in the refusal
COPIES = 270


# ---------------------------------------------------------------- measuring

def measure(loaded, an, maps: dict, fill: str = "mean", saco_groups: int = 10) -> dict:
    """{"faith": explain.faithfulness' curves and AUCs, "saco": saco.saco_scores} of `maps` for the
    predicted class, removed pixels becoming `fill` (explain.FILLS)."""
    from .saco import saco_scores

    return {"faith": explain.faithfulness(loaded, an, maps, None, fill),
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
    from .sanity import memory_bytes

    return memory_bytes(loaded) + limits.request_bytes(limits.Shape.of(loaded), size, kind="class")


def check_sanity_budget(loaded, size: tuple[int, int], budget: int) -> int:
    """The sanity check's memory for an input of `size`; RequestRefused("err_memory_sanity") over `budget`."""
    need = sanity_bytes(loaded, size)
    if need > budget:
        raise RequestRefused("err_memory_sanity", need=limits.human_bytes(need), limit=limits.human_bytes(budget))
    return need


# ---------------------------------------------------------------- pointing

BLACK_BORDER = 0.5    # share of a photo's border pixels that are black in Fashion-MNIST's style


def object_mask(label_set: str | None, seen: np.ndarray) -> np.ndarray | None:
    """Where the object is, when the data set says so: (H, W) bool, or None.

    Fashion-MNIST's photos are garments on a black background, and the evaluation takes the
    non-black pixels as the object; a photo in that style (at least half of its border pixels
    exactly black, as in every example garment and in no camera photo among the examples) shown to
    a model trained on it gets the same mask. Any other photo has no mask: nothing says where its
    object is."""
    if label_set != "fashion-mnist" or seen.ndim != 3:
        return None
    border = np.concatenate([seen[0], seen[-1], seen[:, 0], seen[:, -1]])
    lit = seen.max(-1) > 0
    if (border.max(-1) == 0).mean() < BLACK_BORDER or not lit.any():
        return None
    return lit


def pointing_scores(maps: dict, mask: np.ndarray | None) -> dict[str, float] | None:
    """Share of each map's mass on the object (faithfulness.pointing), or None without a mask."""
    if mask is None:
        return None
    return {name: pointing(np.asarray(m, dtype=np.float32), mask) for name, m in maps.items()}


# ---------------------------------------------------------------- the evidence table

COLUMNS = ("auc_pos", "auc_neg", "saco", "mprt", "pointing")   # in the table's order


@dataclass
class Evidence:
    """One row per map; a column only where its measure was made."""
    columns: tuple[str, ...]
    rows: dict[str, dict[str, float]]      # map -> column -> value (NaN where undefined)


def evidence(faith: dict, saco: dict | None = None, mprt: dict | None = None,
             points: dict | None = None) -> Evidence:
    """The table's numbers. faith: explain.faithfulness' results (AUCs as shares, shown in %); saco:
    saco.saco_scores; mprt: method -> Spearman correlation per randomised depth (sanity.mprt's
    ``spearman``: the last, every block random, is shown); points: pointing_scores. Rows: faith's maps."""
    made = {"auc_pos": faith, "auc_neg": faith, "saco": saco, "mprt": mprt, "pointing": points}
    columns = tuple(c for c in COLUMNS if made[c] is not None)
    rows = {}
    for name, r in faith.items():
        row = {"auc_pos": 100 * r["auc_pos"], "auc_neg": 100 * r["auc_neg"]}
        if saco is not None:
            row["saco"] = saco[name]["saco"] if name in saco else float("nan")
        if mprt is not None:
            row["mprt"] = float(np.asarray(mprt[name])[-1]) if name in mprt else float("nan")
        if points is not None:
            row["pointing"] = 100 * points[name] if name in points else float("nan")
        rows[name] = row
    return Evidence(columns, rows)


HEADERS = {"auc_pos": "faith_pos", "auc_neg": "faith_neg", "saco": "ev_saco", "mprt": "ev_mprt",
           "pointing": "ev_pointing"}
FORMATS = {"auc_pos": ".1f", "auc_neg": ".1f", "saco": ".2f", "mprt": ".2f", "pointing": ".1f"}


def evidence_table(ev: Evidence, lang: str = "en") -> str:
    """The evidence as a Markdown table, maps by their names in `lang`."""
    head = f"| {t('faith_map', lang)} | " + " | ".join(t(HEADERS[c], lang) for c in ev.columns) + " |"
    rows = [head, "|---|" + "---:|" * len(ev.columns)]
    for name, row in ev.rows.items():
        cells = [_cell(row[c], FORMATS[c]) for c in ev.columns]
        rows.append(f"| {t(f'map_{name}', lang)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _cell(value: float, spec: str) -> str:
    return "–" if value is None or not np.isfinite(value) else format(value, spec)


# ---------------------------------------------------------------- the ranking under each fill

def gap(result: dict) -> float:
    """One number per map from its curves: negative AUC minus positive AUC, in points (higher is
    better: the class holds when the least relevant pixels go, and falls when the most relevant go)."""
    return 100 * (result["auc_neg"] - result["auc_pos"])


def fill_ranks(by_fill: dict[str, dict]) -> dict[str, dict[str, int]]:
    """fill -> map -> its rank (1 = best gap) among the maps under that fill. Equal gaps (to 1e-9)
    share the better rank; by_fill: fill -> explain.faithfulness' results."""
    ranks = {}
    for fill, results in by_fill.items():
        gaps = {name: round(gap(r), 9) for name, r in results.items()}
        ranks[fill] = {name: 1 + sum(other > g for other in gaps.values()) for name, g in gaps.items()}
    return ranks


def fill_table(by_fill: dict[str, dict], lang: str = "en") -> str:
    """Markdown: one row per map, one column per fill, each cell "rank (gap)"."""
    ranks = fill_ranks(by_fill)
    fills = list(by_fill)
    names = list(next(iter(by_fill.values())))
    rows = [f"| {t('faith_map', lang)} | " + " | ".join(t(f"ev_fill_{f}", lang) for f in fills) + " |",
            "|---|" + "---:|" * len(fills)]
    for name in names:
        cells = [f"{ranks[f][name]} ({gap(by_fill[f][name]):.1f})" if name in by_fill[f] else "–" for f in fills]
        rows.append(f"| {t(f'map_{name}', lang)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def rank_changes(by_fill: dict[str, dict]) -> list[str]:
    """The maps whose rank is not the same under every fill."""
    ranks = fill_ranks(by_fill)
    names = set.intersection(*(set(r) for r in ranks.values())) if ranks else set()
    return [n for n in next(iter(by_fill.values())) if n in names and len({r[n] for r in ranks.values()}) > 1]
