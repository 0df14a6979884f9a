"""Presentation mode on a classroom projector (1280×800): the first view is on screen without
scrolling, and Gradio's label badge stays inside the white band above its pictures."""

import os
from pathlib import Path

import pytest

from .conftest import page_with_photo

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("VITVIZ_SCREENSHOTS", "/tmp/vitviz-screenshots"))

# Each visible picture of the sections: its box, and the box of its block's label badge.
PICTURES_JS = """() => [...document.querySelectorAll('#sections img')].filter((i) => i.offsetParent !== null)
  .map((img) => { const block = img.closest('.block'); const label = block && block.querySelector('label');
    const r = img.getBoundingClientRect(); const l = label ? label.getBoundingClientRect() : null;
    return {id: block ? block.id : '', top: r.top, bottom: r.bottom, left: r.left, right: r.right,
            scale: r.height / img.naturalHeight, label: l && {bottom: l.bottom, right: l.right}}; })"""


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_first_view_fits_1280x800_in_presentation_mode(app_url, browser, lang):
    import app
    from ui.view import BADGE_BAND

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = page_with_photo(browser, app_url, lang)
    page.locator("#present input").check()
    page.wait_for_function("() => document.querySelector('#upload').offsetParent === null", timeout=30_000)
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.scrollY") == 0
    pictures = page.evaluate(PICTURES_JS)
    first = app.SECTIONS["see"][0]
    ids = {p["id"] for p in pictures}
    assert first.ID == "patches" and {"patch-grid", "tokens"} <= ids, ids
    for p in pictures:
        assert 0 <= p["top"] and p["bottom"] <= 800 and 0 <= p["left"] and p["right"] <= 1280, p
        # the badge ends above the first line of the picture, below the white band
        assert p["label"] and p["label"]["bottom"] <= p["top"] + BADGE_BAND * p["scale"] + 1, p
    page.screenshot(path=str(SHOTS / f"presentation-first-view-{lang}-1280x800.png"))
    page.close()
