"""LeGrad (Bousselham et al., ICCV 2025, "LeGrad: An Explainability Method for Vision Transformers via
Feature Formation Sensitivity"; reference code WalBouss/LeGrad, legrad/wrapper.py and legrad/utils.py).

LeGrad reads a layer's tokens as the model's output would be read, takes the gradient of the class
score s_l so read with respect to that layer's attention probabilities only (the reference's
``autograd.grad(s_l, [attention of block l])``), keeps its positive part, averages it into one value
per patch and adds the layers up. How the layers are chosen and read is a convention
(CONVENTIONS, DEFAULT "reference"); each is a registered method:

- "reference" (method ``legrad``): the reference's ``LeWrapper`` with its default ``layer_index=-2``,
  the last two blocks, each read as the reference reads the kind of model:
  - a model that reads a token ([CLS] ViTs; the reference's OpenCLIP ViTs, ``compute_legrad_clip``):
    the MEAN of all the layer's tokens ([CLS] and any prefix included) through the final norm and the
    head (OpenCLIP: ``ln_post(mean) @ proj``, normalised, dotted with the prompt's text embedding);
    gradient with respect to the block's own attention (H, N, N), ReLU, mean over the heads, then over
    all N query rows, the patch columns;
  - a model read by an attention pooler (SigLIP, SigLIP 2; ``compute_legrad_siglip``): the pooler on
    the block's output as it is (the reference skips the final norm the model's forward puts before
    the pooler), gradient with respect to the POOLER's attention (H, 1, N), ReLU, mean over the heads,
    the probe's row. With the reference's default ``apply_correction=True`` the same map is made for
    the prompt "a photo of a" (zeroshot.EMPTY_PROMPT); where that map, min-max normalised, exceeds
    0.8 the class map is set to 0 (the prompt's own tokenizer: the reference uses SigLIP's for every
    timm SigLIP, which does not fit SigLIP 2's text tower). The reference's CoCa branch (the pooler's
    first latent) has no vitviz family.
  The layers' maps are SUMMED, then min-max normalised. The read-out belongs to the model's adapter
  (LoadedModel.pooled_readout), not to this module.
- "all_layers" (method ``legrad_all``): vitviz's LeGrad before issue 25: every block read through the
  head's own read-out (LoadedModel.readout: [CLS] for a ViT, DeiT's [CLS] and [DIST] heads, BEiT's
  patch mean, SigLIP's final norm and pooler), gradient with respect to the block's attention, the
  layers averaged, min-max. It stays because on the bundled model (distilled DeiT-Tiny, 6 blocks,
  Fashion-MNIST at 28×28) the reference's last two blocks explain barely better than a random map:
  ``python -m vitviz.evaluate --model bundled --limit 300 --methods legrad legrad_all random --metrics
  saco --fill black --out D`` gives SaCo 0.137 ("reference") against 0.281 ("all_layers"; random
  0.008 ± 0.052) and a positive AUC of 45.4 against 36.4 (random 44.4 ± 3.0). The blocks make the
  difference, not the read-out (the token mean over every block does at least as well as the head's).

Classifiers: the reference wraps only OpenCLIP image–text models, and as far as the paper could be
read here its experiments, the ImageNet perturbation test included, explain only those, as zero-shot
classifiers (the prompts' text embeddings a linear head on the normalised image embedding); no
supervised ViT. Sources: the paper's abstract and introduction (arxiv.org/html/2404.03214v2; its
method and experiment sections were not in the stored copy); reading notes on the paper
(github.com/long8v/PTIR/issues/173) listing its architectures (OpenCLIP ViT-B/16 to bigG/14, SigLIP),
"ImageNet (perturbation)" and, among the baselines, TextSpan, a CLIP-only method; WalBouss/LeGrad
issue #12, whether LeGrad works for ImageNet-1k classifiers, unanswered. A classifier read from its
tokens by a final norm and a head (ViT and DeiT [CLS]; distilled DeiT's [CLS] and [DIST] heads; BEiT's
patch mean; DINOv2's [CLS] and patch mean) is therefore read as the reference reads a [CLS] ViT: the
mean of all tokens, through the final norm and the head, as the head reads a token
(Family.pooled_readout).

Scores: vitviz differentiates the model's logits (CLIP, SigLIP: exp(logit_scale)·cos, SigLIP adds a
bias); the reference the cosine. A positive factor and a constant leave the maps unchanged after the
ReLU, the sum and the min-max. Resolution: the reference enlarges each layer's map bilinearly to the
pixels (CLIP: before summing; SigLIP: after the min-max); vitviz returns the patch grid (gh, gw).
Bilinear enlargement is linear, so summing before or after it is the same, and min-max over the
pixels rather than the grid changes the enlarged map only by a positive affine map (tests/test_legrad.py
checks the reference's pixel maps against vitviz's enlarged).

Cost: one forward; each layer's backward runs from the head back to that block's attention only.
"""

from __future__ import annotations

import torch

from .. import attention as A
from ..core.conventions import Convention, Conventions
from .compute import graph_forward
from .registry import GRAPH, Method, register

REFERENCE_LAYERS = 2              # LeWrapper(layer_index=-2): the last two blocks
CORRECTION_THRESHOLD = 0.8        # compute_legrad_siglip(correction_threshold=0.8)


CONVENTIONS = Conventions("LeGrad", (
    Convention("reference", "Bousselham et al., ICCV 2025, 'LeGrad: An Explainability Method for Vision "
                            "Transformers via Feature Formation Sensitivity'; WalBouss/LeGrad, legrad/wrapper.py "
                            "(LeWrapper, layer_index=-2) and legrad/utils.py",
               "The last two blocks, each read as the reference reads the model kind (the mean of all tokens "
               "through the final norm and head, gradient w.r.t. the block's attention; an attention pooler's "
               "own attention for SigLIP, with the empty-prompt correction), summed, min-max."),
    Convention("all_layers", "vitviz before issue 25 (vitviz/methods/legrad.py), after Bousselham et al. 2025",
               "Every block read through the head's own read-out ([CLS], or the model's pooling), gradient "
               "w.r.t. the block's attention, averaged over the blocks, min-max."),
), default="reference")
DEFAULT = CONVENTIONS.default


def get_convention(name: str) -> Convention:
    """The named convention; ValueError naming the choices for any other name."""
    return CONVENTIONS.named(name)


# ---------------------------------------------------------------- one layer's signal

def positive_gradient(score: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """(∂score/∂attention)⁺ of image 0: attention (1, H, Q, N) -> (H, Q, N) float32. Keeps the graph
    for the next layer."""
    return torch.autograd.grad(score, attention, retain_graph=True)[0][0].float().clamp_min(0)


def block_signal(score: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """A block's own attention (1, H, N, N): the positive gradient averaged over the heads, then over
    the N query rows -> (N,), one value per key token."""
    return positive_gradient(score, attention).mean(0).mean(0)


def pooler_signal(score: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """An attention pooler's attention (1, H, Q, N): the positive gradient averaged over the heads,
    the first query's row -> (N,)."""
    return positive_gradient(score, attention).mean(0)[0]


# ---------------------------------------------------------------- the conventions

def hidden_and_attentions(out) -> tuple[tuple, tuple]:
    """A graph forward's (hidden states L+1 × (1, N, D), attentions L × (1, H, N, N)), checked."""
    atts, hiddens = out.attentions, out.hidden_states
    if hiddens is None or len(hiddens) != len(atts) + 1:
        raise ValueError(f"expected {len(atts) + 1} hidden states for {len(atts)} layers, "
                         f"got {None if hiddens is None else len(hiddens)}")
    return hiddens, atts


def reference_map(loaded, out, target: int, prefix: int, grid: tuple[int, int], layers: int = REFERENCE_LAYERS,
                  correction: bool = True) -> torch.Tensor:
    """LeGrad as the reference computes it (the module's "reference"): the last `layers` blocks (all of a
    shallower model), each read by LoadedModel.pooled_readout, summed; with `correction`, the empty
    prompt's map (where the model offers one) masks the class map. (gh, gw) in [0, 1]."""
    hiddens, atts = hidden_and_attentions(out)
    if layers < 1:
        raise ValueError(f"layers must be at least 1, got {layers}")
    total = empty = 0
    for layer in range(max(0, len(atts) - layers), len(atts)):
        read = loaded.pooled_readout(hiddens[layer + 1])
        if read.pool_attention is None:
            total = total + block_signal(read.scores[0, target], atts[layer])
            continue
        total = total + pooler_signal(read.scores[0, target], read.pool_attention)
        if correction and read.empty_scores is not None:
            empty = empty + pooler_signal(read.empty_scores[0], read.pool_attention)
    m = A.token_map(total.detach().cpu(), prefix, grid)
    if torch.is_tensor(empty):
        m = masked_where_empty(m, A.token_map(empty.detach().cpu(), prefix, grid))
    return A.normalize(m)


def masked_where_empty(m: torch.Tensor, empty: torch.Tensor, threshold: float = CORRECTION_THRESHOLD) -> torch.Tensor:
    """The reference's correction: 0 where the empty prompt's map, min-max normalised, exceeds the
    threshold (the patches any prompt would point at). (gh, gw) -> (gh, gw)."""
    return m.masked_fill(A.normalize(empty) > threshold, 0.0)


def all_layers_map(loaded, out, target: int, prefix: int, grid: tuple[int, int], start_layer: int = 0
                   ) -> torch.Tensor:
    """LeGrad over every block from `start_layer`, each read through the head's own read-out
    (LoadedModel.readout), averaged (the module's "all_layers"). (gh, gw) in [0, 1]."""
    hiddens, atts = hidden_and_attentions(out)
    if not 0 <= start_layer < len(atts):
        raise ValueError(f"start_layer must be in [0, {len(atts)}), got {start_layer}")
    total = 0
    for layer in range(start_layer, len(atts)):
        total = total + block_signal(loaded.readout(hiddens[layer + 1])[0, target], atts[layer])
    return A.normalize(A.token_map((total / (len(atts) - start_layer)).detach().cpu(), prefix, grid))


MAPS = {"reference": reference_map, "all_layers": all_layers_map}


def legrad_from(loaded, out, target: int, prefix: int, grid: tuple[int, int], convention: str = DEFAULT
                ) -> torch.Tensor:
    """LeGrad under the named convention from a forward pass that kept the graph, its attentions and
    hidden states (batch of 1): (gh, gw) in [0, 1]."""
    return MAPS[get_convention(convention).name](loaded, out, target, prefix, grid)


def legrad(loaded, an, target: int, convention: str = DEFAULT) -> torch.Tensor:
    """LeGrad map of class `target` for an analysed image under the named convention: (gh, gw) in
    [0, 1], one forward and the layers' short backward passes."""
    with torch.enable_grad():
        out = graph_forward(loaded, an, target, hidden_states=True)
        return legrad_from(loaded, out, target, an.prefix, an.grid, convention)


def compute_reference(loaded, out, an, target: int) -> torch.Tensor:
    return reference_map(loaded, out, target, an.prefix, an.grid)


def compute_all_layers(loaded, out, an, target: int) -> torch.Tensor:
    return all_layers_map(loaded, out, target, an.prefix, an.grid)


register(Method("legrad", GRAPH, compute_reference, order=40, convention=CONVENTIONS["reference"]))
register(Method("legrad_all", GRAPH, compute_all_layers, order=41, convention=CONVENTIONS["all_layers"]))
