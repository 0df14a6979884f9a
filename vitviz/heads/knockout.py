"""Heads switched off: a forward pass with chosen (layer, head) pairs knocked out, what it changes, and a
greedy search for a small set of heads whose removal changes the answer.

A head is switched off where the block's output projection reads it: a forward-pre-hook replaces that
head's slice of the projection's input (B, N, H·d) before it is projected, by zeros (zero ablation: the
head adds nothing but the projection's bias, which is no head's) or by its mean over the photo's N tokens
(mean ablation: the head tells every token the same thing). The hooks live inside `heads_off`, which
removes them in `finally`, so nothing leaks into the next forward. The model's weights are never touched.

Rollout with heads gone (`rollout_without`), defined on the hooked forward's own attentions (the layers
after a switched-off head see a changed stream, so their attention changes too): at its layer, a head
switched off by zero ablation moves nothing from token to token, so its attention is replaced by zeros
before the heads are averaged (its share of the layer goes to the residual path: 0.5·A + 0.5·I
renormalised, and a layer with every head off is the identity); a mean-ablated head gives every token the
same mixture of values Σ_j ā_j v_j, with ā_j its attention to j averaged over the queries, so each row of
its attention becomes ā. Rollout (Abnar & Zuidema 2020, mean over heads) then runs as usual.

Shapes: L layers, H heads, N tokens, (gh, gw) the patch grid, K classes.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Iterable

import numpy as np
import torch

from .. import query as Q
from ..analysis import Analysis
from .attribution import run_eager

MODES = ("zero", "mean")
SEARCH_BATCH = 8      # sets of heads tried in one forward by the greedy search

Heads = tuple[tuple[int, int], ...]    # (layer, head) pairs


def head_mask(heads: Iterable[tuple[int, int]], layers: int, n_heads: int) -> torch.Tensor:
    """(L, H) bool, True where a head is in `heads`; ValueError for a pair outside the model."""
    mask = torch.zeros(layers, n_heads, dtype=torch.bool)
    for layer, head in heads:
        if not (0 <= layer < layers and 0 <= head < n_heads):
            raise ValueError(f"no head {head} in layer {layer}: the model has {layers} layers of {n_heads} heads")
        mask[layer, head] = True
    return mask


@contextmanager
def heads_off(loaded, off: torch.Tensor, mode: str = "zero"):
    """Within the block, the model's forward runs with the heads of `off` switched off: (L, H) bool for
    every image of the batch, or (B, L, H) per image. mode: "zero" or "mean" (the module's docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    off = off.reshape(-1, loaded.layers, loaded.heads)                          # (B or 1, L, H)
    hooks = []
    try:
        for layer in range(loaded.layers):
            if off[:, layer].any():
                out = loaded.block_parts(layer).out
                hooks.append(out.register_forward_pre_hook(partial(_switch_off, off=off[:, layer], mode=mode)))
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _switch_off(module, args: tuple, off: torch.Tensor, mode: str) -> tuple:
    """The output projection's input (B, N, H·d) with the heads of `off` (B or 1, H) replaced."""
    heads = args[0].unflatten(-1, (off.shape[-1], -1))                          # (B, N, H, d)
    if mode == "zero":
        replacement = torch.zeros_like(heads)
    else:
        replacement = heads.mean(1, keepdim=True).expand_as(heads)              # each head's mean over the tokens
    mask = off.to(heads.device)[:, None, :, None]                               # (B or 1, 1, H, 1)
    return (torch.where(mask, replacement, heads).flatten(-2), *args[1:])


@dataclass
class KnockOut:
    """What switching `heads` off changed on one image."""
    heads: Heads
    mode: str
    target: int                  # the class whose logit is followed
    logits: np.ndarray           # (K,) with the heads off
    base_logits: np.ndarray      # (K,) the same forward with every head on
    rollout: np.ndarray          # (gh, gw) rollout with the heads gone (rollout_without), not normalised

    @property
    def change(self) -> float:
        """The target's logit with the heads off minus with them on."""
        return float(self.logits[self.target] - self.base_logits[self.target])

    @property
    def probs(self) -> np.ndarray:
        return _softmax(self.logits)

    @property
    def base_probs(self) -> np.ndarray:
        return _softmax(self.base_logits)

    def top(self, k: int = 5) -> list[int]:
        """The k best classes with the heads off, best first."""
        return [int(c) for c in np.argsort(-self.logits, kind="stable")[:k]]


def knock_out(loaded, an: Analysis, heads: Iterable[tuple[int, int]], mode: str = "zero",
              target: int | None = None) -> KnockOut:
    """Switch `heads` off on the analysed image: one forward of a batch of two, every head on and the
    heads off, so the logits compare within one pass. target: the class to follow (default the top-1 with
    every head on)."""
    heads = tuple(sorted({(int(layer), int(head)) for layer, head in heads}))
    off = head_mask(heads, loaded.layers, loaded.heads)
    batch = an.pixel_values[None].expand(2, *an.pixel_values.shape)
    with torch.inference_mode(), heads_off(loaded, torch.stack([torch.zeros_like(off), off]), mode):
        out = run_eager(loaded, batch)
    logits = out.logits.float().cpu().numpy()
    attentions = torch.stack([a[1] for a in out.attentions]).float().cpu()     # (L, H, N, N) with the heads off
    probe = getattr(out, "probe_attentions", None)
    target = int(np.argmax(logits[0])) if target is None else int(target)
    return KnockOut(heads, mode, target, logits[1], logits[0],
                    rollout_without(an, attentions, off, mode, None if probe is None else probe[1, :, 0].cpu()).numpy())


def rollout_without(an: Analysis, attentions: torch.Tensor, off: torch.Tensor, mode: str,
                    probe: torch.Tensor | None = None) -> torch.Tensor:
    """Rollout over the patches (gh, gw) from the model's query ([CLS], or an attention-pooling probe (H, N))
    of attentions (L, H, N, N) whose switched-off heads (L, H) are replaced as the module's docstring
    defines: zeros (zero ablation) or every row their mean row (mean ablation)."""
    att = attentions.float().clone()
    if mode == "zero":
        att[off] = 0.0
    else:
        gone = att[off]                                                         # (k, N, N)
        att[off] = gone.mean(-2, keepdim=True).expand_as(gone)
    return Q.rollout(replace(an, attentions=att, probe=probe))


@dataclass
class Search:
    """The greedy search's answer: heads taken in `order`, the first k of them zero-ablated, k = 1 … bound."""
    order: Heads                 # the heads in the order they were added
    bound: int                   # the most heads tried
    found: int | None            # the smallest k whose removal changed the top-1; None when none up to bound did
    top1: int                    # the top-1 with every head on
    new_top1: int | None         # the top-1 with the first `found` heads off

    @property
    def heads(self) -> Heads:
        return self.order[:self.found] if self.found else ()


def fewest_heads(loaded, an: Analysis, order: Iterable[tuple[int, int]], bound: int,
                 batch: int = SEARCH_BATCH) -> Search:
    """Greedy: zero-ablate the first k heads of `order` (e.g. Attribution.order(): the most positive
    contribution to the predicted class first) for k = 1, 2, … up to `bound`, and stop at the first k
    that changes the top-1. Greedy by that order, not a search over all sets: a smaller set in another
    order may exist. The sets are tried `batch` at a time, one forward each, the first with k = 0 (the
    model's own top-1, in the same pass)."""
    order = tuple((int(layer), int(head)) for layer, head in order)
    bound = min(int(bound), len(order))
    top1 = None
    for start in range(0, bound + 1, batch):
        ks = list(range(start, min(start + batch, bound + 1)))
        masks = torch.stack([head_mask(order[:k], loaded.layers, loaded.heads) for k in ks])
        images = an.pixel_values[None].expand(len(ks), *an.pixel_values.shape)
        with torch.inference_mode(), heads_off(loaded, masks, "zero"):
            best = run_eager(loaded, images, output_attentions=False).logits.argmax(-1).cpu().tolist()
        top1 = best[0] if top1 is None else top1
        changed = [i for i, b in enumerate(best) if b != top1]
        if changed:
            return Search(order[:bound], bound, ks[changed[0]], top1, best[changed[0]])
    return Search(order[:bound], bound, None, top1, None)


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()
