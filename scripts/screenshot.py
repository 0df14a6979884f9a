"""Screenshots of the running app, as a user sees it (headless Chromium via Playwright): every
section and view, in English or Korean, at a chosen window size.

    python scripts/screenshot.py --model bundled --image assets/examples/fmnist-ankle-boot-test0.png \
        --lang ko --size 1280x800 --out shots/
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def hidden_tabs(page, labels: list[str]) -> list[str]:
    """Those of the labels that are not a tab button on screen (an overflow menu hides them)."""
    return page.evaluate("""(labels) => labels.filter((label) => ![...document.querySelectorAll('button[role=tab]')]
        .some((b) => { const r = b.getBoundingClientRect();
                       return b.innerText.trim() === label && b.offsetParent !== null && r.width > 0
                              && r.left >= 0 && r.right <= window.innerWidth; }))""", labels)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--image", default=str(ROOT / "assets" / "examples" / "cat.jpg"))
    p.add_argument("--out", default="shots")
    p.add_argument("--lang", default="en", choices=["en", "ko"])
    p.add_argument("--size", default="1280x800", help="browser window WxH")
    p.add_argument("--views", nargs="*", default=None, help="view ids (default: all)")
    a = p.parse_args()
    from playwright.sync_api import sync_playwright

    import app
    from ui.text import t
    from vitviz.core.settings import Settings

    width, height = (int(v) for v in a.size.split("x"))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    demo = app.create_demo(settings=Settings.from_env().overridden(model=a.model, offline=True))
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": width, "height": height},
                                    locale="ko-KR" if a.lang == "ko" else "en-US")
            page.goto(demo.local_url)
            page.locator("#upload input[type=file]").set_input_files(a.image)
            page.wait_for_selector("#patch-grid img", timeout=120_000)
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out / f"{a.lang}-{a.size}-00-page.png"))
            i = 0
            for section, modules in app.SECTIONS.items():
                page.get_by_role("tab", name=t(f"sec_{section}", a.lang), exact=True).click()
                page.wait_for_timeout(800)
                missing = hidden_tabs(page, [t(tab_key(m), a.lang) for m in modules])
                verdict = f"NOT ON SCREEN at {a.size}: {missing}" if missing else "every view tab on screen"
                print(f"{section}: {verdict}")
                for module in modules:
                    if a.views and module.ID not in a.views and not (module.ID == "evidence" and "sanity" in a.views):
                        continue
                    i += 1
                    shoot(page, module, a.lang, out / f"{a.lang}-{a.size}-{i:02d}-{section}-{module.ID}.png")
                    if module.ID == "evidence" and (not a.views or "sanity" in a.views):   # its second part
                        page.get_by_label(t("ev_part_sanity", a.lang)).check()
                        page.wait_for_selector("#sanity img", timeout=120_000)
                        page.wait_for_timeout(1500)
                        shot = out / f"{a.lang}-{a.size}-{i:02d}-{section}-sanity.png"
                        page.screenshot(path=str(shot), full_page=True)
                        page.get_by_label(t("ev_part_measure", a.lang)).check()
            browser.close()
    finally:
        demo.close()


def tab_key(module) -> str:
    return f"tab_{module.ID}"


def shoot(page, module, lang: str, path: Path) -> None:
    from ui.text import t

    page.get_by_role("tab", name=t(tab_key(module), lang), exact=True).click()
    if module.ID == "evidence":
        page.get_by_role("button", name=t("ev_run", lang)).click()
        page.wait_for_selector("#evidence-curves img", timeout=120_000)
    if module.ID == "click":
        canvas = page.locator("#click-canvas img")
        canvas.wait_for(timeout=30_000)
        box = canvas.bounding_box()
        canvas.click(position={"x": box["width"] * 0.45, "y": box["height"] * 0.4})
    if module.ID == "guess":
        draw_and_reveal(page)
    page.wait_for_timeout(2500)
    page.screenshot(path=str(path), full_page=True)
    print(path)


def draw_and_reveal(page, cx: float = 0.5, cy: float = 0.45, r: float = 0.18) -> None:
    """Guess where it looks: circle (cx, cy) on the photo (shares of the canvas), then Reveal."""
    import math

    canvas = page.locator("#guess-editor canvas").first
    canvas.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    box = canvas.bounding_box()
    side = min(box["width"], box["height"])
    x, y = box["x"] + box["width"] * cx, box["y"] + box["height"] * cy
    page.mouse.move(x + side * r, y)
    page.mouse.down()
    for i in range(1, 31):
        a = 2 * math.pi * i / 30
        page.mouse.move(x + side * r * math.cos(a), y + side * r * math.sin(a), steps=2)
    page.mouse.up()
    page.locator("#guess-reveal").click()
    page.wait_for_selector("#guess-rollout img", timeout=120_000)


if __name__ == "__main__":
    main()
