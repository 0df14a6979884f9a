"""Queries and keys of many photos (vitviz.heads.qk, AttentionViz): the vectors are the model's own
projections, the normalisation keeps every attention weight (the property the paper rests on), the
correlations on hand-built embeddings, the CSV of the command line, the public bounds and the view."""

from __future__ import annotations

import csv

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from ui import qk as view
from ui import upload
from vitviz.analysis import analyze_batch, forward
from vitviz.commands.qk import qk_command
from vitviz.core.i18n import say
from vitviz.core.limits import RequestRefused
from vitviz.heads import qk
from vitviz.service import qk as work

from .conftest import app_context


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qk")
    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        path = folder / f"p{i}.png"
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def analysed(tiny_loaded, photos):
    analyses = analyze_batch(tiny_loaded, photos)
    return analyses, torch.stack([a.pixel_values for a in analyses])


def test_queries_and_keys_are_the_blocks_own_projections(tiny_loaded, analysed):
    """Against a hand computation from the weights: q = LN(h)·W_qᵀ + b_q on the block's input h, split
    into heads; and softmax(q·kᵀ/√d) is the model's own attention."""
    loaded = tiny_loaded
    analyses, batch = analysed
    vectors = qk.queries_keys(loaded, batch)
    with torch.no_grad():
        hidden = forward(loaded, batch, output_hidden_states=True).hidden_states
    h, d = loaded.heads, loaded.hidden_size // loaded.heads
    for layer in range(loaded.layers):
        parts, block = loaded.block_parts(layer), loaded.blocks()[layer]
        x = block.layernorm_before(hidden[layer])
        for got, proj in ((vectors.queries, parts.query.module), (vectors.keys, parts.key.module)):
            hand = (x @ proj.weight.T + proj.bias).reshape(len(batch), -1, h, d).transpose(1, 2)    # (B, H, N, d)
            assert torch.allclose(got[:, layer], hand, atol=1e-5)
        for i, an in enumerate(analyses):
            q, k = vectors.queries[i, layer], vectors.keys[i, layer]                              # (H, N, d)
            att = (q @ k.transpose(1, 2) / d ** 0.5).softmax(-1)
            assert torch.allclose(att, an.att()[layer], atol=2e-3)                                # stored in float16


def test_one_layer_stops_early_and_leaves_no_hook(tiny_loaded, analysed):
    _, batch = analysed

    def hooks():              # transformers keeps hooks of its own (what it records for output_attentions)
        return sum(len(m._forward_hooks) for m in tiny_loaded.model.modules())

    before = hooks()
    every = qk.queries_keys(tiny_loaded, batch)
    first = qk.queries_keys(tiny_loaded, batch, (0,))
    assert first.layers == (0,) and torch.equal(first.queries[:, 0], every.queries[:, 0])
    assert hooks() == before
    with pytest.raises(ValueError):
        qk.queries_keys(tiny_loaded, batch, (tiny_loaded.layers,))


def test_the_normalisation_keeps_every_query_s_ranking_of_the_keys():
    """Yeh et al.: translating the keys adds q·v to all of a query's scores, scaling q by c and k by 1/c
    changes none, so each query's softmax over the keys (and its ranking of them) is unchanged; after it the
    mean key is the mean query and both have the same mean norm."""
    g = np.random.default_rng(1)
    q, k = g.normal(size=(40, 8)) * 3 + 1, g.normal(size=(30, 8)) * 0.5 - 4
    qn, kn = qk.normalise(q, k)
    before, after = q @ k.T, qn @ kn.T
    shift = after - before
    assert np.allclose(shift, shift[:, :1])                                  # one shift per query
    assert (np.argsort(before, 1) == np.argsort(after, 1)).all()
    assert np.allclose(qn.mean(0), kn.mean(0))
    assert np.isclose(np.linalg.norm(qn, axis=1).mean(), np.linalg.norm(kn, axis=1).mean())


def test_after_the_normalisation_distance_tracks_the_dot_product():
    """Keys far from the queries (an offset the softmax ignores): before, every distance is about the
    offset; after, the nearer key is the one with the larger dot product far more often."""
    g = np.random.default_rng(2)
    q, k = g.normal(size=(60, 16)), g.normal(size=(60, 16)) * 4 + 6

    def agreement(q, k):
        dots = q @ k.T
        dist = np.linalg.norm(q[:, None] - k[None], axis=-1)
        return np.corrcoef(dots.ravel(), -dist.ravel())[0, 1]

    assert agreement(*qk.normalise(q, k)) > agreement(q, k) + 0.3


def test_pca_is_the_two_largest_axes_with_fixed_signs():
    g = np.random.default_rng(3)
    points = g.normal(size=(200, 5)) * np.array([10.0, 3.0, 0.1, 0.1, 0.1])
    xy = qk.project(points)
    assert xy.shape == (200, 2)
    assert np.allclose(np.abs(np.corrcoef(xy[:, 0], points[:, 0])[0, 1]), 1, atol=1e-3)
    assert np.allclose(qk.project(points), xy) and np.allclose(qk.project(-points), -xy)   # a mirrored cloud, mirrored


def embedding_from(xy_of_token: np.ndarray, b: int, n: int) -> qk.Embedding:
    """Queries and keys both placed at (B, N, 2)."""
    xy = np.stack([xy_of_token] * 2)
    return qk.Embedding(0, 0, "pca", xy, np.ones((2, b, n)))


def test_correlations_on_hand_built_embeddings():
    """x = the patch's row -> R(row) = 1 however the picture is turned, and R(column) = 0 (row and column
    are independent on a full grid); y = −brightness -> R(brightness) = 1; prefix tokens are left out
    (placed anywhere, they change nothing)."""
    grid, prefix, b = (4, 5), 1, 2
    seen = [np.random.default_rng(i).integers(0, 256, (16, 20, 3), dtype=np.uint8) for i in range(b)]
    tokens = qk.token_facts(seen, grid, prefix)
    n = prefix + 20
    zero = np.zeros_like(tokens.row)
    by_row = np.stack([np.nan_to_num(tokens.row, nan=99.0), zero], -1)
    corr = qk.correlations(embedding_from(by_row, b, n), tokens)
    assert corr["row"] == pytest.approx(1.0) and corr["column"] == pytest.approx(0.0, abs=1e-6)
    turn = np.array([[np.cos(0.7), -np.sin(0.7)], [np.sin(0.7), np.cos(0.7)]])
    assert qk.correlations(embedding_from(by_row @ turn.T, b, n), tokens)["row"] == pytest.approx(1.0)
    assert qk.sorts_by(corr) == ("row",)
    by_light = np.stack([zero, -np.nan_to_num(tokens.brightness, nan=-5.0)], -1)
    assert qk.correlations(embedding_from(by_light, b, n), tokens)["brightness"] == pytest.approx(1.0)
    assert qk.multiple_correlation(np.zeros((5, 2)), np.arange(5.0)) == 0.0


def test_token_facts_read_the_patches():
    seen = np.zeros((8, 8, 3), np.uint8)
    seen[:4, 4:] = 255                                                     # patch (0, 1) white
    tokens = qk.token_facts([seen], (2, 2), prefix=2)
    assert np.isnan(tokens.row[0, :2]).all()
    assert tokens.row[0, 2:].tolist() == [0, 0, 1, 1] and tokens.column[0, 2:].tolist() == [0, 1, 0, 1]
    assert tokens.brightness[0, 2:] == pytest.approx([0, 1, 0, 0])


def test_the_csv_has_one_row_per_token_kind_and_photo(tiny_vit_dir, tiny_loaded, photos, tmp_path):
    assert qk_command([*photos[:2], "--model", tiny_vit_dir, "--layer", "1", "--head", "2", "--out",
                       str(tmp_path), "--device", "cpu", "--dtype", "float32"]) == 0
    with open(tmp_path / "qk.csv") as f:
        rows = list(csv.DictReader(f))
    n = tiny_loaded.prefix + 16                                            # 32×32 in 8×8 patches
    assert len(rows) == 2 * 2 * n
    assert {(r["photo"], r["token"], r["kind"]) for r in rows} == {
        (p, str(t), kind) for p in ("p0.png", "p1.png") for t in range(n) for kind in ("query", "key")}
    patch5 = next(r for r in rows if r["token"] == str(tiny_loaded.prefix + 5))
    assert (patch5["row"], patch5["col"]) == ("1", "1")
    assert Image.open(tmp_path / "qk.png").size[0] > 0


def test_public_mode_bounds_the_photos_and_t_sne(tiny_vit_dir):
    public, private = app_context(tiny_vit_dir, public=True), app_context(tiny_vit_dir)
    with pytest.raises(RequestRefused) as refused:
        work.check(public, work.MAX_PHOTOS_PUBLIC + 1, "pca", 10)
    assert refused.value.key == "err_qk_photos"
    assert "사진" in say(refused.value.key, "ko", **refused.value.fields)
    with pytest.raises(RequestRefused) as refused:
        work.check(public, 2, "tsne", work.TSNE_POINTS_PUBLIC + 1)
    assert refused.value.key == "err_qk_tsne"
    work.check(private, work.MAX_PHOTOS, "tsne", 10 * work.TSNE_POINTS_PUBLIC)       # allowed off a public server
    with pytest.raises(RequestRefused):
        work.check(private, work.MAX_PHOTOS + 1, "pca", 10)


@pytest.fixture(scope="module")
def opened(ctx, photos):
    session = upload.analyze_group(ctx, {}, [photos[0]], ctx.start.name, "32x32", ["en"])[0]["session"]
    return ctx.open(session)


def test_the_view_draws_at_once_and_a_click_finds_the_point_under_it(ctx, opened):
    out = view.render(ctx, opened, "ko", layer=1, head="3", colour="row", projection="pca",
                      photos=["cat.jpg", "rocket.jpg"])
    assert {"scatter", "overview", "token", "token_note", "reading", "note", "point"} <= set(out)
    assert out["scatter"].ndim == 3 and out["overview"].ndim == 3 and out["token"] is None
    assert "헤드 3" in out["reading"]
    kept = opened.an.memo.lookup(work.KEPT)
    assert len(kept.analyses) == 3 and kept.vectors.layers == (1,)
    x, y = kept.shown[40]
    evt = gr.SelectData(None, {"index": [float(x), float(y) + view.BADGE_BAND], "value": None, "selected": True})
    clicked = view.click(ctx, opened, "en", evt, layer=1, head="3", colour="row", projection="pca",
                         photos=["cat.jpg", "rocket.jpg"], point=None)
    assert clicked["point"] == 40 and clicked["token"].ndim == 3
    point = kept.embeddings[3, "pca"].point(40)
    assert point.kind == "query" and point.photo == 40 // kept.vectors.queries.shape[3]
    assert "query" in clicked["token_note"]


def test_another_head_of_the_kept_layer_runs_no_model(ctx, opened, monkeypatch):
    view.render(ctx, opened, "en", layer=0, head="0", photos=[])
    calls = []
    monkeypatch.setattr(work.qk, "queries_keys", lambda *a, **k: calls.append(a))
    out = view.render(ctx, opened, "en", layer=0, head="2", photos=[])
    assert not calls and out["scatter"].ndim == 3
