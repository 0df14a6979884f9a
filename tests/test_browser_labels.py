"""Typed labels in the real UI (headless Chromium): a tiny CLIP, labels typed in English and in Korean."""

from pathlib import Path

import pytest

from .conftest import serving
from .tiny_families import save_zero_shot

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", params=["clip", "siglip2"])
def served(request, tmp_path_factory):
    with serving(save_zero_shot(tmp_path_factory.mktemp(request.param), request.param)) as demo:
        yield request.param, demo.local_url


def type_labels(page, text):
    box = page.locator("#labels textarea, #labels input").first
    box.fill(text)
    box.press("Enter")


def test_typed_labels_in_english_and_korean_show_their_maps(served, browser):
    """English labels on every model; Korean labels on SigLIP 2, and refused plainly by English-only CLIP."""
    from ui.text import t

    kind, app_url = served
    page = browser.new_page(viewport={"width": 1400, "height": 1200}, locale="en-US")
    page.goto(app_url)
    page.wait_for_selector("#labels", timeout=60_000)
    page.locator("#upload input[type=file]").set_input_files(str(ROOT / "assets" / "examples" / "cat.jpg"))
    page.wait_for_function("() => document.querySelector('#status').innerText.includes('Analyzed')", timeout=60_000)
    if kind == "clip":
        type_labels(page, "고양이, 강아지")
        refused = t("err_labels_english", "en", label="@").split("@")[1][:40]
        page.wait_for_function(f"() => document.querySelector('#status').innerText.includes({refused!r})",
                               timeout=60_000)
    for labels in ("cat, dog, car",) if kind == "clip" else ("cat, dog, car", "고양이, 강아지, 자동차"):
        type_labels(page, labels)
        words = [word.strip() for word in labels.split(",")]
        # the defaults share words with the typed labels ("cat"): wait for the new analysis to show them all
        page.wait_for_function(f"() => {words!r}.every((w) => document.querySelector('#predictions').innerText"
                               ".includes(w))", timeout=60_000)
        page.get_by_role("tab", name="Explain", exact=True).click()
        page.wait_for_function("() => document.querySelector('#rollout-seen img')?.src", timeout=60_000)
        page.get_by_role("tab", name="See", exact=True).click()
    page.close()
