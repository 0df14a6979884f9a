"""ROAD's noisy linear imputation (Rong et al., ICML 2022, "A Consistent and Efficient Evaluation
Strategy for Attribution Methods"): removed pixels become what their neighbours say, plus a
little noise, instead of a constant colour whose shape tells the model where pixels were removed.

Each removed pixel i takes the weighted mean of its 8 neighbours j (weight 1/6 for the 4 sides,
1/12 for the 4 corners, as in the reference implementation tleemann/road_evaluation,
road/imputations.py, NoisyLinearImputer; neighbours outside the image are left out and the weights
renormalised):

    D_i x_i - Σ_{j removed} w_ij x_j = Σ_{j kept} w_ij x_j,      D_i = Σ_{j in the image} w_ij

with the removed pixels as the unknowns: a Laplace equation on the removed region with the kept
pixels as its boundary, one sparse system per copy, its 3 channels as 3 right-hand sides, solved as
the reference solves it, by scipy's sparse LU (SuperLU), in float64. The matrix A = D - W is
symmetric (w_ij = w_ji) and diagonally dominant, strictly next to a kept pixel; with one pixel kept,
every connected removed region touches one, so A is positive definite. It is therefore factorised
without pivoting (SuperLU's symmetric mode), in a nested-dissection order of the pixel grid
(dissection_rank), which leaves less fill and work than SuperLU's own orders on these grids.

The evaluation perturbs ~270 copies of one input: copies are factorised in chunks (block-diagonal
systems of up to CHUNK_PIXELS pixels, so that small inputs do not pay Python's overhead per copy),
THREADS chunks at a time (SuperLU releases the GIL while it factorises). Then Gaussian noise of std
0.01 (in [0, 1] pixel units, the reference's default) is added to the removed pixels, from numpy's
generator seeded per sample, so a sample's perturbed copies are the same on every run, device and
thread count.

The equation is linear and per channel, so imputing in the model's normalised space (x - mean)/std
gives the same pixels as imputing in [0, 1] and normalising; only the noise is scaled by 1/std.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy import sparse
from scipy.sparse.linalg import splu

from ..core.conventions import Convention

# (dy, dx) -> weight: the reference's 8-neighbourhood
NEIGHBOURS = (((-1, -1), 1 / 12), ((-1, 0), 1 / 6), ((-1, 1), 1 / 12), ((0, -1), 1 / 6),
              ((0, 1), 1 / 6), ((1, -1), 1 / 12), ((1, 0), 1 / 6), ((1, 1), 1 / 12))
ROAD = Convention("reference", "Rong et al., ICML 2022, 'A Consistent and Efficient Evaluation Strategy for "
                               "Attribution Methods'; tleemann/road_evaluation, road/imputations.py "
                               "(NoisyLinearImputer)",
                  "Each removed pixel takes the weighted mean of its 8 neighbours (sides 1/6, corners 1/12, "
                  "renormalised at the border), one sparse system per copy, plus Gaussian noise of std 0.01 on "
                  "[0, 1] pixels.")
NOISE = 0.01                  # std of the noise on imputed pixels, in [0, 1] pixel units
THREADS = 2                   # chunks of copies solved at once (measured in benchmarks/road.py)
CHUNK_PIXELS = 2**14          # pixels of the copies factorised together: 20 copies at 28×28, one from 128×128
LEAF = 64                     # pixels of the smallest blocks of the nested dissection


def neighbour_sum(x: torch.Tensor) -> torch.Tensor:
    """Σ_j w_j x(p + offset_j) over NEIGHBOURS for every pixel p, with zeros outside the image:
    (..., H, W) -> same. Of ones, it is each pixel's D_i, the weight of its neighbours inside the image."""
    h, w = x.shape[-2:]
    p = F.pad(x, (1, 1, 1, 1))
    return sum(weight * p[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for (dy, dx), weight in NEIGHBOURS)


def residual(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """How far each removed pixel is from the weighted mean of its neighbours (0 elsewhere).
    x (B, C, H, W), removed (B, H, W) bool -> (B, C, H, W)."""
    x = x.double()
    degree = neighbour_sum(torch.ones_like(x[:, :1]))
    return (neighbour_sum(x) / degree - x) * removed[:, None]


@lru_cache(maxsize=8)
def dissection_rank(h: int, w: int) -> np.ndarray:
    """Each pixel's place in a nested-dissection order of the (H, W) grid -> (H, W) int64: cut across
    the longer side along one line of pixels (with 8 neighbours, the two sides of a line never touch),
    order each side so, then the line; blocks of at most LEAF pixels in row-major order. Eliminating a
    side couples only the pixels of the lines around it, so the factors stay sparse (fill of order
    n·log n for n pixels, work of order n^1.5)."""
    blocks = []

    def split(y0: int, y1: int, x0: int, x1: int) -> None:
        if (y1 - y0) * (x1 - x0) <= LEAF:
            blocks.append(np.add.outer(np.arange(y0, y1) * w, np.arange(x0, x1)).ravel())
        elif y1 - y0 >= x1 - x0:
            m = (y0 + y1) // 2
            split(y0, m, x0, x1)
            split(m + 1, y1, x0, x1)
            blocks.append(m * w + np.arange(x0, x1))
        else:
            m = (x0 + x1) // 2
            split(y0, y1, x0, m)
            split(y0, y1, m + 1, x1)
            blocks.append(np.arange(y0, y1) * w + m)

    split(0, h, 0, w)
    rank = np.empty(h * w, dtype=np.int64)
    rank[np.concatenate(blocks)] = np.arange(h * w)
    rank.setflags(write=False)
    return rank.reshape(h, w)


def unknowns(removed: np.ndarray) -> np.ndarray:
    """The removed pixels of masks (B, H, W) bool as the system's unknowns: their indices into the
    flattened masks, copy after copy, each copy's in nested-dissection order (dissection_rank), the
    order SuperLU eliminates them in. Returns (N,) int64."""
    b, h, w = removed.shape
    pixel = np.flatnonzero(removed)
    copy, place = np.divmod(pixel, h * w)
    return pixel[np.lexsort((dissection_rank(h, w).ravel()[place], copy))]


def system(removed: np.ndarray, pixel: np.ndarray) -> sparse.csc_matrix:
    """The imputation's matrix A = D - W over the removed pixels of masks (B, H, W) bool, unknown k
    being the flattened pixel pixel[k] (unknowns): A_kk = D_k (the weights of the pixel's neighbours
    inside the image), A_kl = -w_kl for each removed neighbour l in the same copy. Copies do not
    touch, so A is block diagonal: one factorisation solves them all. Returns (N, N), N = len(pixel)."""
    b, h, w = removed.shape
    n = len(pixel)
    number = np.full(b * h * w, -1, dtype=np.int64)               # each pixel's unknown; -1: kept
    number[pixel] = np.arange(n)
    number = np.pad(number.reshape(b, h, w), ((0, 0), (1, 1), (1, 1)), constant_values=-1)   # -1 outside too
    degree = neighbour_sum(torch.ones(h, w, dtype=torch.float64)).numpy()
    rows, cols, values = [np.arange(n)], [np.arange(n)], [degree.ravel()[pixel % (h * w)]]
    here = number[:, 1:-1, 1:-1]
    for (dy, dx), weight in NEIGHBOURS:
        there = number[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        pair = (here >= 0) & (there >= 0)
        rows.append(here[pair])
        cols.append(there[pair])
        values.append(np.full(len(rows[-1]), -weight))
    return sparse.csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def factorise(a: sparse.csc_matrix):
    """SuperLU's factors of the symmetric positive definite A in the order given (unknowns) and
    without pivoting: the diagonal is always a safe pivot, and the factors stay symmetric."""
    return splu(a, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})


def solve_chunk(x: torch.Tensor, removed: torch.Tensor) -> None:
    """Impute copies in place: x (B, C, H, W) contiguous on the CPU (values on removed pixels are
    ignored), removed (B, H, W) bool, every copy with a kept pixel. One sparse factorisation in
    float64 for the B copies, the C channels as C right-hand sides."""
    b, c, h, w = x.shape
    mask = removed.numpy()
    pixel = unknowns(mask)
    if not len(pixel):
        return
    known = neighbour_sum(x.double() * ~removed[:, None])                   # (B, C, H, W): Σ over kept neighbours
    copy, place = (torch.from_numpy(i) for i in np.divmod(pixel, h * w))
    rhs = known.view(b, c, h * w)[copy, :, place]                            # (N, C)
    solution = factorise(system(mask, pixel)).solve(rhs.numpy())
    x.view(b, c, h * w)[copy, :, place] = torch.from_numpy(solution).to(x.dtype)


def impute(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Linear imputation without noise: x (B, C, H, W), removed (B, H, W) bool -> (B, C, H, W) in
    x's dtype and device; kept pixels are returned unchanged, every removed pixel is the weighted
    mean of its neighbours (to float64 rounding before the cast back). Solved on the CPU, in chunks
    of copies of at most CHUNK_PIXELS pixels (at least one copy), THREADS chunks at a time."""
    if x.ndim != 4 or removed.shape != (x.shape[0], *x.shape[-2:]):
        raise ValueError(f"expected images (B, C, H, W) and masks (B, H, W), got {tuple(x.shape)} and "
                         f"{tuple(removed.shape)}")
    removed = removed.to("cpu", torch.bool)
    if bool(removed.flatten(1).all(1).any()):
        raise ValueError("every image needs at least one kept pixel to impute from, got one with all removed")
    out = x.detach().cpu().clone(memory_format=torch.contiguous_format)
    step = max(1, CHUNK_PIXELS // removed[0].numel())
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda i: solve_chunk(out[i:i + step], removed[i:i + step]), range(0, len(out), step)))
    return out.to(x.device)


@dataclass(frozen=True)
class RoadFill:
    """What removed pixels become under ROAD: called as fill(pixel_values (C, H, W), removed (B, H, W))
    -> (B, C, H, W). std: the model's normalisation std per channel (noise is NOISE in [0, 1] units);
    seed: the noise's seed (the evaluation uses the sample's index)."""
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    noise: float = NOISE
    seed: int = 0

    def __call__(self, pixel_values: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
        b, (c, h, w) = removed.shape[0], pixel_values.shape
        filled = impute(pixel_values.expand(b, c, h, w), removed)
        if self.noise:
            # numpy's generator, drawn copy by copy: the same numbers as one (B, C, H, W) draw, on every
            # device and thread count, without holding a second batch
            rng = np.random.default_rng(self.seed)
            scale = self.noise / torch.tensor(self.std, dtype=torch.float32).reshape(-1, 1)
            for i, mask in enumerate(removed.cpu()):
                z = torch.from_numpy(rng.standard_normal((c, h, w)).astype(np.float32))
                filled[i][:, mask.to(filled.device)] += (z[:, mask] * scale).to(filled.device, filled.dtype)
        return filled
