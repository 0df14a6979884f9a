"""The sanity check and the logit lens in headless Chromium, in English and in Korean: the check's
picture appears after its button (inside Explain · Evidence), with the sentence on what a flat
line means; the logit lens shows its plot and its patch map with the honest note on early layers.
Screenshots at 1280×800 and 1920×1080."""

import os
from pathlib import Path

import pytest

from .conftest import page_with_photo

pytestmark = pytest.mark.browser
SHOTS = Path(os.environ.get("VITVIZ_SCREENSHOTS", "/tmp/vitviz-screenshots"))


def visible_picture(elem_id: str) -> str:
    return f"""() => [...document.querySelectorAll('#{elem_id} img')]
        .some((img) => img.offsetParent !== null && img.naturalWidth > 0)"""


@pytest.mark.parametrize("size", [(1280, 800), (1920, 1080)])
@pytest.mark.parametrize("lang", ["en", "ko"])
def test_sanity_check_and_logit_lens_show_their_pictures(app_url, browser, lang, size):
    from ui.text import t

    SHOTS.mkdir(parents=True, exist_ok=True)
    page = page_with_photo(browser, app_url, lang, size)
    page.get_by_role("tab", name=t("sec_explain", lang), exact=True).click()
    page.get_by_role("tab", name=t("tab_evidence", lang), exact=True).click()
    page.get_by_label(t("ev_part_sanity", lang)).check()
    run = page.locator("#sanity-run")
    run.wait_for(state="visible", timeout=30_000)
    flat = t("sanity_flat", lang).replace("**", "")[:30]
    assert flat in page.locator("#sanity-flat").inner_text()
    run.click()
    page.wait_for_function(visible_picture("sanity"), timeout=120_000)
    page.locator("#sanity img").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / f"checks-sanity-{lang}-{size[0]}x{size[1]}.png"))

    page.get_by_role("tab", name=t("sec_learn", lang), exact=True).click()
    page.get_by_role("tab", name=t("tab_lens", lang), exact=True).click()
    page.wait_for_function(visible_picture("lens-plot"), timeout=60_000)
    page.wait_for_function(visible_picture("lens-patches"), timeout=60_000)
    honest = t("lens_honest", lang).replace("**", "")[:30]
    assert honest in page.locator("#lens-honest").inner_text()
    assert page.locator("#lens-table table").count() == 1
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / f"checks-lens-{lang}-{size[0]}x{size[1]}.png"))
    page.close()
