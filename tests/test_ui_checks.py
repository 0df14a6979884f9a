"""The Evidence view's evidence, its sanity check and the logit-lens view, by their renders'
names: what runs on a button, what is kept, what is refused and what is left out (with a note)."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from ui import evidence, lens, sanity, upload
from vitviz import methods
from vitviz.evidence import measure
from vitviz.service import work

from .conftest import app_context

FAITH_OUTPUTS = {"plot", "table", "note", "fills", "fill", "part", "measure_box", "sanity_box", "sanity_picture",
                 "sanity_note"}


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("checks") / "photo.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    return str(path)


def new_session(ctx, photo_path, size="32x32"):
    return upload.analyze_group(ctx, {}, [photo_path], ctx.start.name, size, ["en"])[0]["session"]


def counting(ctx, monkeypatch) -> list:
    kinds = []
    real = ctx.run
    monkeypatch.setattr(ctx, "run", lambda fn, *a, **k: kinds.append(k.get("kind", "forward")) or real(fn, *a, **k))
    return kinds


def test_the_views_render_by_name(ctx, photo_path):
    opened = ctx.open(new_session(ctx, photo_path))
    assert set(evidence.render(ctx, opened, "en", fill="mean", part="measure")) == FAITH_OUTPUTS
    assert set(sanity.show(opened, "en")) == {"picture", "note"}
    out = lens.render(ctx, opened, "en", layer=1)
    assert set(out) == {"plot", "patches", "table", "note", "layer"}
    assert out["plot"].ndim == 3 and out["patches"].ndim == 3 and out["note"] == ""
    assert out["layer"]["maximum"] == 2 and out["layer"]["value"] == 1             # 0 = embeddings .. 2 blocks
    assert len(out["table"].splitlines()) == 2 + 3                                # header, rule, 3 read-outs
    assert lens.render(ctx, opened, "en", layer=9)["layer"]["value"] == 2           # held to the model's layers


def test_the_evidence_table_runs_on_the_button_and_is_kept(ctx, photo_path, monkeypatch):
    session = new_session(ctx, photo_path)
    opened = ctx.open(session)
    kinds = counting(ctx, monkeypatch)
    before = evidence.render(ctx, opened, "en", fill="mean")
    assert before["plot"] is None and before["table"] == "" and kinds == []        # only the button measures
    measured = evidence.render(ctx, opened, "ko", "mean", action="measure")
    passes = len(methods.passes(methods.class_specific()))
    assert sorted(kinds) == ["class"] * passes + ["evidence", "sanity"]              # each made once
    rows = measured["table"].splitlines()
    assert "SaCo" in rows[0] and "MPRT" in rows[0] and "가리키기" not in rows[0]  # no mask for a noise photo
    assert len(rows) == 2 + len(methods.ids()) and rows[-1].startswith("| 무작위 |") and rows[-1].endswith("| 1.00 |")
    assert "물체가 어디 있는지" in measured["note"]                              # says why pointing is missing
    assert measured["plot"].ndim == 3 and measured["sanity_picture"].ndim == 3     # the check is shown too
    again = evidence.render(ctx, ctx.open(session), "en", fill="mean", part="sanity")
    assert again["table"].count("|") > 50 and again["sanity_picture"].ndim == 3 and len(kinds) == passes + 2
    assert again["sanity_box"]["visible"] and not again["measure_box"]["visible"]
    assert evidence.render(ctx, opened, "en", fill="black")["table"] == ""     # another fill: not yet


def test_the_fill_comparison_ranks_the_maps_under_every_fill(ctx, photo_path):
    opened = ctx.open(new_session(ctx, photo_path))
    out = evidence.render(ctx, opened, "en", fill="mean", action="compare")
    lines = out["fills"].splitlines()
    head = next(line for line in lines if line.startswith("| map"))
    assert head == "| map | data mean | black | ROAD |"
    assert sum(line.startswith("| ") for line in lines) == 1 + len(methods.ids())


def test_road_is_not_offered_over_the_memory_budget(ctx, photo_path):
    opened = ctx.open(new_session(ctx, photo_path, "96x96"))
    assert "road" in work.fills(ctx, opened)                                     # within the budget: offered
    ctx.policy = replace(ctx.policy, request_budget=measure.road_bytes((96, 96)) - 1)
    out = evidence.render(ctx, opened, "ko", fill="road", action="compare")
    assert [v for _, v in out["fill"]["choices"]] == ["mean", "black"] and out["fill"]["value"] == "mean"
    assert "ROAD를 쓰지 않아요" in out["note"] and "ROAD를 쓰지 않아요" in out["fills"]
    assert "| 맵 | 데이터 평균 | 검은색 |" in out["fills"]


def test_the_sanity_check_is_refused_over_the_memory_budget(tiny_vit_dir, photo_path):
    ctx = app_context(tiny_vit_dir)
    opened = ctx.open(new_session(ctx, photo_path))
    work.evidence(ctx, opened, "mean")                                           # the curves fit the budget
    need = measure.sanity_bytes(opened.loaded, (32, 32))
    ctx.policy = replace(ctx.policy, request_budget=need - 1)                     # the copy does not
    out = evidence.render(ctx, opened, "en", "mean", action="measure")
    assert out["sanity_picture"] is None and "second copy of the model" in out["sanity_note"]
    assert "MPRT" not in out["table"].splitlines()[0] and "SaCo" in out["table"]
    assert "MPRT is left out: The sanity check needs" in out["note"]
    korean = evidence.render(ctx, opened, "ko", "mean", part="sanity", action="sanity")     # the check's button
    assert korean["sanity_picture"] is None and "모델 사본이 하나 더" in korean["sanity_note"]
    ctx.policy = replace(ctx.policy, request_budget=need)
    assert evidence.render(ctx, opened, "en", "mean", part="sanity", action="sanity")["sanity_picture"].ndim == 3


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory):
    from transformers import ViTModel

    from .conftest import save_tiny, tiny_vit_config

    return save_tiny(tmp_path_factory.mktemp("backbone"), lambda c: ViTModel(c, add_pooling_layer=False),
                     tiny_vit_config())


def test_a_model_without_a_classifier_gets_a_note(backbone_dir, photo_path):
    ctx = app_context(backbone_dir)
    opened = ctx.open(new_session(ctx, photo_path))
    out = lens.render(ctx, opened, "ko", layer=0)
    assert out["plot"] is None and out["patches"] is None and "분류 헤드가 없어요" in out["note"]
    assert "no classifier" in sanity.show(opened, "en")["note"]
    assert evidence.render(ctx, opened, "en", action="measure")["table"] == ""


def test_the_logit_lens_runs_in_zerogpus_worker(tiny_vit_dir, photo_path):
    """On ZeroGPU the read-out runs in the GPU function (a forked process here, arguments and result
    by pickle) and the drawing stays here."""
    from .test_hosting import zerogpu_context

    ctx = zerogpu_context(tiny_vit_dir)
    session = new_session(ctx, photo_path)
    out = lens.render(ctx, ctx.open(session), "ko", layer=1)
    assert out["patches"].ndim == 3 and "임베딩" in out["table"]
    assert [(kind, fn) for kind, fn, _ in ctx.runner._gpu.calls][-1] == ("forward", "read_layers")


def test_typed_labels_get_a_note_and_a_timm_vit_reads_its_patches(tmp_path, photo_path):
    from vitviz import lens as library_lens
    from vitviz import models
    from vitviz.analysis import analyze
    from vitviz.families import timm_vit

    from .tiny_families import save_timm, save_zero_shot

    ctx = app_context(save_zero_shot(tmp_path / "clip", "clip"))
    session = upload.analyze_group(ctx, {}, [photo_path], ctx.start.name, "", ["en"], "cat, dog")[0]["session"]
    out = lens.render(ctx, ctx.open(session), "en")
    assert out["plot"] is None and "labels you type" in out["note"]
    if not timm_vit.available():
        pytest.skip("timm is not installed")
    loaded = models.load(save_timm(tmp_path / "timm"), "cpu", "float32")
    an = analyze(loaded, Image.open(photo_path))
    r = library_lens.read_layers(loaded, an.pixel_values)
    vit = loaded.model.vit
    with torch.no_grad():
        hidden = loaded.model(an.pixel_values[None], output_hidden_states=True).hidden_states[-1]
        direct = vit.head(vit.fc_norm(vit.norm(hidden[0, loaded.prefix:]))).softmax(-1)       # token by token
    assert torch.equal(r.patch_class[-1], direct.argmax(-1))
