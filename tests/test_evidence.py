"""The evidence beside each map and the logit lens's patch read-out: tables by rows and columns,
the fill ranking by hand, the sanity check's memory refusal, the object mask, and each patch's top
class against a forward written out by hand."""

import numpy as np
import pytest
import torch

from vitviz import lens, models
from vitviz.analysis import analyze
from vitviz.core import limits
from vitviz.core.limits import RequestRefused
from vitviz.evidence import measure, pointing, road
from vitviz.evidence import mprt as sanity
from vitviz.evidence import table as evidence
from vitviz.pictures import evidence as sanity_views
from vitviz.pictures import lens as lens_views


def curves(pos: float, neg: float) -> dict:
    return {"auc_pos": pos, "auc_neg": neg, "positive": np.full(10, pos), "negative": np.full(10, neg)}


FAITH = {"chefer": curves(0.20, 0.80), "rollout_mean": curves(0.30, 0.60), "random": curves(0.50, 0.50)}


# ---------------------------------------------------------------- the evidence table

def test_the_evidence_table_has_a_row_per_map_and_a_column_per_measure_made():
    saco = {"chefer": {"saco": 0.5}, "rollout_mean": {"saco": -0.25}, "random": {"saco": 0.0}}
    mprt = {"chefer": [1.0, 0.4, 0.1], "rollout_mean": [1.0, 0.9, 0.8], "random": [1.0, 1.0, 1.0]}
    ev = evidence.evidence(FAITH, saco, mprt, {"chefer": 0.7, "rollout_mean": 0.6, "random": 0.5})
    assert ev.columns == ("auc_pos", "auc_neg", "saco", "mprt", "pointing")
    assert list(ev.rows) == ["chefer", "rollout_mean", "random"]                     # the random map is a row
    assert ev.rows["chefer"] == pytest.approx({"auc_pos": 20.0, "auc_neg": 80.0, "saco": 0.5, "mprt": 0.1,
                                               "pointing": 70.0})
    assert ev.rows["random"]["mprt"] == 1.0                                          # full randomisation: the last
    table = evidence.evidence_table(ev, "en").splitlines()
    assert table[0] == ("| map | positive AUC ↓ | negative AUC ↑ | SaCo ↑ | MPRT: Spearman, whole model random ↓ "
                        "| pointing (% on the object) ↑ |")
    assert table[2] == "| Chefer generic | 20.0 | 80.0 | 0.50 | 0.10 | 70.0 |"
    assert table[4] == "| random | 50.0 | 50.0 | 0.00 | 1.00 | 50.0 |" and len(table) == 5


def test_without_a_mask_or_a_sanity_check_their_columns_are_left_out():
    ev = evidence.evidence(FAITH, {n: {"saco": float("nan")} for n in FAITH})
    assert ev.columns == ("auc_pos", "auc_neg", "saco")
    korean = evidence.evidence_table(ev, "ko")
    assert "가리키기" not in korean and "MPRT" not in korean and "무작위" in korean
    assert "| 50.0 | 50.0 | – |" in korean                                           # undefined SaCo: a dash


# ---------------------------------------------------------------- the ranking under each fill

def test_the_fill_ranking_by_hand():
    by_fill = {"mean": FAITH,                                                    # gaps 60, 30, 0
               "black": {"chefer": curves(0.40, 0.50), "rollout_mean": curves(0.10, 0.70),   # 10, 60
                         "random": curves(0.45, 0.55)}}                                       # 10: a tie
    assert evidence.fill_ranks(by_fill) == {"mean": {"chefer": 1, "rollout_mean": 2, "random": 3},
                                            "black": {"chefer": 2, "rollout_mean": 1, "random": 2}}
    assert evidence.rank_changes(by_fill) == ["chefer", "rollout_mean", "random"]
    rows = evidence.fill_table(by_fill, "en").splitlines()
    assert rows[0] == "| map | data mean | black |"
    assert rows[2] == "| Chefer generic | 1 (60.0) | 2 (10.0) |"
    assert evidence.rank_changes({"mean": FAITH, "black": FAITH}) == []


@pytest.mark.parametrize("side", [28, 64, 128])
def test_road_bytes_hold_the_factors_of_the_worst_mask(side):
    """Every pixel but one removed: the sparse factors alone (a value and an index per entry) fit in the
    estimate for one thread, which also covers SuperLU's work arrays."""
    copies = max(1, road.CHUNK_PIXELS // side ** 2)
    removed = np.ones((copies, side, side), dtype=bool)
    removed[:, 0, 0] = False
    pixel = road.unknowns(removed)
    factors = road.factorise(road.system(removed, pixel))
    assert (factors.L.nnz + factors.U.nnz) * 12 < measure.road_bytes((side, side), threads=1)


def test_road_is_offered_where_its_memory_fits_the_budget():
    small, mid, large = (28, 28), (224, 224), (448, 448)
    assert measure.road_bytes(small) < measure.road_bytes(mid) < measure.road_bytes(large)
    assert measure.road_bytes(mid, threads=2) == pytest.approx(2 * measure.road_bytes(mid, threads=1), abs=2)
    assert measure.road_seconds(small) < measure.road_seconds(mid) < measure.road_seconds(large)
    budget = measure.road_bytes(mid)
    assert measure.road_allowed(small, budget) and measure.road_allowed(mid, budget)
    assert not measure.road_allowed(large, budget)
    measure.check_fill("road", mid, budget)
    measure.check_fill("mean", large, 1)
    with pytest.raises(RequestRefused) as refused:
        measure.check_fill("road", large, budget)
    assert refused.value.key == "err_road_size"
    assert refused.value.fields["need"] == limits.human_bytes(measure.road_bytes(large))
    assert refused.value.fields["limit"] == limits.human_bytes(budget)


# ---------------------------------------------------------------- pointing's mask

def test_a_garment_on_black_has_its_lit_pixels_as_the_object():
    seen = np.zeros((28, 28, 3), dtype=np.uint8)
    seen[5:20, 8:22] = 120
    mask = pointing.object_mask("fashion-mnist", seen)
    assert mask.sum() == 15 * 14 and mask[10, 10] and not mask[0, 0]
    assert pointing.object_mask("imagenet-1k", seen) is None                     # another data set: no mask
    photo = np.full((28, 28, 3), 200, dtype=np.uint8)
    assert pointing.object_mask("fashion-mnist", photo) is None                  # not on black: nothing says where
    points = pointing.pointing_scores({"inside": np.pad(np.ones((3, 3)), 2)[:7, :7], "flat": np.ones((7, 7))}, mask)
    assert points["inside"] > points["flat"] == pytest.approx(mask.mean(), abs=1e-6)
    assert pointing.pointing_scores({"flat": np.ones((7, 7))}, None) is None


# ---------------------------------------------------------------- the sanity check's budget

def test_the_sanity_check_is_refused_over_the_memory_budget(tiny_loaded):
    need = measure.sanity_bytes(tiny_loaded, (32, 32))
    copy = sanity.memory_bytes(tiny_loaded)
    assert need == copy + limits.request_bytes(limits.Shape.of(tiny_loaded), (32, 32), kind="class")
    assert copy == sum(p.numel() * 4 for p in tiny_loaded.model.parameters()) + sum(
        b.numel() * b.element_size() for b in tiny_loaded.model.buffers())
    assert measure.check_sanity_budget(tiny_loaded, (32, 32), need) == need
    with pytest.raises(RequestRefused) as refused:
        measure.check_sanity_budget(tiny_loaded, (32, 32), need - 1)
    assert refused.value.key == "err_memory_sanity" and refused.value.fields["limit"]
    assert measure.sanity_bytes(tiny_loaded, (64, 64)) > need                    # the class maps grow with the input


# ---------------------------------------------------------------- the patch read-out

def by_hand(model, x: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's hidden states of a ViT, block by block from the weights: (L+1) × (N, D)."""
    vit = model.vit
    h = vit.embeddings(x)
    out = [h[0]]
    for block in vit.layers:
        h = h + block.attention(block.layernorm_before(h))[0]
        h = h + block.mlp(block.layernorm_after(h))
        out.append(h[0])
    return out


def test_each_patchs_top_class_matches_the_head_on_that_token(tiny_loaded, photo):
    an = analyze(tiny_loaded, photo)
    r = lens.read_layers(tiny_loaded, an.pixel_values)
    steps, patches = an.num_layers + 1, an.grid[0] * an.grid[1]
    assert r.patch_class.shape == r.patch_prob.shape == (steps, patches) and r.logits.shape == (steps, 6)
    with torch.no_grad():
        hidden = by_hand(tiny_loaded.model, an.pixel_values[None])
        for layer, h in enumerate(hidden):
            probs = tiny_loaded.model.classifier(tiny_loaded.model.vit.layernorm(h[1:])).softmax(-1)   # (P, K)
            assert torch.equal(r.patch_class[layer], probs.argmax(-1)), layer
            assert torch.allclose(r.patch_prob[layer], probs.max(-1).values, atol=1e-5)
            cls = tiny_loaded.model.classifier(tiny_loaded.model.vit.layernorm(h[:1]))[0]
            assert torch.allclose(r.logits[layer], cls, atol=1e-5)
    assert torch.allclose(r.logits[-1].softmax(-1), torch.from_numpy(an.probs), atol=1e-6)


def test_a_distilled_deit_reads_each_token_through_both_heads(tiny_deit_dir, photo):
    loaded = models.load(tiny_deit_dir, "cpu", "float32")
    an = analyze(loaded, photo)
    with torch.no_grad():
        out = loaded.model(an.pixel_values[None], output_hidden_states=True)
        h = out.hidden_states[1]
        got = lens.token_logits(loaded, h, chunk_bytes=1)                           # one token at a time
        normed = loaded.model.deit.layernorm(h)
        want = (loaded.model.cls_classifier(normed) + loaded.model.distillation_classifier(normed)) / 2
    assert got.shape == want.shape == (1, an.prefix + an.grid[0] * an.grid[1], 6)
    assert torch.allclose(got, want, atol=1e-5)


# ---------------------------------------------------------------- pictures

def test_the_patch_map_colours_each_patch_by_its_class_and_lists_the_classes_present():
    classes = np.array([0, 0, 1, 3])                                              # a 2×2 grid
    colours = lens_views.palette(torch.tensor([[0, 0, 1, 3], [0, 2, 2, 2]]))
    assert list(colours) == [0, 2, 1, 3]                                          # most patches over all layers first
    seen = np.zeros((16, 16, 3), dtype=np.uint8)
    picture = lens_views.patch_class_map(seen, (2, 2), 8, classes, colours, {0: "cat", 1: "dog", 3: "car"}, "en",
                                         alpha=1.0)
    side = picture.shape[0]
    assert picture.shape[1] == side + lens_views.LEGEND_W
    top_right = picture[side // 4, 3 * side // 4 - 3]                             # inside patch 1 (class 0)
    bottom_left = picture[3 * side // 4, side // 4]                               # patch 2 (class 1)
    assert tuple(top_right) == colours[0] and tuple(bottom_left) == colours[1]


def test_the_sanity_picture_has_a_row_per_method():
    maps = {m: np.random.default_rng(i).random((4, 3, 3)) for i, m in enumerate(("chefer", "random"))}
    ones = {m: np.ones(4) for m in maps}
    one_row = sanity_views.sanity_picture({"chefer": maps["chefer"]}, ones, ones, "ko")
    two_rows = sanity_views.sanity_picture(maps, ones, ones, "en")
    row = two_rows.shape[0] - one_row.shape[0]
    assert row >= sanity_views.PLOT_H and two_rows.shape[1] == one_row.shape[1] and two_rows.dtype == np.uint8
