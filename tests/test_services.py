"""The services views call (vitviz.service) and the settings they run under (vitviz.core.settings):
an event opens its session once and resolves its model once; settings come from the environment and
the command line, parsed once, and reach the services without the environment."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from vitviz.core.settings import Settings, compile_mode

from .conftest import app_context, app_settings


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory):
    rng = np.random.default_rng(2)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return str(path)


def counted(ctx):
    """Count the context's session openings and model resolutions from here on."""
    calls = {"open": 0, "model": 0}
    open_, model = ctx.open, ctx.model

    def counting_open(session):
        calls["open"] += 1
        return open_(session)

    def counting_model(name):
        calls["model"] += 1
        return model(name)

    ctx.open, ctx.model = counting_open, counting_model
    return calls


def app_views(ctx):
    """Every view of the app, built and wired as the composer does (inside a Blocks)."""
    import app

    with gr.Blocks():
        session, lang = gr.State(None), gr.Radio(["en", "ko"], value="en")
        views, _ = app.build_sections(ctx, session, lang)
    return views


def test_an_upload_resolves_its_model_once(tiny_vit_dir, photo_path):
    from ui import upload

    ctx = app_context(tiny_vit_dir)
    views = app_views(ctx)
    calls = counted(ctx)
    columns = upload.analyze_many(ctx, views, [photo_path, photo_path], [ctx.start.name] * 2, ["", ""], ["en", "ko"])
    assert calls == {"open": 0, "model": 1}
    assert len(columns) == len(upload.column_keys(views)) and len(columns[0]) == 2
    assert [name for view, name in upload.first_outputs(views)] == ["patch_grid", "tokens", "shapes", "on_input",
                                                                   "on_photo", "picture"]


def test_a_click_opens_the_session_once_and_resolves_the_model_once(tiny_vit_dir, photo_path):
    from ui import click, upload

    ctx = app_context(tiny_vit_dir)
    view = app_views(ctx)["click"]
    session = upload.analyze_group(ctx, {}, [photo_path], ctx.start.name, "", ["en"])[0]["session"]
    calls = counted(ctx)
    evt = gr.SelectData(None, {"index": [30, 12], "value": None, "selected": True})
    updates = click.click_handler(ctx, view)(session, "en", 1, "mean", 0.5, evt)
    assert calls == {"open": 1, "model": 1}
    assert updates[view.controls["patch"]] == click.maps.patch_at(ctx.open(session).an, 30, 12,
                                                                 click.maps.click_canvas(ctx.open(session).an).shape[:2])


def test_showing_a_view_opens_the_session_once(tiny_vit_dir, photo_path):
    from ui import upload

    ctx = app_context(tiny_vit_dir)
    views = app_views(ctx)
    session = upload.analyze_group(ctx, {}, [photo_path], ctx.start.name, "", ["en"])[0]["session"]
    for view in views.values():
        calls = counted(ctx)
        values = [getattr(c, "value", None) for c in view.controls.values()]
        view.handler(ctx)(session, "en", *values)
        assert calls["open"] == 1, view.id
        ctx = app_context(tiny_vit_dir)      # a fresh context: the next view's counts start from nothing
        session = upload.analyze_group(ctx, {}, [photo_path], ctx.start.name, "", ["en"])[0]["session"]


# ---------------------------------------------------------------- settings

def test_settings_are_read_from_the_environment_given():
    env = {"VITVIZ_MODEL": "bundled", "VITVIZ_DEVICE": "CPU", "VITVIZ_COMPILE": "0", "VITVIZ_CLASSROOM": "yes",
           "SPACE_ID": "someone/vitviz", "SPACES_ZERO_GPU": "true", "VITVIZ_MODELS": "a/one, b/two ,a/one",
           "VITVIZ_REQUEST_MEMORY_MB": "512", "VITVIZ_MAX_MODELS": "2", "GRADIO_SERVER_PORT": "7999"}
    s = Settings.from_env(env)
    assert (s.model, s.device, s.compile, s.classroom, s.public, s.on_space, s.zerogpu) == (
        "bundled", "cpu", "off", True, True, True, True)
    assert s.models == ("a/one", "b/two") and s.request_memory_mb == 512 and s.max_models == 2 and s.port == 7999
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize("given,mode", [(None, "auto"), ("wait", "wait"), ("1", "on"), ("off", "off"), ("no", "off")])
def test_compile_settings_name_one_mode(given, mode):
    assert compile_mode(given) == mode


def test_an_unknown_compile_setting_is_refused():
    with pytest.raises(ValueError, match="compile must be one of"):
        compile_mode("sometimes")


def test_the_command_line_overrides_the_environment_once():
    import app

    args = app.parser().parse_args(["--classroom", "--compile", "wait", "--no-public", "--port", "8000"])
    s = app.settings_from(args, {"SPACE_ID": "x/y", "VITVIZ_COMPILE": "off", "VITVIZ_DTYPE": "bfloat16"})
    assert (s.classroom, s.compile, s.public, s.on_space, s.dtype, s.port) == (True, "wait", False, True,
                                                                                "bfloat16", 8000)
    with pytest.raises(ValueError, match="settings have no"):
        Settings().overridden(colour="blue")


def test_a_classroom_server_has_a_board_and_others_do_not(tiny_vit_dir):
    assert app_context(tiny_vit_dir, classroom=True).board is not None
    assert app_context(tiny_vit_dir).board is None


def test_the_request_budget_follows_the_settings(tiny_vit_dir):
    from vitviz.service import hosting

    assert hosting.policy(app_settings(tiny_vit_dir, request_memory_mb=300)).request_budget == 300 * 2**20
    assert hosting.policy(Settings(models=("a/one",)), "start").models == ("start", "a/one")
