"""A model ready to run: its weights, preprocessing and facts, and the adapter that knows how to run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .cache import Cache
from .compiled import CompiledForward
from .facts import ModelFacts
from .family import BlockParts, Family, PooledReadout
from .loading import ModelUnavailable

if TYPE_CHECKING:
    import torch

    from .preprocess import PreprocessSpec

DTYPES = ("float32", "bfloat16", "float16", "int8")


@dataclass
class LoadedModel(ModelFacts):
    """A model ready to run, with its facts (vitviz.core.facts: sizes, prefix tokens, capabilities)."""
    name: str                   # what the user asked for (Hub id, folder, or "bundled")
    model: torch.nn.Module      # in eval mode, eager attention, no weight gradients
    processor: object           # the checkpoint's own image processor (or its settings)
    spec: PreprocessSpec        # the processor's resize / crop / normalisation
    device: str
    dtype: str                  # one of DTYPES ("int8": vitviz.quant, float32 weights kept)
    adapter: Family             # its family's adapter (vitviz.families): forward, read-out, blocks
    source: str = "local"       # "cache", "hub", "local", "bundled"
    reason: str = ""            # why this model, in English (when it is not the one asked for)
    fallback_from: ModelUnavailable | None = None  # the failure that made this the model: its key says why
    cache: Cache = field(default_factory=Cache)  # model-only results (position-embedding similarity, filters)
    compiled: CompiledForward = field(default_factory=CompiledForward)  # shared by copies, like the cache

    @property
    def input_size(self) -> tuple[int, int]:
        return self.spec.input_size

    @property
    def torch_dtype(self) -> torch.dtype:
        """The dtype of the weights and inputs of `model` (an int8 model keeps float32 ones)."""
        import torch

        return torch.float32 if self.dtype == "int8" else getattr(torch, self.dtype)

    def forward(self, pixel_values: torch.Tensor, **kw):
        """The model run on a (B, 3, H, W) batch as its adapter runs it (kw: output_attentions, ...)."""
        return self.adapter.forward(self, pixel_values, **kw)

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """Class logits from any layer's tokens, (B, N, D) -> (B, K), as the head reads the last layer."""
        if not self.has_classifier:
            raise ValueError(f"{self.name} has no classifier: the layer read-out needs class scores")
        return self.adapter.readout(self, hidden)

    def pooled_readout(self, hidden: torch.Tensor) -> PooledReadout:
        """Any layer's tokens (B, N, D) pooled into one and read through the head, as LeGrad's reference
        reads a layer (Family.pooled_readout): class scores (B, K) and an attention pooler's attention."""
        if not self.has_classifier:
            raise ValueError(f"{self.name} has no classifier: the layer read-out needs class scores")
        return self.adapter.pooled_readout(self, hidden)

    def frozen_readout(self, hidden: torch.Tensor):
        """The read-out as an affine map with its norms frozen at the last layer's tokens (B, N, D), or
        None where it is not affine even so (Family.frozen_readout)."""
        if not self.has_classifier:
            raise ValueError(f"{self.name} has no classifier: the read-out needs class scores")
        return self.adapter.frozen_readout(self, hidden)

    def block_parts(self, index: int) -> BlockParts:
        """Where block `index`'s heads and MLP are (Family.block_parts)."""
        return self.adapter.block_parts(self, index)

    def with_labels(self, labels) -> "LoadedModel":
        """A copy whose classes are the typed `labels` (weights and caches shared); models with their own
        classes refuse (ValueError)."""
        if not self.typed_labels:
            raise ValueError(f"{self.name} scores fixed classes, not typed labels")
        return self.adapter.bind(self, tuple(labels))

    @property
    def bound_labels(self) -> tuple[str, ...] | None:
        """The typed labels this model scores (None for a model with its own classes, or none bound):
        what must travel with its name to where the model lives."""
        return tuple(self.id2label.values()) if self.typed_labels and self.id2label else None

    def blocks(self) -> torch.nn.ModuleList:
        """The encoder's blocks, first to last."""
        return self.adapter.blocks(self)

    def weight_bytes(self) -> int:
        """Memory of one copy of the model's weights and buffers, in bytes."""
        tensors = list(self.model.parameters()) + list(self.model.buffers())
        return sum(t.numel() * t.element_size() for t in tensors)
