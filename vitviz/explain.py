"""Class-specific maps (one extra forward + backward) and faithfulness by perturbation.

Gradients of the class score with respect to the attention probabilities come from
``torch.autograd.grad`` on the attentions of a fresh forward pass: no hooks are
registered, so nothing can leak from one request into the next (popular
implementations keep hooks and stale ``.grad`` buffers between calls).

Pixels are removed in the order of vitviz.ranking, which rounds a map to 1e-5 of its range and
breaks ties by pixel index, so the removed pixels do not depend on float noise (thread count).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from . import attention as A
from . import ranking
from .analysis import Analysis, forward

CLASS_METHODS = ("chefer", "grad_rollout", "legrad")
FRACTIONS = np.round(np.linspace(0.0, 0.9, 10), 2)   # share of pixels removed: 0%, 10%, ..., 90%


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


def attention_gradients(loaded, an: Analysis, target: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(attentions, ∂logit_target/∂attentions), both (L, H, N, N) float32, from one forward + backward."""
    with torch.enable_grad():
        out = graph_forward(loaded, an, target)
        grads = torch.autograd.grad(out.logits[0, target], out.attentions)
    return _stack(out.attentions), _stack(grads)


def _stack(per_layer) -> torch.Tensor:
    """L tensors (1, H, N, N) -> (L, H, N, N) float32 on the CPU."""
    return torch.stack([a[0] for a in per_layer]).detach().float().cpu()


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


def class_maps(loaded, an: Analysis, target: int, methods=CLASS_METHODS,
               backward_threads: int | None = None) -> dict[str, torch.Tensor]:
    """The class-specific maps for `target` from one forward pass: method -> (gh, gw). Chefer and
    gradient rollout share one backward pass; LeGrad (vitviz.lens) adds one short backward per
    layer, about one more backward in all. backward_threads=1 makes the maps the same bits whatever
    the process's thread count: the forward pass is, but the backward's sums are split among the
    threads and differ by ~1e-7 (the evaluation asks for it; its maps feed continuous scores)."""
    unknown = set(methods) - set(CLASS_METHODS)
    if unknown:
        raise ValueError(f"methods must be among {CLASS_METHODS}, got {sorted(unknown)}")
    from .lens import legrad_from

    if loaded.query_name == "probe":          # no [CLS]: the maps start from the pooling probe (vitviz.zeroshot)
        from .zeroshot import probe_class_maps

        return probe_class_maps(loaded, an, target, methods)
    attention_based = [m for m in methods if m != "legrad"]
    maps = {}
    with torch.enable_grad():
        out = graph_forward(loaded, an, target, hidden_states="legrad" in methods)
        with threads(backward_threads):
            if attention_based:
                grads = torch.autograd.grad(out.logits[0, target], out.attentions, retain_graph="legrad" in methods)
                att, grads = _stack(out.attentions), _stack(grads)
                keep = max(an.prefix, 1)
                if "chefer" in methods:        # the [CLS] row only: vector-matrix products (attention.py)
                    maps["chefer"] = A.token_map(A.chefer_row(att, grads), an.prefix, an.grid)
                if "grad_rollout" in methods:
                    maps["grad_rollout"] = A.token_map(A.grad_rollout_row(att, grads, keep=keep), an.prefix, an.grid)
            if "legrad" in methods:
                maps["legrad"] = legrad_from(loaded, out, target, an.prefix, an.grid)
    return {m: maps[m] for m in methods}


def class_map(loaded, an: Analysis, target: int, method: str = "chefer") -> torch.Tensor:
    """Relevance of each patch for class `target`: (gh, gw), not normalised (LeGrad: in [0, 1])."""
    if method not in CLASS_METHODS:
        raise ValueError(f"method must be one of {CLASS_METHODS}, got {method!r}")
    return class_maps(loaded, an, target, (method,))[method]


def predict_probs(loaded, batch: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """Softmax probabilities (B, K) for a batch of model inputs, without attentions."""
    outs = []
    with torch.inference_mode():
        for i in range(0, len(batch), chunk):
            outs.append(forward(loaded, batch[i:i + chunk], output_attentions=False).logits.float().softmax(-1).cpu())
    return torch.cat(outs)


def removal_masks(relevance, size: tuple[int, int], fractions=FRACTIONS) -> torch.Tensor:
    """Which pixels each step removes (Chefer et al. CVPR 2021): for each fraction, that share of the
    (H, W) pixels, most relevant first (positive), then least relevant first (negative).
    relevance (gh, gw) -> (2·F, H, W) bool. The order is vitviz.ranking's: noise-proof ties."""
    h, w = size
    rank = torch.empty(h * w, dtype=torch.long)
    rank[ranking.pixel_order(relevance, size)] = torch.arange(h * w)              # 0 = most relevant
    counts = torch.as_tensor(np.round(np.asarray(fractions, dtype=np.float64) * h * w).astype(np.int64))
    most_first = rank[None] < counts[:, None]                                     # (F, H·W)
    least_first = (h * w - 1 - rank)[None] < counts[:, None]
    return torch.cat([most_first, least_first]).reshape(-1, h, w)


def apply_fill(pixel_values: torch.Tensor, removed: torch.Tensor, fill=0.0) -> torch.Tensor:
    """Copies of one input (3, H, W) with the pixels of each mask (B, H, W) replaced: by a constant
    (a number, or a (3,) tensor with a colour per channel, in normalised space) or by a callable
    fill(pixel_values, removed) -> (B, 3, H, W) such as road.RoadFill. Returns (B, 3, H, W)."""
    if callable(fill):
        return fill(pixel_values, removed)
    c, h, w = pixel_values.shape
    value = torch.as_tensor(fill, dtype=pixel_values.dtype).reshape(-1, 1, 1).expand(c, h, w)
    return torch.where(removed[:, None], value, pixel_values)


def perturbed_inputs(pixel_values: torch.Tensor, relevance, fractions=FRACTIONS, fill=0.0) -> torch.Tensor:
    """Chefer et al. CVPR 2021 protocol on one input (3, H, W): for each fraction, remove that share
    of pixels (see apply_fill for what they become), most relevant first (positive) and least
    relevant first (negative). Returns (2·F, 3, H, W): positive steps, then negative steps."""
    return apply_fill(pixel_values, removal_masks(relevance, pixel_values.shape[-2:], fractions), fill)


def auc(values, fractions=FRACTIONS) -> float:
    """Area under a curve over the removed fractions, normalised by the x-range: the curve's mean level."""
    values, fractions = np.asarray(values, dtype=np.float64), np.asarray(fractions, dtype=np.float64)
    return float(np.trapezoid(values, fractions) / (fractions[-1] - fractions[0]))


# What removed pixels become: the data mean, black (what Chefer et al.'s code does: it zeroes the
# [0, 1] image before normalising), or ROAD's noisy linear imputation from the neighbours.
FILLS = ("mean", "black", "road")


def fill_value(loaded, fill: str, seed: int = 0):
    """What removed pixels become, for apply_fill: 0.0 (the data mean in normalised space), a (3,)
    tensor (black; Fashion-MNIST's background, i.e. "nothing there" for a model trained on it), or
    a road.RoadFill whose noise is seeded with `seed` (the evaluation uses the sample's index)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    if fill == "mean":
        return 0.0
    if fill == "road":
        from .road import RoadFill

        return RoadFill(std=tuple(float(s) for s in loaded.spec.std), seed=seed)
    mean, std = torch.tensor(loaded.spec.mean), torch.tensor(loaded.spec.std)
    return (0.0 - mean) / std


def faithfulness(loaded, an: Analysis, maps: dict[str, np.ndarray], target: int | None = None, fill: str = "mean"):
    """Deletion (positive) and insertion-style negative perturbation curves for several maps on one image.

    Returns {name: {"positive": probs (F,), "negative": probs (F,), "auc_pos": float, "auc_neg": float}};
    probabilities of the target class (default: the predicted one). Lower positive AUC and higher
    negative AUC mean a more faithful map. All maps go through the model in one batched pass.
    """
    target = int(np.argmax(an.probs)) if target is None else target
    names = list(maps)
    value = fill_value(loaded, fill)
    batch = torch.cat([perturbed_inputs(an.pixel_values, maps[n], fill=value) for n in names])
    probs = predict_probs(loaded, batch)[:, target].numpy().reshape(len(names), 2, len(FRACTIONS))
    return {n: {"positive": probs[i, 0], "negative": probs[i, 1], "auc_pos": auc(probs[i, 0]),
                "auc_neg": auc(probs[i, 1])} for i, n in enumerate(names)}


def random_map(grid: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(grid).astype(np.float32)


def embedding_filters(model, k: int = 28) -> np.ndarray:
    """ViT paper Fig. 7 (left): the leading principal components of the patch projection,
    each drawn as a P×P RGB patch. Returns (k, P, P, C) in [0, 1]."""
    if hasattr(model, "patch_embed"):                       # ScratchViT: Linear over (C, P, P) pixels
        cfg = model.config
        w = model.patch_embed.proj.weight.reshape(cfg.hidden_size, cfg.num_channels, cfg.patch_size, cfg.patch_size)
    else:
        w = model.base_model.embeddings.patch_embeddings.projection.weight  # Conv2d (D, C, P, P)
    d, c, p, q = w.shape
    flat = w.detach().float().reshape(d, -1)
    flat = flat - flat.mean(0, keepdim=True)
    _, _, vt = torch.linalg.svd(flat, full_matrices=False)
    comps = vt[:k].reshape(-1, c, p, q)
    lo = comps.amin((1, 2, 3), keepdim=True)
    hi = comps.amax((1, 2, 3), keepdim=True)
    return ((comps - lo) / (hi - lo).clamp_min(1e-12)).permute(0, 2, 3, 1).numpy()
