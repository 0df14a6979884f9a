"""Sanity check for explanation maps: cascading model-parameter randomisation (MPRT; Adebayo et al.,
NeurIPS 2018, "Sanity Checks for Saliency Maps").

A map that explains the model must change when the model's learned weights are destroyed. A copy of
the model is randomised from the top, one more piece at each step, and each method's map of the same
image for the same class (the original prediction) is compared with the original map by Spearman's
rank correlation and by SSIM. A map whose correlation stays high does not depend on what the model
learned; the random baseline stays at 1 by construction.

Two conventions (CONVENTIONS; DEFAULT = "quantus"):

- "quantus", the paper's cascade as Quantus implements it (quantus 0.6.0,
  quantus/metrics/randomisation/mprt.py: MPRT with layer_order="top_down";
  quantus/helpers/model/pytorch_model.py: PyTorchModel.get_random_layer_generator). The units are
  every module of the model that has ``reset_parameters``, last registered first (named_modules
  reversed: the head and final norm, then each block from the top, a block's modules from its last,
  then the embeddings); each is reset in turn on one copy, after ``torch.manual_seed(seed + 1)``, the
  same seed before every module as Quantus does (so modules of one shape get the same random
  weights: the query, key, value and output projections of every block are one matrix). Maps are compared as Quantus's
  MPRT compares them by default: each divided by its largest |value|, then made absolute
  (normalise=True, abs=True: quantus.functions.normalise_func.normalise_by_max, per map as Quantus
  does with batch_size=1; a larger batch divides by the batch's largest value, which moves SSIM);
  Spearman of the raw values (scipy.stats.spearmanr, ties averaged); SSIM as
  quantus.functions.similarity_func.ssim computes it inside MPRT, on the maps flattened row-major:
  skimage's structural_similarity of two 1-D signals, a window of 7 entries that runs across row ends,
  data range = max - min of the pair, sample covariances.
- "blocks", vitviz's earlier cascade: whole encoder blocks from the top, each re-initialised by the
  model's own initialiser (the family's adapter: transformers' ``_init_weights`` on each of the
  block's modules, as ``post_init`` does; ``reset_parameters`` elsewhere) under
  ``torch.manual_seed(seed + block index)``, so every weight is an independent draw; the embeddings,
  final norm and head kept. Spearman of ranks after vitviz.core.ranking's quantisation; SSIM (Wang et
  al. 2004) on the 2-D maps scaled to [0, 1] with a square window of 7 patches (or the largest odd
  size that fits), data range 1, sample covariances (= skimage's structural_similarity(a, b,
  win_size=w, data_range=1)). Kept for two measured reasons (bundled model, the first 20 Fashion-MNIST
  test images, maps raw, rollout_mean, chefer and legrad, every step; ``python -m tests.test_mprt``):
  its SSIM does not depend on the order a map is scanned in (the maps transposed: 2-D SSIM moves by
  < 1e-14, Quantus's flattened SSIM by up to 0.63), and its curve shows the encoder's depth read by
  the trained head, where Quantus's first step, the head's reset alone, already takes Chefer's
  Spearman from 1 to 0.50 and LeGrad's to 0.05 on average, before any block is touched.

The steps of a curve (``granularity``): "block" (default; the app's picture and the evaluation):
step 0 the trained model, then one step per stage: "head" (every unit registered after the blocks:
the head, final norm, a pooler), "block i" from the top, "embeddings" (every unit registered before
the blocks: the patch embedding; a zero-shot model's text tower too); a ViT-B: 15 maps, 0 to 14.
"module": Quantus's curve, one step per unit (a ViT-B: 100 maps). "last": the trained model and the
fully randomised one (Quantus's skip_layers=True). A unit's random weights do not depend on the
steps shown, so the "block" curve is the "module" curve read at the end of each stage, and the last
step of every granularity is the same full randomisation (Quantus's return_last_correlation=True).

The randomised modules live in a copy of the model (deepcopy, once), never in the shared one; one
copy serves every step. Random weights are drawn on a CPU float32 copy of the module, so they are the
same on any device and dtype, in any order of steps and for every image, and equal Quantus's on a
CPU float32 model. Caches the copy holds (vitviz.core.cache.Cache: e.g. a zero-shot model's label
embeddings) are emptied whenever its weights change: they were computed with the weights before.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import MISSING, dataclass, fields, replace

import numpy as np
import torch
from scipy.stats import rankdata

from .. import methods
from ..analysis import run_model
from ..core import ranking
from ..core.cache import Cache
from ..core.conventions import Convention, Conventions

CONVENTIONS = Conventions("MPRT", (
    Convention("quantus", "Adebayo et al., NeurIPS 2018, 'Sanity Checks for Saliency Maps'; Quantus 0.6.0, "
                          "quantus/metrics/randomisation/mprt.py (MPRT, layer_order='top_down') and "
                          "quantus/helpers/model/pytorch_model.py (get_random_layer_generator)",
               "Every module with reset_parameters is reset, the last registered first (head and final norm, each "
               "block from the top, the embeddings), each after torch.manual_seed(seed + 1); the maps divided by "
               "their largest |value| and made absolute; Spearman of the raw values, SSIM of the flattened maps "
               "(a window of 7, the pair's range)."),
    Convention("blocks", "vitviz before issue 25 (vitviz/evidence/mprt.py), after Adebayo et al., NeurIPS 2018",
               "Whole encoder blocks re-initialised from the top by the model's own initialiser (seed + block "
               "index), the embeddings, final norm and head kept; Spearman of quantised ranks, 2-D SSIM of the "
               "maps min-max scaled (a 7-patch window)."),
), default="quantus")
DEFAULT = CONVENTIONS.default
GRANULARITIES = ("block", "module", "last")
SEED = 42                # quantus.MPRT's default seed
ORIGINAL = "original"    # the label of step 0, the trained model

SSIM_WINDOW = 7
K1, K2 = 0.01, 0.03
# Initialisers draw from torch's global generator: two checks seeding it at once would mix draws
_SEEDED = threading.Lock()


def get_convention(name: str) -> Convention:
    """The named convention; ValueError naming the choices for any other name."""
    return CONVENTIONS.named(name)


# ---------------------------------------------------------------- comparing two maps ("blocks")

def spearman(a, b) -> float:
    """Spearman's rank correlation of two maps of the same shape (ranks of ties averaged, after
    ranking.quantise). NaN when either map is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"expected two maps of the same shape, got {a.shape} and {b.shape}")
    return _pearson(ranking.ranks(a), ranking.ranks(b))


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
    return _mean_ssim(x, y, lambda v: _window_mean(v, w), w * w, data_range=1.0)


def _window_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean over every w×w window that fits inside x: (H, W) -> (H-w+1, W-w+1) float64."""
    c = np.pad(np.asarray(x, dtype=np.float64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    return (c[w:, w:] - c[:-w, w:] - c[w:, :-w] + c[:-w, :-w]) / (w * w)


# ---------------------------------------------------------------- comparing two maps ("quantus")

def normalise_by_max(m) -> np.ndarray:
    """A map as Quantus's MPRT compares it: divided by its largest |value| (unless all zero), then
    absolute (normalise_by_max, abs=True). float64, same shape."""
    m = np.asarray(m, dtype=np.float64)
    if np.all(m == 0.0):
        return np.abs(m)
    return np.abs(m / np.max(np.abs(m)))


def rank_correlation(a, b) -> float:
    """Spearman's correlation of the raw values of two maps of the same shape (scipy.stats.spearmanr:
    ranks of exact ties averaged). NaN when either map is constant."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"expected two maps of the same shape, got {a.shape} and {b.shape}")
    return _pearson(rankdata(a.ravel()), rankdata(b.ravel()))


def flat_ssim(a, b, window: int = SSIM_WINDOW) -> float:
    """SSIM as quantus.functions.similarity_func.ssim computes it inside Quantus's MPRT: the maps
    flattened row-major, skimage's structural_similarity of the two 1-D signals (every run of
    `window` entries, rows wrapping), data range = max - min over both maps. NaN when both maps are
    one same constant (no range)."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"expected two maps of the same shape, got {np.shape(a)} and {np.shape(b)}")
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if len(x) < window:
        raise ValueError(f"SSIM's window of {window} exceeds a map of {len(x)} entries")
    both = np.concatenate([x, y])
    data_range = float(both.max() - both.min())
    with np.errstate(invalid="ignore", divide="ignore"):
        return _mean_ssim(x, y, lambda v: _run_mean(v, window), window, data_range)


def _run_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean over every run of w entries of a 1-D signal: (n,) -> (n-w+1,) float64."""
    c = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    return (c[w:] - c[:-w]) / w


def _mean_ssim(x: np.ndarray, y: np.ndarray, window_mean, n: int, data_range: float) -> float:
    """Wang et al. 2004's SSIM averaged over every window: window_mean(v) gives each window's mean of
    v, n the entries in a window (sample covariances, as skimage's default)."""
    mx, my = window_mean(x), window_mean(y)
    cov_norm = n / (n - 1) if n > 1 else 1.0
    vx = cov_norm * (window_mean(x * x) - mx * mx)
    vy = cov_norm * (window_mean(y * y) - my * my)
    vxy = cov_norm * (window_mean(x * y) - mx * my)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def _pearson(ra: np.ndarray, rb: np.ndarray) -> float:
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def similarity(convention: str, original, other) -> tuple[float, float]:
    """(Spearman, SSIM) of a map with the original map (gh, gw), under `convention`'s rules."""
    if get_convention(convention).name == "quantus":
        a, b = normalise_by_max(original), normalise_by_max(other)
        return rank_correlation(a, b), flat_ssim(a, b)
    return spearman(original, other), ssim(original, other)


# ---------------------------------------------------------------- the cascade

@dataclass(frozen=True)
class Unit:
    """One module the cascade randomises: its path in the model ("" = the model itself), the stage of
    the "block" curve it belongs to ("head", "block i", "embeddings"), the seed of its draws."""
    path: str
    stage: str
    seed: int


def block_paths(loaded) -> list[str]:
    """The paths of the encoder's blocks in loaded.model, first block first."""
    paths = {id(m): p for p, m in loaded.model.named_modules()}
    return [paths[id(b)] for b in loaded.blocks()]


def cascade(loaded, convention: str = DEFAULT, seed: int = SEED) -> list[Unit]:
    """The units `convention` randomises, in the order it randomises them (see the module's doc)."""
    blocks = block_paths(loaded)
    if get_convention(convention).name == "blocks":
        return [Unit(path, f"block {i}", seed + i) for i, path in reversed(list(enumerate(blocks)))]
    units, below = [], False
    for path, module in reversed(list(loaded.model.named_modules())):
        if not hasattr(module, "reset_parameters"):
            continue
        block = next((i for i, b in enumerate(blocks) if path == b or path.startswith(b + ".")), None)
        below = below or block is not None
        stage = f"block {block}" if block is not None else ("embeddings" if below else "head")
        units.append(Unit(path, stage, seed + 1))
    return units


def step_units(units: list[Unit], granularity: str = "block") -> list[tuple[str, list[Unit]]]:
    """The cascade cut into steps: [(label, the units randomised at that step)], step 0 left out.
    "block": one step per run of units of one stage (labelled by the stage); "module": one per unit
    (labelled by its path); "last": every unit at once ("all")."""
    if granularity == "module":
        return [(u.path, [u]) for u in units]
    if granularity == "last":
        return [("all", list(units))]
    if granularity != "block":
        raise ValueError(f"granularity must be one of {GRANULARITIES}, got {granularity!r}")
    out: list[tuple[str, list[Unit]]] = []
    for u in units:
        if out and out[-1][0] == u.stage:
            out[-1][1].append(u)
        else:
            out.append((u.stage, [u]))
    return out


def random_state(loaded, module: torch.nn.Module, unit: Unit, convention: str = DEFAULT) -> dict[str, torch.Tensor]:
    """`module` (the unit's, in its present state) randomised as `convention` does: its state dict
    (CPU, float32), the same for a seed whatever the device, dtype or order of calls."""
    fresh = copy.deepcopy(module).to("cpu", torch.float32)
    with _SEEDED, torch.random.fork_rng(devices=[]), torch.no_grad():   # the caller's random state is kept
        torch.manual_seed(unit.seed)
        if convention == "quantus":
            fresh.reset_parameters()
        else:
            for m in fresh.modules():
                loaded.adapter.reinitialise(loaded, m)
    return fresh.state_dict()


def _state_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's state as random_state keeps it (floating tensors in float32)."""
    return sum(t.numel() * (4 if t.is_floating_point() else t.element_size()) for t in module.state_dict().values())


def memory_bytes(loaded, keep_random: bool = False, convention: str = DEFAULT) -> int:
    """What a sanity check holds beyond the shared model: one copy of it, plus (keep_random, as the
    evaluation does) the random weights of every unit of the cascade, kept for the next image."""
    if not keep_random:
        return loaded.weight_bytes()
    kept = sum(_state_bytes(loaded.model.get_submodule(u.path)) for u in cascade(loaded, convention))
    return loaded.weight_bytes() + kept


class Randomiser:
    """A copy of a loaded model that is randomised step by step (see the module's doc).

    ``steps(granularity)`` yields (label, loaded copy): first (ORIGINAL, the copy with the trained
    weights), then after each step of the cascade the same copy with one more step randomised (so an
    image's maps cost one copy). Each call first restores what a previous call randomised.
    keep_random: keep every unit's random weights after their first use (the evaluation's many
    images; costs memory_bytes(loaded, True, convention))."""

    def __init__(self, loaded, seed: int = SEED, keep_random: bool = False, convention: str = DEFAULT):
        self.original, self.seed, self.keep_random = loaded, seed, keep_random
        self.convention = get_convention(convention).name
        model = copy.deepcopy(loaded.model)
        fresh = {f.name: f.default_factory() for f in fields(loaded) if f.default_factory is not MISSING}
        # fresh caches and compiled forward: the shared ones hold results of the original weights
        self.copy = replace(loaded, model=model, **fresh)
        self.units = cascade(loaded, self.convention, seed)
        self._random: dict[str, dict[str, torch.Tensor]] = {}
        self._dirty: list[str] = []

    @property
    def num_layers(self) -> int:
        return len(self.original.blocks())

    def _random_state(self, unit: Unit) -> dict[str, torch.Tensor]:
        if unit.path in self._random:
            return self._random[unit.path]
        state = random_state(self.original, self.copy.model.get_submodule(unit.path), unit, self.convention)
        if self.keep_random:
            self._random[unit.path] = state
        return state

    def reset(self) -> None:
        """Give the copy back the original weights of every unit randomised so far."""
        with torch.no_grad():
            for path in self._dirty:
                self.copy.model.get_submodule(path).load_state_dict(self.original.model.get_submodule(path).state_dict())
        if self._dirty:
            self._forget()
        self._dirty.clear()

    def randomise(self, unit: Unit) -> None:
        with torch.no_grad():
            self.copy.model.get_submodule(unit.path).load_state_dict(self._random_state(unit))
        self._dirty.append(unit.path)

    def _forget(self) -> None:
        """Empty the caches the copy holds: they were computed with its weights before this change."""
        self.copy.cache.clear()
        for module in self.copy.model.modules():
            for value in vars(module).values():
                if isinstance(value, Cache):
                    value.clear()

    def steps(self, granularity: str = "block"):
        if self.convention == "blocks" and granularity == "module":
            granularity = "block"                     # its units are whole blocks: its module curve is its block curve
        cut = step_units(self.units, granularity)
        self.reset()
        yield ORIGINAL, self.copy
        for label, units in cut:
            for unit in units:
                self.randomise(unit)
            self._forget()
            yield label, self.copy


# ---------------------------------------------------------------- the check

@dataclass
class SanityResult:
    """Per method: the map at each step and its agreement with the original (step 0). S steps; the
    last is the full randomisation of the convention (every unit of its cascade random)."""
    methods: tuple[str, ...]
    target: int
    convention: str                    # a key of CONVENTIONS
    steps: tuple[str, ...]             # (S,) step labels: ORIGINAL, then stages ("head", "block 11", ...) or paths
    maps: dict[str, np.ndarray]        # method -> (S, gh, gw)
    spearman: dict[str, np.ndarray]    # method -> (S,), 1.0 at step 0
    ssim: dict[str, np.ndarray]        # method -> (S,), 1.0 at step 0


def reanalyse(loaded, an, out=None):
    """The analysis of the same input by another model (e.g. a randomised copy): new attentions
    and probabilities (out: what a pass of that model already saw, analysis.ModelOutput), everything else
    shared."""
    out = run_model(loaded, an.pixel_values[None])[0] if out is None else out
    memo = {f.name: f.default_factory() for f in fields(an) if f.name == "memo" and f.default_factory is not MISSING}
    return replace(an, attentions=out.attentions, probs=out.probs, probe=out.probe, **memo)


def step_maps(model, an, method_ids, target: int, random_seed: int, backward_threads: int | None):
    """The maps of a randomised copy for the same input: its class maps' forward pass also gives the
    attentions the other maps read, so a step costs one forward (and its backward) where there are
    class-specific methods."""
    wanted = [m for m in method_ids if methods.get(m).class_specific]
    if not wanted:
        return methods.maps(model, reanalyse(model, an), method_ids, target, random_seed, backward_threads)
    cmaps, out = methods.class_maps(model, an, target, wanted, backward_threads, with_output=True)
    return methods.measured(reanalyse(model, an, out), method_ids, cmaps, random_seed)


def mprt(loaded, an, method_ids, target: int | None = None, seed: int = SEED, randomiser: Randomiser | None = None,
         random_seed: int = 0, backward_threads: int | None = None, convention: str | None = None,
         granularity: str = "block") -> SanityResult:
    """Cascading randomisation of one analysed image's maps (see the module's doc). target: the class
    explained at every step (default: the original prediction); seed: the random weights' seed;
    randomiser: one to reuse (the evaluation keeps one for every image; its convention is the check's);
    random_seed: the random baseline map's seed; backward_threads: see vitviz.methods.class_maps;
    convention: a key of CONVENTIONS (default: the randomiser's, else DEFAULT); granularity: "block",
    "module" or "last" (see the module's doc). Costs one analysis with class maps per step; memory:
    memory_bytes(loaded)."""
    method_ids = methods.check(method_ids)
    target = int(np.argmax(an.probs)) if target is None else int(target)
    if randomiser is None:
        randomiser = Randomiser(loaded, seed, convention=convention or DEFAULT)
    elif convention is not None and get_convention(convention).name != randomiser.convention:
        raise ValueError(f"the randomiser follows {randomiser.convention!r}, the check was asked for {convention!r}")
    labels, per_step = [], []
    for label, model in randomiser.steps(granularity):
        first = not labels
        labels.append(label)
        per_step.append(methods.maps(loaded, an, method_ids, target, random_seed, backward_threads) if first
                        else step_maps(model, an, method_ids, target, random_seed, backward_threads))
    randomiser.reset()
    maps = {m: np.stack([s[m] for s in per_step]) for m in method_ids}
    scores = {m: np.array([similarity(randomiser.convention, maps[m][0], x) for x in maps[m]]).reshape(-1, 2)
              for m in method_ids}
    return SanityResult(methods=method_ids, target=target, convention=randomiser.convention, steps=tuple(labels),
                        maps=maps, spearman={m: s[:, 0] for m, s in scores.items()},
                        ssim={m: s[:, 1] for m, s in scores.items()})
