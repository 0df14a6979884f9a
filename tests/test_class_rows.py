"""The [CLS] rows of the class-specific relevances, computed by vector-matrix products, equal the rows
of the full matrices; the class view computes only the backward pass of the method it shows."""

import pytest
import torch

from tests.conftest import random_attention
from vitviz import attention as A
from vitviz import methods


@pytest.mark.parametrize("query", [0, 1, 7])
def test_chefer_row_is_the_row_of_the_full_relevance(query):
    att = random_attention(L=4, H=3, N=9, seed=1)
    grads = torch.randn(att.shape, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(A.chefer_row(att, grads, query), A.chefer_relevance(att, grads)[query], atol=1e-6)


@pytest.mark.parametrize("discard, keep", [(0.0, 1), (0.5, 2)])
def test_grad_rollout_row_is_the_row_of_the_full_matrix(discard, keep):
    att = random_attention(L=3, H=2, N=10, seed=3)
    grads = torch.randn(att.shape, generator=torch.Generator().manual_seed(4))
    full = A.grad_rollout_matrix(att, grads, discard, keep)
    assert torch.allclose(A.grad_rollout_row(att, grads, 0, discard, keep), full[0], atol=1e-6)


def test_chefer_row_by_hand():
    # one layer, one head, N = 2: Ā = (G ⊙ A)⁺ = [[0.5, 0], [0, 0]], R = I + Ā, row 0 = [1.5, 0]
    att = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]]])
    grads = torch.tensor([[[[1.0, -1.0], [0.0, 0.0]]]])
    assert torch.allclose(A.chefer_row(att, grads), torch.tensor([1.5, 0.0]))


def test_the_class_view_pays_only_for_the_method_it_shows(monkeypatch, tiny_loaded, photo):
    from vitviz.analysis import analyze
    from vitviz.service import work
    from vitviz.service.context import Opened, Session

    asked = []
    real = methods.class_maps

    def spy(loaded, an, target, method_ids, *rest):
        asked.append(tuple(method_ids))
        return real(loaded, an, target, method_ids, *rest)

    class Ctx:      # the context's two calls the view makes
        def check_memory(self, *a):
            pass

        def run(self, fn, loaded, *args, kind="forward"):
            return fn(loaded, *args)

    monkeypatch.setattr(methods, "class_maps", spy)
    an = analyze(tiny_loaded, photo)
    opened = Opened(Session("key", tiny_loaded.name), tiny_loaded, an)
    chefer = work.class_maps(Ctx(), opened, 1, ("chefer",))
    assert list(chefer) == ["chefer"] and asked == [("chefer", "grad_rollout")]
    work.class_maps(Ctx(), opened, 1, ("grad_rollout",))         # same backward: kept
    assert asked == [("chefer", "grad_rollout")]
    both = work.class_maps(Ctx(), opened, 1)
    assert asked == [("chefer", "grad_rollout"), ("legrad",), ("legrad_all",)]     # one pass each, none twice
    assert set(both) == set(methods.class_specific())
    assert torch.equal(both["chefer"], real(tiny_loaded, an, 1, ("chefer",))["chefer"])
