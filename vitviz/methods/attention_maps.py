"""Maps read from the attentions alone, no model run: raw attention, rollout, DINO's head mean, and the
random map every other map is measured against."""

from __future__ import annotations

import numpy as np

from .. import attention as A
from .. import query as Q
from ..core.conventions import Convention
from .registry import ATTENTIONS, Method, register

DINO_MASS = 0.6     # DINO's visualisations keep the tokens holding 60% of the attention mass


def raw(an, seed: int = 0):
    """The last layer's reading of the patches ([CLS], or a probe), mean over heads: (gh, gw)."""
    return Q.last_heads(an).mean(0)


def rollout(fusion: str):
    def compute(an, seed: int = 0):
        """Attention rollout (Abnar & Zuidema 2020) of the model's query, heads fused by `fusion`."""
        return Q.rollout(an, fusion)
    return compute


def dino(an, seed: int = 0):
    """DINO (Caron et al. 2021): per head, the last-layer tokens holding DINO_MASS of the attention; their mean."""
    return A.dino_threshold(Q.last_heads(an), DINO_MASS).float().mean(0)


def random_map(an, seed: int = 0) -> np.ndarray:
    """Uniform noise over the patch grid: what a map that explains nothing scores."""
    return np.random.default_rng(seed).random(an.grid).astype(np.float32)


ROLLOUT = Convention("reference", "Abnar & Zuidema, ACL 2020, 'Quantifying Attention Flow in Transformers'; "
                                 "samiraabnar/attention_flow",
                     "Per layer 0.5·A + 0.5·I, rows renormalised, multiplied from the last layer down; the "
                     "query's row over the patches (heads fused by mean, max or min).")
DINO = Convention("reference", "Caron et al., ICCV 2021, 'Emerging Properties in Self-Supervised Vision "
                               "Transformers'; facebookresearch/dino, visualize_attention.py",
                  f"Per head, the last layer's tokens holding {DINO_MASS:.0%} of the query's attention; "
                  "the mean of the heads' masks.")

register(Method("raw", ATTENTIONS, raw, order=10))
for i, fusion in enumerate(A.FUSIONS):
    register(Method(f"rollout_{fusion}", ATTENTIONS, rollout(fusion), order=20 + i, convention=ROLLOUT))
register(Method("dino", ATTENTIONS, dino, order=80, convention=DINO))
register(Method("random", ATTENTIONS, random_map, order=90))
