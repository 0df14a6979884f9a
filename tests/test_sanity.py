"""The sanity check (cascading randomisation): a copy is randomised top-down, the shared model never.
The default convention's agreement with Quantus and its cascade's order: tests/test_mprt.py."""

import numpy as np
import pytest
import torch

from vitviz.analysis import analyze
from vitviz.evidence import mprt as sanity
from vitviz.pictures import evidence as views

from .conftest import save_tiny, tiny_vit_config


def trained_like(model):
    """Weights unlike a fresh initialisation (LayerNorms not 1/0), as after training."""
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.3)


def test_the_blocks_cascade_randomises_a_copy_from_the_top(tmp_path):
    from vitviz import models

    config = tiny_vit_config()
    config.num_hidden_layers = 3
    path = save_tiny(tmp_path / "m", config=config, init=trained_like)
    loaded = models.load(path, "cpu", "float32")
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    r = sanity.Randomiser(loaded, seed=5, convention="blocks")
    original = loaded.blocks()
    labels = []
    for k, (label, copy) in enumerate(r.steps()):
        labels.append(label)
        blocks = copy.blocks()
        for i in range(3):
            same = all(torch.equal(a, b) for a, b in zip(blocks[i].parameters(), original[i].parameters()))
            assert same == (i < 3 - k), (k, i)                    # step k: exactly the top k blocks random
        assert torch.equal(copy.model.classifier.weight, loaded.model.classifier.weight)    # the head is kept
    assert labels == ["original", "block 2", "block 1", "block 0"]
    fresh = r.copy.blocks()[0]
    assert torch.equal(fresh.layernorm_before.weight, torch.ones(32))           # as at training start
    assert abs(float(fresh.attention.q_proj.weight.std()) - loaded.model.config.initializer_range) < 0.005
    again = sanity.Randomiser(loaded, seed=5, convention="blocks")
    list(again.steps())
    assert torch.equal(again.copy.blocks()[1].mlp.fc1.weight,
                       r.copy.blocks()[1].mlp.fc1.weight)               # the seed decides
    r.reset()
    assert all(torch.equal(a, b) for a, b in zip(r.copy.model.parameters(), loaded.model.parameters()))
    assert all(torch.equal(v, before[k]) for k, v in loaded.model.state_dict().items())   # shared model untouched
    assert sanity.memory_bytes(loaded, keep_random=True) > sanity.memory_bytes(loaded) >= loaded.weight_bytes()
    blocks = sum(p.numel() * 4 for p in loaded.blocks().parameters())           # kept as float32
    assert sanity.memory_bytes(loaded, True, "blocks") == loaded.weight_bytes() + blocks


def test_mprt_correlations_start_at_one_and_the_random_map_never_moves(tiny_loaded, photo):
    an = analyze(tiny_loaded, photo)
    res = sanity.mprt(tiny_loaded, an, ("rollout_mean", "chefer", "legrad", "random"), seed=1)
    # the default (Quantus's cascade): the trained model, the head and final norm, each block, the embeddings
    assert res.convention == "quantus"
    assert res.steps == ("original", "head", *[f"block {i}" for i in reversed(range(an.num_layers))], "embeddings")
    steps = an.num_layers + 3
    for m in res.methods:
        assert res.maps[m].shape == (steps, *an.grid)
        assert res.spearman[m].shape == res.ssim[m].shape == (steps,)
        assert res.spearman[m][0] == 1.0 and res.ssim[m][0] == 1.0
    assert np.allclose(res.spearman["random"], 1.0) and np.allclose(res.ssim["random"], 1.0)
    assert res.spearman["chefer"][-1] < 0.99                     # the learned weights mattered to this map
    assert res.target == int(np.argmax(an.probs))


def test_the_picture_names_each_step():
    steps = ("original", "head", "block 1", "block 0", "embeddings")
    assert views.step_ticks(steps) == ["0", "H", "2", "1", "E"]                    # blocks numbered from 1
    assert views.step_ticks(("original", "classifier", "vit.layernorm")) == ["0", "1", "2"]   # modules: numbered
    assert views.step_ticks(("original", "all")) == ["0", "A"]
    maps = {"chefer": np.random.default_rng(0).random((5, 3, 3))}
    ones = {"chefer": np.ones(5)}
    named = views.sanity_picture(maps, ones, ones, "en", steps=steps)
    assert named.shape == views.sanity_picture(maps, ones, ones, "en").shape and named.dtype == np.uint8
    with pytest.raises(ValueError):
        views.sanity_picture(maps, ones, ones, "en", steps=steps[:3])
