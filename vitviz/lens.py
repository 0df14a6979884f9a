"""What each layer already "thinks": its hidden state read through the model's own final norm and
classifier head (the logit lens, as in ViT-Prisma; each patch token can be read alone the same way),
and LeGrad, which explains with it. The head was trained on the last layer only, so an earlier
layer's read-out is a probe of what that head can read there, not the model's belief.

LeGrad (Bousselham et al., ICCV 2025, "LeGrad: An Explainability Method for Vision Transformers via
Feature Formation Sensitivity"; reference code WalBouss/LeGrad): for every layer l, read the target
class's logit y_l from that layer's output through the final norm and the head; take the gradient
of y_l with respect to layer l's own attention probabilities A_l (the reference's
``autograd.grad(score_l, [attn_map of block l])``: only that layer's attention, not the ones
before it); keep its positive part; average over heads and over every query row ([CLS] and
patches) and read the patch columns; average the layers; min-max normalise. The reference wraps
CLIP-style models (an image-text score, features pooled by the model's own pooling); for a
classifier the score is the class logit read as the model's head reads its last layer, so a
distilled DeiT averages its [CLS] and [DIST] heads and BEiT mean-pools its patches. The reference's
OpenCLIP wrapper starts at its ``layer_index`` (default: the last two blocks); here every layer
counts unless ``start_layer`` says otherwise, as DESIGN.md describes the method.

The gradient of y_l only flows back through block l after its attention and the head, so the
L gradients cost about one backward pass in all, from one forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import attention as A
from .analysis import forward


def encoder_layers(model) -> torch.nn.ModuleList:
    """The model's transformer blocks, first to last (transformers 5 keeps them in
    ``base_model.layers``; older layouts in ``encoder.layer``)."""
    base = getattr(model, "base_model", model)
    for path in ("layers", "encoder.layer", "encoder.layers"):
        obj = base
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, torch.nn.ModuleList) and len(obj):
            return obj
    raise ValueError(f"expected a transformer with a list of layers, got {type(model).__name__}")


def readout(loaded, hidden: torch.Tensor) -> torch.Tensor:
    """Class logits from any layer's hidden state, through the final norm and head as the model reads
    its last layer: (B, N, D) -> (B, K). Differentiable."""
    if not loaded.has_classifier:
        raise ValueError(f"{loaded.name} has no classifier: the layer read-out needs class scores")
    model = loaded.model
    if hasattr(model, "readout"):              # vitviz's wrappers (CLIP, SigLIP, timm) read out themselves
        return model.readout(hidden)
    base = model.base_model
    normed = base.layernorm(hidden) if getattr(base, "layernorm", None) is not None else hidden
    if hasattr(model, "cls_classifier") and hasattr(model, "distillation_classifier"):    # distilled DeiT
        return (model.cls_classifier(normed[:, 0]) + model.distillation_classifier(normed[:, 1])) / 2
    if getattr(base, "pooler", None) is not None and loaded.family == "beit":           # mean of the patches
        return model.classifier(base.pooler(normed))
    if loaded.family in ("dinov2", "dinov2_with_registers"):                           # [CLS] ++ mean patch
        patches = normed[:, 1 + getattr(model.config, "num_register_tokens", 0):]
        return model.classifier(torch.cat([normed[:, 0], patches.mean(1)], dim=-1))
    if loaded.family in ("vit", "deit"):
        return model.classifier(normed[:, 0])
    raise ValueError(f"the layer read-out knows vit, deit, beit and dinov2 heads, got {loaded.family}")


def token_logits(loaded, hidden: torch.Tensor, chunk_bytes: int = 32 * 2**20) -> torch.Tensor:
    """Every token of a layer read alone through the final norm and the head: (B, N, D) -> (B, N, K).

    Token t is read as if every token the head looks at were t: a sequence of prefix + 1 copies of
    t, so whatever the head pools ([CLS]; the mean of DeiT's [CLS] and [DIST] heads; the mean of the
    patches) it finds t alone. For a ViT this is classifier(layernorm(t)), the patch logit lens of
    ViT-Prisma. Differentiable."""
    b, n, d = hidden.shape
    length = loaded.prefix + 1                       # the prefix tokens and one patch: every head's pooling reads t
    per = max(1, chunk_bytes // max(1, b * length * d * hidden.element_size()))
    out = []
    for start in range(0, n, per):
        part = hidden[:, start:start + per]                                        # (B, c, D)
        c = part.shape[1]
        copies = part[:, :, None].expand(b, c, length, d).reshape(b * c, length, d)
        out.append(readout(loaded, copies).reshape(b, c, -1))
    return torch.cat(out, 1)


@dataclass
class LayerReadout:
    """The logit lens of one input: each layer read through the final norm and the head."""
    logits: torch.Tensor        # (L+1, K): row 0 the embeddings, row l block l's output, as the head reads it
    patch_class: torch.Tensor   # (L+1, P) int64: each patch token's top class, the token read alone
    patch_prob: torch.Tensor    # (L+1, P) float32: that class's probability


def read_layers(loaded, pixel_values: torch.Tensor) -> LayerReadout:
    """The model's read-out of every layer and each patch token's top class at every layer, from one
    forward of one input (3, H, W). On the CPU."""
    with torch.inference_mode():
        out = forward(loaded, pixel_values[None], output_attentions=False, output_hidden_states=True)
        logits = torch.cat([readout(loaded, h) for h in out.hidden_states]).float().cpu()
        best = [token_logits(loaded, h[:, loaded.prefix:])[0].float().softmax(-1).max(-1) for h in out.hidden_states]
    return LayerReadout(logits, torch.stack([b.indices for b in best]).cpu(),
                        torch.stack([b.values for b in best]).cpu())


def layer_logits(loaded, pixel_values: torch.Tensor) -> torch.Tensor:
    """The logit lens of one input (3, H, W): row 0 reads the embeddings, row l the output of block l,
    row L equals the model's logits. (L+1, K) float32 on the CPU."""
    with torch.inference_mode():
        out = forward(loaded, pixel_values[None], output_attentions=False, output_hidden_states=True)
        return torch.cat([readout(loaded, h) for h in out.hidden_states]).float().cpu()


def legrad_from(loaded, out, target: int, prefix: int, grid: tuple[int, int], start_layer: int = 0) -> torch.Tensor:
    """LeGrad from a forward pass that kept the graph, its attentions and hidden states (batch of 1):
    (gh, gw) in [0, 1]."""
    atts, hiddens = out.attentions, out.hidden_states
    n_layers = len(atts)
    if len(hiddens) != n_layers + 1:
        raise ValueError(f"expected {n_layers + 1} hidden states for {n_layers} layers, got {len(hiddens)}")
    if not 0 <= start_layer < n_layers:
        raise ValueError(f"start_layer must be in [0, {n_layers}), got {start_layer}")
    total = 0
    for layer in range(start_layer, n_layers):
        score = readout(loaded, hiddens[layer + 1])[0, target]
        grad = torch.autograd.grad(score, atts[layer], retain_graph=True)[0][0]        # (H, N, N)
        total = total + grad.float().clamp_min(0).mean((0, 1))                         # heads, then queries
    return A.normalize(A.token_map((total / (n_layers - start_layer)).detach().cpu(), prefix, grid))


def legrad(loaded, an, target: int, start_layer: int = 0) -> torch.Tensor:
    """LeGrad map of class `target` for an analysed image: (gh, gw) in [0, 1], one forward and the
    layers' short backward passes. explain.class_maps computes it with the other class maps."""
    from .explain import graph_forward

    with torch.enable_grad():
        out = graph_forward(loaded, an, target, hidden_states=True)
        return legrad_from(loaded, out, target, an.prefix, an.grid, start_layer)
