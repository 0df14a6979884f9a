"""The UI's handlers without a server: each view's render by name, the batched analysis, sessions,
and the page's structure (sections, every view reachable, controls sized from the model)."""

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from ui import (
    bias,
    classmap,
    click,
    dino,
    distance,
    evidence,
    filters,
    inside,
    mae,
    norms,
    patches,
    posemb,
    raw,
    rollout,
    upload,
)
from ui.view import opened_session
from vitviz.pictures import maps
from vitviz.service import examples
from vitviz.service.context import Expired, Session

from .conftest import app_context


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("ui") / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 120, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.fixture(scope="module")
def session(ctx, photo_path):
    result = upload.analyze_group(ctx, {}, [photo_path], ctx.start.name, "32x32", ["en"])[0]
    return result["session"]


@pytest.fixture(scope="module")
def page_views(ctx):
    """The app's views by id, laid out as the app lays them out."""
    import app

    with gr.Blocks():
        views, _ = app.build_sections(ctx, gr.State(None), gr.Radio(["en", "ko"], value="en"))
    return views


def named(views, columns):
    """The batched handler's columns, read back by name (upload.column_keys)."""
    return [dict(zip(upload.column_keys(views), row)) for row in zip(*columns)]


def test_batched_analysis_returns_every_output_by_name(ctx, page_views, photo_path, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    good, broken, empty = named(page_views, upload.analyze_many(ctx, page_views, [photo_path, str(bad), None],
                                                                [ctx.start.name] * 3, ["32x32"] * 3,
                                                                ["en", "ko", "en"]))
    assert good["status"].startswith("Analyzed with")
    assert isinstance(upload.adopted(good["session"]), Session)
    assert len(good["predictions"]) == 5 and "4×4 = 16" in good["patches", "shapes"]
    for key in (("patches", "patch_grid"), ("patches", "tokens"), ("rollout", "on_input"), ("rollout", "on_photo"),
                ("posemb", "picture")):
        assert Image.open(good[key]).size[0] > 0, key
    assert "읽을 수 있는 이미지" in broken["status"]
    assert upload.adopted(broken["session"]) is None   # one bad file fails alone
    assert empty["status"] == "Upload a photo or click an example first."


def test_every_view_renders_by_name(ctx, session):
    cases = {
        patches: ({}, {"patch_grid", "tokens", "shapes", "dist_help"}),
        rollout: (dict(fusion="max", discard=0.2, alpha=0.4, start_layer=1, query=0),
                  {"on_input", "on_photo", "note", "fusion", "start_layer", "query"}),
        raw: (dict(layer=1, head="2", one_scale=True, alpha=0.5, query=0),
              {"overview", "on_input", "on_photo", "means", "note", "layer", "head", "query"}),
        click: (dict(patch=5, layer=1, head="mean", alpha=0.5),
                {"canvas", "attention", "head_mean", "rollout", "posemb", "layer", "head"}),
        classmap: (dict(target=None, method="grad_rollout", alpha=0.5),
                   {"on_input", "on_photo", "note", "target", "method"}),
        dino: (dict(mass=0.5), {"heads"}),
        posemb: ({}, {"picture"}), distance: ({}, {"plot"}), filters: ({}, {"picture"}),
        norms: ({}, {"picture", "table", "compare", "other_picture", "other_table"}),
        mae: ({}, {"note", "masked", "reconstruction", "pasted"}),
        evidence: (dict(fill="black"), {"plot", "table", "fill", "part", "note", "fills", "measure_box",
                                        "sanity_box", "sanity_picture", "sanity_note"}),
        bias: ({}, {"findings", "plot", "table", "distillation"}),
    }
    opened = ctx.open(session)
    for module, (controls, outputs) in cases.items():
        out = module.render(ctx, opened, "en", **controls)
        assert set(out) == outputs, module.ID
    assert rollout.render(ctx, opened, "en", )["on_input"].ndim == 3
    steps = inside.render(ctx, opened, "ko")
    assert "패치" in steps["text0"] and len(steps) == 2 * inside.STEPS


def test_controls_follow_the_model(ctx, session):
    opened = ctx.open(session)
    out = raw.render(ctx, opened, "en", layer=9, head="7", one_scale=False, alpha=0.5, query=0)
    assert out["layer"]["maximum"] == 1                      # two layers
    assert [v for _, v in out["head"]["choices"]] == ["mean", "0", "1", "2", "3"]
    assert out["head"]["value"] == "mean"                    # head 7 does not exist here
    korean = raw.render(ctx, opened, "ko", layer=0, head="1", one_scale=False, alpha=0.5, query=0)
    assert korean["head"]["choices"][0] == ("모든 헤드의 평균", "mean") and korean["head"]["value"] == "1"
    assert out["query"]["visible"] is False                  # one prefix token: no [CLS]/[DIST] choice


def test_deit_offers_the_distillation_token(tiny_deit_dir, photo_path):
    ctx = app_context(tiny_deit_dir)
    session = upload.analyze_group(ctx, {}, [photo_path], ctx.start.name, "", ["en"])[0]["session"]
    opened = ctx.open(session)
    out = rollout.render(ctx, opened, "en", query=1)
    assert out["query"]["visible"] and out["query"]["choices"] == [("[CLS]", 0), ("[DIST]", 1)]
    cls = rollout.render(ctx, opened, "en")["on_input"]
    assert not np.array_equal(cls, out["on_input"])            # the [DIST] map is its own
    assert patches.render(ctx, opened, "en")["dist_help"]["visible"]


def test_class_maps_are_made_once_per_class(ctx, session, monkeypatch):
    calls = []
    real = ctx.run
    monkeypatch.setattr(ctx, "run", lambda fn, *a, **k: calls.append(k.get("kind")) or real(fn, *a, **k))
    opened = ctx.open(session)
    target = opened.an.top(2)[1][0]
    for method in ("chefer", "grad_rollout", "chefer"):
        classmap.render(ctx, opened, "en", target=target, method=method, alpha=0.5)
    assert calls == ["class"]


def test_evidence_runs_on_the_button_and_is_kept(ctx, session):
    opened = ctx.open(session)
    assert evidence.render(ctx, opened, "en", "mean")["plot"] is None       # only the button measures
    measured = evidence.render(ctx, opened, "ko", "mean", action="measure")
    assert "무작위" in measured["table"] and measured["plot"].ndim == 3
    assert evidence.render(ctx, ctx.open(session), "en", "mean")["table"].count("|") > 20   # kept for this photo
    assert evidence.render(ctx, opened, "en", "black")["plot"] is None     # another fill: not measured yet
    assert measured["fill"]["choices"][1] == ("검은색 (Fashion-MNIST의 배경)", "black")


def test_a_click_selects_the_patch_under_it(ctx, session):
    evt = gr.SelectData(None, {"index": [0, 0], "value": None, "selected": True})
    opened = ctx.open(session)
    assert click.click(ctx, opened, "en", 0, "mean", 0.5, evt)["patch"] == 0
    an = opened.an
    w = maps.click_canvas(an).shape[1]
    evt = gr.SelectData(None, {"index": [w - 1, 0], "value": None, "selected": True})
    assert click.click(ctx, opened, "en", 0, "mean", 0.5, evt)["patch"] == an.grid[1] - 1


def test_an_expired_session_updates_nothing_and_says_so(ctx):
    gone = Session("no-such-key", ctx.start.name)
    from ui.view import View

    with pytest.raises(Expired):                   # a view's render gets its session opened: a gone one raises
        opened_session(ctx, gone)
    handle = View(rollout.render).handler(ctx)
    assert handle(gone, "en") == {} and handle(None, "en") == {}
    assert opened_session(ctx, None, needed=False) is None
    assert posemb.render(ctx, None, "en")["picture"]           # model-only: shown before any upload


def test_controls_are_sized_from_the_start_model(tiny_vit_dir):
    import app

    demo = app.create_demo(tiny_vit_dir, "cpu", "float32")
    config = demo.get_config_file()
    sliders = [c["props"] for c in config["components"] if c.get("type") == "slider"
               and getattr(c["props"].get("label"), "key", "") in ("vv_layer", "vv_start_layer")]
    assert sliders and all(p["maximum"] == 1 for p in sliders)          # the tiny model has two layers


def test_the_page_has_its_sections_and_every_view(tiny_vit_dir):
    import app

    demo = app.create_demo(tiny_vit_dir, "cpu", "float32")
    config = demo.get_config_file()
    labels = {c["props"].get("label") for c in config["components"] if c.get("type") == "tabitem"}
    keys = {getattr(lab, "key", lab) for lab in labels}
    for section in app.SECTIONS:
        assert f"vv_sec_{section}" in keys
    assert sum(len(m) for m in app.SECTIONS.values()) == len(keys) - len(app.SECTIONS)
    assert all(len(m) <= 6 for m in app.SECTIONS.values())      # each tab row fits a 1280-px screen


def test_examples_the_model_knows_come_first(ctx):
    from vitviz import models

    bundled = models.load(models.BUNDLED, "cpu", "float32")
    assert "fmnist" in examples.order(bundled)[0][0]
    assert "fmnist" not in examples.order(ctx.start)[0][0]


def test_an_example_clicked_again_is_not_run_again(tiny_vit_dir, tmp_path, monkeypatch):
    """An example arrives as a copy under another path; it is known by its bytes, and its analysis
    is shared: on ZeroGPU a second click costs no GPU time."""
    import shutil

    ctx = app_context(tiny_vit_dir)
    forwards = []
    call = ctx.runner.call
    monkeypatch.setattr(ctx.runner, "call", lambda fn, *a, **kw: forwards.append(fn) or call(fn, *a, **kw))
    from vitviz.core.paths import example_photos

    example = example_photos()[0]
    first, second = tmp_path / "a" / example.name, tmp_path / "b" / example.name
    for copy in (first, second):
        copy.parent.mkdir()
        shutil.copy(example, copy)
    a = upload.analyze_group(ctx, {}, [str(first)], ctx.start.name, "", ["en"])[0]
    b = upload.analyze_group(ctx, {}, [str(second)], ctx.start.name, "", ["ko"])[0]
    assert len(forwards) == 1 and ctx.store.lookup(a["session"].key) is ctx.store.lookup(b["session"].key)
    assert examples.which(str(first)) == example.name and examples.which(__file__) is None
    other = tmp_path / "edited.png"
    Image.open(example).convert("RGB").transpose(Image.FLIP_LEFT_RIGHT).save(other)
    upload.analyze_group(ctx, {}, [str(other)], ctx.start.name, "", ["en"])
    assert len(forwards) == 2                                   # any other photo runs the model


def test_inductive_bias_findings_speak_the_users_language_whichever_model_leads():
    records = [{"model": m, "train_images": n, "test_accuracy": a} for m, n, a in
               [("cnn", 1000, 0.80), ("hybrid", 1000, 0.75), ("vit", 1000, 0.70),
                ("cnn", 60000, 0.90), ("hybrid", 60000, 0.91), ("vit", 60000, 0.92)]]
    english = bias.findings(records, "en")
    assert "**+10.0**" in english and "**-2.0**" in english        # the ViT leads at 60,000: a negative gap
    korean = bias.findings(records, "ko")
    assert "하이브리드" in korean and "hybrid" not in korean
    table = __import__("vitviz.study", fromlist=["table"]).table(records, "ko")
    assert table.startswith("| 학습 이미지 수 |") and "| 60,000 | 90.00 | 91.00 | 92.00 |" in table


def test_regression_tile_captions_clear_of_gradios_label(ctx, session):
    """Gradio's label badge covered the first tiles' captions ("L0 H0", "emb"): the tile sheets
    start below a white band the UI adds (the library's pictures have none), and a click on the
    overview still finds its tile."""
    from ui.view import BADGE_BAND
    from vitviz.pictures import maps as views
    from vitviz.pictures import render

    opened = ctx.open(session)
    overview = raw.render(ctx, opened, "en", layer=0, head="mean", one_scale=False, alpha=0.5, query=0)["overview"]
    assert (overview[:BADGE_BAND] == 255).all()
    assert (norms.render(ctx, opened, "en")["picture"][:BADGE_BAND] == 255).all()
    an = opened.an
    assert not (views.raw_attention(an, 0, None, False, 0.5)[0][:BADGE_BAND] == 255).all()
    tile, gap, cap = views.OVERVIEW_TILE, render.TILE_GAP, render.CAPTION_H
    row = round(tile * an.grid[0] / an.grid[1]) + gap + cap
    x = gap + 2 * (tile + gap) + tile // 2                                  # the third head's column
    assert views.overview_cell(an, x, gap + row + 2) == (1, 2)
    for y, layer in ((BADGE_BAND + gap + 2, 0), (BADGE_BAND + gap + row + 2, 1)):
        evt = gr.SelectData(None, {"index": [x, y], "value": None, "selected": True})
        picked = raw.pick_tile(ctx, opened, "en", evt)
        assert {k: picked[k] for k in ("layer", "head")} == {"layer": layer, "head": "2"}


def test_regression_views_lay_out_content_only_and_read_no_model_config():
    """Tabs and sections were declared twice (each module and app.SECTIONS), and views read Hugging Face
    configs and branched on model names: the composer opens every tab, facts come from LoadedModel."""
    from pathlib import Path

    import app

    for path in Path(app.__file__).resolve().parent.joinpath("ui").glob("*.py"):
        source = path.read_text()
        for seam in ("gr.Tab(", "SECTION", ".config", ".family", "BUNDLED", "id2label", "encoder_config"):
            assert seam not in source, f"{path.name} has {seam}"
    assert "BADGE" not in Path(app.__file__).resolve().parent.joinpath("vitviz", "pictures", "render.py").read_text()


def test_every_view_in_the_sections_is_composed_once(tiny_vit_dir):
    import app

    ctx = app_context(tiny_vit_dir)
    app.build(ctx)
    ids = [m.ID for modules in app.SECTIONS.values() for m in modules]
    assert len(ids) == len(set(ids)) and all(hasattr(m, "build") for ms in app.SECTIONS.values() for m in ms)


def test_no_batched_event_reads_or_writes_a_tabs_state(tiny_vit_dir):
    """Regression (benchmarks/classroom.py, 12 students at once): Gradio runs a batched function with the
    first request's session state for the whole batch, so the session written by the batched analysis reached
    one tab of the batch and the others had none ("Upload a photo first" after "Analyzed")."""
    import gradio as gr

    import app
    from tests.conftest import app_settings

    demo = app.create_demo(settings=app_settings(tiny_vit_dir))
    batched = [fn for fn in demo.fns.values() if fn.batch]
    assert batched                                                   # the analysis is batched
    for fn in batched:
        assert not any(isinstance(c, gr.State) for c in [*fn.inputs, *fn.outputs]), fn.name
    assert upload.adopted(upload.handed(Session("k", "m"))) == Session("k", "m")
    assert upload.adopted(None) is None and upload.adopted({"key": 1}) is None
