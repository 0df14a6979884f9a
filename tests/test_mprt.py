"""MPRT (vitviz.evidence.mprt) against its reference: the default convention equals quantus.MPRT 0.6.0
(Adebayo et al., NeurIPS 2018, as Quantus implements it) on a tiny ViT, its cascade's order is
written out here independently, the old "blocks" convention is told apart, and the batched check is
timed against Quantus's loop. The measurements behind the module's doc: ``python -m tests.test_mprt``.

Quantus explains inputs whose trailing axes the attribution covers, and vitviz's maps are patch maps
(gh, gw): Quantus is given each image's pixels as (C·p·p, gh, gw) (the patches as channels, a
lossless reshape undone by the explain function), so the maps it compares are vitviz's maps."""

from __future__ import annotations

import copy
import time
from dataclasses import MISSING, fields, replace

import numpy as np
import pytest
import torch

from vitviz import methods, models
from vitviz.analysis import analyze
from vitviz.evidence import mprt

from .conftest import LABELS, save_tiny

quantus = pytest.importorskip("quantus")

METHODS = ("chefer", "legrad", "rollout_mean", "raw", "random")
# Quantus is slow (one explanation per method, module and batch): a map of each kind (a class map scaled to
# [0, 1]; raw attention, whose largest value is not 1; the random map, which never changes)
COMPARED = {"spearman": ("chefer", "raw", "random"), "ssim": ("chefer", "raw")}


def trained_like(model):
    """Weights unlike a fresh initialisation (LayerNorms not 1/0), so that every reset changes something."""
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.add_(torch.randn(p.shape, generator=g) * 0.3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return models.load(save_tiny(tmp_path_factory.mktemp("trained"), init=trained_like), "cpu", "float32")


@pytest.fixture(scope="module")
def analyses(trained):
    from PIL import Image

    rng = np.random.default_rng(3)
    return [analyze(trained, Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8))) for _ in range(2)]


# ---------------------------------------------------------------- Quantus, given vitviz's maps

def with_model(loaded, module):
    """`loaded` running another module (Quantus's randomised copy), with caches of its own."""
    fresh = {f.name: f.default_factory() for f in fields(loaded) if f.default_factory is not MISSING}
    return replace(loaded, model=module, **fresh)


class Explainer:
    """Quantus's explain_func: vitviz's map of each input for its target, (B, 1, gh, gw) float64 (float64
    so that skimage computes Quantus's SSIM in the precision vitviz does). Inputs are (B, C·p·p, gh, gw)."""

    def __init__(self, loaded, analyses):
        self.loaded, self.analyses, self.p = loaded, analyses, loaded.patch_size

    def inputs(self) -> np.ndarray:
        return np.stack([self.patches(an.pixel_values).numpy() for an in self.analyses])

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(C, H, W) -> (C·p·p, gh, gw)."""
        c, h, w = x.shape
        p = self.p
        return x.reshape(c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3).reshape(c * p * p, h // p, w // p)

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """(C·p·p, gh, gw) -> (C, H, W)."""
        p = self.p
        c, gh, gw = x.shape[0] // (p * p), x.shape[1], x.shape[2]
        return x.reshape(c, p, p, gh, gw).permute(0, 3, 1, 4, 2).reshape(c, gh * p, gw * p)

    def __call__(self, model, inputs, targets, method, **kw) -> np.ndarray:
        loaded = with_model(self.loaded, model)
        out = []
        for x, target in zip(inputs, targets):
            pixels = self.pixels(torch.as_tensor(x))
            an = next(a for a in self.analyses if torch.equal(a.pixel_values, pixels))
            out.append(methods.maps(loaded, mprt.reanalyse(loaded, an), (method,), int(target))[method])
        return np.stack(out)[:, None].astype(np.float64)


def quantus_ssim(a, b, batched=False, **kw):
    """quantus.functions.similarity_func.ssim as an array: Quantus 0.6.0's returns a list for a batch, on
    which its MPRT loop calls .tolist() and fails; the numbers are the same."""
    return np.asarray(quantus.similarity_func.ssim(a, b, batched=batched, **kw))


def quantus_mprt(loaded, analyses, method, similarity, batch_size, **options) -> dict[str, np.ndarray]:
    """quantus.MPRT with its defaults (top_down, seed 42, normalise and abs) on vitviz's maps:
    {"original" or a module's path: (N,) scores}."""
    explain = Explainer(loaded, analyses)
    targets = np.array([int(np.argmax(an.probs)) for an in analyses])
    metric = quantus.MPRT(similarity_func=similarity, disable_warnings=True, **options)
    scores = metric(model=loaded.model, x_batch=explain.inputs(), y_batch=targets, explain_func=explain,
                    explain_func_kwargs={"method": method}, channel_first=True, device="cpu", batch_size=batch_size)
    return {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()} if isinstance(scores, dict) \
        else np.asarray(scores, dtype=np.float64)


@pytest.fixture(scope="module")
def theirs(trained, analyses):
    """Quantus's per-module curves per method: Spearman over the images as one batch (dividing by the
    batch's largest value does not move ranks), SSIM one image at a time (as vitviz divides each map by
    its own largest value; Quantus divides by the batch's). "seconds": the time of the Spearman runs."""
    start = time.perf_counter()
    spearman = {m: quantus_mprt(trained, analyses, m, quantus.similarity_func.correlation_spearman,
                                batch_size=len(analyses)) for m in COMPARED["spearman"]}
    seconds = time.perf_counter() - start
    ssim = {m: quantus_mprt(trained, analyses, m, quantus_ssim, batch_size=1) for m in COMPARED["ssim"]}
    return {"spearman": spearman, "ssim": ssim, "seconds": seconds}


@pytest.fixture(scope="module")
def ours(trained, analyses):
    """vitviz's per-module curves under the defaults (convention, seed), and how long they took."""
    start = time.perf_counter()
    results = [mprt.mprt(trained, an, METHODS, granularity="module") for an in analyses]
    return results, time.perf_counter() - start


# ---------------------------------------------------------------- (a) equal to Quantus

def test_the_default_equals_quantus_mprt_within_1e_5(ours, theirs):
    ours, _ = ours
    for key, compared in COMPARED.items():
        for m in compared:
            assert list(theirs[key][m]) == list(ours[0].steps)          # "original", then every module's path
            want = np.stack(list(theirs[key][m].values()))               # (S, N)
            got = np.stack([getattr(r, key)[m] for r in ours], axis=1)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=f"{m} {key}")
    assert ours[0].convention == "quantus" and len(ours[0].steps) == 20   # 19 modules with reset_parameters


def test_the_block_curve_and_the_last_value_are_quantus_curve_read_at_each_stage_end(trained, analyses, ours,
                                                                                      theirs):
    an, per_module = analyses[0], ours[0][0]
    per_block = mprt.mprt(trained, an, METHODS)                           # the app's and the evaluation's steps
    last = mprt.mprt(trained, an, METHODS, granularity="last")
    stages = ["original"] + [u.stage for u in mprt.cascade(trained)]
    ends = [i for i in range(len(stages)) if i + 1 == len(stages) or stages[i + 1] != stages[i]]
    assert per_block.steps == tuple(stages[i] for i in ends) == ("original", "head", "block 1", "block 0",
                                                                  "embeddings")
    for m in METHODS:
        np.testing.assert_allclose(per_block.spearman[m], per_module.spearman[m][ends], rtol=0, atol=1e-12)
        np.testing.assert_allclose(per_block.ssim[m], per_module.ssim[m][ends], rtol=0, atol=1e-12)
        np.testing.assert_allclose(last.spearman[m], per_block.spearman[m][[0, -1]], rtol=0, atol=1e-12)
    full = quantus_mprt(trained, analyses, "chefer", quantus.similarity_func.correlation_spearman, batch_size=2,
                        return_last_correlation=True)            # one value per image: every module reset
    assert full[0] == pytest.approx(per_block.spearman["chefer"][-1], abs=1e-5)
    assert full[0] == pytest.approx(theirs["spearman"]["chefer"]["vit.embeddings.patch_embeddings.projection"][0])


# ---------------------------------------------------------------- (b) the cascade written out

def reset_order(model: torch.nn.Module) -> list[str]:
    """Quantus's top-down order written out: a depth-first walk of the children in registration order
    (each module before its children, a module reached twice counted once), keeping those that have
    reset_parameters, then reversed: the last registered is reset first."""
    seen, order = set(), []

    def walk(module, path):
        if id(module) in seen:
            return
        seen.add(id(module))
        if hasattr(module, "reset_parameters"):
            order.append(path)
        for name, child in module._modules.items():
            if child is not None:
                walk(child, f"{path}.{name}" if path else name)

    walk(model, "")
    return order[::-1]


def test_the_cascade_resets_every_module_from_the_last_registered_as_quantus_does(trained):
    units = mprt.cascade(trained)
    assert [u.path for u in units] == reset_order(trained.model)
    assert [u.path for u in units[:2]] == ["classifier", "vit.layernorm"]        # the head and final norm first
    assert units[-1].path == "vit.embeddings.patch_embeddings.projection"         # the patch embedding last
    blocks = [f"block {i}" for i in (1, 0) for _ in range(8)]     # q, k, v, out, 2 norms, 2 MLP linears per block
    assert [u.stage for u in units] == ["head", "head", *blocks, "embeddings"]
    assert {u.seed for u in units} == {mprt.SEED + 1}                             # Quantus: manual_seed(seed + 1)

    # Quantus's cascade on a copy, here: torch.manual_seed(seed + 1) before each reset_parameters()
    theirs = copy.deepcopy(trained.model)
    for path in reset_order(theirs):
        torch.manual_seed(mprt.SEED + 1)
        theirs.get_submodule(path).reset_parameters()
    before = {k: v.clone() for k, v in trained.model.state_dict().items()}
    for granularity in mprt.GRANULARITIES:                        # the same weights however the steps are cut
        r = mprt.Randomiser(trained)
        *_, (label, model) = r.steps(granularity)
        mine = model.model.state_dict()
        assert all(torch.equal(mine[k], v) for k, v in theirs.state_dict().items()), granularity
        r.reset()
        assert all(torch.equal(v, before[k]) for k, v in r.copy.model.state_dict().items())     # restored
    assert all(torch.equal(v, before[k]) for k, v in trained.model.state_dict().items())     # shared model untouched
    linears = [m for m in theirs.modules() if isinstance(m, torch.nn.Linear) and m.weight.shape == (32, 32)]
    assert len(linears) == 8 and all(torch.equal(m.weight, linears[0].weight) for m in linears)   # q, k, v, out ×2
    other = mprt.Randomiser(trained, seed=7)
    *_, (_, model) = other.steps("last")
    assert not torch.equal(model.model.classifier.weight, theirs.classifier.weight)          # the seed decides


def test_random_weights_do_not_depend_on_the_dtype_or_the_order_of_draws(trained, tmp_path):
    half = models.load(save_tiny(tmp_path / "m", init=trained_like), "cpu", "bfloat16")
    unit = mprt.cascade(trained)[5]
    module = trained.model.get_submodule(unit.path)
    first = mprt.random_state(trained, module, unit)
    torch.manual_seed(123)
    torch.rand(1000)                                                   # other draws in between
    assert all(torch.equal(first[k], v) for k, v in mprt.random_state(trained, module, unit).items())
    in_half = mprt.random_state(half, half.model.get_submodule(unit.path), unit)
    assert all(torch.equal(first[k], v) for k, v in in_half.items())                # drawn in float32 on the CPU


def test_memory_counts_one_copy_and_every_kept_random_state(trained):
    emb = trained.model.vit.embeddings
    never_reset = emb.cls_token.numel() + emb.position_embeddings.numel()           # parameters, not modules
    reset = sum(p.numel() for p in trained.model.parameters()) - never_reset
    assert mprt.memory_bytes(trained) == trained.weight_bytes()
    assert mprt.memory_bytes(trained, keep_random=True) == trained.weight_bytes() + 4 * reset


def test_a_zero_shot_copy_encodes_its_labels_again_once_its_weights_change(tmp_path):
    from .tiny_families import save_zero_shot

    loaded = models.load(save_zero_shot(tmp_path / "clip", "clip"), "cpu", "float32").with_labels(LABELS[:3])
    labels = tuple(loaded.id2label.values())
    original = loaded.model.text_embeddings(labels, "cpu")
    seen = {}
    for label, copy_ in mprt.Randomiser(loaded).steps():
        seen[label] = copy_.model.text_embeddings(labels, "cpu").clone()
    assert torch.equal(seen["original"], original)
    assert not torch.allclose(seen["head"], original)        # the text projection was reset at the first step


# ---------------------------------------------------------------- (c) the old convention is told apart

def test_the_blocks_convention_is_not_quantus(trained, analyses, theirs):
    old = mprt.mprt(trained, analyses[0], ("chefer", "raw"), convention="blocks", granularity="module")
    assert old.steps == ("original", "block 1", "block 0")                     # the head and embeddings kept
    for m in old.methods:
        quantus_last = theirs["spearman"][m]["vit.embeddings.patch_embeddings.projection"][0]
        assert abs(old.spearman[m][-1] - quantus_last) > 1e-3
    with pytest.raises(ValueError):                               # a randomiser serves its own convention only
        mprt.mprt(trained, analyses[0], ("chefer",), randomiser=mprt.Randomiser(trained), convention="blocks")


# ---------------------------------------------------------------- the measures against their references

def test_quantus_measures_equal_scipy_skimage_and_quantus_functions():
    from scipy.stats import spearmanr
    from skimage.metrics import structural_similarity

    g = np.random.default_rng(0)
    for shape in [(4, 4), (7, 7), (3, 5)]:
        a, b = g.normal(size=shape), g.normal(size=shape)
        b.flat[:3] = b.flat[3]                                                     # ties
        na, nb = mprt.normalise_by_max(a), mprt.normalise_by_max(b)
        assert np.array_equal(na, np.abs(quantus.normalise_func.normalise_by_max(a)))
        assert mprt.rank_correlation(na, nb) == pytest.approx(spearmanr(na.ravel(), nb.ravel())[0], abs=1e-12)
        both = np.concatenate([na.ravel(), nb.ravel()])
        ref = structural_similarity(na.ravel(), nb.ravel(), win_size=7, data_range=both.max() - both.min())
        assert mprt.flat_ssim(na, nb) == pytest.approx(ref, abs=1e-12)
        assert mprt.flat_ssim(na, nb) == pytest.approx(quantus.similarity_func.ssim(na.ravel(), nb.ravel()), abs=1e-12)
    assert np.isnan(mprt.rank_correlation(np.ones((3, 3)), g.random((3, 3))))
    assert np.array_equal(mprt.normalise_by_max(np.zeros((2, 2))), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        mprt.flat_ssim(np.ones((2, 3)), np.ones((2, 3)))                           # 6 entries < a window of 7


def test_flat_ssim_by_hand():
    x = np.arange(7.0)
    # one window of 7: means 3 and 3, sample variances 28/6, covariance -28/6; range 6 -> c1 = .06², c2 = .18²
    c1, c2, v = 0.06 ** 2, 0.18 ** 2, 28 / 6
    assert mprt.flat_ssim(x, 6 - x) == pytest.approx((18 + c1) * (-2 * v + c2) / ((18 + c1) * (2 * v + c2)))
    assert mprt.flat_ssim(x.reshape(1, 7), x.reshape(1, 7)) == pytest.approx(1.0)
    # the row-major scan decides: a 7×7 map whose rows are shifted by one differs from its transpose's shift
    m = np.random.default_rng(2).random((7, 7))
    assert mprt.flat_ssim(m, np.roll(m, 1, 0)) != pytest.approx(mprt.flat_ssim(m.T, np.roll(m, 1, 0).T), abs=1e-3)


# ---------------------------------------------------------------- (d) faster than Quantus's loop

def test_vitviz_batched_check_is_faster_than_quantus_loop(trained, analyses, ours, theirs, capsys):
    """One pass per step serves every map (Quantus explains each map in a loop of its own), and the
    block curve computes 5 steps where Quantus's computes 20. A benchmark print, not a timed assertion:
    Quantus's per-module Spearman curves (the `theirs` fixture, after the first runs' warm-up in `ours`)
    against vitviz's of the same maps and images, per module (the same steps) and per block."""
    maps = COMPARED["spearman"]
    start = time.perf_counter()
    per_module = [mprt.mprt(trained, an, maps, granularity="module") for an in analyses]
    t_module = time.perf_counter() - start
    start = time.perf_counter()
    per_block = [mprt.mprt(trained, an, maps) for an in analyses]
    t_block = time.perf_counter() - start
    t_quantus = theirs["seconds"]
    with capsys.disabled():
        print(f"\nMPRT, tiny ViT, {len(analyses)} images × {len(maps)} maps: Quantus {t_quantus:.2f} s; vitviz per "
              f"module {t_module:.2f} s ({t_quantus / t_module:.1f}× faster), per block {t_block:.2f} s "
              f"({t_quantus / t_block:.1f}× faster)")
    for m in maps:                                                      # the timed runs computed the same thing
        for i, (a, b) in enumerate(zip(per_module, per_block)):
            want = [v[i] for v in theirs["spearman"][m].values()]
            np.testing.assert_allclose(a.spearman[m], want, rtol=0, atol=1e-5)
            assert b.spearman[m][-1] == a.spearman[m][-1]


# ---------------------------------------------------------------- the measurements behind the module's doc

def best_of(repeats: int, run) -> float:
    """The shortest of `repeats` timed runs, in seconds (the machine is shared: the others waited)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(images: int = 20, maps=("raw", "rollout_mean", "chefer", "legrad")) -> None:
    """On the bundled model and the first Fashion-MNIST test images: how much Quantus's flattened SSIM
    depends on the scan order (the maps transposed) and 2-D SSIM does not, what the head's reset alone
    does to each map, and the time per image of a check per block, per module and Quantus's loop."""
    from vitviz import data

    loaded = models.load(models.BUNDLED, "cpu", "float32")
    samples = data.FashionMNISTSamples(data.FASHION_MNIST_DIR, "t10k")
    ans = [analyze(loaded, samples.sample(i)[0]) for i in range(images)]
    flat_gap, square_gap, head = {m: [] for m in maps}, {m: [] for m in maps}, {m: [] for m in maps}
    results = [mprt.mprt(loaded, an, maps) for an in ans]
    for res in results:
        for m in maps:
            a0 = mprt.normalise_by_max(res.maps[m][0])
            for x in res.maps[m][1:]:
                b = mprt.normalise_by_max(x)
                flat_gap[m].append(abs(mprt.flat_ssim(a0, b) - mprt.flat_ssim(a0.T, b.T)))
                square_gap[m].append(abs(mprt.ssim(res.maps[m][0], x) - mprt.ssim(res.maps[m][0].T, x.T)))
            head[m].append(res.spearman[m][res.steps.index("head")])
    for m in maps:
        print(f"{m}: flattened SSIM, maps vs transposed: max |Δ| {max(flat_gap[m]):.3f}; 2-D SSIM: "
              f"{max(square_gap[m]):.1e}; Spearman after the head's reset alone: mean {np.mean(head[m]):.3f}")
    few = ans[:2]
    t_block = best_of(3, lambda: [mprt.mprt(loaded, an, maps) for an in few]) / len(few)
    t_module = best_of(3, lambda: [mprt.mprt(loaded, an, maps, granularity="module") for an in few]) / len(few)
    t_quantus = best_of(3, lambda: [quantus_mprt(loaded, few, m, quantus.similarity_func.correlation_spearman,
                                                 batch_size=len(few)) for m in maps]) / len(few)
    print(f"per image, {len(maps)} maps, {len(results[0].steps)} block steps / {len(mprt.cascade(loaded)) + 1} "
          f"module steps (best of 3): vitviz per block {t_block:.2f} s, per module {t_module:.2f} s, Quantus "
          f"{t_quantus:.2f} s ({t_quantus / t_module:.1f}× and {t_quantus / t_block:.1f}×)")


if __name__ == "__main__":
    measure()
