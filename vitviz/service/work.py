"""Model work the views ask for beyond the analysis: made once per analysis (kept in its memo), held to
the memory budget before it runs, and run where the model lives (the model thread, or ZeroGPU's
worker). Every function takes the app's context and a session opened for the event."""

from __future__ import annotations

import numpy as np
import torch

from .. import analysis, lens, mae, methods
from ..core.limits import RequestRefused
from ..core.loaded import LoadedModel
from ..evidence import measure, mprt, perturb, pointing
from .context import AppContext, Opened

SANITY = ("sanity",)           # memo keys
LENS = ("lens",)


# ---------------------------------------------------------------- class-specific maps

def class_maps(ctx: AppContext, opened: Opened, target: int, method_ids=None) -> dict:
    """The maps of `method_ids` (default: every class-specific method) for one class, each backward
    pass made once per analysis and class (held to the memory budget first: the backward keeps every
    layer's attention). id -> (gh, gw), as each method computes it."""
    method_ids = methods.check(methods.class_specific() if method_ids is None else method_ids)
    loaded, an = opened.loaded, opened.an

    def make(group):
        ctx.check_memory(opened, "class")
        return ctx.run(methods.class_maps, loaded, an, target, group, kind="class")

    maps = {}
    # the groups of every class-specific method, whatever is asked for: a pass made for one view (Chefer
    # alone) is found by the next (the evidence, which asks for all) under the same key
    for group in methods.passes(methods.class_specific()):
        if set(group) & set(method_ids):
            maps.update(an.memo.get(("class", target, group), lambda g=group: make(g)))
    return {m: maps[m] for m in method_ids}


def evidence_maps(ctx: AppContext, opened: Opened) -> dict[str, np.ndarray]:
    """Every method's map the model can be explained with, for the predicted class, as the evidence
    measures compare them (class maps from class_maps' memo)."""
    loaded, an = opened.loaded, opened.an
    offered = methods.offered(loaded)
    cmaps = class_maps(ctx, opened, an.top(1)[0][0], [m for m in offered if methods.get(m).class_specific])
    return methods.measured(an, offered, cmaps)


# ---------------------------------------------------------------- evidence

def fills(ctx: AppContext, opened: Opened) -> tuple[str, ...]:
    """The fills offered for this input: ROAD only where its imputation fits the request's memory budget
    (measure.road_allowed)."""
    budget = ctx.policy.request_budget
    return tuple(f for f in perturb.FILLS if f != "road" or measure.road_allowed(opened.an.seen.shape[:2], budget))


def pick_fill(ctx: AppContext, opened: Opened, fill: str | None) -> str:
    return fill if fill in fills(ctx, opened) else opened.loaded.removal_fill


def evidence(ctx: AppContext, opened: Opened, fill: str) -> dict:
    """{"curves", "saco", "pointing"} of every method's map for the predicted class, measured once per fill."""
    loaded, an = opened.loaded, opened.an

    def run():
        measure.check_fill(fill, an.seen.shape[:2], ctx.policy.request_budget)
        ctx.check_memory(opened, "perturbation")
        maps = evidence_maps(ctx, opened)
        measured = ctx.run(measure.measure, loaded, an, maps, fill, kind="evidence")
        mask = pointing.object_mask(loaded.label_set, an.seen)
        return {**measured, "pointing": pointing.pointing_scores(maps, mask)}

    return an.memo.get(("evidence", fill), run)


def measured(opened: Opened, fill: str) -> dict | None:
    """What evidence() measured for this fill, or None when it has not run."""
    return opened.an.memo.lookup(("evidence", fill))


# ---------------------------------------------------------------- the sanity check

def sanity_methods(opened: Opened) -> tuple[str, ...]:
    """The maps the sanity check compares: every method the model can be explained with."""
    return methods.offered(opened.loaded)


def sanity_unsupported(opened: Opened) -> str | None:
    """Why this model cannot be checked, as a message key ("no_classifier", "sanity_unsupported"), or None."""
    if not opened.loaded.has_classifier:
        return "no_classifier"
    try:
        opened.loaded.blocks()
    except ValueError:
        return "sanity_unsupported"
    return None


def sanity(ctx: AppContext, opened: Opened) -> mprt.SanityResult:
    """The check of this analysis, run once (RequestRefused over the memory budget)."""
    loaded, an = opened.loaded, opened.an

    def run():
        measure.check_sanity_budget(loaded, an.seen.shape[:2], ctx.policy.request_budget)
        return ctx.run(mprt.mprt, loaded, an, sanity_methods(opened), kind="sanity")

    return an.memo.get(SANITY, run)


def sanity_done(opened: Opened) -> mprt.SanityResult | None:
    return opened.an.memo.lookup(SANITY)


def try_sanity(ctx: AppContext, opened: Opened) -> RequestRefused | None:
    """Run the check where the model supports it; the refusal (memory budget) when it was refused."""
    if sanity_unsupported(opened):
        return None
    try:
        sanity(ctx, opened)
    except RequestRefused as refused:
        return refused
    return None


# ---------------------------------------------------------------- what one more forward shows

def layer_readout(ctx: AppContext, opened: Opened) -> lens.LayerReadout:
    """Every layer's read-out for this analysis (one forward with hidden states, made once)."""
    def run():
        ctx.check_memory(opened, "analysis")
        return ctx.run(lens.read_layers, opened.loaded, opened.an.pixel_values)

    return opened.an.memo.get(LENS, run)


def token_norms(ctx: AppContext, opened: Opened) -> np.ndarray:
    """(L+1, N) hidden-state norms of this analysis (one forward, made once)."""
    return opened.an.memo.get(("norms",), lambda: ctx.run(analysis.token_norms, opened.loaded,
                                                          opened.an.pixel_values))


def partner_norms(ctx: AppContext, opened: Opened, name: str) -> tuple[LoadedModel, np.ndarray, tuple[int, int]]:
    """Another model's hidden-state norms on the same photo (its own preprocessing): (that model,
    (L+1, N) norms, the (H, W) it ran at)."""
    loaded, an = opened.loaded, opened.an
    other = ctx.model(name)

    def norms():
        pixels = (an.pixel_values if other.spec == loaded.spec
                  else analysis.prepare_images(other, [an.upload])[0][1].pixel_values)
        return ctx.run(analysis.token_norms, other, pixels), tuple(pixels.shape[-2:])

    return (other, *an.memo.get(("norms", name), norms))


def reconstruction(ctx: AppContext, opened: Opened, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """MAE's reconstruction of this photo with `ratio` of the patches hidden (made once per ratio)."""
    return opened.an.memo.get(("mae", ratio), lambda: ctx.run(mae.reconstruct, opened.loaded,
                                                              opened.an.pixel_values, ratio))


def projection(ctx: AppContext, opened: Opened) -> torch.Tensor:
    """(P, D) the patch embedding of this input (reads the weights only)."""
    weights = ctx.weights(opened.loaded)
    return opened.an.memo.get(("projection",), lambda: analysis.patch_projection(weights, opened.an.pixel_values))
