"""Sanity check for explanation maps: cascading model-parameter randomisation (MPRT; Adebayo et
al., NeurIPS 2018, "Sanity Checks for Saliency Maps").

A map that explains the model must change when the model's learned weights are destroyed. Starting
from the top, the encoder's blocks are re-initialised one after another (step k: the top k of L
blocks as at training start, the embeddings, final norm and head kept), and each method's map of the
same image for the same class (the original prediction) is compared with the original map by
Spearman's rank correlation and by SSIM. A map whose correlation stays high does not depend on what
the model learned; the random baseline stays at 1 by construction.

The randomised blocks live in a copy of the model (deepcopy, once), never in the shared one; one
copy serves every step, each step re-initialising one more block. A block's random weights come
from the model's own initialiser (its family's adapter: transformers' ``_init_weights`` on each of the
block's modules, as ``post_init`` does; ``reset_parameters`` elsewhere), run on a CPU copy of the block under
``torch.manual_seed(seed + block index)``, so they are the same on any device, in any order of
steps and for every image.

SSIM (Wang et al. 2004) is computed on both maps scaled to [0, 1] (data range 1, K1 = 0.01,
K2 = 0.03) with a uniform square window of 7 patches, or the largest odd size that fits a smaller
grid, over every position where the window fits, with sample (n-1) covariances: the same number
as skimage.metrics.structural_similarity(a, b, win_size=w, data_range=1). Both measures use maps
rounded by vitviz.core.ranking, so float noise cannot change them.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import MISSING, dataclass, fields, replace

import numpy as np
import torch

from .. import methods
from ..analysis import run_model
from ..core import ranking

SSIM_WINDOW = 7
K1, K2 = 0.01, 0.03
# Initialisers draw from torch's global generator: two checks seeding it at once would mix draws
_SEEDED = threading.Lock()


# ---------------------------------------------------------------- comparing two maps

def spearman(a, b) -> float:
    """Spearman's rank correlation of two maps of the same shape (ranks of ties averaged, after
    ranking.quantise). NaN when either map is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"expected two maps of the same shape, got {a.shape} and {b.shape}")
    ra, rb = ranking.ranks(a), ranking.ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def ssim_window(shape: tuple[int, int], window: int = SSIM_WINDOW) -> int:
    """The SSIM window for a map: `window`, or the largest odd size that fits the smaller side."""
    side = min(window, *shape)
    return side if side % 2 else side - 1


def ssim(a, b, window: int = SSIM_WINDOW) -> float:
    """Mean SSIM of two maps (gh, gw), each min-max scaled to [0, 1] (a constant map is all zeros)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two maps of the same shape (gh, gw), got {a.shape} and {b.shape}")
    w = ssim_window(a.shape, window)
    if w < 1:
        raise ValueError(f"maps too small for SSIM, got {a.shape}")
    x = ranking.quantise(a) * ranking.RESOLUTION
    y = ranking.quantise(b) * ranking.RESOLUTION
    mx, my = _window_mean(x, w), _window_mean(y, w)
    n = w * w
    cov_norm = n / (n - 1) if n > 1 else 1.0
    vx = cov_norm * (_window_mean(x * x, w) - mx * mx)
    vy = cov_norm * (_window_mean(y * y, w) - my * my)
    vxy = cov_norm * (_window_mean(x * y, w) - mx * my)
    c1, c2 = K1 ** 2, K2 ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def _window_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean over every w×w window that fits inside x: (H, W) -> (H-w+1, W-w+1) float64."""
    c = np.pad(np.asarray(x, dtype=np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]) / (w * w)


# ---------------------------------------------------------------- the randomised copy

def memory_bytes(loaded, keep_random: bool = False) -> int:
    """What a sanity check holds beyond the shared model: one copy of it, plus (keep_random, as the
    evaluation does) the random weights of every block, kept for the next image."""
    blocks = sum(p.numel() * p.element_size() for p in loaded.blocks().parameters())
    return loaded.weight_bytes() + (blocks if keep_random else 0)


def random_block(loaded, index: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Block `index` of a loaded model as at training start: its state dict (CPU, float32), the same
    for a seed whatever the device, dtype or order of calls."""
    block = copy.deepcopy(loaded.blocks()[index]).to("cpu", torch.float32)
    with _SEEDED, torch.random.fork_rng(devices=[]), torch.no_grad():   # the caller's random state is kept
        torch.manual_seed(seed + index)
        for module in block.modules():
            loaded.adapter.reinitialise(loaded, module)
    return block.state_dict()


class Randomiser:
    """A copy of a loaded model whose top blocks can be re-initialised, step by step.

    ``steps()`` yields (k, loaded copy) for k = 0 .. L: the copy with its top k blocks random, each
    step re-initialising one more block of the same copy (so an image's L+1 maps cost one copy).
    Each call first restores the blocks a previous call randomised. keep_random: keep every block's
    random weights after their first use (the evaluation's many images; costs memory_bytes)."""

    def __init__(self, loaded, seed: int = 0, keep_random: bool = False):
        self.original, self.seed, self.keep_random = loaded, seed, keep_random
        model = copy.deepcopy(loaded.model)
        fresh = {f.name: f.default_factory() for f in fields(loaded) if f.default_factory is not MISSING}
        # fresh caches and compiled forward: the shared ones hold results of the original weights
        self.copy = replace(loaded, model=model, **fresh)
        self.blocks = self.copy.blocks()
        self._random: dict[int, dict[str, torch.Tensor]] = {}
        self._dirty: set[int] = set()

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def _random_state(self, index: int) -> dict[str, torch.Tensor]:
        if index in self._random:
            return self._random[index]
        state = random_block(self.original, index, self.seed)
        if self.keep_random:
            self._random[index] = state
        return state

    def reset(self) -> None:
        """Give the copy back the original weights of every block randomised so far."""
        originals = self.original.blocks()
        with torch.no_grad():
            for i in sorted(self._dirty):
                self.blocks[i].load_state_dict(originals[i].state_dict())
        self._dirty.clear()

    def randomise(self, index: int) -> None:
        with torch.no_grad():
            self.blocks[index].load_state_dict(self._random_state(index))
        self._dirty.add(index)

    def steps(self):
        self.reset()
        yield 0, self.copy
        for k in range(1, self.num_layers + 1):
            self.randomise(self.num_layers - k)
            yield k, self.copy


# ---------------------------------------------------------------- the check

@dataclass
class SanityResult:
    """Per method: the map at each step and its agreement with the original (step 0)."""
    methods: tuple[str, ...]
    target: int
    maps: dict[str, np.ndarray]        # method -> (L+1, gh, gw): step k has the top k blocks random
    spearman: dict[str, np.ndarray]    # method -> (L+1,), 1.0 at step 0
    ssim: dict[str, np.ndarray]        # method -> (L+1,), 1.0 at step 0


def reanalyse(loaded, an):
    """The analysis of the same input by another model (e.g. a randomised copy): new attentions
    and probabilities, everything else shared."""
    out = run_model(loaded, an.pixel_values[None])[0]
    memo = {f.name: f.default_factory() for f in fields(an) if f.name == "memo" and f.default_factory is not MISSING}
    return replace(an, attentions=out.attentions, probs=out.probs, **memo)


def mprt(loaded, an, method_ids, target: int | None = None, seed: int = 0, randomiser: Randomiser | None = None,
         random_seed: int = 0, backward_threads: int | None = None) -> SanityResult:
    """Cascading randomisation of one analysed image's maps (see the module's doc). target: the class
    explained at every step (default: the original prediction); seed: the random weights' seed;
    randomiser: one to reuse (the evaluation keeps one for every image); random_seed: the random
    baseline map's seed; backward_threads: see vitviz.methods.class_maps. Costs L+1 analyses with class
    maps; memory: memory_bytes(loaded)."""
    method_ids = methods.check(method_ids)
    target = int(np.argmax(an.probs)) if target is None else int(target)
    randomiser = randomiser or Randomiser(loaded, seed)
    per_step = []
    for k, model in randomiser.steps():
        step_an = an if k == 0 else reanalyse(model, an)
        model_k = model if k else loaded
        per_step.append(methods.maps(model_k, step_an, method_ids, target, random_seed, backward_threads))
    randomiser.reset()
    maps = {m: np.stack([s[m] for s in per_step]) for m in method_ids}
    return SanityResult(methods=method_ids, target=target, maps=maps,
                        spearman={m: np.array([spearman(maps[m][0], x) for x in maps[m]]) for m in method_ids},
                        ssim={m: np.array([ssim(maps[m][0], x) for x in maps[m]]) for m in method_ids})
