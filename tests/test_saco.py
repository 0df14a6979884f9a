"""SaCo (Wu et al., CVPR 2024) against the paper's procedure written out here, independently of
vitviz: the groups (every pixel in one of K groups ranked by salience, sizes differing by at most
one), the coefficient by hand, and what a random map scores under each grouping convention."""

import numpy as np
import pytest
import torch
from scipy import stats

from vitviz.evidence import saco

# ---------------------------------------------------------------- the paper's procedure, written out


def paper_groups(salience: np.ndarray, k: int) -> list[list[int]]:
    """The paper's split: pixels (row-major indices) ranked by salience, most salient first, cut
    into k consecutive runs whose sizes differ by at most one, the larger runs first."""
    flat = salience.ravel().tolist()
    ranked = sorted(range(len(flat)), key=lambda p: -flat[p])
    base, extra = divmod(len(ranked), k)
    out, start = [], 0
    for i in range(k):
        size = base + 1 if i < extra else base
        out.append(ranked[start:start + size])
        start += size
    return out


def reference_coefficient(s_G: list[float], pred_x_G: list[float]) -> float:
    """adreamwu/SaCo compute_SaCo.py: the pairwise loop as the reference writes it."""
    F, total_weight = 0.0, 0.0
    K = len(s_G)
    for i in range(K - 1):
        for j in range(i + 1, K):
            if pred_x_G[i] >= pred_x_G[j]:
                weight = s_G[i] - s_G[j]
            else:
                weight = -(s_G[i] - s_G[j])
            F += weight
            total_weight += abs(weight)
    return F / total_weight


def reference_saco(model, x: torch.Tensor, salience: np.ndarray, k: int, fill: torch.Tensor, target: int):
    """SaCo of one input x (3, H, W) and a pixel salience map (H, W): remove each group (its pixels
    become `fill`, (3,)), the drop of the target's probability, then the coefficient.
    Returns (F, drops)."""
    w = x.shape[-1]
    flat = salience.ravel().tolist()
    copies, s_G = [x], []
    for group in paper_groups(salience, k):
        removed = x.clone()
        for pixel in group:
            removed[:, pixel // w, pixel % w] = fill
        copies.append(removed)
        s_G.append(float(sum(flat[p] for p in group)))
    with torch.no_grad():
        p = model(pixel_values=torch.stack(copies)).logits.float().softmax(-1)[:, target].double().numpy()
    drops = [p[0] - p[1 + i] for i in range(k)]
    return reference_coefficient(s_G, drops), np.array(drops)


def distinct_salience(rng, size: tuple[int, int]) -> np.ndarray:
    """A pixel map (H, W) of distinct integers from 0 to 100 000, both ends present: vitviz's
    rounding to 1e-5 of the range (vitviz.core.ranking) leaves it as it is, and no two pixels tie."""
    n = size[0] * size[1]
    values = np.concatenate([[0, 100_000], rng.choice(np.arange(1, 100_000), n - 2, replace=False)])
    return rng.permutation(values).reshape(size).astype(np.float64)


# ---------------------------------------------------------------- equal to the reference on a model


@pytest.mark.parametrize("k", [10, 7])
def test_saco_equals_the_papers_procedure_on_a_model(tiny_loaded, photo, k):
    from vitviz.analysis import analyze

    an = analyze(tiny_loaded, photo)
    size = tuple(an.pixel_values.shape[-2:])                          # 32×32: 1024 pixels, k does not divide
    assert size[0] * size[1] % k != 0
    black = (0.0 - torch.tensor(tiny_loaded.spec.mean)) / torch.tensor(tiny_loaded.spec.std)
    target = int(np.argmax(an.probs))
    rng = np.random.default_rng(k)
    maps = {f"map{i}": distinct_salience(rng, size) for i in range(3)}   # pixel maps: enlarging keeps them
    ours = saco.saco_scores(tiny_loaded, an, maps, target, fill="black", k=k)
    old = saco.saco_scores(tiny_loaded, an, maps, target, fill="black", k=k, convention="equal")
    for name, salience in maps.items():
        expected, drops = reference_saco(tiny_loaded.model, an.pixel_values, salience, k, black, target)
        gaps = np.abs(drops[:, None] - drops[None])[np.triu_indices(k, 1)]
        assert gaps.min() > 1e-6                      # float noise (~1e-7) cannot flip a comparison
        assert ours[name]["drops"] == pytest.approx(drops, abs=1e-6)
        assert ours[name]["saco"] == pytest.approx(expected, abs=1e-9)
        assert abs(old[name]["saco"] - expected) > 1e-6      # the old grouping would fail this test


def test_a_patch_map_with_roads_imputation(tiny_loaded, photo):
    """A (gh, gw) map is enlarged to the pixels before grouping; ROAD fills the removed pixels."""
    from vitviz.analysis import analyze

    an = analyze(tiny_loaded, photo)
    res = saco.saco_scores(tiny_loaded, an, {"random": np.random.default_rng(0).random(an.grid)}, fill="road", k=5)
    r = res["random"]
    assert -1 <= r["saco"] <= 1 and r["drops"].shape == (5,) and list(r["saliences"]) == sorted(r["saliences"])[::-1]


# ---------------------------------------------------------------- the groups


@pytest.mark.parametrize("size,k", [((32, 32), 10), ((28, 28), 10), ((7, 9), 10), ((5, 5), 5), ((3, 4), 5)])
def test_every_pixel_is_in_one_group_ranked_by_salience(size, k):
    rng = np.random.default_rng(size[0] * 100 + k)
    salience = distinct_salience(rng, size)
    group, sums = saco.groups(salience, size, k)
    assert group.shape == (size[0] * size[1],) and group.min() == 0 and group.max() == k - 1
    counts = np.bincount(group, minlength=k)
    assert counts.max() - counts.min() <= 1 and list(counts) == sorted(counts, reverse=True)
    assert [sorted(np.flatnonzero(group == i)) for i in range(k)] == [sorted(g) for g in paper_groups(salience, k)]
    flat = salience.ravel()
    for i in range(k - 1):                                           # every pixel of G_i above every one of G_i+1
        assert flat[group == i].min() > flat[group == i + 1].max()
    assert sums.tolist() == [int(flat[group == i].sum()) for i in range(k)]


def test_groups_of_eleven_pixels_by_hand():
    salience = np.arange(11, dtype=np.float64)[None] * 10_000           # pixel p: p·10⁴, exact after rounding
    group, sums = saco.groups(salience, (1, 11), k=4)                  # 11 = 3 + 3 + 3 + 2
    assert group.tolist() == [3, 3, 2, 2, 2, 1, 1, 1, 0, 0, 0]
    assert sums.tolist() == [27 * 10_000, 18 * 10_000, 9 * 10_000, 1 * 10_000]
    group, sums = saco.groups(salience, (1, 11), k=4, convention="equal")   # 2 each, 3 left out
    assert group.tolist() == [-1, -1, -1, 3, 3, 2, 2, 1, 1, 0, 0]
    assert sums.tolist() == [19 * 10_000, 15 * 10_000, 11 * 10_000, 7 * 10_000]


def test_conventions_are_named_and_the_default_is_the_papers():
    assert saco.DEFAULT == "paper" and set(saco.CONVENTIONS) == {"paper", "equal"}
    for name, c in saco.CONVENTIONS.items():
        assert c.name == name and c.reference and c.does
    assert "compute_SaCo.py" in saco.CONVENTIONS["paper"].reference
    with pytest.raises(ValueError, match="'paper', 'equal'"):
        saco.groups(np.zeros((2, 2)), (4, 4), convention="exact")
    with pytest.raises(ValueError, match="groups must be in"):
        saco.groups(np.zeros((2, 2)), (4, 4), k=17)
    assert saco.group_sizes(784, 10).tolist() == [79] * 4 + [78] * 6
    assert saco.group_sizes(784, 10, "equal").tolist() == [78] * 10


# ---------------------------------------------------------------- the coefficient by hand


def test_the_coefficient_by_hand():
    # s = [10, 6, 3, 1], drops = [0.5, 0.6, 0.1, 0.2]; pairs i<j, weight s_i - s_j, + if drop_i >= drop_j:
    # (0,1) 4: 0.5 < 0.6 -> -4 · (0,2) 7: +7 · (0,3) 9: +9 · (1,2) 3: +3 · (1,3) 5: +5 · (2,3) 2: 0.1 < 0.2 -> -2
    # F = (-4 + 7 + 9 + 3 + 5 - 2) / (4 + 7 + 9 + 3 + 5 + 2) = 18 / 30 = 0.6
    assert saco.coefficient([10, 6, 3, 1], [0.5, 0.6, 0.1, 0.2]) == pytest.approx(0.6)
    # the groups of eleven pixels above, s = [27, 18, 9, 1]: (0,1) 9: 0.3 < 0.4 -> -9 · (0,2) +18 · (0,3) +26
    # · (1,2) +9 · (1,3) +17 · (2,3) 8: 0.1 < 0.2 -> -8;  F = 53 / 87
    assert saco.coefficient([27, 18, 9, 1], [0.3, 0.4, 0.1, 0.2]) == pytest.approx(53 / 87)
    assert saco.coefficient([3, 2, 1], [0.1, 0.1, 0.1]) == 1.0               # equal drops agree (>=)
    assert saco.coefficient([3, 2, 1], [0.0, 0.1, 0.2]) == -1.0
    assert np.isnan(saco.coefficient([1, 1, 1], [0.3, 0.2, 0.1]))           # a constant map has no order
    rng = np.random.default_rng(0)
    for _ in range(20):
        s, d = np.sort(rng.random(10))[::-1], rng.random(10)
        assert saco.coefficient(s, d) == pytest.approx(reference_coefficient(list(s), list(d)), abs=1e-12)


# ---------------------------------------------------------------- a random map


def additive_saco(rng, size: tuple[int, int], convention: str, n: int) -> tuple[np.ndarray, float, float]:
    """SaCo of n random maps on n synthetic "models" whose confidence drop is the summed importance
    of the removed pixels (a new importance map each time). Returns (scores, faithful, inverted):
    the last two from the last case's true importance map and its negative."""
    def score(salience, importance):
        group, sums = saco.groups(salience, size, 10, convention)
        drops = np.bincount(group + 1, weights=importance.ravel(), minlength=11)[1:]   # group -1: never removed
        return saco.coefficient(sums, drops)

    scores = []
    for _ in range(n):
        importance = rng.gamma(0.5, size=size)
        scores.append(score(rng.random(size), importance))
    return np.array(scores), score(importance, importance), score(-importance, importance)


def interval(scores: np.ndarray) -> tuple[float, float]:
    """95 % t-interval of the mean."""
    half = stats.t.ppf(0.975, len(scores) - 1) * scores.std(ddof=1) / np.sqrt(len(scores))
    return scores.mean() - half, scores.mean() + half


@pytest.mark.parametrize("convention", ["paper", "equal"])
def test_a_random_map_scores_zero_on_average_and_the_true_one_one(convention):
    """Groups of 78 or 79 pixels (28×28, K = 10, the bundled model's input)."""
    scores, faithful, inverted = additive_saco(np.random.default_rng(0), (28, 28), convention, 300)
    lo, hi = interval(scores)
    assert lo < 0 < hi and scores.std() > 0.2
    assert faithful == 1.0 and inverted == -1.0


def test_the_papers_larger_first_groups_lift_a_random_map_when_groups_are_small():
    """Why "equal" stays a named variant: with groups of 6 or 7 pixels (7×9, K = 10) the groups holding
    the extra pixel are the most salient ones and take more away, so a random map scores above 0;
    equal groups are exchangeable for a random map, so its mean is 0."""
    rng = np.random.default_rng(1)
    lo, _ = interval(additive_saco(rng, (7, 9), "paper", 300)[0])
    assert lo > 0
    lo, hi = interval(additive_saco(rng, (7, 9), "equal", 300)[0])
    assert lo < 0 < hi
