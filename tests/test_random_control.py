"""The random map as a control: a metric that cannot tell a map from noise shows it here. Over real
images, every score of a random map has a 95 % interval that covers its chance value (SaCo 0; the gap
between the negative and the positive AUC 0; pointing's excess over the object's share of the image 0),
and a real map's interval does not cover it; the evaluation's table prints the random row's intervals."""

from __future__ import annotations

import numpy as np
import pytest

from vitviz import data, models
from vitviz.core.paths import BUNDLED_DIR
from vitviz.evidence.sample import EvalSettings, evaluate_sample, interval, intervals, perturbation_model

N = 60


@pytest.fixture(scope="module")
def records():
    if not (data.FASHION_MNIST_DIR.exists() and (BUNDLED_DIR / "config.json").exists()):
        pytest.skip("needs Debian's Fashion-MNIST and the bundled model")
    loaded = models.load("bundled", "cpu", "float32")
    fast = perturbation_model(loaded)
    samples = data.FashionMNISTSamples(data.FASHION_MNIST_DIR, "t10k")
    s = EvalSettings(model="bundled", data=samples.name, methods=("chefer", "random"), metrics=("saco",))
    return s, [evaluate_sample(loaded, fast, *samples.sample(i), i, s) for i in range(N)]


def test_a_random_maps_scores_cover_their_chance_values(records):
    s, recs = records
    spread = intervals(recs, "random", s)
    for score in ("saco", "gap", "pointing_excess"):
        mean, half = spread[score]
        assert mean - half <= 0 <= mean + half, (score, mean, half)


def test_a_real_maps_scores_do_not(records):
    """Chefer's map is told from noise by every one of these scores (so the check above can fail)."""
    s, recs = records
    spread = intervals(recs, "chefer", s)
    for score in ("saco", "gap", "pointing_excess"):
        mean, half = spread[score]
        assert mean - half > 0, (score, mean, half)


def test_the_interval_is_students_t():
    v = np.array([1.0, 2.0, 3.0, 4.0])
    mean, half = interval(v)
    assert mean == 2.5 and half == pytest.approx(3.182446305284263 * v.std(ddof=1) / 2)
    assert interval([5.0]) is None
