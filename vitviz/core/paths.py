"""Where the repository's files are: the one place that knows the checkout's layout."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]          # the checkout: app.py, assets/, results/
ASSETS = ROOT / "assets"
EXAMPLES_DIR = ASSETS / "examples"
LABELS_DIR = ASSETS / "labels"
MODELS_DIR = ASSETS / "models"
BUNDLED_DIR = MODELS_DIR / "deit-tiny-fashion-mnist"
RESULTS_DIR = ROOT / "results"
STUDY_DIR = RESULTS_DIR / "inductive-bias"
PHOTO_SUFFIXES = (".jpg", ".png")


def example_photos() -> list[Path]:
    """The example photos the app offers (and the int8 gate measures on), sorted by name."""
    return sorted(p for p in EXAMPLES_DIR.glob("*") if p.suffix in PHOTO_SUFFIXES)
