"""What a head compares: every token's query and key of many photos in one 2-D picture (AttentionViz,
Yeh et al., IEEE VIS 2023, arXiv:2305.03210), live.

A head's attention is softmax(q·k / √d): a query looks most at the keys with which its dot product is
largest. Drawn in one space, queries and keys should then lie close where the head attends. Two
changes leave every attention weight as it is and make distance follow the dot product better
(normalise, below, as the paper's "vector normalization" does); the joint cloud is then projected to
2-D (PCA by default; t-SNE where asked). Per head, how well the 2-D positions follow each patch's row,
column and brightness (correlations) says in one number whether a head sorts patches by position.

Shapes: B photos of one size, N = prefix + gh·gw tokens, H heads of width d, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..analysis import forward

KINDS = ("query", "key")
PROJECTIONS = ("pca", "tsne")
ATTRIBUTES = ("row", "column", "brightness")
SORTS = 0.7            # a multiple correlation R at least this high: "the head sorts patches by it" (R² ≈ 0.5)
TSNE_PERPLEXITY = 30.0


# ---------------------------------------------------------------- the model's own queries and keys

@dataclass
class QueriesKeys:
    """Every token's query and key at some layers for B photos: the outputs of the model's own query and
    key projections (before attention's 1/√d scale), float32 on the CPU."""
    layers: tuple[int, ...]
    queries: torch.Tensor          # (B, len(layers), H, N, d)
    keys: torch.Tensor             # (B, len(layers), H, N, d)

    def of(self, layer: int, head: int) -> tuple[np.ndarray, np.ndarray]:
        """One head's (B, N, d) queries and keys."""
        i = self.layers.index(layer)
        return self.queries[:, i, head].numpy(), self.keys[:, i, head].numpy()


class _Enough(Exception):
    """Raised after the last block asked for: the blocks after it are not run."""


def queries_keys(loaded, pixel_values: torch.Tensor, layers=None) -> QueriesKeys:
    """The queries and keys of `layers` (default: every layer) for a (B, 3, H, W) batch, from one forward
    that stops after the deepest layer asked for. Hooks on block_parts(i).query / .key, removed in
    `finally`; the model is not changed."""
    layers = tuple(range(loaded.layers)) if layers is None else tuple(sorted({int(i) for i in layers}))
    if not layers or layers[0] < 0 or layers[-1] >= loaded.layers:
        raise ValueError(f"layers must be within 0..{loaded.layers - 1}, got {layers}")
    h = loaded.heads
    got: dict[tuple[int, str], torch.Tensor] = {}
    hooks = []

    def keep(layer, kind, projection):
        def hook(module, inputs, output):
            x = projection.of(output)                                   # (B, N, H·d)
            got[layer, kind] = x.reshape(*x.shape[:2], h, -1).transpose(1, 2).float().cpu()   # (B, H, N, d)
        return hook

    def stop(module, inputs, output):
        raise _Enough

    try:
        for layer in layers:
            parts = loaded.block_parts(layer)
            hooks.append(parts.query.module.register_forward_hook(keep(layer, "query", parts.query)))
            hooks.append(parts.key.module.register_forward_hook(keep(layer, "key", parts.key)))
        hooks.append(loaded.blocks()[layers[-1]].register_forward_hook(stop))
        with torch.inference_mode():
            try:
                forward(loaded, pixel_values, output_attentions=False)
            except _Enough:
                pass
    finally:
        for hook in hooks:
            hook.remove()
    return QueriesKeys(layers, torch.stack([got[i, "query"] for i in layers], 1),
                       torch.stack([got[i, "key"] for i in layers], 1))


# ---------------------------------------------------------------- AttentionViz's normalisation

def normalise(queries: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(M, d) queries and (M', d) keys moved and scaled as AttentionViz does (Yeh et al. 2023, section
    "Vector normalization"; C. Chen's notes on it, chenxcynthia.github.io/projects/attention), so that
    1. the mean key is the mean query: keys are translated by one vector v. Every score of a query q
       changes by the same q·v, so its softmax over the keys is unchanged;
    2. queries and keys have the same mean norm: queries are scaled by c and keys by 1/c, which leaves
       every dot product as it was.
    Done one after the other, the scaling would move the two means apart again (c·mean q ≠ mean k / c), so
    v and c are chosen for both to hold at once: with s = c², k ↦ (k − mean k + s·mean q) / c and q ↦ c·q,
    where s solves s·mean‖q‖ = mean‖k − mean k + s·mean q‖ (one root: the left side grows faster, since
    ‖mean q‖ ≤ mean‖q‖). With equal norms, ‖q − k‖² = ‖q‖² + ‖k‖² − 2 q·k falls as the dot product grows:
    distance tracks attention. Returns float64 arrays of the same shapes."""
    q, k = np.asarray(queries, np.float64), np.asarray(keys, np.float64)
    centred, mean_q, size_q = k - k.mean(0), q.mean(0), np.linalg.norm(q, axis=1).mean()

    def gap(s: float) -> float:
        return s * size_q - np.linalg.norm(centred + s * mean_q, axis=1).mean()

    if size_q == 0:
        return q, centred + mean_q
    high = 1.0
    for _ in range(64):                    # gap(0) < 0; find where it turns positive
        if gap(high) >= 0:
            break
        high *= 2
    else:                                  # every query the same vector: only the translation is possible
        return q, centred + mean_q
    from scipy.optimize import brentq

    s = brentq(gap, 0.0, high, xtol=1e-12 * high)
    c = np.sqrt(s)
    return q * c, (centred + s * mean_q) / c


# ---------------------------------------------------------------- 2-D projections

def project(points: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(M, d) -> (M, 2). pca: the first two principal axes (signs fixed so the picture does not flip
    between calls); tsne: scikit-learn's Barnes–Hut t-SNE from the PCA start, seeded."""
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {PROJECTIONS}, got {method!r}")
    x = np.asarray(points, np.float64)
    x = x - x.mean(0)
    if method == "pca":
        # the eigenvectors of the (d, d) scatter matrix: the SVD of the (M, d) points gives the same axes
        # at several times the cost (M is thousands of points, d a head's few dozen dimensions)
        _, vectors = np.linalg.eigh(x.T @ x)
        axes = vectors[:, ::-1][:, :2].T                                 # the two largest, largest first
        axes = axes * np.sign(axes[:, :1] + (axes[:, :1] == 0))          # the first coordinate of each axis ≥ 0
        xy = x @ axes.T
        return np.pad(xy, ((0, 0), (0, 2 - xy.shape[1]))) if xy.shape[1] < 2 else xy
    from sklearn.manifold import TSNE

    perplexity = min(TSNE_PERPLEXITY, max(1.0, (len(x) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x.astype(np.float32))


@dataclass
class Embedding:
    """One head's queries and keys of B photos in 2-D: position [kind, photo, token] (kind 0: query,
    1: key), and each vector's norm before the normalisation."""
    layer: int
    head: int
    method: str
    xy: np.ndarray           # (2, B, N, 2)
    norms: np.ndarray        # (2, B, N)

    def flat(self) -> np.ndarray:
        """(2·B·N, 2): the points in order kind, photo, token (Point.index)."""
        return self.xy.reshape(-1, 2)

    def point(self, index: int) -> "Point":
        _, b, n, _ = self.xy.shape
        kind, rest = divmod(int(index), b * n)
        return Point(int(index), KINDS[kind], *divmod(rest, n))


@dataclass(frozen=True)
class Point:
    index: int               # in Embedding.flat()
    kind: str                # "query" or "key"
    photo: int
    token: int


def embed(qk: QueriesKeys, layer: int, head: int, method: str = "pca") -> Embedding:
    """A head's queries and keys of every photo, normalised together and projected to 2-D together."""
    q, k = qk.of(layer, head)                                           # (B, N, d) each
    b, n, d = q.shape
    qn, kn = normalise(q.reshape(-1, d), k.reshape(-1, d))
    xy = project(np.concatenate([qn, kn]), method)
    norms = np.stack([np.linalg.norm(q, axis=-1), np.linalg.norm(k, axis=-1)])
    return Embedding(layer, head, method, xy.reshape(2, b, n, 2), norms)


def layer_overview(qk: QueriesKeys, layer: int) -> list[Embedding]:
    """Every head of a layer, by PCA (the small multiples: t-SNE for every head would take H times as long)."""
    return [embed(qk, layer, head, "pca") for head in range(qk.queries.shape[2])]


# ---------------------------------------------------------------- what the tokens are

@dataclass
class Tokens:
    """What colours the points and what the correlations read, per photo and token. A prefix token
    ([CLS], [DIST], registers) has no patch: NaN."""
    row: np.ndarray          # (B, N)
    column: np.ndarray       # (B, N)
    brightness: np.ndarray   # (B, N) the patch's mean luma (Rec. 601) in [0, 1]
    colour: np.ndarray       # (B, N, 3) the patch's mean RGB in [0, 1]
    prefix: int
    grid: tuple[int, int]


def token_facts(seen: list[np.ndarray], grid: tuple[int, int], prefix: int) -> Tokens:
    """Tokens of B photos from the pictures the model saw, (H, W, 3) uint8 each, cut in a (gh, gw) grid."""
    gh, gw = grid
    pictures = np.stack([np.asarray(s, np.float64) / 255 for s in seen])         # (B, H, W, 3)
    b, hh, ww, _ = pictures.shape
    ph, pw = hh // gh, ww // gw
    patches = pictures[:, :gh * ph, :gw * pw].reshape(b, gh, ph, gw, pw, 3).mean((2, 4)).reshape(b, -1, 3)
    pad = np.full((b, prefix), np.nan)
    rows, cols = np.divmod(np.arange(gh * gw), gw)
    colour = np.concatenate([np.full((b, prefix, 3), np.nan), patches], 1)
    return Tokens(row=np.concatenate([pad, np.broadcast_to(rows, (b, gh * gw))], 1).astype(np.float64),
                  column=np.concatenate([pad, np.broadcast_to(cols, (b, gh * gw))], 1).astype(np.float64),
                  brightness=colour @ np.array([0.299, 0.587, 0.114]), colour=colour, prefix=prefix, grid=grid)


# ---------------------------------------------------------------- does the picture follow row, column, brightness?

def multiple_correlation(xy: np.ndarray, values: np.ndarray) -> float:
    """R = √R² of the least-squares fit values ≈ a + b·x + c·y over the points (M, 2) with finite values
    (M,): Pearson's multiple correlation of a value with the 2-D position, in [0, 1]. It does not depend
    on how the picture is turned or mirrored (a projection's axes are arbitrary), and equals |Pearson r|
    with the best direction in the plane. 0 where the values or the positions do not vary."""
    keep = np.isfinite(values)
    x, v = np.asarray(xy, np.float64)[keep], np.asarray(values, np.float64)[keep]
    if len(v) < 3 or np.ptp(v) == 0:
        return 0.0
    design = np.column_stack([np.ones(len(v)), x - x.mean(0)])
    fit, *_ = np.linalg.lstsq(design, v, rcond=None)
    residual = v - design @ fit
    r2 = 1 - (residual @ residual) / ((v - v.mean()) @ (v - v.mean()))
    return float(np.sqrt(np.clip(r2, 0, 1)))


def correlations(emb: Embedding, tokens: Tokens) -> dict[str, float]:
    """{"row", "column", "brightness"} -> R (multiple_correlation) of the patches' queries and keys of every
    photo together with their row, column and brightness. The prefix tokens are left out (no patch)."""
    xy = emb.xy.reshape(-1, 2)
    return {name: multiple_correlation(xy, np.concatenate([getattr(tokens, name)] * 2).reshape(-1))
            for name in ATTRIBUTES}


def sorts_by(corr: dict[str, float], threshold: float = SORTS) -> tuple[str, ...]:
    """The attributes a head sorts its patches by (R at least `threshold`), strongest first."""
    return tuple(sorted((a for a in ATTRIBUTES if corr[a] >= threshold), key=lambda a: -corr[a]))

