"""Screenshots of the running app, as a user sees it (headless Chromium via Playwright).

    python scripts/screenshot.py --model bundled --image assets/examples/fmnist-ankle-boot-test0.png --out shots/
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TABS = ["Patches & tokens", "Attention rollout", "Click a patch", "Raw attention", "Class-specific", "DINO heads",
        "Attention distance", "Position embeddings", "Embedding filters", "Faithfulness", "MAE", "Inside the ViT"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--image", default=str(ROOT / "assets" / "examples" / "cat.jpg"))
    p.add_argument("--out", default="shots")
    p.add_argument("--tabs", nargs="*", default=TABS)
    p.add_argument("--width", type=int, default=1400)
    a = p.parse_args()
    os.environ.setdefault("VITVIZ_OFFLINE", "1")
    import app
    from playwright.sync_api import sync_playwright

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    demo = app.create_demo(a.model)
    demo.queue().launch(prevent_thread_lock=True, quiet=True, **app.launch_kwargs())
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": a.width, "height": 1000})
            page.goto(demo.local_url)
            page.locator("#upload input[type=file]").set_input_files(a.image)
            page.wait_for_selector("#patch-grid img", timeout=120_000)
            page.wait_for_timeout(1500)
            for i, tab in enumerate(a.tabs):
                page.get_by_role("tab", name=tab).first.click()
                if tab == "Faithfulness":
                    page.get_by_role("button", name="Faithfulness").click()
                if tab == "Click a patch":
                    canvas = page.locator("#click-canvas img")
                    canvas.wait_for(timeout=30_000)
                    box = canvas.bounding_box()
                    canvas.click(position={"x": box["width"] * 0.45, "y": box["height"] * 0.4})
                page.wait_for_timeout(2500)
                name = tab.lower().replace(" ", "-").replace("&", "and")
                page.screenshot(path=str(out / f"{i:02d}-{name}.png"), full_page=True)
                print(out / f"{i:02d}-{name}.png")
            browser.close()
    finally:
        demo.close()


if __name__ == "__main__":
    main()
