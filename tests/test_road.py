"""ROAD's imputation (vitviz.evidence.road) against its reference: the noisy linear imputation of Rong et al.
(ICML 2022), as tleemann/road_evaluation's road/imputations.py NoisyLinearImputer sets it up, rewritten
here with scipy pixel by pixel, and Quantus's quantus.functions.perturb_func.noisy_linear_imputation,
both with the noise off; a different neighbour weighting is told apart; and the properties of the solution
(kept pixels untouched, every removed pixel its neighbours' weighted mean, a constant surround's colour)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.sparse import csc_matrix, lil_matrix
from scipy.sparse.linalg import spsolve

from vitviz.evidence import road

# The reference's neighbours_weights, in its order: ((dy, dx), weight)
REFERENCE = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((0, -1), 1 / 6),
             ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]
UNIFORM = [(offset, 1 / 8) for offset, _ in REFERENCE]                     # what ROAD does not use
FOUR = [((0, 1), 1 / 4), ((0, -1), 1 / 4), ((1, 0), 1 / 4), ((-1, 0), 1 / 4)]


def reference_imputation(img: np.ndarray, present: np.ndarray, weighting=REFERENCE) -> np.ndarray:
    """NoisyLinearImputer(noise=0) of road_evaluation, one equation per absent pixel i (present == 0):
    -(Σ of the weights of i's neighbours inside the image) x_i + Σ_{absent j} w_ij x_j = -Σ_{present j} w_ij img_j,
    solved by scipy's spsolve. img (C, H, W), present (H, W) 1/0 -> (C, H, W) float64."""
    c, h, w = img.shape
    absent = [(y, x) for y in range(h) for x in range(w) if not present[y, x]]
    variable = {pixel: k for k, pixel in enumerate(absent)}
    a, b = lil_matrix((len(absent), len(absent))), np.zeros((len(absent), c))
    for k, (y, x) in enumerate(absent):
        inside = 0.0
        for (dy, dx), weight in weighting:
            ny, nx = y + dy, x + dx
            if not (0 <= ny < h and 0 <= nx < w):
                continue
            inside += weight
            if present[ny, nx]:
                b[k] -= weight * img[:, ny, nx]
            else:
                a[k, variable[(ny, nx)]] = weight
        a[k, k] = -inside
    solution = spsolve(csc_matrix(a), b).reshape(len(absent), c)
    out = img.astype(np.float64).copy()
    for k, (y, x) in enumerate(absent):
        out[:, y, x] = solution[k]
    return out


def masks(h: int, w: int, seed: int) -> dict[str, np.ndarray]:
    """Removed pixels (H, W) bool of the kinds the reference must agree on."""
    rng = np.random.default_rng(seed)
    border = np.zeros((h, w), dtype=bool)
    border[:, :3] = border[-2:, :] = True                                   # an L along two edges and their corner
    regions = np.zeros((h, w), dtype=bool)
    regions[1:4, 2:6] = regions[5:h - 1, w - 4:w - 1] = regions[h // 2, :] = True   # three pieces, one crossing
    almost_all = np.ones((h, w), dtype=bool)
    almost_all[rng.integers(h), rng.integers(w)] = False                    # one pixel left to impute from
    return {"scattered": rng.random((h, w)) < 0.5, "border": border, "regions": regions,
            "almost all": almost_all, "corner pixel": np.pad(np.ones((1, 1), bool), ((0, h - 1), (0, w - 1)))}


CASES = [(h, w, seed) for h, w, seed in ((9, 11, 0), (12, 7, 1), (16, 16, 2))]


@pytest.mark.parametrize("h,w,seed", CASES)
def test_equal_to_the_reference_imputer(h, w, seed):
    img = np.random.default_rng(seed).normal(size=(3, h, w))
    for kind, removed in masks(h, w, seed).items():
        ours = road.impute(torch.from_numpy(img)[None], torch.from_numpy(removed)[None])[0].numpy()
        assert np.abs(ours - reference_imputation(img, ~removed)).max() < 1e-6, kind


def test_equal_to_quantus():
    perturb = pytest.importorskip("quantus.functions.perturb_func")
    img = np.random.default_rng(3).random((3, 14, 10))
    for kind, removed in masks(14, 10, 3).items():
        theirs = perturb.noisy_linear_imputation(img, np.flatnonzero(removed), noise=0.0)
        ours = road.impute(torch.from_numpy(img)[None], torch.from_numpy(removed)[None])[0].numpy()
        assert np.abs(ours - theirs).max() < 1e-5, kind


@pytest.mark.parametrize("weighting", [UNIFORM, FOUR], ids=["uniform 1/8", "four sides"])
def test_another_weighting_is_told_apart(weighting, monkeypatch):
    """The comparison above fails for vitviz under another weighting: the imputations move by far more than 1e-6."""
    img = np.random.default_rng(4).normal(size=(3, 9, 11))
    removed = masks(9, 11, 4)["scattered"]
    monkeypatch.setattr(road, "NEIGHBOURS", tuple((offset, weight) for offset, weight in weighting))
    other = road.impute(torch.from_numpy(img)[None], torch.from_numpy(removed)[None])[0].numpy()
    assert np.abs(other - reference_imputation(img, ~removed, weighting)).max() < 1e-6    # it solves that weighting
    assert np.abs(other - reference_imputation(img, ~removed)).max() > 1e-2               # not the reference's


def test_kept_pixels_stay_and_removed_ones_are_their_neighbours_mean():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, 13, 17, generator=g)
    removed = torch.rand(4, 13, 17, generator=g) < torch.tensor([0.0, 0.3, 0.7, 0.95])[:, None, None]
    removed[3, 6, 8] = False
    out = road.impute(x, removed)
    assert out.dtype == x.dtype and torch.equal(out[~removed[:, None].expand_as(x)], x[~removed[:, None].expand_as(x)])
    assert torch.equal(out[0], x[0])                                          # nothing removed: nothing moves
    assert road.residual(road.impute(x.double(), removed), removed).abs().max() < 1e-12
    by_hand = road.neighbour_sum(out.double()) / road.neighbour_sum(torch.ones(13, 17, dtype=torch.float64))
    assert torch.allclose(by_hand[removed[:, None].expand_as(x)], out.double()[removed[:, None].expand_as(x)],
                          atol=1e-5)


def test_a_pixel_neighbours_weights_by_hand():
    """A removed pixel among kept ones: sides count 1/6, corners 1/12; at the image's corner only the three
    neighbours inside count, renormalised: (1/6 · right + 1/6 · below + 1/12 · diagonal) / (5/12)."""
    x = torch.arange(1.0, 26.0, dtype=torch.float64).reshape(1, 1, 5, 5) ** 2
    removed = torch.zeros(1, 5, 5, dtype=torch.bool)
    removed[0, 2, 2] = removed[0, 0, 0] = True
    out = road.impute(x, removed)[0, 0]
    v = x[0, 0]
    centre = (v[1, 2] + v[3, 2] + v[2, 1] + v[2, 3]) / 6 + (v[1, 1] + v[1, 3] + v[3, 1] + v[3, 3]) / 12
    assert out[2, 2].item() == pytest.approx(centre.item(), abs=1e-12)
    assert out[0, 0].item() == pytest.approx(((v[0, 1] + v[1, 0]) / 6 + v[1, 1] / 12).item() / (5 / 12), abs=1e-12)


def test_a_hole_in_one_colour_takes_that_colour():
    colour = torch.tensor([0.2, -0.5, 1.0])
    x = colour.reshape(1, 3, 1, 1).repeat(2, 1, 20, 24)
    removed = torch.zeros(2, 20, 24, dtype=torch.bool)
    removed[0, 3:15, 2:20] = True                                            # a hole inside
    removed[1, :, 8:] = True                                                 # everything right of a band
    x[removed[:, None].expand_as(x)] = 9.0                                   # whatever was there goes
    out = road.impute(x, removed)
    assert torch.allclose(out, colour.reshape(1, 3, 1, 1).expand_as(out), atol=1e-6)


def test_chunks_and_threads_do_not_change_the_result(monkeypatch):
    g = torch.Generator().manual_seed(6)
    x = torch.randn(7, 3, 10, 12, dtype=torch.float64, generator=g)
    removed = torch.rand(7, 10, 12, generator=g) < 0.6
    removed[2] = False                                                       # a copy with nothing to impute
    together = road.impute(x, removed)                                      # all 7 in one factorisation
    monkeypatch.setattr(road, "CHUNK_PIXELS", 1)                            # one copy a factorisation
    for threads in (1, 3):
        monkeypatch.setattr(road, "THREADS", threads)
        apart = road.impute(x, removed)
        assert torch.allclose(apart, together, atol=1e-12) and torch.equal(apart, road.impute(x, removed))


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (7, 2), (28, 28), (13, 40)])
def test_the_dissection_order_is_an_order_of_every_pixel(h, w):
    rank = road.dissection_rank(h, w)
    assert rank.shape == (h, w) and sorted(rank.ravel().tolist()) == list(range(h * w))


def test_impute_refuses_what_it_cannot_solve():
    with pytest.raises(ValueError, match="kept pixel"):
        road.impute(torch.zeros(2, 3, 4, 4), torch.ones(2, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="masks"):
        road.impute(torch.zeros(2, 3, 4, 4), torch.ones(3, 4, 4, dtype=torch.bool))
