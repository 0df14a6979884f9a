"""Property tests of the attention maths on hand-made matrices where the answer is known."""

import math

import pytest
import torch

from vitviz import attention as A

from .conftest import random_attention


@pytest.mark.parametrize("fusion", A.FUSIONS)
@pytest.mark.parametrize("discard", [0.0, 0.5, 0.9])
def test_rollout_rows_sum_to_one(fusion, discard):
    r = A.rollout_matrix(random_attention(4, 3, 17), fusion, discard)
    assert torch.allclose(r.sum(-1), torch.ones(17), atol=1e-5)
    assert (r >= 0).all()


@pytest.mark.parametrize("fusion", A.FUSIONS)
@pytest.mark.parametrize("discard,start,query", [(0.0, 0, 0), (0.5, 1, 3), (0.9, 3, 16)])
def test_rollout_row_equals_the_matrix_row(fusion, discard, start, query):
    att = random_attention(4, 3, 17, seed=5)
    row = A.rollout_row(att, query, fusion, discard, start, keep=2)
    assert torch.allclose(row, A.rollout_matrix(att, fusion, discard, start, keep=2)[query], atol=1e-6)
    half = A.rollout_row(att.half(), query, fusion, discard, start, keep=2)   # the stored precision
    assert half.dtype == torch.float32 and torch.allclose(half, row, atol=2e-3)


def test_identity_attention_gives_identity_rollout():
    att = torch.eye(10).expand(3, 2, 10, 10)
    assert torch.allclose(A.rollout_matrix(att), torch.eye(10))


def test_rollout_of_one_layer_is_half_attention_plus_half_identity():
    att = random_attention(1, 1, 6)
    assert torch.allclose(A.rollout_matrix(att), 0.5 * att[0, 0] + 0.5 * torch.eye(6), atol=1e-6)


def test_rollout_multiplies_later_layers_on_the_left():
    att = random_attention(2, 1, 5, seed=3)
    a = [0.5 * att[i, 0] + 0.5 * torch.eye(5) for i in range(2)]
    assert torch.allclose(A.rollout_matrix(att), a[1] @ a[0], atol=1e-6)


def test_start_layer_skips_early_layers():
    att = random_attention(3, 2, 6)
    assert torch.allclose(A.rollout_matrix(att, start_layer=2), A.rollout_matrix(att[2:]), atol=1e-6)
    with pytest.raises(ValueError):
        A.rollout_matrix(att, start_layer=3)


def test_regression_rollout_renormalizes_rows_not_columns():
    """A popular implementation divides by sum(-1) without keepdim, which broadcasts over columns."""
    att = torch.tensor([[[[0.9, 0.1, 0.0], [0.2, 0.2, 0.6], [0.0, 0.5, 0.5]]]])
    r = A.rollout_matrix(att, discard=0.5)  # discarding makes row sums differ before renormalising
    assert torch.allclose(r.sum(-1), torch.ones(3), atol=1e-6)
    a = A.discard_lowest(att[0, 0], 0.5) * 0.5 + 0.5 * torch.eye(3)
    assert torch.allclose(r, a / a.sum(-1, keepdim=True), atol=1e-6)
    assert not torch.allclose(r, a / a.sum(-1), atol=1e-3)  # the buggy version differs here


def test_regression_discard_never_drops_cls():
    """The CLS column is the lowest of every row here; discarding 90% must still keep it."""
    n = 8
    att = torch.full((1, 1, n, n), 1.0)
    att[..., 0] = 1e-6
    att = att / att.sum(-1, keepdim=True)
    dropped = A.discard_lowest(A.fuse_heads(att), 0.9, keep=1)
    assert (dropped[..., 0] > 0).all()
    assert ((dropped[..., 1:] == 0).sum(-1) == int(0.9 * (n - 1))).all()
    r = A.rollout_matrix(att, discard=0.9)
    assert (r[:, 0] > 0).all()


def test_discard_keeps_every_prefix_column():
    att = random_attention(1, 1, 9)
    att[..., :2] = 0.0
    out = A.discard_lowest(att[0], 0.8, keep=2)
    assert torch.equal(out[..., :2], att[0][..., :2])
    assert ((out[..., 2:] == 0).sum(-1) == int(0.8 * 7)).all()


@pytest.mark.parametrize("fusion,expect", [("mean", 0.5), ("max", 0.8), ("min", 0.2)])
def test_fuse_heads(fusion, expect):
    att = torch.zeros(1, 2, 2, 2)
    att[0, 0] = 0.2
    att[0, 1] = 0.8
    assert torch.allclose(A.fuse_heads(att, fusion), torch.full((1, 2, 2), expect))
    with pytest.raises(ValueError):
        A.fuse_heads(att, "median")


@pytest.mark.parametrize("prefix,grid", [(1, (2, 3)), (2, (3, 2)), (5, (1, 4))])
def test_raw_maps_read_the_query_row_row_by_row(prefix, grid):
    gh, gw = grid
    n = prefix + gh * gw
    att = torch.zeros(2, 3, n, n)
    att[:, :, 0, prefix:] = torch.arange(gh * gw, dtype=torch.float32)
    maps = A.raw_maps(att, prefix, grid)
    assert maps.shape == (2, 3, gh, gw)
    for r in range(gh):
        for c in range(gw):
            assert maps[1, 2, r, c] == r * gw + c


def test_token_map_rejects_wrong_token_count():
    with pytest.raises(ValueError, match="expected 1 prefix"):
        A.token_map(torch.zeros(11), 1, (3, 3))


def test_rollout_map_of_non_square_grid():
    att = random_attention(2, 2, 1 + 2 * 5)
    m = A.rollout(att, 1, (2, 5))
    assert m.shape == (2, 5)
    assert torch.allclose(m, A.rollout_matrix(att)[0, 1:].reshape(2, 5))


def test_dino_threshold_keeps_the_top_mass():
    m = torch.tensor([[0.5, 0.1], [0.3, 0.1]])
    assert A.dino_threshold(m, 0.5).tolist() == [[True, False], [False, False]]
    assert A.dino_threshold(m, 0.6).tolist() == [[True, False], [True, False]]
    assert A.dino_threshold(m, 0.8).tolist() == [[True, False], [True, False]]
    assert A.dino_threshold(m, 0.85).sum() == 3
    assert A.dino_threshold(m, 1.0).all()
    stacked = A.dino_threshold(torch.stack([m, m.flip(0)]), 0.6)
    assert stacked[1].tolist() == [[True, False], [True, False]]


def test_mean_attention_distance_known_cases():
    grid, p = (3, 3), 16
    n = 1 + 9
    identity = torch.eye(n).expand(1, 1, n, n)
    assert torch.allclose(A.mean_attention_distance(identity, 1, grid, p), torch.zeros(1, 1))
    # every patch attends to its right-hand neighbour (wrapping within a row: distance 2 patches)
    att = torch.zeros(1, 1, n, n)
    for i in range(9):
        r, c = divmod(i, 3)
        att[0, 0, 1 + i, 1 + r * 3 + (c + 1) % 3] = 1.0
    expected = (6 * p + 3 * 2 * p) / 9
    assert math.isclose(A.mean_attention_distance(att, 1, grid, p).item(), expected, rel_tol=1e-5)


def test_mean_attention_distance_ignores_prefix_attention():
    n = 1 + 4
    att = torch.zeros(1, 1, n, n)
    att[0, 0, :, 0] = 0.5     # half the mass on [CLS], which has no position
    att[0, 0, 1:, 1:] = torch.eye(4) * 0.5
    assert torch.allclose(A.mean_attention_distance(att, 1, (2, 2), 8), torch.zeros(1, 1))


def test_normalize_maps_to_unit_range():
    m = A.normalize(torch.tensor([[2.0, 4.0], [3.0, 6.0]]))
    assert m.min() == 0 and m.max() == 1
    assert torch.equal(A.normalize(torch.ones(2, 2)), torch.zeros(2, 2))
