"""Position-embedding similarity and rendering: self-similarity is 1, maps line up with the photo."""

import numpy as np
import pytest
import torch
from PIL import Image

from vitviz import posemb
from vitviz.pictures import render as R


def test_a_patch_is_most_similar_to_itself(tiny_loaded):
    pos, grid = posemb.position_embeddings(tiny_loaded.model)
    assert grid == (4, 4) and pos.shape == (16, 32)
    sim = posemb.similarity(pos)
    assert torch.allclose(sim.diagonal(), torch.ones(16), atol=1e-5)
    assert (sim <= 1 + 1e-5).all() and torch.allclose(sim, sim.T, atol=1e-6)


def test_position_embeddings_skip_the_prefix_tokens(tiny_deit_dir):
    from vitviz import models

    loaded = models.load(tiny_deit_dir, "cpu", "float32")
    full = loaded.model.base_model.embeddings.position_embeddings[0]      # [CLS], [DIST], 16 patches
    pos, _ = posemb.position_embeddings(loaded.model)
    assert torch.equal(pos, full[2:].float())


def test_beit_has_no_absolute_positions():
    from transformers import BeitConfig, BeitForImageClassification

    cfg = BeitConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                     intermediate_size=64, use_relative_position_bias=True, use_absolute_position_embeddings=False)
    with pytest.raises(posemb.NoAbsolutePositions, match="relative position bias"):
        posemb.position_embeddings(BeitForImageClassification(cfg))


def test_interpolation_keeps_a_linear_ramp_and_the_same_grid():
    gh, gw = 4, 6
    ys, xs = torch.meshgrid(torch.arange(gh).float(), torch.arange(gw).float(), indexing="ij")
    pos = torch.stack([ys.flatten(), xs.flatten(), torch.ones(gh * gw)], -1)   # (P, 3)
    assert torch.equal(posemb.interpolate(pos, (gh, gw), (gh, gw)), pos)
    big = posemb.interpolate(pos, (gh, gw), (8, 12))
    assert big.shape == (96, 3)
    grid = big.reshape(8, 12, 3)
    assert (grid[1:-1, :, 0].diff(dim=0) > 0).all()          # rows still increase downwards
    assert (grid[:, 1:-1, 1].diff(dim=1) > 0).all()          # columns still increase rightwards


def test_upsampled_map_peaks_inside_its_patch():
    """A map lights one patch: the brightest pixels must be in that patch of the image."""
    m = np.zeros((3, 5))
    m[1, 3] = 1.0
    up = R.upsample(m, (30, 50))
    y, x = np.unravel_index(up.argmax(), up.shape)
    assert 10 <= y < 20 and 30 <= x < 40
    assert up[15, 35] == pytest.approx(up.max(), abs=0.05)


def test_overlay_on_upload_keeps_the_photo_aspect_and_dims_outside_the_box():
    photo = Image.new("RGB", (400, 200), (200, 200, 200))
    m = np.ones((2, 2))
    out = R.overlay_on_upload(photo, (100, 0, 300, 200), m, alpha=0.0)
    assert out.shape == (200, 400, 3)
    assert np.all(out[:, 120:280] == 200)                    # inside the box: the photo itself (alpha 0)
    assert np.all(out[:, :80] < 100)                         # outside: dimmed
    small = R.overlay_on_upload(Image.new("RGB", (28, 14)), (0, 0, 28, 14), m)
    assert small.shape == (112, 224, 3)                      # tiny uploads are enlarged, aspect kept


def test_colorize_uses_the_colormap_ends():
    lut = R.lut("inferno")
    rgb = R.colorize(np.array([[0.0, 1.0]]))
    assert (rgb[0, 0] == lut[0]).all() and (rgb[0, 1] == lut[255]).all()
    fixed = R.colorize(np.array([[0.0]]), vmin=-1, vmax=1)
    assert (fixed[0, 0] == lut[128]).all()


def test_similarity_grid_has_one_tile_per_patch():
    sim = torch.eye(6)
    img = R.similarity_grid(sim, (2, 3), size=300)
    assert img.ndim == 3 and img.shape[1] >= img.shape[0]


def test_mark_patch_outlines_the_right_cell():
    img = np.zeros((40, 60, 3), dtype=np.uint8)
    out = R.mark_patch(img, 4, (2, 3))                       # row 1, column 1
    ys, xs = np.nonzero(out.any(-1))
    assert ys.min() == 20 and xs.min() == 20 and xs.max() == 39
