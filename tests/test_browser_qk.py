"""The Queries-and-keys view in headless Chromium, in both languages: the scatter is drawn after the
upload with no click, and a click on a point shows that token's patch; a click elsewhere shows another."""

import pytest

from .conftest import page_with_photo

pytestmark = pytest.mark.browser


def src(page, elem_id):
    img = page.locator(f"#{elem_id} img")
    return img.first.get_attribute("src") if img.count() else None


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_a_click_on_a_point_shows_its_patch(app_url, browser, lang):
    from ui.text import t

    page = page_with_photo(browser, app_url, lang)
    page.get_by_role("tab", name=t("sec_heads", lang), exact=True).click()
    page.get_by_role("tab", name=t("tab_qk", lang), exact=True).click()
    page.wait_for_selector("#qk-scatter img", timeout=60_000)
    assert src(page, "qk-token") is None
    scatter = page.locator("#qk-scatter img").first
    box = scatter.bounding_box()
    scatter.click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.55})
    page.wait_for_selector("#qk-token img", timeout=30_000)
    first, note = src(page, "qk-token"), page.locator("#qk-token-note").inner_text()
    assert t("qk_click", lang) not in note
    scatter.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.3})
    page.wait_for_function("(old) => { const img = document.querySelector('#qk-token img');"
                           " return img && img.getAttribute('src') !== old; }", arg=first, timeout=30_000)
    page.close()
