"""Guess where it looks in headless Chromium: draw on the photo with the mouse, press Reveal, see
both maps over the drawing and the score, in English and in Korean, on a classroom server whose
board shows a nickname as typed. Screenshots at 1280×800 and 1920×1080."""

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import page_with_photo, serving

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("VITVIZ_SCREENSHOTS", "/tmp/vitviz-screenshots"))
NASTY = "<b>민수</b> www.x.co"          # markup and a bare link: the board must show them as typed
SERVED = {}


@pytest.fixture(scope="module")
def app_url(tiny_vit_dir):
    with serving(tiny_vit_dir, classroom=True) as demo:      # a classroom server: the board is on (empty)
        SERVED["demo"] = demo
        yield demo.local_url


def open_guess(browser, url, lang):
    from ui.text import t

    page = page_with_photo(browser, url, lang, photo="cat.jpg")
    page.get_by_role("tab", name=t("tab_guess", lang), exact=True).click()
    # the tab's render has come (its score line and the picture to draw on come together) ...
    page.wait_for_function("() => document.querySelector('#guess-score').innerText.trim() !== ''", timeout=30_000)
    page.wait_for_timeout(1500)          # ... and the editor draws its background
    return page


def draw_circle(page, cx=0.5, cy=0.5, r=0.12):
    """A closed stroke around (cx, cy), in shares of the editor's canvas."""
    canvas = page.locator("#guess-editor canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    side = min(box["width"], box["height"])
    x, y = box["x"] + box["width"] * cx, box["y"] + box["height"] * cy
    points = [(x + side * r * np.cos(a), y + side * r * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 25)]
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=3)
    page.mouse.up()
    page.wait_for_timeout(300)


def picture(page, elem_id) -> np.ndarray:
    src = page.locator(f"#{elem_id} img").first.get_attribute("src")
    return np.asarray(Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB"))


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_draw_reveal_and_see_the_maps_and_the_score(app_url, browser, lang):
    from ui.text import t
    from ui.view import BADGE_BAND
    from vitviz import activity

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = open_guess(browser, app_url, lang)
    assert page.locator("#guess-score").inner_text().strip() == t("guess_todo", lang)
    draw_circle(page)
    page.locator("#guess-nick input, #guess-nick textarea").first.fill(NASTY)
    page.locator("#guess-share input").check()
    page.locator("#guess-reveal").click()
    for elem in ("guess-rollout", "guess-class"):
        page.wait_for_selector(f"#{elem} img", timeout=60_000)
    score = page.locator("#guess-score").inner_text()
    assert t("guess_rollout", lang) in score and ("✓" in score or "✗" in score)
    assert ("of the map's mass is inside your drawing" if lang == "en" else "그림 안에 들어온 맵의 양") in score

    # the drawing comes back where it was drawn: its outline centred on the picture the student saw
    answer = picture(page, "guess-rollout")[BADGE_BAND:]
    near = np.abs(answer.astype(int) - activity.OUTLINE_RGB).max(-1) < 80   # pictures come as JPEG
    edge = np.argwhere(near)
    assert len(edge) > 50
    centre = edge.mean(0) / answer.shape[1]               # the picture is square; the colour bar is below it
    assert abs(centre[0] - 0.5) < 0.12 and abs(centre[1] - 0.5) < 0.12, centre

    # the class board shows the nickname as typed: no markup, no link
    page.wait_for_function("() => document.querySelector('#guess-board').innerText.includes('www.x.co')",
                           timeout=30_000)
    board = page.locator("#guess-board")
    assert "<b>민수</b> www.x.co" in board.inner_text()
    assert board.locator("a").count() == 0 and board.locator("td b").count() == 0
    page.screenshot(path=str(SHOTS / f"guess-{lang}-1280x800.png"), full_page=True)

    page.set_viewport_size({"width": 1920, "height": 1080})
    page.wait_for_timeout(800)
    page.screenshot(path=str(SHOTS / f"guess-{lang}-1920x1080.png"), full_page=True)
    page.close()


def test_reveal_without_a_drawing_says_what_to_do(app_url, browser):
    from ui.text import t

    page = open_guess(browser, app_url, "en")
    page.locator("#guess-reveal").click()
    page.wait_for_function(f"() => document.querySelector('#guess-score').innerText.startsWith("
                           f"{t('guess_empty', 'en')[:20]!r})", timeout=30_000)
    assert page.locator("#guess-rollout img").count() == 0
    page.close()


def test_regression_a_browsers_drawing_passes_through_the_editors_bounds(app_url, browser, monkeypatch):
    """The bounds of ui/sketch.py were patched on the editor instance, and Gradio decodes a session's
    drawings with a copy it builds from the class after any update of the editor (the analysis's
    redraw sends one): no browser's drawing met them. With the side limit set below any drawing,
    a real drawing must be refused."""
    from ui import sketch
    from ui.text import t

    monkeypatch.setattr(sketch, "MAX_SIDE", 8)
    page = open_guess(browser, app_url, "en")
    draw_circle(page)
    page.locator("#guess-reveal").click()
    refusal = t("guess_refused", "en", side=0).split("(")[0]
    page.wait_for_function(f"() => document.querySelector('#guess-score').innerText.startsWith({refusal!r})",
                           timeout=30_000)
    assert page.locator("#guess-rollout img").count() == 0
    page.close()


def test_the_server_refuses_what_the_editor_would_not_send(app_url):
    """Gradio's /component_server passes posted images to the editor's accept_blobs: the bounded
    one (ui/sketch.py) takes a drawing layer and refuses an absurd layer index and oversized files."""
    import httpx

    from ui import sketch

    editor = next(b for b in SERVED["demo"].blocks.values() if getattr(b, "elem_id", None) == "guess-editor")
    buf = io.BytesIO()
    Image.new("RGBA", (8, 8)).save(buf, "PNG")

    def post(key, index, blob):
        fields = {"component_id": str(editor._id), "session_hash": "test", "fn_name": "accept_blobs",
                  "type": "layer", "index": index, "id": key}
        return httpx.post(f"{app_url}gradio_api/component_server", data=fields, files={"file": ("blob", blob)})

    assert post("fine", "0", buf.getvalue()).status_code == 200 and "fine" in editor.blob_storage
    post("far", str(10**6), buf.getvalue())
    post("fat", "0", b"\0" * (sketch.MAX_IMAGE_BYTES + 1))
    assert "far" not in editor.blob_storage and "fat" not in editor.blob_storage
    editor.blob_storage.pop("fine", None)
