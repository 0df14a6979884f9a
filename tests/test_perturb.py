"""The perturbation curves (vitviz.evidence.perturb) against Quantus's pixel flipping (quantus.PixelFlipping,
Bach et al. 2015 as Quantus implements it): removing the same pixels in the same order, with the same
baseline, both give the same probabilities of the class; vitviz's batched pass is faster than
Quantus's step-by-step loop (printed, not asserted)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from vitviz import methods
from vitviz.analysis import analyze
from vitviz.core import ranking
from vitviz.evidence import perturb

quantus = pytest.importorskip("quantus", reason="quantus is a test dependency (requirements-dev.txt)")

SIZE = (40, 40)            # 1,600 pixels: every 10 % step removes a whole number of them (160)


class Logits(torch.nn.Module):
    """The loaded model as Quantus calls a torch model: pixels in, class logits out."""

    def __init__(self, loaded):
        super().__init__()
        self.model = loaded.model

    def forward(self, x):
        return self.model(pixel_values=x, interpolate_pos_encoding=True).logits


def quantus_curve(loaded, an, relevance, target: int) -> np.ndarray:
    """Quantus's pixel flipping of one image: the class's probability after each tenth of the pixels goes.
    Its features are (channel, pixel) entries; the pixels' order is vitviz's (quantised relevance, ties
    by index), handed over as strictly decreasing scores, a pixel's three channels one after another, so
    that both remove the same pixels."""
    h, w = SIZE
    rank = np.empty(h * w)
    rank[ranking.pixel_order(relevance, SIZE).numpy()] = np.arange(h * w)
    channel = np.arange(3).reshape(3, 1, 1)
    scores = -(3 * rank.reshape(1, h, w) + channel)[None].astype(np.float32)    # (1, 3, H, W), most relevant first
    # Quantus asks its step to divide H·W and removes that many (channel, pixel) entries a step: three
    # of its steps remove a tenth of the pixels, all channels of each
    metric = quantus.PixelFlipping(features_in_step=h * w // 10, perturb_baseline=0.0, normalise=False,
                                   abs=False, disable_warnings=True)
    x = an.pixel_values[None].numpy()
    steps = metric(Logits(loaded).eval(), x, np.array([target]), a_batch=scores, softmax=True, device="cpu",
                   channel_first=True)[0]
    return np.asarray(steps)[2::3]


@pytest.mark.parametrize("method", ["chefer", "rollout_mean", "random"])
def test_the_positive_curve_equals_quantus_pixel_flipping(tiny_loaded, photo, method):
    an = analyze(tiny_loaded, photo, SIZE)
    target = int(np.argmax(an.probs))
    relevance = methods.maps(tiny_loaded, an, (method,), target)[method]
    ours = perturb.curves(tiny_loaded, an, {method: relevance}, target, fill="mean")[method]["positive"]
    theirs = quantus_curve(tiny_loaded, an, relevance, target)
    assert len(theirs) == 10
    # vitviz: fractions 0, 0.1, ..., 0.9 removed; Quantus: 0.1, ..., 1.0 (the last step removes everything)
    np.testing.assert_allclose(ours[1:], theirs[:9], atol=1e-5)
    probs = torch.softmax(Logits(tiny_loaded)(an.pixel_values[None]), -1)[0, target]
    assert abs(ours[0] - float(probs)) < 1e-5


def test_the_comparison_tells_another_order_apart(tiny_loaded, photo):
    """Quantus given the reversed order (least relevant first) removes other pixels: the positive curves
    differ, so the equality above can fail."""
    an = analyze(tiny_loaded, photo, SIZE)
    target = int(np.argmax(an.probs))
    relevance = methods.maps(tiny_loaded, an, ("chefer",), target)["chefer"]
    positive = perturb.curves(tiny_loaded, an, {"m": relevance}, target, fill="mean")["m"]["positive"]
    assert not np.allclose(positive[1:], quantus_curve(tiny_loaded, an, -relevance, target)[:9], atol=1e-5)


def test_the_batched_curves_are_faster_than_quantus_loop(tiny_loaded, photo, capsys):
    an = analyze(tiny_loaded, photo, SIZE)
    target = int(np.argmax(an.probs))
    maps = methods.maps(tiny_loaded, an, ("chefer", "rollout_mean", "raw", "random"), target)
    t0 = time.perf_counter()
    perturb.curves(tiny_loaded, an, maps, target, fill="mean")
    ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    for m in maps.values():
        quantus_curve(tiny_loaded, an, m, target)
    theirs = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\nperturbation curves of 4 maps, tiny ViT at {SIZE[0]}x{SIZE[1]}: vitviz {ours * 1000:.0f} ms, "
              f"Quantus {theirs * 1000:.0f} ms ({theirs / ours:.1f}x)")
    assert ours > 0 and theirs > 0
