"""Maps read from the attentions alone, no model run: raw attention, rollout, DINO's head mean, and the
random map every other map is measured against."""

from __future__ import annotations

import numpy as np

from .. import attention as A
from .. import query as Q
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


register(Method("raw", ATTENTIONS, raw, order=10))
for i, fusion in enumerate(A.FUSIONS):
    register(Method(f"rollout_{fusion}", ATTENTIONS, rollout(fusion), order=20 + i,
                    reference="Abnar & Zuidema 2020"))
register(Method("dino", ATTENTIONS, dino, order=80, reference="Caron et al. 2021"))
register(Method("random", ATTENTIONS, random_map, order=90))
