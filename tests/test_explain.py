"""Class-specific maps, faithfulness and embedding filters."""

import numpy as np
import pytest
import torch

from vitviz import attention as A
from vitviz import methods, models
from vitviz.analysis import analyze, embedding_filters
from vitviz.evidence import perturb
from vitviz.methods.attention_maps import random_map

from .conftest import random_attention


def test_chefer_on_one_layer_with_unit_gradients():
    att = random_attention(1, 3, 5)
    r = A.chefer_relevance(att, torch.ones_like(att))
    assert torch.allclose(r, torch.eye(5) + att[0].mean(0), atol=1e-6)


def test_chefer_keeps_only_positive_gradient_times_attention():
    att = random_attention(2, 2, 4)
    r = A.chefer_relevance(att, -torch.ones_like(att))          # every product negative: nothing added
    assert torch.allclose(r, torch.eye(4))


def test_grad_rollout_with_unit_gradients_is_mean_rollout():
    att = random_attention(3, 4, 6)
    assert torch.allclose(A.grad_rollout_matrix(att, torch.ones_like(att)), A.rollout_matrix(att, "mean"), atol=1e-6)


def hook_count(model) -> int:
    """transformers registers hooks of its own (output capturing); we only check we add none."""
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_regression_no_stale_gradients_between_calls(tiny_vit_dir, photo):
    """Popular implementations keep hooks and .grad between requests, so the second map mixes
    in the first one's gradients. Two calls in a row must equal two fresh computations."""
    loaded = models.load(tiny_vit_dir, "cpu", "float32")
    an = analyze(loaded, photo)
    hooks = hook_count(loaded.model)
    first = methods.class_maps(loaded, an, 0, methods.class_specific())
    second = methods.class_maps(loaded, an, 3, methods.class_specific())
    assert hook_count(loaded.model) == hooks
    assert all(p.grad is None for p in loaded.model.parameters())
    models.clear_cache()
    fresh = models.load(tiny_vit_dir, "cpu", "float32")
    an_fresh = analyze(fresh, photo)
    fresh_second = methods.class_maps(fresh, an_fresh, 3, methods.class_specific())
    fresh_first = methods.class_maps(fresh, an_fresh, 0, methods.class_specific())
    assert set(first) == set(methods.class_specific())
    for method in methods.class_specific():
        assert torch.allclose(second[method], fresh_second[method], atol=1e-6)
        assert torch.allclose(first[method], fresh_first[method], atol=1e-6)
        assert not torch.allclose(first[method], second[method])


def test_class_map_shape_and_bad_target(tiny_loaded, photo):
    an = analyze(tiny_loaded, photo)
    assert methods.class_maps(tiny_loaded, an, 1, ("chefer",))["chefer"].shape == an.grid
    with pytest.raises(ValueError, match="target class"):
        methods.class_maps(tiny_loaded, an, 99, ("chefer",))
    with pytest.raises(ValueError, match="method"):
        methods.class_maps(tiny_loaded, an, 1, ("gradcam++",))


def test_perturbation_removes_the_most_relevant_pixels_first():
    x = torch.ones(3, 8, 8)
    rel = np.zeros((2, 2), dtype=np.float32)
    rel[1, 1] = 1.0                                             # bottom-right quarter is relevant
    steps = perturb.perturbed_inputs(x, rel, fractions=[0.0, 0.25])
    assert torch.equal(steps[0], x)                             # 0% removed
    assert (steps[1][:, 4:, 4:] == 0).all() and (steps[1][:, :4, :4] == 1).all()
    assert (steps[3][:, 4:, 4:] == 1).all()                     # negative: least relevant removed first
    assert int((steps[1] == 0).sum()) == 3 * 16


def test_auc_of_a_constant_curve_is_its_level():
    assert perturb.auc(np.full(10, 0.7)) == pytest.approx(0.7)
    assert perturb.auc(np.linspace(1, 0, 10)) == pytest.approx(0.5)


def test_faithfulness_curves_on_the_tiny_model(tiny_loaded, photo):
    an = analyze(tiny_loaded, photo)
    res = perturb.curves(tiny_loaded, an, {"rollout": A.rollout(an.att(), 1, an.grid).numpy(),
                                           "random": random_map(an)})
    for r in res.values():
        assert r["positive"].shape == (10,) and r["negative"].shape == (10,)
        assert r["positive"][0] == pytest.approx(r["negative"][0])            # nothing removed yet
        assert r["positive"][0] == pytest.approx(an.probs.max(), abs=1e-4)


def test_embedding_filters_find_the_dominant_direction():
    from transformers import ViTConfig, ViTForImageClassification

    model = ViTForImageClassification(ViTConfig(image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=1,
                                                num_attention_heads=4, intermediate_size=32))
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(3 * 4 * 4, generator=g)
    weights = torch.randn(32, 1, generator=g) * 5 * direction[None] + 0.01 * torch.randn(32, 48, generator=g)
    with torch.no_grad():
        model.vit.embeddings.patch_embeddings.projection.weight.copy_(weights.reshape(32, 3, 4, 4))
    f = embedding_filters(model, k=5)
    assert f.shape == (5, 4, 4, 3) and f.min() >= 0 and f.max() <= 1
    first = torch.from_numpy(f[0]).permute(2, 0, 1).flatten()
    corr = np.corrcoef(first.numpy(), direction.numpy())[0, 1]
    assert abs(corr) > 0.99


def test_pointing_score():
    from vitviz.evidence.pointing import pointing

    mask = np.zeros((8, 8), dtype=bool)
    mask[:, :4] = True
    assert pointing(np.array([[1.0, 0.0]]), mask) > 0.7
    assert pointing(np.ones((2, 2)), mask) == pytest.approx(0.5)


def test_one_sample_gets_every_method_and_its_own_random_map(tiny_loaded):
    """A sample's record: whether the label survives each removal step, per map and direction."""
    from PIL import Image

    from vitviz.evidence.sample import EvalSettings, evaluate_sample, metrics, perturbation_model

    rng = np.random.default_rng(0)
    raw = np.zeros((28, 28), dtype=np.uint8)
    raw[6:20, 8:22] = rng.integers(50, 255, (14, 14))
    image = Image.fromarray(raw).convert("RGB")
    settings = EvalSettings(model="tiny", data="test", steps=6)
    fast = perturbation_model(tiny_loaded)
    a = evaluate_sample(tiny_loaded, fast, image, 0, raw > 0, 3, settings)
    b = evaluate_sample(tiny_loaded, fast, image, 0, raw > 0, 4, settings)
    assert set(a["pos"]) == set(settings.methods) and len(a["pos"]["chefer"]) == 6
    assert all(a["pos"][m][0] == a["neg"][m][0] == int(a["pred"] == 0) for m in settings.methods)
    assert 0 <= a["pointing"]["rollout_mean"] <= 1
    assert a["pos"]["raw"] == b["pos"]["raw"]                           # only the random map depends on the index
    res = metrics([a, b], settings)
    assert {"Chefer generic", "gradient rollout", "rollout (mean)", "random", "DINO head mean"} <= set(res)
    for r in res.values():
        assert 0 <= r["pos_auc"] <= 100 and 0 <= r["neg_auc"] <= 100 and 0 <= r["pointing"] <= 100


def test_perturbation_model_matches_the_eager_one(tiny_loaded, photo):
    """The perturbed copies run with fused attention: same predictions, the shared model untouched."""
    from vitviz.analysis import forward
    from vitviz.evidence.sample import perturbation_model

    fast = perturbation_model(tiny_loaded)
    x = analyze(tiny_loaded, photo).pixel_values[None]
    with torch.no_grad():
        a = forward(tiny_loaded, x, output_attentions=False).logits
        b = forward(fast, x, output_attentions=False).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert tiny_loaded.model.config._attn_implementation == "eager"
