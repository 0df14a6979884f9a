"""Computing registered methods' maps for an analysed image: the passes they share, run once.

Gradients of the class score with respect to the attention probabilities come from
``torch.autograd.grad`` on the attentions of a fresh forward pass: no hooks are registered, so
nothing can leak from one request into the next (popular implementations keep hooks and stale
``.grad`` buffers between calls).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from .. import attention as A
from ..analysis import STORE_DTYPE, Analysis, ModelOutput, forward, image_attentions
from .registry import BACKWARD, GRAPH, check, get


@dataclass
class Gradients:
    """What BACKWARD methods read: one image's attentions and their gradients for one class."""
    att: torch.Tensor            # (L, H, N, N) float32 on the CPU
    grads: torch.Tensor          # (L, H, N, N) ∂y_c/∂A
    start: torch.Tensor          # (N,) the row a map starts from: one-hot at [CLS], or an attention-pooling
    #                              probe's relevance-weighted attention over the last layer's tokens (SigLIP)
    prefix: int
    grid: tuple[int, int]

    def token_map(self, row: torch.Tensor) -> torch.Tensor:
        """A row over the N tokens -> its patches, (gh, gw)."""
        return A.token_map(row, self.prefix, self.grid)


def graph_forward(loaded, an: Analysis, target: int, hidden_states: bool = False):
    """One forward pass of the analysed input that keeps its graph (call under torch.enable_grad),
    with attentions and, if asked, hidden states; checks the target class."""
    if not loaded.has_classifier:
        raise ValueError(f"{loaded.name} has no classifier: class-specific maps need class scores")
    x = an.pixel_values[None].clone().requires_grad_(True)   # makes the graph without weight gradients
    out = forward(loaded, x, **({"output_hidden_states": True} if hidden_states else {}))
    n_classes = out.logits.shape[-1]
    if not 0 <= target < n_classes:
        raise ValueError(f"target class must be in [0, {n_classes}), got {target}")
    return out


def stack(per_layer) -> torch.Tensor:
    """L tensors (1, H, N, N) -> (L, H, N, N) float32 on the CPU."""
    return torch.stack([a[0] for a in per_layer]).detach().float().cpu()


def gradients(out, an: Analysis, target: int, retain_graph: bool = False) -> Gradients:
    """∂logit_target/∂(every attention) from a graph forward: one backward. A model read by an
    attention-pooling probe (no [CLS]) starts its maps from the probe, weighted by its own gradient
    (Chefer et al. ICCV 2021's rule for the image–text score: mean_h((∂s/∂a ⊙ a)⁺))."""
    probe = getattr(out, "probe_attentions", None)
    wrt = [*out.attentions] + ([probe] if probe is not None else [])
    grads = torch.autograd.grad(out.logits[0, target], wrt, retain_graph=retain_graph)
    att, g = stack(out.attentions), stack(grads[:len(out.attentions)])
    if probe is None:
        start = A.one_hot(0, att.shape[-1])
    else:
        a = probe[0, :, 0].detach().float().cpu()                                   # (H, N)
        start = (grads[-1][0, :, 0].float().cpu() * a).clamp_min(0).mean(0)        # (N,)
    return Gradients(att, g, start, an.prefix, an.grid)


@contextmanager
def threads(n: int | None):
    """Run the block with n intra-op threads (None: as it is), then restore the count. The count is
    the process's: for command-line runs, not for a server's concurrent requests."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(before)


def class_maps(loaded, an: Analysis, target: int, method_ids, backward_threads: int | None = None,
               with_output: bool = False):
    """The class-specific methods' maps for class `target` from one forward pass: id -> (gh, gw), as
    each method computes it (not normalised). BACKWARD methods share one backward; each GRAPH method
    adds its own. backward_threads=1 makes the maps the same bits whatever the process's thread
    count: the forward pass is, but the backward's sums are split among the threads and differ by
    ~1e-7 (the evaluation asks for it; its maps feed continuous scores). with_output: also return what
    the forward pass saw, as an analysis keeps it (analysis.ModelOutput): the sanity check reads a
    randomised model's attentions from the same pass instead of running another."""
    methods = [get(m) for m in check(method_ids)]
    if any(not m.class_specific for m in methods):
        raise ValueError(f"class maps come from class-specific methods, got {[m.id for m in methods]}")
    shared = [m for m in methods if m.needs == BACKWARD]
    own = [m for m in methods if m.needs == GRAPH]
    maps = {}
    with torch.enable_grad():
        out = graph_forward(loaded, an, target, hidden_states=bool(own))
        with threads(backward_threads):
            if shared:
                g = gradients(out, an, target, retain_graph=bool(own))
                maps.update({m.id: m.compute(g) for m in shared})
            for m in own:
                maps[m.id] = m.compute(loaded, out, an, target)
    maps = {m.id: maps[m.id] for m in methods}
    return (maps, seen(out)) if with_output else maps


def seen(out) -> ModelOutput:
    """A graph forward's outputs for its one image, detached, as analysis.run_model keeps them."""
    probe = getattr(out, "probe_attentions", None)
    return ModelOutput(image_attentions([a.detach() for a in out.attentions], 0),
                       out.logits.detach().float().softmax(-1)[0].cpu().numpy(),
                       None if probe is None else probe.detach()[0, :, 0].to("cpu", STORE_DTYPE))


def maps(loaded, an: Analysis, method_ids, target: int | None = None, seed: int = 0,
         backward_threads: int | None = None) -> dict[str, np.ndarray]:
    """Every named method's map of one analysed image, as the evidence measures compare them:
    id -> (gh, gw) float32 (see measured). target: the class explained (default: the predicted one);
    seed: the random map's; backward_threads: see class_maps."""
    method_ids = check(method_ids)
    target = int(np.argmax(an.probs)) if target is None else int(target)
    wanted = [m for m in method_ids if get(m).class_specific]
    cmaps = class_maps(loaded, an, target, wanted, backward_threads) if wanted else {}
    return measured(an, method_ids, cmaps, seed)


def measured(an: Analysis, method_ids, class_specific: dict, seed: int = 0) -> dict[str, np.ndarray]:
    """The maps of `method_ids` as the evidence measures compare them, id -> (gh, gw) float32: the
    class-specific ones from `class_specific` (class_maps' result) min-max normalised, the others
    computed from the analysis as their method makes them."""
    out = {}
    for m in check(method_ids):
        if get(m).class_specific:
            out[m] = A.normalize(class_specific[m]).numpy()
        else:
            out[m] = np.asarray(get(m).compute(an, seed), dtype=np.float32)
    return {m: np.asarray(v, dtype=np.float32) for m, v in out.items()}
