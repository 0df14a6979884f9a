"""Faithfulness of explanation maps on one sample, by perturbation (Chefer et al., CVPR 2021).

For one labelled image: one forward with attentions (the class-agnostic maps), one forward and
backward for the class-specific maps of the predicted class, then every map removes 0 %..90 % of
the pixels most relevant first (positive perturbation) and least relevant first (negative), and
the perturbed copies go through the model in batches. The result is whether the model still
gets the label right at each step, per map and direction, and the share of each map's mass on
the object where the data set marks it (pointing).

A sample's result depends on nothing but the model, the image, its index (the random map's
seed) and the settings: the copies of one image are batched together and never with another
image's, so any number of processes, in any order, gives the same numbers.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from . import render as R
from . import views
from .analysis import analyze_batch, forward
from .explain import auc, class_maps, fill_value, perturbed_inputs

CLASS_SPECIFIC = ("chefer", "grad_rollout")


@dataclass(frozen=True)
class Settings:
    """What the numbers depend on (kept with the results; a resumed run must match)."""
    model: str
    data: str                                  # the data source, as the command line named it
    methods: tuple[str, ...] = views.STANDARD_MAPS
    steps: int = 10                            # removal fractions 0, ..., 0.9 in equal steps
    fill: str = "black"                        # what removed pixels become (explain.FILLS)
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)  # anything else the caller wants compared on resume

    def __post_init__(self):
        unknown = set(self.methods) - set(views.STANDARD_MAPS)
        if unknown:
            raise ValueError(f"methods must be among {views.STANDARD_MAPS}, got {sorted(unknown)}")
        if self.steps < 2:
            raise ValueError(f"steps must be at least 2, got {self.steps}")

    @property
    def fractions(self) -> np.ndarray:
        return np.round(np.linspace(0.0, 0.9, self.steps), 4)

    def as_dict(self) -> dict:
        return {**asdict(self), "methods": list(self.methods)}


def perturbation_model(loaded):
    """A copy of the model for the perturbed copies: no attention maps are needed there, so it
    uses PyTorch's fused attention (SDPA). The maps still come from the eager original."""
    fast = copy.deepcopy(loaded.model)
    fast.set_attn_implementation("sdpa")
    return replace(loaded, model=fast)


def predictions(fast, inputs: torch.Tensor, batch_size: int) -> np.ndarray:
    """Top-1 classes of a batch of inputs, in chunks of batch_size."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(inputs), batch_size):
            out.append(forward(fast, inputs[i:i + batch_size], output_attentions=False).logits.argmax(-1).cpu())
    return torch.cat(out).numpy()


def pointing(m: np.ndarray, mask: np.ndarray) -> float:
    """Share of a non-negative map's mass on the mask's pixels; m (gh, gw), mask (H, W) bool."""
    up = np.clip(R.upsample(np.clip(m, 0, None), mask.shape), 0, None)
    total = up.sum()
    return float((up * mask).sum() / total) if total > 0 else float("nan")


def evaluate_sample(loaded, fast, image, label: int, mask, index: int, s: Settings, batch_size: int = 64) -> dict:
    """One sample's record: {"index", "label", "pred", "pos"/"neg": {method: [0/1 per step]},
    "pointing": {method: share} or None}."""
    an = analyze_batch(loaded, [image])[0]
    pred = int(np.argmax(an.probs))
    wanted = [m for m in s.methods if m in CLASS_SPECIFIC]
    cmaps = {k: v for k, v in class_maps(loaded, an, pred).items() if k in wanted} if wanted else None
    maps = {k: v for k, v in views.standard_maps(an, cmaps, random_seed=index).items() if k in s.methods}
    fill = fill_value(loaded, s.fill)
    # per map: positive then negative steps; the unperturbed first step of each is the same image
    copies = [perturbed_inputs(an.pixel_values, maps[m], s.fractions, fill).reshape(2, s.steps, *an.pixel_values.shape)
              for m in s.methods]
    inputs = torch.cat([c[:, 1:].flatten(0, 1) for c in copies])
    correct = (predictions(fast, inputs, batch_size) == label).reshape(len(s.methods), 2, s.steps - 1)
    first = pred == label                                   # nothing removed yet: the same for every map
    record = {"index": index, "label": label, "pred": pred, "pos": {}, "neg": {}, "pointing": None}
    for i, m in enumerate(s.methods):
        record["pos"][m] = [int(first)] + correct[i, 0].astype(int).tolist()
        record["neg"][m] = [int(first)] + correct[i, 1].astype(int).tolist()
    if mask is not None:
        hw = an.seen.shape[:2]
        big = F.interpolate(torch.from_numpy(np.asarray(mask)).float()[None, None], size=hw)[0, 0].bool().numpy()
        record["pointing"] = {m: pointing(maps[m], big) for m in s.methods}
    return record


def metrics(records: list[dict], s: Settings) -> dict:
    """Per map: accuracy curves over the removed fractions, their AUCs and the mean pointing score,
    from every sample's record (in index order, so the sum is the same however it was computed)."""
    records = sorted(records, key=lambda r: r["index"])
    out = {}
    for m in s.methods:
        pos = np.mean([r["pos"][m] for r in records], axis=0)
        neg = np.mean([r["neg"][m] for r in records], axis=0)
        point = [r["pointing"][m] for r in records if r.get("pointing")]
        out[views.map_name(m)] = {"pos_auc": 100 * auc(pos, s.fractions), "neg_auc": 100 * auc(neg, s.fractions),
                                  "pointing": 100 * float(np.nanmean(point)) if point else None,
                                  "pos_curve": pos.tolist(), "neg_curve": neg.tolist()}
    return out
