"""Class-specific maps from the gradients of the class score with respect to the attentions (one
backward pass, shared): Chefer et al.'s generic relevance and gradient-weighted rollout."""

from __future__ import annotations

from .. import attention as A
from ..core.conventions import Convention
from .compute import Gradients
from .registry import BACKWARD, Method, register

CHEFER = Convention("reference", "Chefer, Gur & Wolf, ICCV 2021, 'Generic Attention-model Explainability for "
                                 "Interpreting Bi-Modal and Encoder-Decoder Transformers'; "
                                 "hila-chefer/Transformer-MM-Explainability, Transformer_MM_explainability_ViT.ipynb "
                                 "(generate_relevance)",
                    "R = I; per block R ← R + mean_h((∂y_c/∂A ⊙ A)⁺)·R; the query's row of R over the patches.")
GRADIENT_ROLLOUT = Convention("vitviz", "vitviz, after Abnar & Zuidema 2020 and Chefer et al. 2021",
                              "Rollout (0.5·Â + 0.5·I, rows renormalised) of mean_h((∂y_c/∂A ⊙ A)⁺) per layer.")


def chefer(g: Gradients):
    """Chefer et al., ICCV 2021 ("generic attention-model explainability"): R = I, R ← R + Ā·R per
    block with Ā = mean_h((∂y_c/∂A ⊙ A)⁺); the map is the query's row of R."""
    return g.token_map(A.chefer_from(g.start, g.att, g.grads))


def grad_rollout(g: Gradients):
    """Gradient-weighted rollout: rollout of mean_h((A ⊙ ∂y_c/∂A)⁺) per layer."""
    return g.token_map(A.rollout_from(g.start, A.residual_rows(A.gradient_weighted(g.att, g.grads))))


register(Method("chefer", BACKWARD, chefer, order=30, convention=CHEFER))
register(Method("grad_rollout", BACKWARD, grad_rollout, order=31, convention=GRADIENT_ROLLOUT))
