"""The evidence for explanation maps on one labelled sample, as the research evaluation records it.

For one labelled image: one forward with attentions (the class-agnostic maps), one forward and
backward for the class-specific maps of the predicted class, then every map removes 0 %..90 % of
the pixels most relevant first (positive perturbation) and least relevant first (negative), and
the perturbed copies go through the model in batches. The result is whether the model still
gets the label right at each step, per map and direction, and the share of each map's mass on
the object where the data set marks it (pointing). On request (EvalSettings.metrics) also SaCo
(vitviz.evidence.saco: K groups removed one at a time) and the sanity check (vitviz.evidence.mprt:
the maps' rank correlation with the original as the top blocks are re-initialised).

A sample's result depends on nothing but the model, the image, its index (the random map's and
ROAD's noise seed) and the settings: the copies of one image are batched together and never with
another image's, so any number of processes, in any order, gives the same numbers. Pixels are
ranked by vitviz.core.ranking (noise-proof ties), the class maps' backward passes run on one thread
(their sums otherwise depend on the thread count) and shares are recorded to 4 decimals, so the
thread count does not change a record.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from .. import methods
from ..analysis import analyze_batch, forward
from ..core import ranking
from . import mprt as sanity
from . import saco
from .mprt import Randomiser, mprt
from .perturb import PROTOCOL, apply_fill, auc, fill_value, removal_masks
from .pointing import pointing
from .road import ROAD
from .saco import coefficient, groups

METRICS = ("saco", "mprt")      # besides the perturbation AUCs and pointing, which are always on
DECIMALS = 4                    # shares in records (pointing), far above float noise
SCORE_DECIMALS = 6              # SaCo, correlations, SSIM in records
# Class maps' backward passes run on one thread: the same bits for any thread count and number of
# processes (SSIM and pointing are continuous in the maps, so no rounding could hide ~1e-7)
BACKWARD_THREADS = 1


@dataclass(frozen=True)
class EvalSettings:
    """What the numbers depend on (kept with the results; a resumed run must match)."""
    model: str
    data: str                                  # the data source, as the command line named it
    methods: tuple[str, ...] = field(default_factory=methods.ids)   # every registered method
    steps: int = 10                            # removal fractions 0, ..., 0.9 in equal steps
    fill: str = "black"                        # what removed pixels become (perturb.FILLS)
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)  # anything else the caller wants compared on resume
    metrics: tuple[str, ...] = ()              # METRICS computed besides AUCs and pointing
    saco_groups: int = 10                      # SaCo's K
    saco_convention: str = saco.DEFAULT        # how SaCo groups the pixels (saco.CONVENTIONS)
    mprt_seed: int = sanity.SEED               # the sanity check's random weights
    mprt_convention: str = sanity.DEFAULT      # how the sanity check randomises the model (mprt.CONVENTIONS)
    preset: str | None = None                  # a pinned published protocol (evaluate.PRESETS)
    size: tuple[int, int] | None = None        # (H, W) the images run at (None: the model's own size)

    def __post_init__(self):
        methods.check(self.methods)
        saco.get_convention(self.saco_convention)
        sanity.get_convention(self.mprt_convention)
        if self.steps < 2:
            raise ValueError(f"steps must be at least 2, got {self.steps}")
        if set(self.metrics) - set(METRICS):
            raise ValueError(f"metrics must be among {METRICS}, got {sorted(set(self.metrics) - set(METRICS))}")

    @property
    def fractions(self) -> np.ndarray:
        return np.round(np.linspace(0.0, 0.9, self.steps), 4)

    def as_dict(self) -> dict:
        """Kept in settings.json. The ranking rule is always named (results ranked otherwise are
        not mixed in); the newer settings only when they are used, so folders made before they
        existed still resume."""
        d = {**asdict(self), "methods": list(self.methods), "metrics": list(self.metrics),
             "ranking": f"quantised {ranking.RESOLUTION:g}, ties by pixel index", "conventions": self.conventions()}
        if not self.metrics:
            del d["metrics"]
        if "saco" not in self.metrics:
            del d["saco_groups"], d["saco_convention"]
        if "mprt" not in self.metrics:
            del d["mprt_seed"], d["mprt_convention"]
        if self.preset is None:
            del d["preset"]
        if self.size is None:
            del d["size"]
        else:
            d["size"] = list(self.size)
        return d


    def conventions(self) -> dict[str, dict[str, str]]:
        """Which convention each number follows, with its reference: the perturbation protocol, ROAD's
        imputation when it fills, SaCo and the sanity check when asked for, and every method that
        follows a paper's code (vitviz.core.conventions)."""
        out = {"perturbation": PROTOCOL.record()}
        if self.fill == "road":
            out["road"] = ROAD.record()
        if "saco" in self.metrics:
            out["saco"] = saco.get_convention(self.saco_convention).record()
        if "mprt" in self.metrics:
            out["mprt"] = sanity.get_convention(self.mprt_convention).record()
        for m in self.methods:
            if methods.get(m).convention is not None:
                out[f"method {m}"] = methods.get(m).convention.record()
        return out


def perturbation_model(loaded):
    """A copy of the model for the perturbed copies: no attention maps are needed there, so a
    transformers model uses PyTorch's fused attention (SDPA); other models run as they are. The maps
    still come from the eager original."""
    fast = copy.deepcopy(loaded.model)
    if hasattr(fast, "set_attn_implementation"):
        fast.set_attn_implementation("sdpa")
    return replace(loaded, model=fast)


def probabilities(fast, inputs: torch.Tensor, batch_size: int) -> np.ndarray:
    """Softmax probabilities (B, K) float64 of a batch of inputs, in chunks of batch_size."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(inputs), batch_size):
            logits = forward(fast, inputs[i:i + batch_size], output_attentions=False).logits
            out.append(logits.float().softmax(-1).cpu())
    return torch.cat(out).double().numpy()


def predictions(fast, inputs: torch.Tensor, batch_size: int) -> np.ndarray:
    """Top-1 classes of a batch of inputs, in chunks of batch_size."""
    return probabilities(fast, inputs, batch_size).argmax(-1)


def sample_maps(loaded, an, s: EvalSettings, index: int) -> tuple[int, dict[str, np.ndarray]]:
    """(predicted class, the settings' maps for it): method -> (gh, gw); the random map seeded by the index."""
    pred = int(np.argmax(an.probs))
    return pred, methods.maps(loaded, an, s.methods, pred, seed=index, backward_threads=BACKWARD_THREADS)


def evaluate_sample(loaded, fast, image, label: int, mask, index: int, s: EvalSettings, batch_size: int = 64,
                    randomiser=None) -> dict:
    """One sample's record: {"index", "label", "pred", "pos"/"neg": {method: [0/1 per step]},
    "pointing": {method: share} or None}, and with the metrics asked for, "saco": {method: F} and
    "mprt"/"mprt_ssim": {method: [value per randomisation step]}. randomiser: a
    mprt.Randomiser kept for the whole run (made here if None and "mprt" is asked for)."""
    an = analyze_batch(loaded, [image], s.size)[0]
    pred, maps = sample_maps(loaded, an, s, index)
    fill = fill_value(loaded, s.fill, seed=index)
    hw = tuple(an.pixel_values.shape[-2:])
    # per map: positive then negative steps; the unperturbed first step of each is the same image
    masks = [removal_masks(maps[m], hw, s.fractions).reshape(2, s.steps, *hw)[:, 1:].flatten(0, 1) for m in s.methods]
    n_curve = len(s.methods) * 2 * (s.steps - 1)
    saco_parts = []
    if "saco" in s.metrics:
        saco_parts = [groups(maps[m], hw, s.saco_groups, s.saco_convention) for m in s.methods]
        k = torch.arange(s.saco_groups)[:, None, None]
        masks += [torch.from_numpy(g).reshape(hw)[None] == k for g, _ in saco_parts]
    inputs = torch.cat([an.pixel_values[None], apply_fill(an.pixel_values, torch.cat(masks), fill)])
    probs = probabilities(fast, inputs, batch_size)
    correct = (probs[1:n_curve + 1].argmax(-1) == label).reshape(len(s.methods), 2, s.steps - 1)
    first = pred == label                                   # nothing removed yet: the same for every map
    record = {"index": index, "label": label, "pred": pred, "pos": {}, "neg": {}, "pointing": None}
    for i, m in enumerate(s.methods):
        record["pos"][m] = [int(first)] + correct[i, 0].astype(int).tolist()
        record["neg"][m] = [int(first)] + correct[i, 1].astype(int).tolist()
    if mask is not None:
        big = F.interpolate(torch.from_numpy(np.asarray(mask)).float()[None, None], size=an.seen.shape[:2])[0, 0]
        record["pointing"] = {m: _round(pointing(maps[m], big.bool().numpy()), DECIMALS) for m in s.methods}
        record["object"] = _round(float(big.bool().float().mean()), DECIMALS)     # pointing's chance value
    if saco_parts:
        record["saco"] = saco_record(probs, n_curve, pred, saco_parts, s)
    if "mprt" in s.metrics:
        record.update(mprt_record(loaded, an, pred, index, s, randomiser))
    return record


def saco_record(probs: np.ndarray, n_curve: int, pred: int, parts, s: EvalSettings) -> dict[str, float]:
    """SaCo per method from the batch's probabilities: row 0 unperturbed, then the curves' copies,
    then each method's K group-removed copies."""
    k = s.saco_groups
    p = probs[:, pred]
    drops = p[0] - p[n_curve + 1:].reshape(len(s.methods), k)
    return {m: _round(coefficient(sums, drops[i]), SCORE_DECIMALS)
            for i, (m, (_, sums)) in enumerate(zip(s.methods, parts))}


def mprt_record(loaded, an, pred: int, index: int, s: EvalSettings, randomiser=None) -> dict:
    """The sanity check's correlations for one sample: {"mprt": {method: [Spearman per step]},
    "mprt_ssim": {method: [SSIM per step]}, "mprt_steps": [what each step has randomised]}."""
    randomiser = randomiser or Randomiser(loaded, s.mprt_seed, convention=s.mprt_convention)
    res = mprt(loaded, an, s.methods, pred, randomiser=randomiser, random_seed=index, backward_threads=BACKWARD_THREADS,
               convention=s.mprt_convention)
    return {"mprt": {m: [_round(v, SCORE_DECIMALS) for v in res.spearman[m]] for m in s.methods},
            "mprt_ssim": {m: [_round(v, SCORE_DECIMALS) for v in res.ssim[m]] for m in s.methods},
            "mprt_steps": list(res.steps)}


def _round(value: float, decimals: int) -> float | None:
    """A score for the record: rounded; NaN (undefined, e.g. a constant map) as None for JSON."""
    return None if value is None or not np.isfinite(value) else round(float(value), decimals)


def metrics(records: list[dict], s: EvalSettings) -> dict:
    """Per map: accuracy curves over the removed fractions, their AUCs, the mean pointing score and,
    where asked for, the mean SaCo and the mean Spearman correlation (and SSIM) per randomisation
    step (the trained model first, = 1), from every sample's record (in index order, so the sum is
    the same however it was computed), and each per-image score's 95 % interval over the images
    ("interval": score -> (mean, half-width)). Metrics not asked for are None."""
    records = sorted(records, key=lambda r: r["index"])
    out = {}
    for m in s.methods:
        pos = np.mean([r["pos"][m] for r in records], axis=0)
        neg = np.mean([r["neg"][m] for r in records], axis=0)
        point = _mean([r["pointing"][m] for r in records if r.get("pointing")])
        out[methods.get(m).name()] = {"pos_auc": 100 * auc(pos, s.fractions), "neg_auc": 100 * auc(neg, s.fractions),
                                  "pointing": None if point is None else 100 * point,
                                  "pos_curve": pos.tolist(), "neg_curve": neg.tolist(),
                                  "saco": _mean([r["saco"][m] for r in records]) if "saco" in s.metrics else None,
                                  "mprt": _mean_curve([r["mprt"][m] for r in records]) if "mprt" in s.metrics
                                  else None,
                                  "mprt_ssim": _mean_curve([r["mprt_ssim"][m] for r in records])
                                  if "mprt" in s.metrics else None,
                                  "interval": intervals(records, m, s)}
    return out


def per_image(records: list[dict], m: str, s: EvalSettings) -> dict[str, list]:
    """Each image's scores of map m, in points as the table shows them: the two AUCs, their gap
    (negative − positive: 0 for a map that ranks pixels no better than chance), pointing and its
    excess over the object's share of the image (0 for chance), SaCo (0 for chance) and MPRT's
    Spearman correlation with every block random."""
    scores = {"pos_auc": [100 * auc(r["pos"][m], s.fractions) for r in records],
              "neg_auc": [100 * auc(r["neg"][m], s.fractions) for r in records]}
    scores["gap"] = [n - p for n, p in zip(scores["neg_auc"], scores["pos_auc"])]
    pointed = [r for r in records if r.get("pointing") and r["pointing"].get(m) is not None]
    scores["pointing"] = [100 * r["pointing"][m] for r in pointed]
    scores["pointing_excess"] = [100 * (r["pointing"][m] - r["object"]) for r in pointed if r.get("object") is not None]
    if "saco" in s.metrics:
        scores["saco"] = [r["saco"][m] for r in records if r["saco"][m] is not None]
    if "mprt" in s.metrics:
        scores["mprt"] = [r["mprt"][m][-1] for r in records if r["mprt"][m][-1] is not None]
    return scores


def intervals(records: list[dict], m: str, s: EvalSettings) -> dict[str, tuple[float, float] | None]:
    """score -> (mean, half-width of its 95 % interval over the images: Student's t), None where
    fewer than two images have it."""
    return {name: interval(values) for name, values in per_image(records, m, s).items()}


def interval(values) -> tuple[float, float] | None:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return None
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
    return float(v.mean()), half


def _mean(values) -> float | None:
    """Mean of the defined values (None and NaN left out); None if there are none."""
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else None


def _mean_curve(curves) -> list[float | None]:
    """Mean per position of equally long lists with None for undefined values."""
    v = np.array([[np.nan if x is None else x for x in c] for c in curves], dtype=np.float64)
    with np.errstate(all="ignore"):
        mean = np.nanmean(v, axis=0) if len(v) else np.array([])
    return [None if not np.isfinite(x) else float(x) for x in mean]
