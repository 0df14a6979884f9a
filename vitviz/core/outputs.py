"""What vitviz reads from a model, for models whose modules are named otherwise (CLIP, SigLIP, timm).

vitviz's maps read a transformers ViT's surface: ``model(pixel_values=..., output_attentions=True)``
returning ``logits``, ``attentions`` and ``hidden_states``, and ``base_model.embeddings`` with a
``patch_embeddings`` module (its ``projection`` weight: the filters) and ``position_embeddings``.
The wrappers in vitviz.families.zeroshot and vitviz.families.timm_vit present that surface over their own modules,
so every view works on them unchanged; nothing here copies a weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch


@dataclass
class VisionOutput:
    """A forward pass as vitviz reads it. Shapes for a batch of B, N tokens, K classes or labels."""
    logits: torch.Tensor | None                      # (B, K); None without a classifier or labels
    attentions: tuple[torch.Tensor, ...] = ()        # L × (B, H, N, N)
    hidden_states: tuple[torch.Tensor, ...] | None = None   # (L+1) × (B, N, D)
    probe_attentions: torch.Tensor | None = None     # (B, H, 1, N): an attention-pooling probe over the tokens


class PatchEmbeddings(torch.nn.Module):
    """Pixels -> one token per patch, (B, 3, H, W) -> (B, P, D), with the projection's weight as
    a (D, C, P, P) convolution kernel (``projection.weight``) for the embedding filters."""

    def __init__(self, embed, weight):
        super().__init__()
        self.embed = embed             # (B, 3, H, W) -> (B, P, D)
        self._weight = weight          # () -> (D, C, P, P)

    @property
    def projection(self):
        return SimpleNamespace(weight=self._weight())

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.embed(pixel_values)


class Embeddings:
    """``embeddings.patch_embeddings`` and ``embeddings.position_embeddings`` ((1, N, D), prefix first)."""

    def __init__(self, patch_embeddings: PatchEmbeddings, positions):
        self.patch_embeddings = patch_embeddings
        self._positions = positions    # () -> (1, N, D) tensor, or None without absolute positions

    @property
    def position_embeddings(self):
        return self._positions()


def conv_patches(conv: torch.nn.Conv2d):
    """A Conv2d patch projection as ``embed``: (B, 3, H, W) -> (B, P, D), patches row by row."""
    return lambda x: conv(x).flatten(2).transpose(1, 2)
