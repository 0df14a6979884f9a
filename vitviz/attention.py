"""Attention maps as pure functions: tensors in, tensors out.

Shapes: L layers, H heads, N = prefix + gh·gw tokens. Inputs are attention
probabilities (L, H, N, N) of one image (rows sum to 1). Everything is computed
in float32 whatever dtype the model ran in.
"""

from __future__ import annotations

import torch

FUSIONS = ("mean", "max", "min")

Head = int | None   # one head's index, or None for the mean over all heads


def _check_shape(att: torch.Tensor) -> torch.Tensor:
    if att.ndim != 4 or att.shape[-1] != att.shape[-2]:
        raise ValueError(f"expected attentions of shape (L, H, N, N), got {tuple(att.shape)}")
    return att


def _check(att: torch.Tensor) -> torch.Tensor:
    return _check_shape(att).float()


def fuse_heads(att: torch.Tensor, fusion: str = "mean") -> torch.Tensor:
    """(L, H, N, N) -> (L, N, N) float32 by the mean, max or min over heads (summed in float32;
    the stored half-precision attentions are not copied to float32 first)."""
    att = _check_shape(att)
    if fusion == "mean":
        return att.mean(1, dtype=torch.float32)
    if fusion == "max":
        return att.amax(1).float()
    if fusion == "min":
        return att.amin(1).float()
    raise ValueError(f"head fusion must be one of {FUSIONS}, got {fusion!r}")


def discard_lowest(a: torch.Tensor, ratio: float, keep: int = 1) -> torch.Tensor:
    """Zero the lowest `ratio` of each row's entries, never the first `keep` columns.

    a: (..., N, N). The protected columns are the prefix tokens ([CLS], ...): a popular
    implementation drops them when they fall among the lowest, which breaks rollout.
    """
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"discard ratio must be in [0, 1), got {ratio}")
    n_drop = int(ratio * (a.shape[-1] - keep))
    if n_drop == 0:
        return a
    candidates = a[..., keep:]
    idx = candidates.topk(n_drop, dim=-1, largest=False).indices + keep
    return a.scatter(-1, idx, 0.0)


def rollout_matrix(att: torch.Tensor, fusion: str = "mean", discard: float = 0.0,
                   start_layer: int = 0, keep: int = 1) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): (L, H, N, N) -> (N, N).

    Per layer: fuse heads, optionally discard the lowest entries, add the residual
    (0.5·A + 0.5·I), renormalise each row (keeping the dimension: dividing by an
    un-kept sum divides columns instead), then multiply R = Â_L ··· Â_start.
    """
    fused = fuse_heads(att, fusion)[start_layer:]
    if fused.shape[0] == 0:
        raise ValueError(f"start_layer {start_layer} leaves no layers of {att.shape[0]}")
    return rollout_fused(fused, discard, keep)


def rollout_fused(fused: torch.Tensor, discard: float = 0.0, keep: int = 1) -> torch.Tensor:
    """Rollout of per-layer matrices that are already head-fused: (L, N, N) -> (N, N)."""
    a_hat = residual_rows(fused, discard, keep)
    result = torch.eye(a_hat.shape[-1], dtype=a_hat.dtype, device=a_hat.device)
    for layer in a_hat:
        result = layer @ result
    return result


def residual_rows(fused: torch.Tensor, discard: float = 0.0, keep: int = 1) -> torch.Tensor:
    """Per layer Â = rownorm(0.5·A + 0.5·I) after discarding the lowest entries: (L, N, N) -> (L, N, N)."""
    fused = fused.float()
    if discard:
        fused = discard_lowest(fused, discard, keep)
    eye = torch.eye(fused.shape[-1], dtype=fused.dtype, device=fused.device)
    a_hat = 0.5 * fused + 0.5 * eye
    return a_hat / a_hat.sum(-1, keepdim=True).clamp_min(1e-12)


def rollout_row(att: torch.Tensor, query: int = 0, fusion: str = "mean", discard: float = 0.0,
                start_layer: int = 0, keep: int = 1) -> torch.Tensor:
    """Row `query` of rollout_matrix(att, ...) without forming the matrix: (L, H, N, N) -> (N,).

    e_q^T · Â_L ··· Â_start, multiplied from the left: L vector-matrix products (O(L·N²))
    instead of L matrix products (O(L·N³)) — what a map of one token needs.
    """
    fused = fuse_heads(att, fusion)[start_layer:]
    if fused.shape[0] == 0:
        raise ValueError(f"start_layer {start_layer} leaves no layers of {att.shape[0]}")
    return rollout_fused_row(fused, query, discard, keep)


def rollout_fused_row(fused: torch.Tensor, query: int = 0, discard: float = 0.0, keep: int = 1) -> torch.Tensor:
    """Row `query` of rollout_fused(fused, ...), multiplied from the left: (L, N, N) -> (N,)."""
    a_hat = residual_rows(fused, discard, keep)
    return rollout_from(one_hot(query, a_hat.shape[-1], a_hat.dtype), a_hat)


def rollout_from(start: torch.Tensor, a_hat: torch.Tensor) -> torch.Tensor:
    """start · Â_L ··· Â_1: a row over the last layer's tokens (N,) carried back to the input tokens
    through per-layer matrices a_hat (L, N, N) (residual_rows). A one-hot start is a token's rollout;
    an attention-pooling probe's row starts where the probe reads."""
    row = start.to(a_hat.dtype)
    for layer in range(a_hat.shape[0] - 1, -1, -1):     # views: flip(0) would copy every layer
        row = row @ a_hat[layer]
    return row


def one_hot(index: int, n: int, dtype=torch.float32) -> torch.Tensor:
    row = torch.zeros(n, dtype=dtype)
    row[index] = 1.0
    return row


def chefer_relevance(att: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Chefer et al., ICCV 2021 ("generic attention-model explainability"), (L, H, N, N) x2 -> (N, N).

    R = I; for each block: Ā = mean_h((∂y_c/∂A ⊙ A)⁺); R ← R + Ā·R.
    """
    att, grads = _check(att), _check(grads)
    n = att.shape[-1]
    r = torch.eye(n, dtype=att.dtype, device=att.device)
    for a, g in zip(att, grads):
        a_bar = (g * a).clamp_min(0).mean(0)
        r = r + a_bar @ r
    return r


def chefer_row(att: torch.Tensor, grads: torch.Tensor, query: int = 0) -> torch.Tensor:
    """Row `query` of chefer_relevance(att, grads) without forming the matrix: (L, H, N, N) x2 -> (N,)."""
    return chefer_from(one_hot(query, att.shape[-1]), att, grads)


def chefer_from(start: torch.Tensor, att: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """start · chefer_relevance(att, grads), (N,) and (L, H, N, N) x2 -> (N,), without forming the matrix.

    R = (I + Ā_L) ··· (I + Ā_1), so start·R is L vector-matrix products from the left (O(L·N²))
    instead of L matrix products (O(L·N³)); a map needs only one row ([CLS]'s, or a probe's)."""
    att, grads = _check(att), _check(grads)
    row = start.to(att.dtype)
    for layer in reversed(range(att.shape[0])):     # views, layer by layer: flip(0) would copy every layer
        row = row + row @ (grads[layer] * att[layer]).clamp_min(0).mean(0)
    return row


def gradient_weighted(att: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Per layer, mean_h((A ⊙ ∂y_c/∂A)⁺): (L, H, N, N) x2 -> (L, N, N), what gradient rollout rolls out."""
    return torch.stack([(g * a).clamp_min(0).mean(0) for a, g in zip(_check(att), _check(grads))])


def grad_rollout_row(att: torch.Tensor, grads: torch.Tensor, query: int = 0, discard: float = 0.0,
                     keep: int = 1) -> torch.Tensor:
    """Row `query` of grad_rollout_matrix(att, grads, ...) without forming the matrix: (L, H, N, N) x2 -> (N,)."""
    return rollout_fused_row(gradient_weighted(att, grads), query, discard, keep)


def grad_rollout_matrix(att: torch.Tensor, grads: torch.Tensor, discard: float = 0.0, keep: int = 1) -> torch.Tensor:
    """Gradient-weighted rollout: rollout of mean_h((A ⊙ ∂y_c/∂A)⁺) per layer, (L, H, N, N) x2 -> (N, N)."""
    fused = (_check(att) * _check(grads)).clamp_min(0).mean(1)
    return rollout_fused(fused, discard, keep)


def token_map(matrix_row: torch.Tensor, prefix: int, grid: tuple[int, int]) -> torch.Tensor:
    """A row over all N tokens -> its patch part as (gh, gw)."""
    gh, gw = grid
    if matrix_row.shape[-1] != prefix + gh * gw:
        raise ValueError(f"expected {prefix} prefix + {gh}x{gw} patch tokens, got {matrix_row.shape[-1]}")
    return matrix_row[..., prefix:].reshape(*matrix_row.shape[:-1], gh, gw)


def rollout(att: torch.Tensor, prefix: int, grid: tuple[int, int], fusion: str = "mean",
            discard: float = 0.0, start_layer: int = 0, query: int = 0) -> torch.Tensor:
    """Rollout map of one query token (default [CLS]) over the patches: (gh, gw)."""
    return token_map(rollout_row(att, query, fusion, discard, start_layer, keep=max(prefix, 1)), prefix, grid)


def raw_maps(att: torch.Tensor, prefix: int, grid: tuple[int, int], query: int = 0) -> torch.Tensor:
    """What one token (default [CLS]) attends to, per layer and head: (L, H, gh, gw)."""
    return token_map(_check(att)[:, :, query], prefix, grid)


def dino_threshold(m: torch.Tensor, mass: float) -> torch.Tensor:
    """Boolean mask of the fewest entries of a map that hold a fraction `mass` of its total.

    m: (..., gh, gw) non-negative. As in DINO's visualisation: sort descending, keep
    tokens until the cumulative share reaches `mass`.
    """
    if not 0.0 < mass <= 1.0:
        raise ValueError(f"mass must be in (0, 1], got {mass}")
    shape = m.shape
    flat = m.float().flatten(-2)
    flat = flat / flat.sum(-1, keepdim=True).clamp_min(1e-12)
    vals, idx = flat.sort(-1, descending=True)
    cum = vals.cumsum(-1)
    keep_sorted = (cum - vals) < mass - 1e-7  # keep an entry if the mass before it has not reached `mass`
    mask = torch.zeros_like(flat, dtype=torch.bool).scatter(-1, idx, keep_sorted)
    return mask.reshape(shape)


def patch_centres(grid: tuple[int, int], patch_size: int) -> torch.Tensor:
    """(P, 2) pixel coordinates (y, x) of the patch centres, row by row."""
    gh, gw = grid
    ys, xs = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    return (torch.stack([ys, xs], -1).reshape(-1, 2).float() + 0.5) * patch_size


def mean_attention_distance(att: torch.Tensor, prefix: int, grid: tuple[int, int], patch_size: int) -> torch.Tensor:
    """ViT paper Fig. 7 (right): (L, H, N, N) -> (L, H) mean distance in pixels.

    For each query patch i: Σ_j A_ij ‖p_i − p_j‖ over patch keys j, with the
    patch-to-patch attention renormalised to sum 1 (attention to prefix tokens has
    no position); then averaged over query patches.
    """
    att = _check(att)
    centres = patch_centres(grid, patch_size)
    dist = torch.cdist(centres, centres)                   # (P, P)
    pp = att[:, :, prefix:, prefix:]                       # (L, H, P, P)
    pp = pp / pp.sum(-1, keepdim=True).clamp_min(1e-12)
    return (pp * dist).sum(-1).mean(-1)


def normalize(m: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale a map to [0, 1] (min-max); a constant map becomes zeros."""
    m = m.float()
    lo, hi = m.min(), m.max()
    return (m - lo) / (hi - lo).clamp_min(eps)
