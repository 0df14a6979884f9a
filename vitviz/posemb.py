"""Position embeddings: what a ViT learned about 2-D layout (ViT paper, Fig. 7 centre).

A ViT is given no notion of 2-D neighbourhood: its position embeddings start random
and any grid structure they show was learned from data.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class NoAbsolutePositions(ValueError):
    """The model has no absolute position embeddings (BEiT: relative position bias)."""


def _as_hw(size) -> tuple[int, int]:
    return (int(size[0]), int(size[1])) if isinstance(size, (list, tuple)) else (int(size), int(size))


def position_embeddings(model) -> tuple[torch.Tensor, tuple[int, int]]:
    """The patch part of a model's absolute position embeddings and its training grid.

    Returns ((P, D) float32, (gh, gw)). Works for transformers' ViT, DeiT, DINO,
    MAE and Dinov2, and vitviz's ScratchViT. Raises NoAbsolutePositions for BEiT.
    """
    if hasattr(model, "encoder") and hasattr(model.encoder, "pos_embed"):  # ScratchViT
        pos, grid = model.encoder.pos_embed, model.config.grid
    else:
        cfg = getattr(model, "config", None)
        emb = getattr(getattr(model, "base_model", model), "embeddings", None)
        pos = getattr(emb, "position_embeddings", None)
        if cfg is None:
            raise NoAbsolutePositions(f"{type(model).__name__} shows no position embeddings vitviz can read "
                                      "(no transformers-style config and embeddings).")
        if not isinstance(pos, torch.Tensor):
            raise NoAbsolutePositions(
                f"{cfg.model_type} has no absolute position embeddings: it adds a learned relative "
                "position bias inside every attention layer instead.")
        patch = _as_hw(cfg.patch_size)
        size = _as_hw(cfg.image_size)
        grid = (size[0] // patch[0], size[1] // patch[1])
    pos = pos.detach().float().reshape(-1, pos.shape[-1]).cpu()  # (prefix + P, D)
    n_patches = grid[0] * grid[1]
    if pos.shape[0] < n_patches:
        raise ValueError(f"expected at least {n_patches} position embeddings for a {grid} grid, got {pos.shape[0]}")
    return pos[pos.shape[0] - n_patches:], grid  # the prefix tokens come first


def similarity(pos: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every patch's embedding with every other: (P, D) -> (P, P)."""
    unit = F.normalize(pos.float(), dim=-1)
    return unit @ unit.T


def interpolate(pos: torch.Tensor, grid: tuple[int, int], new_grid: tuple[int, int]) -> torch.Tensor:
    """Resize (P, D) patch position embeddings from `grid` to `new_grid` (bicubic), as for
    fine-tuning at a higher resolution. Returns (gh'·gw', D)."""
    gh, gw = grid
    if pos.shape[0] != gh * gw:
        raise ValueError(f"expected {gh * gw} embeddings for a {grid} grid, got {pos.shape[0]}")
    if tuple(new_grid) == tuple(grid):
        return pos
    img = pos.T.reshape(1, -1, gh, gw)                          # (1, D, gh, gw)
    out = F.interpolate(img, size=tuple(new_grid), mode="bicubic", align_corners=False)
    return out.reshape(pos.shape[1], -1).T                       # (gh'·gw', D)


def similarity_tiles(model, new_grid: tuple[int, int] | None = None) -> tuple[torch.Tensor, tuple[int, int]]:
    """(P, P) similarity as drawn in the ViT paper, and the grid; optionally after interpolation."""
    pos, grid = position_embeddings(model)
    if new_grid is not None:
        pos, grid = interpolate(pos, grid, new_grid), tuple(new_grid)
    return similarity(pos), grid
