"""Class-specific maps from the gradients of the class score with respect to the attentions (one
backward pass, shared): Chefer et al.'s generic relevance and gradient-weighted rollout."""

from __future__ import annotations

from .. import attention as A
from .compute import Gradients
from .registry import BACKWARD, Method, register


def chefer(g: Gradients):
    """Chefer et al., ICCV 2021 ("generic attention-model explainability"): R = I, R ← R + Ā·R per
    block with Ā = mean_h((∂y_c/∂A ⊙ A)⁺); the map is the query's row of R."""
    return g.token_map(A.chefer_from(g.start, g.att, g.grads))


def grad_rollout(g: Gradients):
    """Gradient-weighted rollout: rollout of mean_h((A ⊙ ∂y_c/∂A)⁺) per layer."""
    return g.token_map(A.rollout_from(g.start, A.residual_rows(A.gradient_weighted(g.att, g.grads))))


register(Method("chefer", BACKWARD, chefer, order=30, reference="Chefer et al. ICCV 2021"))
register(Method("grad_rollout", BACKWARD, grad_rollout, order=31))
