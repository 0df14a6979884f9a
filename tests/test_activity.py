"""Guess where it looks: drawings back to the patch grid, and the score, on masks with known answers."""

import numpy as np
import pytest

from vitviz import activity as act


def rgba(mask: np.ndarray) -> np.ndarray:
    """A drawing layer as the editor sends it: paint where mask, transparent elsewhere."""
    layer = np.zeros((*mask.shape, 4), dtype=np.uint8)
    layer[mask] = (204, 50, 50, 255)
    return layer


def test_a_quarter_drawn_over_a_two_by_two_grid():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True                                   # exactly the top-left patch
    cover = act.patch_cover(act.drawn_mask([rgba(mask)]), (2, 2), seen_hw=(32, 32))
    np.testing.assert_allclose(cover, [[1, 0], [0, 0]])
    s = act.score(np.array([[3.0, 1.0], [0.0, 0.0]]), cover)
    assert s.mass == pytest.approx(0.75) and s.peak_inside and s.peak == 0 and s.area == pytest.approx(0.25)


def test_a_scale_that_is_not_an_integer_shares_pixels_by_area():
    """3×3 drawing pixels over 2×2 patches: each patch spans 1.5 pixels a side (area 2.25)."""
    corner = np.zeros((3, 3), bool)
    corner[0, 0] = True                                   # wholly inside patch (0, 0)
    np.testing.assert_allclose(act.patch_cover(corner, (2, 2)), [[1 / 2.25, 0], [0, 0]])
    centre = np.zeros((3, 3), bool)
    centre[1, 1] = True                                   # a quarter of it in each patch
    np.testing.assert_allclose(act.patch_cover(centre, (2, 2)), np.full((2, 2), 0.25 / 2.25))


def test_cover_keeps_the_drawn_area_for_any_sizes():
    rng = np.random.default_rng(0)
    for h, w, gh, gw in [(448, 448, 14, 14), (337, 170, 7, 3), (30, 45, 4, 6), (5, 7, 4, 6)]:
        mask = rng.random((h, w)) < 0.3
        cover = act.patch_cover(mask, (gh, gw))
        assert cover.shape == (gh, gw) and cover.min() >= 0 and cover.max() <= 1
        assert cover.sum() * (h / gh) * (w / gw) == pytest.approx(mask.sum())
        assert act.score(rng.random((gh, gw)) + 0.01, cover).area == pytest.approx(mask.mean())


def test_the_peak_counts_when_half_its_patch_is_drawn():
    m = np.array([[0.0, 1.0], [0.2, 0.1]])                # the peak is patch 1 (top right)
    half, less = np.zeros((2, 2)), np.zeros((2, 2))
    half[0, 1], less[0, 1] = 0.5, 0.49
    assert act.score(m, half).peak_inside and not act.score(m, less).peak_inside
    s = act.score(m, half)
    assert s.peak == 1 and s.mass == pytest.approx(0.5 * 1.0 / 1.3)


def test_a_disc_drawn_on_the_enlarged_input_holds_a_map_inside_it():
    """A 224-pixel input shown at 448 with 14×14 patches of 32 drawn pixels: a map living only on
    patches wholly inside the disc scores 100 %; a map living only outside it, 0 %."""
    yy, xx = np.mgrid[:448, :448]
    disc = (yy - 200) ** 2 + (xx - 260) ** 2 < 120 ** 2
    cover = act.patch_cover(act.drawn_mask([rgba(disc)]), (14, 14), seen_hw=(224, 224))
    inside, outside = (cover == 1).astype(float), (cover == 0).astype(float)
    assert inside.sum() > 20 and outside.sum() > 100
    assert act.score(inside, cover).mass == pytest.approx(1.0) and act.score(inside, cover).peak_inside
    assert act.score(outside, cover).mass == 0.0 and not act.score(outside, cover).peak_inside
    assert act.score(inside, cover).area == pytest.approx(disc.mean())


def test_everything_and_nothing_drawn():
    m = np.random.default_rng(1).random((3, 5))
    full, empty = act.patch_cover(np.ones((30, 50), bool), (3, 5)), act.patch_cover(np.zeros((30, 50), bool), (3, 5))
    assert act.score(m, full).mass == pytest.approx(1.0) and act.score(m, full).area == pytest.approx(1.0)
    assert act.score(m, empty).mass == 0.0 and not act.score(m, empty).peak_inside


def test_negative_relevance_is_no_mass_and_ties_break_by_index():
    cover = np.array([[1.0, 0.0], [0.0, 0.0]])
    assert act.score(np.array([[-5.0, 1.0], [1.0, 2.0]]), cover).mass == 0.0
    assert act.score(np.ones((2, 2)), cover).peak == 0                       # a flat map: the first patch
    assert act.score(np.array([[1.0, 1.0 + 1e-9], [0, 0]]), cover).peak == 0  # float noise is a tie
    with pytest.raises(ValueError, match="positive mass"):
        act.score(np.zeros((2, 2)), cover)
    with pytest.raises(ValueError, match="shape"):
        act.score(np.ones((3, 2)), cover)


def test_layers_are_joined_and_bad_ones_refused():
    a, b = np.zeros((4, 6), bool), np.zeros((4, 6), bool)
    a[0, 0], b[3, 5] = True, True
    np.testing.assert_array_equal(act.drawn_mask([rgba(a), rgba(b)]), a | b)
    for layers in ([], [np.zeros((4, 6, 3), np.uint8)], [rgba(a), rgba(np.zeros((4, 5), bool))],
                   [np.zeros((act.MAX_SIDE + 1, 2, 4), np.uint8)]):
        with pytest.raises(ValueError, match="expected"):
            act.drawn_mask(layers)


def test_a_drawing_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="aspect ratio"):
        act.patch_cover(np.ones((30, 60), bool), (2, 2), seen_hw=(224, 224))
    act.patch_cover(np.ones((449, 448), bool), (14, 14), seen_hw=(224, 224))     # a pixel of rounding is fine


def test_reveal_outlines_the_drawing_and_marks_the_peak():
    picture = np.full((64, 64, 3), 128, np.uint8)
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True                               # drawn at half the picture's size
    out = act.reveal(picture, np.eye(4), mask, (4, 4), peak=0)
    assert out.shape == picture.shape
    assert (out[16:48, 16] == act.OUTLINE_RGB).all()      # the left edge, scaled to the picture
    assert (out[30, 30] != act.OUTLINE_RGB).any()         # not the inside
    assert (out[0, 0:16] == act.PEAK_RGB).all()           # the peak patch's frame


def test_what_a_closed_stroke_encloses_counts_as_drawn():
    yy, xx = np.mgrid[:100, :120]
    r = np.hypot(yy - 50, xx - 60)
    ring = (r > 20) & (r < 30)
    np.testing.assert_array_equal(act.drawn_mask([rgba(ring)]), r < 30)      # a circled region is all drawn
    np.testing.assert_array_equal(act.drawn_mask([rgba(ring)], fill=False), ring)
    c_shape = ring & ~((yy > 45) & (yy < 55) & (xx > 80))                    # a gap on the right: nothing enclosed
    np.testing.assert_array_equal(act.fill_enclosed(c_shape), c_shape)
    square = np.zeros((8, 8), bool)
    square[1:6, 1:6] = True
    square[2:5, 2:5] = False                                                 # a 3×3 hole inside a 5×5 frame
    filled = act.fill_enclosed(square)
    assert filled.sum() == 25 and filled[1:6, 1:6].all()
    edge = np.zeros((6, 6), bool)
    edge[:, 2] = True                                           # a line across the picture encloses nothing
    np.testing.assert_array_equal(act.fill_enclosed(edge), edge)
    np.testing.assert_array_equal(act.fill_enclosed(ring, max_steps=2), ring)   # too winding: left as drawn
