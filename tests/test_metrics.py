"""Faithfulness measures beyond deletion AUCs, on hand examples: noise-proof ranking, ROAD's
noisy linear imputation and the sanity check's Spearman correlation and SSIM."""

import itertools

import numpy as np
import pytest
import torch

from vitviz.core import ranking
from vitviz.evidence import mprt as sanity
from vitviz.evidence import road

# ---------------------------------------------------------------- ranking


def test_noise_below_the_resolution_does_not_reorder_pixels():
    """Clamped gradients leave "zero" patches at 0 with one thread count and at 1e-9 with another."""
    m = np.array([[0.0, 0.5, 0.0], [1.0, 0.0, 0.5]])
    noisy = m + np.array([[1e-9, -2e-9, 3e-9], [0.0, 2e-9, 1e-9]])
    assert ranking.order(m).tolist() == ranking.order(noisy).tolist() == [3, 1, 5, 0, 2, 4]   # ties by index


def test_ranks_average_ties():
    assert ranking.ranks([3.0, 1.0, 2.0, 2.0]).tolist() == [4.0, 1.0, 2.5, 2.5]
    assert ranking.quantise(np.full((2, 2), 7.0)).tolist() == [[0, 0], [0, 0]]        # a constant map


# ---------------------------------------------------------------- ROAD


def dense_imputation(x: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """The reference's system written out, one equation per removed pixel, solved densely:
    Σ_j w_j x_j - (Σ_j w_j) x_i = 0 over the neighbours j inside the image. x (C, H, W)."""
    c, h, w = x.shape
    pixels = [tuple(p) for p in torch.nonzero(removed).tolist()]
    index = {p: k for k, p in enumerate(pixels)}
    a = torch.zeros(len(pixels), len(pixels), dtype=torch.float64)
    b = torch.zeros(len(pixels), c, dtype=torch.float64)
    for (i, j), k in index.items():
        for (dy, dx), weight in road.NEIGHBOURS:
            y, z = i + dy, j + dx
            if 0 <= y < h and 0 <= z < w:
                a[k, k] -= weight
                if (y, z) in index:
                    a[k, index[(y, z)]] += weight
                else:
                    b[k] -= weight * x[:, y, z].double()
    out = x.double().clone()
    solution = torch.linalg.solve(a, b)
    for (i, j), k in index.items():
        out[:, i, j] = solution[k]
    return out


def test_road_solves_the_reference_system():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 11, generator=g)
    removed = torch.rand(2, 9, 11, generator=g) < 0.7
    out = road.impute(x, removed)
    kept = ~removed[:, None].expand_as(x)
    assert torch.equal(out[kept], x[kept])                                   # kept pixels untouched
    assert road.residual(out, removed).abs().max() < 1e-6                   # each removed pixel: its neighbours' mean
    for i in range(2):
        assert torch.allclose(out[i].double(), dense_imputation(x[i], removed[i]), atol=1e-6)
    wide = road.impute(x.double(), removed)                                # transposed in, transposed out
    tall = road.impute(x.double().transpose(-1, -2), removed.transpose(-1, -2)).transpose(-1, -2)
    assert torch.allclose(wide, tall, atol=1e-12) and road.residual(wide, removed).abs().max() < 1e-12


def test_a_hole_surrounded_by_one_colour_gets_that_colour():
    x = torch.tensor([0.2, -0.5, 1.0]).reshape(1, 3, 1, 1).expand(1, 3, 12, 12).clone()
    removed = torch.zeros(1, 12, 12, dtype=torch.bool)
    removed[0, 3:9, 2:10] = True
    x[0, :, 3:9, 2:10] = 5.0                                                 # whatever was there goes
    out = road.impute(x, removed)
    assert torch.allclose(out[0, :, 5, 5], torch.tensor([0.2, -0.5, 1.0]), atol=1e-5)


def test_road_noise_is_seeded_and_scaled_by_the_normalisation():
    x = torch.zeros(3, 16, 16)
    removed = torch.zeros(2, 16, 16, dtype=torch.bool)
    removed[:, :, :12] = True
    fill = road.RoadFill(std=(0.5, 0.25, 1.0), seed=3)
    a, b = fill(x, removed), fill(x, removed)
    assert torch.equal(a, b) and not torch.equal(a, road.RoadFill(std=(0.5, 0.25, 1.0), seed=4)(x, removed))
    noise = a[:, :, removed[0]]                                              # the imputation itself is 0 here
    assert noise[:, 1].std() / noise[:, 0].std() == pytest.approx(2.0, rel=0.15)   # 0.01 / std per channel
    assert noise[:, 0].std() == pytest.approx(0.02, rel=0.15)
    assert torch.equal(a[:, :, ~removed[0]], torch.zeros(2, 3, int((~removed[0]).sum())))
    with pytest.raises(ValueError, match="kept pixel"):
        road.impute(torch.zeros(1, 3, 4, 4), torch.ones(1, 4, 4, dtype=torch.bool))


# ---------------------------------------------------------------- the sanity check's measures


def test_spearman_by_hand():
    assert sanity.spearman([[1, 2], [3, 4]], [[10, 20], [30, 40]]) == pytest.approx(1.0)
    assert sanity.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks [1, 2.5, 2.5, 4] and [1, 3, 2, 4]: deviations [-1.5, 0, 0, 1.5] and [-1.5, .5, -.5, 1.5]
    # -> 4.5 / sqrt(4.5 · 5) = sqrt(0.9)
    assert sanity.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(np.sqrt(0.9))
    assert sanity.spearman([1, 2, 2 + 1e-9, 3], [1, 3, 2, 4]) == pytest.approx(np.sqrt(0.9))   # noise ties
    assert np.isnan(sanity.spearman([1, 1, 1], [1, 2, 3]))


def loop_ssim(a, b, w):
    """Wang et al. 2004 written out: every w×w window, sample statistics, then the mean."""
    a = (a - a.min()) / (a.max() - a.min())
    b = (b - b.min()) / (b.max() - b.min())
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for i, j in itertools.product(range(a.shape[0] - w + 1), range(a.shape[1] - w + 1)):
        x, y = a[i:i + w, j:j + w].ravel(), b[i:i + w, j:j + w].ravel()
        cov = np.cov(x, y)                                  # n-1 normalisation
        values.append((2 * x.mean() * y.mean() + c1) * (2 * cov[0, 1] + c2)
                      / ((x.mean() ** 2 + y.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2)))
    return np.mean(values)


def test_ssim_by_hand():
    a = np.arange(9.0).reshape(3, 3)
    # one 3×3 window; a/8 and (8-a)/8: means 0.5, variances Σ(k-4)²/64/8 = 60/512, covariance -60/512
    # SSIM = (2·0.25 + c1)(-2·60/512 + c2) / ((0.5 + c1)(2·60/512 + c2)) = (-0.234375 + 9e-4) / (0.234375 + 9e-4)
    assert sanity.ssim(a, 8 - a) == pytest.approx((-0.234375 + 9e-4) / (0.234375 + 9e-4))
    assert sanity.ssim(a, a * 3 + 1) == pytest.approx(1.0)                  # both scaled to [0, 1]
    g = np.random.default_rng(1)
    x, y = g.random((14, 14)), g.random((14, 14))
    assert sanity.ssim(x, y) == pytest.approx(loop_ssim(x, y, 7), abs=1e-4)
    assert [sanity.ssim_window(s) for s in [(14, 14), (7, 7), (5, 6), (4, 4)]] == [7, 7, 5, 3]
