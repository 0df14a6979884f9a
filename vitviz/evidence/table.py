"""The evidence for believing each map on one photo, side by side, as tables: perturbation AUCs
(Chefer et al. CVPR 2021), SaCo (Wu et al. CVPR 2024), the sanity check at full randomisation
(Adebayo et al. 2018) and pointing, with the random map as a row; and how the methods' ranking moves
with what removed pixels become (Rong et al. ICML 2022). Plain Markdown from results already measured
(vitviz.evidence.measure); maps are named by the method registry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import methods
from ..core.conventions import Convention
from ..core.i18n import t
from . import mprt, saco
from .perturb import PROTOCOL
from .road import ROAD

COLUMNS = ("auc_pos", "auc_neg", "saco", "mprt", "pointing")   # in the table's order


@dataclass
class Evidence:
    """One row per map; a column only where its measure was made."""
    columns: tuple[str, ...]
    rows: dict[str, dict[str, float]]      # map -> column -> value (NaN where undefined)


def evidence(curves: dict, saco: dict | None = None, mprt: dict | None = None,
             points: dict | None = None) -> Evidence:
    """The table's numbers. curves: perturb.curves' results (AUCs as shares, shown in %); saco:
    saco.saco_scores; mprt: method -> Spearman correlation per randomised depth (mprt.mprt's
    ``spearman``: the last, every block random, is shown); points: pointing_scores. Rows: curves' maps."""
    made = {"auc_pos": curves, "auc_neg": curves, "saco": saco, "mprt": mprt, "pointing": points}
    columns = tuple(c for c in COLUMNS if made[c] is not None)
    rows = {}
    for name, r in curves.items():
        row = {"auc_pos": 100 * r["auc_pos"], "auc_neg": 100 * r["auc_neg"]}
        if saco is not None:
            row["saco"] = saco[name]["saco"] if name in saco else float("nan")
        if mprt is not None:
            row["mprt"] = float(np.asarray(mprt[name])[-1]) if name in mprt else float("nan")
        if points is not None:
            row["pointing"] = 100 * points[name] if name in points else float("nan")
        rows[name] = row
    return Evidence(columns, rows)


HEADERS = {"auc_pos": "ev_auc_pos", "auc_neg": "ev_auc_neg", "saco": "ev_saco", "mprt": "ev_mprt",
           "pointing": "ev_pointing"}
FORMATS = {"auc_pos": ".1f", "auc_neg": ".1f", "saco": ".2f", "mprt": ".2f", "pointing": ".1f"}


def evidence_table(ev: Evidence, lang: str = "en") -> str:
    """The evidence as a Markdown table, maps by their names in `lang`."""
    head = f"| {t('ev_map', lang)} | " + " | ".join(t(HEADERS[c], lang) for c in ev.columns) + " |"
    rows = [head, "|---|" + "---:|" * len(ev.columns)]
    for name, row in ev.rows.items():
        cells = [_cell(row[c], FORMATS[c]) for c in ev.columns]
        rows.append(f"| {methods.get(name).name(lang)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def conventions_line(lang: str = "en", saco_convention: str = saco.DEFAULT,
                     mprt_convention: str = mprt.DEFAULT) -> str:
    """Which convention each column follows, with the paper it comes from: one sentence under the table."""
    return t("ev_conventions", lang, curves=cited(PROTOCOL), saco=cited(saco.get_convention(saco_convention)),
             mprt=cited(mprt.get_convention(mprt_convention)), road=cited(ROAD))


def cited(c: Convention) -> str:
    """A convention's name and its paper's authors and venue (settings.json keeps the whole reference)."""
    return f"{c.name} ({c.reference.split(';')[0].split(', ' + chr(39))[0]})"


def _cell(value: float, spec: str) -> str:
    return "–" if value is None or not np.isfinite(value) else format(value, spec)


# ---------------------------------------------------------------- the ranking under each fill

def gap(result: dict) -> float:
    """One number per map from its curves: negative AUC minus positive AUC, in points (higher is
    better: the class holds when the least relevant pixels go, and falls when the most relevant go)."""
    return 100 * (result["auc_neg"] - result["auc_pos"])


def fill_ranks(by_fill: dict[str, dict]) -> dict[str, dict[str, int]]:
    """fill -> map -> its rank (1 = best gap) among the maps under that fill. Equal gaps (to 1e-9)
    share the better rank; by_fill: fill -> perturb.curves' results."""
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
    rows = [f"| {t('ev_map', lang)} | " + " | ".join(t(f"ev_fill_{f}", lang) for f in fills) + " |",
            "|---|" + "---:|" * len(fills)]
    for name in names:
        cells = [f"{ranks[f][name]} ({gap(by_fill[f][name]):.1f})" if name in by_fill[f] else "–" for f in fills]
        rows.append(f"| {methods.get(name).name(lang)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def rank_changes(by_fill: dict[str, dict]) -> list[str]:
    """The maps whose rank is not the same under every fill."""
    ranks = fill_ranks(by_fill)
    names = set.intersection(*(set(r) for r in ranks.values())) if ranks else set()
    return [n for n in next(iter(by_fill.values())) if n in names and len({r[n] for r in ranks.values()}) > 1]
