"""vitviz as a tool for AI assistants: a real MCP client (the `mcp` package, streamable HTTP) against the
running app lists the tools and calls them; pictures come back as images, refusals as plain messages."""

import asyncio
import base64
import io
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image

from vitviz import models
from vitviz.analysis import analyze
from vitviz.core.i18n import t as library_t

from .conftest import app_settings

pytest.importorskip("mcp")

TOOLS = {"analyze_photo", "class_map", "evidence_table", "head_attribution"}


@contextmanager
def app_with_mcp(model, **settings):
    import app

    demo = app.create_demo(settings=app_settings(model, **settings))
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    try:
        yield demo.local_url + "gradio_api/mcp/"
    finally:
        demo.close()


def session_calls(url: str, *calls) -> tuple[list, list]:
    """(the listed tools, each call's result) from one MCP session: calls are (tool name, arguments)."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def run():
        async with streamablehttp_client(url) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = (await session.list_tools()).tools
                return listed, [await session.call_tool(name, args) for name, args in calls]

    return asyncio.run(run())


def data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def picture(result) -> np.ndarray:
    images = [c for c in result.content if c.type == "image"]
    assert len(images) == 1 and images[0].mimeType == "image/png"
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(images[0].data))))


def text_of(result) -> str:
    return "\n".join(c.text for c in result.content if c.type == "text")


@pytest.fixture(scope="module")
def served(tiny_vit_dir):
    with app_with_mcp(tiny_vit_dir) as url:
        yield url


def test_the_tools_are_listed_with_every_parameter_described(served):
    listed, _ = session_calls(served)
    tools = {tool.name: tool for tool in listed}
    assert TOOLS <= set(tools)         # beside the page's own /analyze (the documented API, batched)
    for name in TOOLS:
        params = tools[name].inputSchema["properties"]
        assert "photo" in params and all(p.get("description") for p in params.values()), name
        assert tools[name].inputSchema.get("required") == ["photo"], name      # everything else has a default
    assert set(tools["class_map"].inputSchema["properties"]["method"]["enum"]) == {"chefer", "grad_rollout", "legrad",
                                                                                   "legrad_all"}


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_a_call_returns_the_models_top5_and_a_picture(served, tiny_vit_dir, photo, lang):
    _, (result,) = session_calls(served, ("analyze_photo", {"photo": data_url(photo), "lang": lang}))
    assert not result.isError
    loaded = models.load(str(tiny_vit_dir), "cpu", "float32")
    own = analyze(loaded, photo).top(5, lang)
    lines = [line for line in text_of(result).splitlines() if line[:2] in {f"{i}." for i in range(1, 6)}]
    assert lines == [f"{rank}. {name}: {p:.1%}" for rank, (_, name, p) in enumerate(own, 1)]
    drawn = picture(result)
    assert drawn.ndim == 3 and drawn.shape[0] > 32 and drawn.std() > 0        # the rollout over the photo


def test_a_class_map_for_the_second_class_says_which_class_it_drew(served, photo):
    _, (result,) = session_calls(served, ("class_map", {"photo": data_url(photo), "rank": 2, "method": "legrad"}))
    assert not result.isError and "number 2 of the top 5" in text_of(result) and "legrad" in text_of(result)
    assert picture(result).std() > 0


def test_the_evidence_table_names_its_conventions(served, photo):
    _, (result,) = session_calls(served, ("evidence_table", {"photo": data_url(photo)}))
    assert not result.isError and "|" in text_of(result) and "SaCo" in text_of(result)
    assert picture(result).std() > 0


def test_a_file_that_is_no_photo_gets_a_plain_message_in_the_asked_language(served, tmp_path):
    garbage = "data:image/png;base64," + base64.b64encode(b"not a photo at all" * 20).decode()
    _, (result,) = session_calls(served, ("analyze_photo", {"photo": garbage, "lang": "ko"}))
    assert result.isError
    message = text_of(result)
    assert any("\uac00" <= ch <= "\ud7a3" for ch in message)            # Korean words
    assert "Traceback" not in message and "/tmp/" not in message and "Error(" not in message


def test_public_mode_bounds_the_tools_as_the_page(tiny_vit_dir, photo):
    with app_with_mcp(tiny_vit_dir, public=True, models=(str(tiny_vit_dir),)) as url:
        listed, (big, other) = session_calls(
            url, ("analyze_photo", {"photo": data_url(photo), "size": "2048x2048"}),
            ("analyze_photo", {"photo": data_url(photo), "model": "google/vit-large-patch16-224"}))
    assert big.isError and other.isError
    assert "2048" in text_of(big) or "size" in text_of(big).lower()
    offered = library_t("err_model_not_offered", "en", offered="@").split("@")[0]
    assert str(tiny_vit_dir) in text_of(other) or offered in text_of(other)     # the client's schema or vitviz


def test_the_head_attribution_sums_to_the_models_own_logit(served, tiny_vit_dir, photo):
    import re

    from vitviz.heads.attribution import attribution

    _, (result,) = session_calls(served, ("head_attribution", {"photo": data_url(photo)}))
    assert not result.isError
    text = text_of(result)
    loaded = models.load(str(tiny_vit_dir), "cpu", "float32")
    an = analyze(loaded, photo)
    own = attribution(loaded, an, an.top(1)[0][0])
    assert f"{own.logit:.3f}" in text and "L" in text and "H" in text
    parts = re.findall(r"[-+]\d+\.\d+", text.split("\n")[3])          # embeddings · heads · MLPs · bias
    assert abs(sum(map(float, parts)) - own.logit) < 5e-3
    assert picture(result).std() > 0
