"""Model families: one adapter per kind of model, and the registry that finds the one for a model.

An adapter says what it recognises (from the model's name and config.json), how it loads, the
model's facts (vitviz.core.facts) and how the model is run and read: its forward with attentions,
the read-out of any layer through its head (the logit lens, LeGrad), a layer's tokens pooled into one
read-out (LeGrad's reference), the read-out with its norms frozen (direct logit attribution), its list
of blocks, where a block's attention and MLP are (its heads' queries, keys, values and output: the
attribution, knocking heads out, queries and keys) and how a block is re-initialised (the sanity
check). Everything else asks the loaded model, which holds its adapter, and never compares a
family's name. As transformers' Auto classes map a config type to its
classes, ``find`` maps a model to its adapter:

    class MyFamily(Family):
        name = "my-vit"
        def recognises(self, source): return source.config.get("model_type") == "my_vit"
        def load(self, source, device, dtype): ...   # a LoadedModel
    register(MyFamily())

Adapters are asked in ``order`` (lower first); the transformers adapter, which takes any config
with a ``model_type``, comes last.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .loading import ModelUnavailable, Source

if TYPE_CHECKING:
    import torch


@dataclass
class PooledReadout:
    """A layer's tokens pooled into one and read through the head (Family.pooled_readout)."""
    scores: torch.Tensor                          # (B, K) class scores, in the graph
    # (B, H, Q, N): the probabilities of an attention pooler's Q learned queries over the N tokens, in the
    # graph; None where the tokens are mean-pooled
    pool_attention: torch.Tensor | None = None
    # (B,): the score of the prompt template without a label (models whose classes are typed prompts, read
    # by a pooler): what LeGrad's reference corrects SigLIP maps with
    empty_scores: torch.Tensor | None = None


@dataclass(frozen=True)
class Projection:
    """A linear layer whose output (or a slice of its last axis, for a fused q/k/v projection) is one of
    the attention's inputs: (B, N, D) -> (B, N, H·d)."""
    module: torch.nn.Module
    part: slice | None = None

    def of(self, output: torch.Tensor) -> torch.Tensor:
        """This projection's share of the module's output."""
        return output if self.part is None else output[..., self.part]


@dataclass(frozen=True)
class BlockParts:
    """Where a pre-LN block's pieces are: x ← x + s₁·out(heads(q, k, v)) ← x + s₂·mlp(norm(x)). What
    reads the heads one by one (direct logit attribution, knock-out, queries and keys) asks for these
    instead of knowing a family's module names."""
    query: Projection
    key: Projection
    value: Projection
    out: torch.nn.Linear                       # input: the heads' outputs side by side (B, N, H·d)
    mlp: torch.nn.Module                       # output: the MLP's addition to the residual stream, before mlp_scale
    attention_scale: torch.Tensor | None = None    # (D,) layer scale on the attention's output (DINOv2, BEiT)
    mlp_scale: torch.Tensor | None = None          # (D,) layer scale on the MLP's output


def layer_scale(value) -> torch.Tensor | None:
    """A layer scale's (D,) factors: a tensor, a module holding one (lambda1, gamma), or None / a plain 1.0."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    for name in ("lambda1", "gamma"):
        if isinstance(getattr(value, name, None), torch.Tensor):
            return getattr(value, name)
    return None


def frozen_layer_norm(norm, reference: torch.Tensor):
    """LayerNorm `norm` as an affine map with its statistics frozen at `reference` (B, N, D): x ->
    γ ⊙ (x − mean(x)) / σ_reference + β. Centring stays (it is linear); the division uses the
    reference's spread, as direct logit attribution reads a real forward."""
    import torch

    sigma = torch.sqrt(reference.var(-1, unbiased=False, keepdim=True) + norm.eps)

    def apply(x: torch.Tensor) -> torch.Tensor:
        return (x - x.mean(-1, keepdim=True)) / sigma * norm.weight + norm.bias
    return apply


class Family:
    """The base adapter. The defaults fit transformers' ViT surface (vitviz.core.outputs)."""
    name: str = ""
    order: int = 50
    models: dict[str, str] = {}        # what the model selector offers: Hub id (or folder) -> description

    def recognises(self, source: Source) -> bool:
        raise NotImplementedError

    def load(self, source: Source, device: str, dtype: str):
        """A LoadedModel (vitviz.core.loaded) on `device` in `dtype`, eager attention, eval mode, no
        weight gradients."""
        raise NotImplementedError

    # ------------------------------------------------------------ asked of a loaded model
    def forward(self, loaded, pixel_values: "torch.Tensor", **kw):
        """The model's output for a (B, 3, H, W) batch: logits, attentions (L × (B, H, N, N)), hidden
        states when asked, and an attention-pooling probe's attention where there is one."""
        return loaded.model(pixel_values=pixel_values, **kw)

    def readout(self, loaded, hidden: "torch.Tensor") -> "torch.Tensor":
        """Class logits from any layer's tokens (B, N, D) -> (B, K), read as the head reads the last
        layer (final norm included). Differentiable."""
        raise ValueError(f"{loaded.name} has no head to read its layers through")

    def pooled_readout(self, loaded, hidden: "torch.Tensor") -> PooledReadout:
        """Any layer's tokens (B, N, D) pooled into one and read through the head, as LeGrad's reference
        (WalBouss/LeGrad, legrad/wrapper.py) reads an intermediate layer: by the model's attention pooler
        where it has one (an override returns the pooler's attention), else by the mean of ALL N tokens
        (prefix included), read as the head reads its tokens. This default gives the head a sequence of
        prefix + 1 copies of the mean token, so whatever it pools ([CLS]; DeiT's [CLS] and [DIST]; the
        patch mean) it finds that token, after the final norm (per token, so norm(mean)):
        classifier(norm(mean)) for a ViT, as the reference reads OpenCLIP's ln_post(mean) @ proj.
        Differentiable."""
        b, _, d = hidden.shape
        mean = hidden.mean(1, keepdim=True)
        return PooledReadout(self.readout(loaded, mean.expand(b, loaded.prefix + 1, d)))

    def frozen_readout(self, loaded, hidden: "torch.Tensor"):
        """The read-out with its norms frozen at the last layer's real tokens `hidden` (B, N, D): an
        affine map from residual-stream tensors (B, N, D) to class scores (B, K), equal to the model's
        scores at `hidden` itself. So the scores split over the parts the residual stream is a sum of
        (direct logit attribution). None where the read-out stays non-linear with its norms frozen (an
        attention-pooling head with an MLP)."""
        return None

    def block_parts(self, loaded, index: int) -> BlockParts:
        """Where block `index`'s attention and MLP are. The default finds transformers 5's names: an
        attention module with q_proj, k_proj, v_proj and o_proj (or out_proj), the block's mlp, and a
        layer scale as layer_scale1/2 (DINOv2) or lambda_1/2 (BEiT)."""
        block = self.blocks(loaded)[index]
        attention = next((m for m in block.modules() if hasattr(m, "q_proj") and hasattr(m, "v_proj")), None)
        out = getattr(attention, "o_proj", None) or getattr(attention, "out_proj", None)
        if attention is None or out is None or not hasattr(block, "mlp"):
            raise ValueError(f"{loaded.name}: block {index} has no attention with q/k/v/o projections and MLP to read")
        return BlockParts(Projection(attention.q_proj), Projection(attention.k_proj), Projection(attention.v_proj),
                          out, block.mlp,
                          layer_scale(getattr(block, "layer_scale1", getattr(block, "lambda_1", None))),
                          layer_scale(getattr(block, "layer_scale2", getattr(block, "lambda_2", None))))

    def blocks(self, loaded) -> "torch.nn.ModuleList":
        """The encoder's blocks, first to last (transformers 5 keeps them in ``base_model.layers``,
        older layouts in ``encoder.layer``)."""
        import torch

        base = getattr(loaded.model, "base_model", loaded.model)
        for path in ("layers", "encoder.layer", "encoder.layers"):
            obj = base
            for part in path.split("."):
                obj = getattr(obj, part, None)
            if isinstance(obj, torch.nn.ModuleList) and len(obj):
                return obj
        raise ValueError(f"expected a transformer with a list of layers, got {type(loaded.model).__name__}")

    def bind(self, loaded, labels):
        """A copy of `loaded` whose classes are typed `labels` (models with ``typed_labels`` only)."""
        raise ValueError(f"{loaded.name} scores fixed classes, not typed labels")

    def reinitialise(self, loaded, module: "torch.nn.Module") -> None:
        """Give one module the weights it had before training (its own ``reset_parameters``)."""
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


_FAMILIES: list[Family] = []
_LOCK = threading.Lock()


def register(family: Family) -> Family:
    """Add an adapter (once; registering the same one again changes nothing). Returns it."""
    if not family.name:
        raise ValueError(f"expected a family with a name, got {type(family).__name__} without one")
    with _LOCK:
        if family not in _FAMILIES:
            if any(f.name == family.name for f in _FAMILIES):
                raise ValueError(f"a family named {family.name!r} is registered already")
            _FAMILIES.append(family)
    return family


def unregister(family: Family) -> None:
    with _LOCK:
        if family in _FAMILIES:
            _FAMILIES.remove(family)


@contextmanager
def registered(family: Family):
    """The adapter registered for the block (a test's own family)."""
    register(family)
    try:
        yield family
    finally:
        unregister(family)


def families() -> list[Family]:
    """Every adapter, in the order they are asked."""
    with _LOCK:
        return sorted(_FAMILIES, key=lambda f: f.order)


def find(source: Source) -> Family:
    """The adapter that recognises the model; ModelUnavailable("model_broken") when none does."""
    for family in families():
        if family.recognises(source):
            return family
    raise ModelUnavailable("model_broken", f"{source.name} is not a model vitviz can load.", model=source.name)


def offered() -> dict[str, str]:
    """Every model the families offer in the selector: id -> description, in the order the families
    were registered."""
    with _LOCK:
        listed = list(_FAMILIES)
    out: dict[str, str] = {}
    for family in listed:
        out.update(family.models)
    return out
