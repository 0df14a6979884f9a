"""Direct logit attribution: a class's score split exactly over what the residual stream is a sum of.

A pre-LN block adds its attention and its MLP to the stream (vitviz.core.family.BlockParts):

    x ← x + s₁ ⊙ (Σ_h head_h W_{o,h}ᵀ + b_o),    x ← x + s₂ ⊙ mlp(·)

so the last layer's tokens h_L (N, D) are the embeddings h_0 plus, for every block, one term per head,
the output projection's bias and the MLP's output. With the read-out's norms frozen at their values in
the real forward (LoadedModel.frozen_readout) the read-out R is affine, R(h_L) = R(0) + Σ_p (R(p) − R(0)),
so the parts' contributions sum exactly to the model's own score (Elhage et al. 2021, "A Mathematical
Framework for Transformer Circuits"; ViT-Prisma's direct logit attribution). R(p) − R(0) = ⟨g, p⟩ with
g = ∂R_c/∂x, the same (N, D) tensor for every part: one backward through the read-out alone gives it,
and every contribution is then a dot product. Nothing here knows a read-out's token arrangement ([CLS];
DeiT's [CLS] and [DIST]; DINOv2's [CLS] and patch mean; CLIP's image–text score): g says which tokens
the read-out reads (its query tokens, the rows where g is not zero).

A head's output at query token q is Σ_j a_{q→j} v_j, so its contribution splits over the tokens j it read
from: source_j = Σ_q a_{q→j} ⟨s₁ ⊙ W_{o,h} v_j, g_q⟩, summed over the read-out's query tokens. A head's
sources (patches and prefix tokens together) sum to its contribution.

Shapes: L layers, H heads of width d, N = P prefix tokens + gh·gw patches, D = H·d, K classes.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..analysis import Analysis


@dataclass
class Attribution:
    """One class's score split over the parts of the residual stream, for one image. Float32 sums of
    what the model computed in its own dtype: in float32 `total` equals `logit` to float rounding.

    embeddings      the embeddings (patches, prefix tokens and position embeddings: hidden_states[0])
    heads (L, H)    each head of each block, times the attention's layer scale
    mlp (L,)        each block's MLP output, times its layer scale
    out_bias (L,)   each block's output-projection bias, times the attention's layer scale
    constant        the read-out's own constant R(0) (the final norm's shift through the head, its bias)
    logit           the model's own score for `target`
    sources (L, H, gh, gw)   each head's contribution by the patch it read from
    prefix_sources (L, H, P) ... by the prefix token it read from ([CLS], [DIST], registers)
    """
    target: int
    embeddings: float
    heads: np.ndarray
    mlp: np.ndarray
    out_bias: np.ndarray
    constant: float
    logit: float
    sources: np.ndarray
    prefix_sources: np.ndarray

    @property
    def bias(self) -> float:
        """The parts no token made: the output projections' biases and the read-out's constant."""
        return float(self.out_bias.sum()) + self.constant

    @property
    def total(self) -> float:
        """The parts summed: the model's logit, up to float rounding."""
        return self.embeddings + float(self.heads.sum()) + float(self.mlp.sum()) + self.bias

    def order(self) -> list[tuple[int, int]]:
        """Every (layer, head), the most positive contribution first (ties by layer, then head)."""
        flat = self.heads.ravel()
        ranked = sorted(range(flat.size), key=lambda i: (-float(flat[i]), i))
        return [divmod(i, self.heads.shape[1]) for i in ranked]


class NotAffine(ValueError):
    """The model's read-out is not affine in the residual stream even with its norms frozen (an attention-
    pooling head with an MLP, SigLIP's): its score has no exact split over the parts."""


def attribute(loaded, an: Analysis, targets) -> list[Attribution]:
    """The attribution of each class in `targets` for the analysed image `an`: one forward pass with every
    block's parts hooked, then float32 dot products. NotAffine where the read-out has no frozen affine
    form; ValueError for a model without class scores."""
    targets = [int(c) for c in targets]
    with torch.no_grad(), block_outputs(loaded) as seen:
        out = run_eager(loaded, an.pixel_values[None], output_hidden_states=True)
    hidden = out.hidden_states
    read = loaded.frozen_readout(hidden[-1])
    if read is None:
        raise NotAffine(f"{loaded.name}: its read-out is not affine in the residual stream, even with norms frozen")
    g, constants = class_directions(read, hidden[-1], targets)               # (T, N, D), (T,)
    queries = torch.nonzero(g.abs().sum((0, 2)) > 0).flatten()               # the tokens the read-out reads
    layers = [layer_parts(loaded.block_parts(i), seen[i], out.attentions[i][0].float(), g, queries, loaded.heads)
              for i in range(loaded.layers)]
    embeddings = (g * hidden[0][0].float()).sum((1, 2))
    logits = out.logits[0].float()
    gh, gw = an.grid
    p = an.prefix
    result = []
    for t, c in enumerate(targets):
        sources = torch.stack([layer["sources"][t] for layer in layers])      # (L, H, N)
        result.append(Attribution(
            target=c, embeddings=float(embeddings[t]), constant=float(constants[t]), logit=float(logits[c]),
            heads=_np(torch.stack([layer["heads"][t] for layer in layers])),
            mlp=_np(torch.stack([layer["mlp"][t] for layer in layers])),
            out_bias=_np(torch.stack([layer["bias"][t] for layer in layers])),
            sources=_np(sources[..., p:].reshape(loaded.layers, loaded.heads, gh, gw)),
            prefix_sources=_np(sources[..., :p])))
    return result


def attribution(loaded, an: Analysis, target: int) -> Attribution:
    """The attribution of one class (attribute)."""
    return attribute(loaded, an, [target])[0]


def run_eager(loaded, pixel_values: torch.Tensor, **kw):
    """The eager model's forward on a (B, 3, H, W) batch, attentions returned: hooks are on its modules,
    which a compiled forward (vitviz.core.compiled) would not call. Position embeddings are interpolated
    when the input is not the model's size, as vitviz.analysis.forward does."""
    x = pixel_values.to(loaded.device, loaded.torch_dtype)
    if tuple(x.shape[-2:]) != tuple(loaded.input_size):
        kw["interpolate_pos_encoding"] = True
    return loaded.forward(x, output_attentions=kw.pop("output_attentions", True), **kw)


@contextmanager
def block_outputs(loaded):
    """Hooks that keep, per block, the values (B, N, H·d), the heads side by side as the output projection
    reads them (B, N, H·d) and the MLP's output (B, N, D) of the next forward: a list of one dict per
    block. The hooks are removed on the way out, whatever happens inside."""
    seen, hooks = [], []
    try:
        for i in range(loaded.layers):
            parts, got = loaded.block_parts(i), {}
            seen.append(got)
            hooks.append(parts.value.module.register_forward_hook(
                lambda mod, inp, out, got=got, value=parts.value: got.__setitem__("values", value.of(out))))
            hooks.append(parts.out.register_forward_pre_hook(
                lambda mod, args, got=got: got.__setitem__("heads", args[0])))
            hooks.append(parts.mlp.register_forward_hook(
                lambda mod, inp, out, got=got: got.__setitem__("mlp", out)))
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def class_directions(read, like: torch.Tensor, targets: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """g_c = ∂R_c/∂x for each target (T, N, D) float32, and R(0)'s scores of the targets (T,). R is
    affine, so its gradient is the same everywhere: taken at x = 0, where R also gives its constant."""
    x = torch.zeros_like(like[:1], requires_grad=True)                        # (1, N, D) in the model's dtype
    with torch.enable_grad():
        scores = read(x)[0]                                                   # (K,)
        grads = [torch.autograd.grad(scores[c], x, retain_graph=True)[0][0] for c in targets]
    return torch.stack(grads).float(), scores.detach().float()[targets]


def layer_parts(parts, seen: dict, att: torch.Tensor, g: torch.Tensor, queries: torch.Tensor,
                n_heads: int) -> dict[str, torch.Tensor]:
    """One block's contributions to each target: "heads" (T, H), "mlp" (T,), "bias" (T,) and each head's
    "sources" (T, H, N). att: the block's attention (H, N, N); g: the read-out's directions (T, N, D);
    queries: the Q tokens where g is not zero, the only ones whose parts reach the read-out (one for
    [CLS], every token for a patch mean), so only their rows are projected back."""
    d_model = g.shape[-1]
    g = g[:, queries]                                                         # (T, Q, D)
    heads = seen["heads"][0, queries].float().unflatten(-1, (n_heads, -1))    # (Q, H, d): Σ_j a_qj v_j
    values = seen["values"][0].float().unflatten(-1, (n_heads, -1))           # (N, H, d)
    g_attn = g * _scale(parts.attention_scale, d_model, g)                    # (T, Q, D)
    u = (g_attn @ parts.out.weight.float()).unflatten(-1, (n_heads, -1))      # (T, Q, H, d): g read back per head
    bias = parts.out.bias
    # Σ_q a_{q→j} ⟨W_o v_j, g_q⟩ = ⟨Σ_q a_{q→j} u_q, v_j⟩: summing the queries first keeps (T, H, N, d), not
    # (T, H, Q, N), which matters where the read-out reads every token (DINOv2's patch mean)
    pulled = torch.einsum("hqj,tqhd->thjd", att[:, queries], u)               # (T, H, N, d)
    return {
        "heads": torch.einsum("tqhd,qhd->th", u, heads),
        "sources": torch.einsum("thjd,jhd->thj", pulled, values),
        "mlp": (g * _scale(parts.mlp_scale, d_model, g) * seen["mlp"][0, queries].float()).sum((1, 2)),
        "bias": (g_attn.sum(1) @ bias.float() if bias is not None else g.new_zeros(len(g))),
    }


def _scale(scale: torch.Tensor | None, d_model: int, like: torch.Tensor) -> torch.Tensor:
    """A layer scale's (D,) factors in float32 (ones where the block has none)."""
    return like.new_ones(d_model) if scale is None else scale.detach().float().to(like.device)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
