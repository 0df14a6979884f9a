"""ROAD's noisy linear imputation (Rong et al., ICML 2022, "A Consistent and Efficient Evaluation
Strategy for Attribution Methods"): removed pixels become what their neighbours say, plus a
little noise, instead of a constant colour whose shape tells the model where pixels were removed.

Each removed pixel i takes the weighted mean of its 8 neighbours j (weight 1/6 for the 4 sides,
1/12 for the 4 corners, as in the reference implementation tleemann/road_evaluation; neighbours
outside the image are left out and the weights renormalised):

    x_i = Σ_j w_ij x_j / Σ_j w_ij

where a neighbour is either kept (a known value) or removed (another unknown). That is one sparse
linear system per image and channel: a Laplace equation on the removed region with the kept
pixels as its boundary. The reference solves it with scipy's sparse LU (scipy is no dependency of
vitviz); here it is solved exactly in torch, in float64, by block elimination over the image's
rows (see _solve_rows): a 28×28 copy takes ~1.5 ms, a 224×224 copy ~1.4 s on one CPU core (the
H dense W×W solves are what a GPU does well). Then Gaussian noise of std 0.01 (in [0, 1] pixel
units, the reference's default) is added to the removed pixels, from numpy's generator seeded per
sample, so a sample's perturbed copies are the same on every run, device and thread count.

The equation is linear and per channel, so imputing in the model's normalised space (x - mean)/std
gives the same pixels as imputing in [0, 1] and normalising; only the noise is scaled by 1/std.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# (dy, dx) -> weight: the reference's 8-neighbourhood
NEIGHBOURS = (((-1, -1), 1 / 12), ((-1, 0), 1 / 6), ((-1, 1), 1 / 12), ((0, -1), 1 / 6),
              ((0, 1), 1 / 6), ((1, -1), 1 / 12), ((1, 0), 1 / 6), ((1, 1), 1 / 12))
NOISE = 0.01                  # std of the noise on imputed pixels, in [0, 1] pixel units
ROW_MEMORY = 256 * 2**20      # bytes of row couplings held at once (B·H·W²·8): 2 copies of 224×224


def neighbour_sum(x: torch.Tensor) -> torch.Tensor:
    """Σ_j w_j x(p + offset_j) for every pixel p, with zeros outside the image: (..., H, W) -> same.
    With corners 1/12 and sides 2/12 this is (3×3 box sum - centre + the 4 sides) / 12."""
    p = F.pad(x, (1, 1, 1, 1))
    rows = p[..., :, :-2] + p[..., :, 1:-1] + p[..., :, 2:]                  # (..., H+2, W) sums of 3 across
    box = rows[..., :-2, :] + rows[..., 1:-1, :] + rows[..., 2:, :]
    sides = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
    return (box - x + sides) / 12


def residual(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """How far each removed pixel is from the weighted mean of its neighbours (0 elsewhere).
    x (B, C, H, W), removed (B, H, W) bool -> (B, C, H, W)."""
    x = x.double()
    degree = neighbour_sum(torch.ones_like(x[:, :1]))
    return (neighbour_sum(x) / degree - x) * removed[:, None]


def _bands(w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights of a pixel's neighbours as (W, W) matrices over the columns: in its own row
    (left, right: 1/6) and in the row above or below (straight: 1/6, diagonal: 1/12)."""
    one = torch.ones(w - 1, dtype=torch.float64, device=device)
    side = torch.diag(one, 1) + torch.diag(one, -1)
    return side / 6, torch.eye(w, dtype=torch.float64, device=device) / 6 + side / 12


def _solve_rows(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """The imputation system solved exactly, row block by row block. x (B, C, H, W) float64 (values on
    removed pixels are ignored), removed (B, H, W) bool -> (B, C, H, W), every pixel's value.

    Unknowns are all pixels: a kept pixel's equation is x_i = its value; a removed one's is
    x_i - Σ_j w_ij x_j / D_i = 0. The 8-neighbourhood ties row r only to rows r-1 and r+1, so with
    one block per row the system is block tridiagonal, Lo_r x_{r-1} + M_r x_r + Up_r x_{r+1} = b_r,
    and block elimination (the block Thomas algorithm) solves it with one dense W×W solve per row:
    forward, M'_r = M_r - Lo_r M'_{r-1}^-1 Up_{r-1}; back, x_r = e_r - C_r x_{r+1}. Every removed
    region touches a kept pixel, so the matrix is irreducibly diagonally dominant and elimination
    needs no pivoting across blocks."""
    b, c, h, w = x.shape
    within, across = _bands(w, x.device)
    eye = torch.eye(w, dtype=torch.float64, device=x.device)
    degree = neighbour_sum(torch.ones(1, 1, h, w, dtype=torch.float64, device=x.device))[0, 0]   # (H, W)
    unknown = removed.double()
    couplings, values = [], []                     # per row: C_r = M'^-1 Up_r (B, W, W), e_r (B, W, C)
    for r in range(h):
        scale = (unknown[:, r] / degree[r])[..., None]                   # (B, W, 1): 0 on kept pixels
        m = eye - scale * within
        rhs = (x[:, :, r] * (1 - unknown[:, r])[:, None]).transpose(1, 2)  # (B, W, C): the kept values
        if r > 0:
            low = -scale * across
            m = m - low @ couplings[-1]
            rhs = rhs - low @ values[-1]
        if r < h - 1:
            sol = torch.linalg.solve(m, torch.cat([-scale * across, rhs], -1))
            couplings.append(sol[..., :w])
            values.append(sol[..., w:])
        else:
            values.append(torch.linalg.solve(m, rhs))
    rows = [values[-1]]
    for r in range(h - 2, -1, -1):
        rows.append(values[r] - couplings[r] @ rows[-1])
    return torch.stack(rows[::-1], 1).permute(0, 3, 1, 2)


def impute(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """Linear imputation without noise: x (B, C, H, W), removed (B, H, W) bool -> (B, C, H, W) in
    x's dtype; kept pixels are returned unchanged, every removed pixel is the weighted mean of its
    neighbours (to float64 rounding before the cast back)."""
    if x.ndim != 4 or removed.shape != (x.shape[0], *x.shape[-2:]):
        raise ValueError(f"expected images (B, C, H, W) and masks (B, H, W), got {tuple(x.shape)} and "
                         f"{tuple(removed.shape)}")
    removed = removed.to(x.device, torch.bool)
    if bool(removed.flatten(1).all(1).any()):
        raise ValueError("every image needs at least one kept pixel to impute from, got one with all removed")
    if not bool(removed.any()):
        return x.clone()
    wide = x.shape[-1] > x.shape[-2]                # rows along the longer side: W³ per row is the cost
    xt, rt = (x.transpose(-1, -2), removed.transpose(-1, -2)) if wide else (x, removed)
    h, w = xt.shape[-2:]
    chunk = max(1, ROW_MEMORY // (h * w * w * 8))  # copies whose row couplings fit in ROW_MEMORY
    solved = torch.cat([_solve_rows(xt[i:i + chunk].double(), rt[i:i + chunk]) for i in range(0, len(xt), chunk)])
    solved = solved.transpose(-1, -2) if wide else solved
    return torch.where(removed[:, None], solved.to(x.dtype), x)


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
            # numpy's generator: the same numbers on every device and thread count
            z = np.random.default_rng(self.seed).standard_normal((b, c, h, w)).astype(np.float32)
            scale = self.noise / torch.tensor(self.std, dtype=torch.float32).reshape(-1, 1, 1)
            noise = (torch.from_numpy(z) * scale).to(filled.device, filled.dtype)
            filled = torch.where(removed[:, None].to(filled.device), filled + noise, filled)
        return filled
