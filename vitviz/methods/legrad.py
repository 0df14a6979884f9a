"""LeGrad (Bousselham et al., ICCV 2025, "LeGrad: An Explainability Method for Vision Transformers via
Feature Formation Sensitivity"; reference code WalBouss/LeGrad).

For every layer l, read the target class's logit y_l from that layer's output through the final norm
and the head (the model's read-out, as the logit lens reads it: vitviz.lens); take the gradient of
y_l with respect to layer l's own attention probabilities A_l (the reference's
``autograd.grad(score_l, [attn_map of block l])``: only that layer's attention, not the ones before
it); keep its positive part; average over heads and over every query row ([CLS] and patches) and
read the patch columns; average the layers; min-max normalise. The reference wraps CLIP-style models
(an image-text score, features pooled by the model's own pooling); for a classifier the score is the
class logit read as the model's head reads its last layer, so a distilled DeiT averages its [CLS]
and [DIST] heads and BEiT mean-pools its patches. The reference's OpenCLIP wrapper starts at its
``layer_index`` (default: the last two blocks); here every layer counts unless ``start_layer`` says
otherwise, as DESIGN.md describes the method.

The gradient of y_l only flows back through block l after its attention and the head, so the
L gradients cost about one backward pass in all, from one forward.
"""

from __future__ import annotations

import torch

from .. import attention as A
from .compute import graph_forward
from .registry import GRAPH, Method, register


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
        score = loaded.readout(hiddens[layer + 1])[0, target]
        grad = torch.autograd.grad(score, atts[layer], retain_graph=True)[0][0]        # (H, N, N)
        total = total + grad.float().clamp_min(0).mean((0, 1))                         # heads, then queries
    return A.normalize(A.token_map((total / (n_layers - start_layer)).detach().cpu(), prefix, grid))


def legrad(loaded, an, target: int, start_layer: int = 0) -> torch.Tensor:
    """LeGrad map of class `target` for an analysed image: (gh, gw) in [0, 1], one forward and the
    layers' short backward passes."""
    with torch.enable_grad():
        out = graph_forward(loaded, an, target, hidden_states=True)
        return legrad_from(loaded, out, target, an.prefix, an.grid, start_layer)


def compute(loaded, out, an, target: int) -> torch.Tensor:
    return legrad_from(loaded, out, target, an.prefix, an.grid)


register(Method("legrad", GRAPH, compute, order=40, reference="Bousselham et al. ICCV 2025"))
