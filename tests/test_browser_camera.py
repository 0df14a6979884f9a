"""The live camera in headless Chromium with its fake camera (a moving test pattern): the stream
starts, the map over the frames updates, and the frames per second appear, in both languages."""

import json
import os
from pathlib import Path

import pytest

from .conftest import chromium

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("VITVIZ_SCREENSHOTS", "/tmp/vitviz-screenshots"))
# the fake device streams a test pattern; the fake UI grants the camera without asking
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


@pytest.fixture(scope="module")
def browser():
    with chromium(*FAKE_CAMERA) as b:
        yield b


MAP_SRC_JS = "() => { const img = document.querySelector('#camera-map img'); return img ? img.src : null; }"


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_fake_camera_streams_and_the_map_follows(app_url, browser, lang):
    from ui.text import t

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="ko-KR" if lang == "ko" else "en-US")
    page.goto(app_url)
    page.wait_for_selector("#upload", timeout=60_000)
    page.wait_for_function(f"() => document.body.innerText.includes({t('image', lang)!r})", timeout=30_000)
    page.get_by_role("tab", name=t("sec_see", lang), exact=True).click()
    page.get_by_role("tab", name=t("tab_camera", lang), exact=True).click()
    page.locator("#camera-in [title='grant webcam access'] button").click()      # Gradio's "Click to Access Webcam"
    record = page.locator("#camera-in button[aria-label='capture photo']")       # Gradio's Record button
    record.wait_for(timeout=30_000)
    record.click()
    seen = []
    for _ in range(3):           # the map's src changes with every frame drawn (a data URL per frame)
        previous = seen[-1] if seen else None
        page.wait_for_function(f"() => {{ const s = ({MAP_SRC_JS})(); return s && s !== {json.dumps(previous)}; }}",
                               timeout=60_000)
        seen.append(page.evaluate(MAP_SRC_JS))
    assert len(set(seen)) == 3 and all(s.startswith("data:image/jpeg;base64,") for s in seen)
    label = {"en": "frames per second", "ko": "1초에"}[lang]
    assert label in t("camera_fps", lang)
    # a rate (not "–") once two frames are drawn
    page.wait_for_function(f"() => {{ const s = document.querySelector('#camera-fps').innerText;"
                           f" return s.includes({label!r}) && /[0-9]/.test(s) && !s.includes('–'); }}",
                           timeout=60_000)
    page.screenshot(path=str(SHOTS / f"camera-{lang}.png"))
    page.close()
