"""Model work of the Heads view: the direct logit attribution of the top classes (one forward, made once
per analysis), heads switched off, and the greedy search for the fewest heads that change the answer.
Bounded on a public server (RequestRefused, said in the user's language), held to the memory budget
before it runs, run where the model lives (the model thread, or ZeroGPU's worker: kinds "heads" and
"knockout")."""

from __future__ import annotations

from ..core import limits
from ..core.limits import RequestRefused
from ..heads import attribution, knockout
from ..heads.attribution import Attribution, NotAffine
from .context import AppContext, Opened

TOP = 5                      # the classes attributed at once: the top-5 the view offers
MAX_OFF_PUBLIC = 16          # heads one knock-out (and so the greedy search) may switch off on a public server
ATTRIBUTION = ("heads", "attribution")     # memo keys
KNOCKOUT = ("heads", "knockout")
SEARCH = ("heads", "search")


def unavailable(opened: Opened) -> str | None:
    """Why the attribution cannot be shown for this model, as a message key, or None."""
    return None if opened.loaded.has_classifier else "no_classifier"


def attributions(ctx: AppContext, opened: Opened) -> dict[int, Attribution] | None:
    """The attribution of each of the top classes, by class (one forward, made once per analysis); None
    where the model's read-out is not affine even with its norms frozen (SigLIP's pooling head)."""
    loaded, an = opened.loaded, opened.an

    def run():
        ctx.check_memory(opened, "analysis")
        targets = [c for c, _, _ in an.top(TOP)]
        try:
            found = ctx.run(attribution.attribute, loaded, an, targets, kind="heads")
        except NotAffine:
            return {}
        return {a.target: a for a in found}

    return an.memo.get(ATTRIBUTION, run) or None


def attribution_of(ctx: AppContext, opened: Opened, target: int) -> Attribution | None:
    """One class's attribution (a top class, else computed on its own); None where there is none."""
    found = attributions(ctx, opened)
    if found is None:
        return None
    if target in found:
        return found[target]
    return opened.an.memo.get(ATTRIBUTION + (target,), lambda: ctx.run(attribution.attribution, opened.loaded,
                                                                         opened.an, target, kind="heads"))


def check_heads(ctx: AppContext, heads) -> tuple[tuple[int, int], ...]:
    """The set as sorted pairs, within the public bound (RequestRefused "err_heads_off")."""
    heads = tuple(sorted({(int(layer), int(head)) for layer, head in heads}))
    if ctx.policy.public and len(heads) > MAX_OFF_PUBLIC:
        raise RequestRefused("err_heads_off", count=len(heads), limit=MAX_OFF_PUBLIC)
    return heads


def knock_out(ctx: AppContext, opened: Opened, heads, mode: str, target: int) -> knockout.KnockOut:
    """`heads` switched off on this analysis (the latest such result is kept with it)."""
    if mode not in knockout.MODES:
        raise ValueError(f"mode must be one of {knockout.MODES}, got {mode!r}")
    heads = check_heads(ctx, heads)
    found = kept_knock_out(opened, heads, mode, target)
    if found is not None:
        return found
    limits.check_budget(limits.Shape.of(opened.loaded), opened.an.seen.shape[:2], ctx.policy.request_budget,
                        images=2)                      # one forward of two: every head on, the heads off
    result = ctx.run(knockout.knock_out, opened.loaded, opened.an, heads, mode, int(target), kind="knockout")
    opened.an.memo.put(KNOCKOUT, (_key(heads, mode, target), result))
    return result


def kept_knock_out(opened: Opened, heads, mode: str, target: int) -> knockout.KnockOut | None:
    """The knock-out of these heads, mode and class if it is the one kept with the analysis (one is kept,
    so trying many sets does not push the analysis's other results out of its memo)."""
    kept = opened.an.memo.lookup(KNOCKOUT)
    return kept[1] if kept is not None and kept[0] == _key(heads, mode, target) else None


def _key(heads, mode: str, target: int) -> tuple:
    return tuple(sorted({(int(layer), int(head)) for layer, head in heads})), mode, int(target)


def search_bound(ctx: AppContext, opened: Opened) -> int:
    """The most heads the greedy search adds: every head, or MAX_OFF_PUBLIC on a public server (its set is
    then switched off as a knock-out, within the same bound)."""
    every = opened.loaded.layers * opened.loaded.heads
    return min(every, MAX_OFF_PUBLIC) if ctx.policy.public else every


def fewest_heads(ctx: AppContext, opened: Opened) -> knockout.Search | None:
    """The greedy search for this analysis, heads in order of their attribution to the predicted class
    (made once); None where there is no attribution to order them by."""
    found = attributions(ctx, opened)
    if found is None:
        return None
    predicted = opened.an.top(1)[0][0]

    def run():
        ctx.check_memory(opened, "perturbation")       # SEARCH_BATCH inputs at a time, no attentions kept
        order = attribution_of(ctx, opened, predicted).order()
        return ctx.run(knockout.fewest_heads, opened.loaded, opened.an, order, search_bound(ctx, opened),
                       kind="knockout")

    return opened.an.memo.get(SEARCH, run)


def searched(opened: Opened) -> knockout.Search | None:
    """The greedy search's answer if it ran on this analysis."""
    return opened.an.memo.lookup(SEARCH)
