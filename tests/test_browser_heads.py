"""Heads · Which heads decide in the real UI (headless Chromium, 1280×800), in English and Korean: the grid
is drawn after an upload, two clicks on it switch two heads off, and the top-5 before and after shows."""

import os
import re
from pathlib import Path

import pytest

from .conftest import page_with_photo

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("VITVIZ_SCREENSHOTS", "/tmp/vitviz-screenshots"))

# the grid's picture: where it is on the page and its size in pixels
GRID_JS = """() => { const img = document.querySelector('#heads-grid img'); const r = img.getBoundingClientRect();
    return {x: r.x, y: r.y, width: r.width, height: r.height, natural: [img.naturalWidth, img.naturalHeight]}; }"""


def click_cell(page, layers: int, heads: int, layer: int, head: int) -> None:
    """Click the centre of a (layer, head) cell of the grid, as the picture is scaled on the page."""
    from ui.view import BADGE_BAND
    from vitviz.pictures.heads import grid_layout

    box = page.evaluate(GRID_JS)
    x0, y0, x1, y1 = grid_layout(layers, heads).head_box(layer, head)
    scale = box["width"] / box["natural"][0]
    assert abs(box["height"] / box["natural"][1] - scale) < 0.02      # drawn at its own aspect ratio
    page.mouse.click(box["x"] + (x0 + x1) / 2 * scale, box["y"] + ((y0 + y1) / 2 + BADGE_BAND) * scale)


def counted(template: str, count: int) -> str:
    """The words around the count in the knock-out's sentence, as the page shows them: "1 head", "헤드 1개"."""
    words = re.search(r"[^*():.“”@]*\{count\}[^*():.“”@]*", template)[0].strip()    # "@": the other fields
    return words.replace("{count}", str(count))


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_two_heads_clicked_off_change_the_top5(app_url, browser, lang):
    from ui.text import t
    from vitviz.core.i18n import t as lib_t

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = page_with_photo(browser, app_url, lang)
    page.get_by_role("tab", name=t("sec_heads", lang), exact=True).click()
    page.get_by_role("tab", name=t("tab_heads", lang), exact=True).click()
    page.wait_for_function("() => document.querySelector('#heads-grid img')?.naturalWidth > 0", timeout=60_000)
    page.locator("#heads-click").get_by_text(t("heads_click_toggle", lang)).click()
    page.locator("#heads-grid img").scroll_into_view_if_needed()
    for count, (layer, head) in enumerate([(0, 1), (1, 2)], start=1):
        grid = page.locator("#heads-grid img").get_attribute("src")
        click_cell(page, 2, 4, layer, head)                    # the tiny test model: 2 layers of 4 heads
        page.wait_for_function(f"() => document.querySelector('#heads-grid img').src !== {grid!r}", timeout=30_000)
        head_count = counted(t("heads_result", lang, mode="@", count="{count}", name="@", before="@", after="@",
                                change="@"), count)
        page.wait_for_function(f"() => document.querySelector('#heads-result').innerText.includes({head_count!r})",
                               timeout=30_000)
    result = page.locator("#heads-result").inner_text()
    for word in (lib_t("heads_before", lang), lib_t("heads_after", lang)):    # the top-5 table's columns
        assert word in result, (word, result)
    assert len([line for line in result.splitlines() if "%" in line]) == 5
    values = page.locator("#heads-off").inner_text()
    assert "L0 H1" in values and "L1 H2" in values
    page.wait_for_function("() => document.querySelector('#heads-rollout img')?.naturalWidth > 0", timeout=30_000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1280, width                                       # nothing wider than the projector
    page.screenshot(path=str(SHOTS / f"heads-knockout-{lang}.png"), full_page=True)
    page.close()
