"""The query a map starts from: a prefix token ([CLS], [DIST]) or an attention-pooling probe.

Most ViTs read their class from [CLS], so "where the model looks" is [CLS]'s attention. SigLIP has
no prefix token: a learned probe attends over the patches after the encoder (Analysis.probe). Here
rollout starts from the probe's attention and is carried back through the encoder; per-layer maps,
which a probe has none of, show the attention each patch receives from all patches; the last-layer
per-head maps are the probe's heads. Shapes: L layers, H heads, N tokens, (gh, gw) the patch grid.
"""

from __future__ import annotations

import torch

from . import attention as A
from .analysis import Analysis


def has_probe(an: Analysis) -> bool:
    return an.probe is not None


def rollout(an: Analysis, fusion: str = "mean", discard: float = 0.0, start_layer: int = 0,
            query: int = 0) -> torch.Tensor:
    """Rollout of the model's query over the patches (gh, gw), not normalised. With a probe: its
    heads fused as the layers are, times Â_L ··· Â_start (no residual: the probe is no token)."""
    if not has_probe(an):
        return A.rollout(an.attentions, an.prefix, an.grid, fusion, discard, start_layer, query)
    fused = A.fuse_heads(an.attentions, fusion)[start_layer:]
    if fused.shape[0] == 0:
        raise ValueError(f"start_layer {start_layer} leaves no layers of {an.num_layers}")
    probe = an.probe.float()                                      # (H, N); fusion was checked above
    row = {"mean": probe.mean(0), "max": probe.amax(0), "min": probe.amin(0)}[fusion]
    for layer in A.residual_rows(fused, discard, keep=an.prefix).flip(0):
        row = row @ layer
    return A.token_map(row, an.prefix, an.grid)


def layer_maps(an: Analysis, query: int = 0) -> torch.Tensor:
    """Per layer and head, (L, H, gh, gw): what the query token attends to; without a prefix token,
    the attention each patch receives, averaged over every query patch."""
    att = an.att()
    if not has_probe(an):
        return A.raw_maps(att, an.prefix, an.grid, query)
    return A.token_map(att.mean(2), an.prefix, an.grid)


def last_heads(an: Analysis) -> torch.Tensor:
    """The last reading of the patches per head, (H, gh, gw): [CLS] in the last layer, or the probe."""
    if not has_probe(an):
        return A.raw_maps(an.att()[-1:], an.prefix, an.grid)[0]
    return A.token_map(an.probe.float(), an.prefix, an.grid)
