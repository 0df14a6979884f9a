"""The frameworks' private API vitviz uses (vitviz.core.compat for torch, transformers and timm;
ui.compat for Gradio), each called against the installed version: these fail the day one changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from vitviz.core import compat


def test_torch_still_answers_for_the_cpus_features():
    assert callable(getattr(torch.cpu, "_is_amx_tile_supported", None))
    assert callable(getattr(torch.cpu, "_is_avx512_bf16_supported", None))
    assert isinstance(compat.amx_tile_supported(), bool) and isinstance(compat.avx512_bf16_supported(), bool)


def test_inductor_freezing_is_on_inside_and_restored_after():
    import torch._inductor.config as config

    before = config.freezing
    with compat.inductor_freezing():
        assert config.freezing is True
    assert config.freezing == before


def test_transformers_own_initialiser_resets_a_loaded_block(tiny_loaded):
    """A block loaded from a checkpoint carries transformers 5's "already initialised" marks; the
    initialiser must still give it fresh random weights, the same for the same seed."""
    import copy

    block = tiny_loaded.blocks()[0]
    fresh = []
    for _ in range(2):
        copy_ = copy.deepcopy(block)
        for p in copy_.parameters():
            p._is_hf_initialized = True                  # as a checkpoint load leaves them
        torch.manual_seed(3)
        with torch.no_grad():
            assert all(compat.init_weights(tiny_loaded.model, m) for m in copy_.modules())
        fresh.append(copy_.state_dict())
    name = next(k for k in fresh[0] if k.endswith("weight") and fresh[0][k].ndim == 2)
    assert not torch.equal(fresh[0][name], block.state_dict()[name])
    assert all(torch.equal(fresh[0][k], fresh[1][k]) for k in fresh[0])
    assert compat.init_weights(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)) is False   # not a transformers model


def test_timm_still_lists_its_graph_nodes():
    timm = pytest.importorskip("timm", reason="timm is not installed")
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2,
                              embed_dim=32, num_heads=2)
    nodes = compat.timm_graph_nodes(model)
    assert "blocks.0.attn.softmax" in nodes or any(n.startswith("blocks.0.") for n in nodes)


# ---------------------------------------------------------------- Gradio

def test_gradio_calls_only_server_functions_marked_as_ours():
    """Gradio's component server looks a function up on the session's component and calls it only
    when it is marked _is_server_fn (gradio/routes.py): what ui.compat.server_function relies on; the
    editor's preprocess reads, and its accept_blobs fills, its blob_storage (ui.compat.share_blob_storage)."""
    import inspect

    import gradio
    import gradio.routes

    from ui import compat

    source = Path(gradio.routes.__file__).read_text()
    assert re.search(r"getattr\(block, body\.fn_name", source) and 'getattr(fn, "_is_server_fn", False)' in source
    assert compat.server_function(lambda data: None)._is_server_fn is True
    editor_source = inspect.getsource(gradio.ImageEditor)
    assert "self.blob_storage.get(payload.id)" in editor_source and "self.blob_storage[id] = current" in editor_source
    with gradio.Blocks():
        editor = gradio.ImageEditor()
    shared: dict = {}
    compat.share_blob_storage(editor, shared)
    assert editor.blob_storage is shared


def test_gradio_rebuilds_a_sessions_component_from_its_class():
    """An update of a component in a session makes Gradio build that session a new instance from the
    component's class and constructor arguments (gradio/blocks.py): why decoding bounds live in
    subclasses (ui/sketch.py, ui/upload.py), marked is_template so the parent's frontend serves them."""
    import gradio
    import gradio.blocks

    from ui import sketch, upload

    assert "state[block._id] = block.__class__(**kwargs)" in Path(gradio.blocks.__file__).read_text()
    with gradio.Blocks():
        photo = upload.TolerantImage(type="filepath")
        drawing = sketch.editor("draw", "ed")
        plain = gradio.ImageEditor(**drawing.constructor_args)
    assert photo.get_block_name() == "image" and drawing.get_block_name() == "imageeditor"
    assert drawing.get_config() == plain.get_config()       # every prop reaches the frontend (read off __init__)


def test_a_component_subclass_leaves_no_type_stub_beside_its_module(tmp_path, monkeypatch):
    """Gradio's component metaclass writes <module>.pyi beside every module defining a component
    class; ui.compat.component_subclass keeps it from doing so (ui/sketch.py, ui/upload.py)."""
    import importlib

    body = "import gradio as gr\n\nclass Plain(gr.Image):\n    is_template = True\n"
    (tmp_path / "with_stub.py").write_text(body)
    (tmp_path / "without_stub.py").write_text(
        "from ui import compat\n" + body.replace("class Plain", "with compat.component_subclass():\n  class Plain"))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.import_module("with_stub")
    importlib.import_module("without_stub")
    assert (tmp_path / "with_stub.pyi").exists() and not (tmp_path / "without_stub.pyi").exists()


def test_gradios_frontend_still_exports_its_locale_switch():
    """The language radio imports Gradio's hashed core-*.js bundle and calls its changeLocale."""
    import gradio

    from ui import compat

    assets = Path(gradio.__file__).parent / "templates" / "frontend" / "assets"
    cores = [p for p in assets.glob("core-*.js")]
    assert cores and any("changeLocale" in p.read_text(errors="ignore") for p in cores)
    assert "/assets\\/core-[^/]*\\.js$/" in compat.SET_LANG_JS and "core.changeLocale(lang)" in compat.SET_LANG_JS
