"""Korean labels are drawn with the Hangul font vitviz installs through pip, on a machine with no fonts of its own.

Each check runs in a fresh interpreter (matplotlib's font manager is global and built once), with a fresh
MPLCONFIGDIR, matplotlib's search of the machine's fonts answering nothing, and PIL refused every font file
outside the Python packages: what is left is what `pip install -r requirements.txt` brings. The same harness
without the bundled font must show boxes, which proves the machine's fonts really were hidden.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHILD = r'''
import json, logging, os, site, sys, sysconfig, warnings

root, mode = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)

import matplotlib
from matplotlib import font_manager

MPL_DATA = os.path.realpath(matplotlib.get_data_path())
PACKAGES = {os.path.realpath(p) for p in (*site.getsitepackages(), site.getusersitepackages(),
                                          sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])}


def inside(path, roots):
    real = os.path.realpath(path)
    return any(real.startswith(r + os.sep) for r in roots)


def not_matplotlibs(fm):
    return sorted({f.fname for f in fm.ttflist + fm.afmlist if not inside(f.fname, {MPL_DATA})})


# Rebuild the font manager (before pyplot, text and the Agg backend take it) from matplotlib's own fonts only: the
# search of the machine's folders and fontconfig answers nothing. (MPL_IGNORE_SYSTEM_FONTS would also hide addfont's.)
find = font_manager.findSystemFonts
font_manager.findSystemFonts = lambda fontpaths=None, fontext="ttf": find(fontpaths, fontext) if fontpaths else []
font_manager.fontManager = font_manager._load_fontmanager(try_read_cache=False)
font_manager.findfont = font_manager.fontManager.findfont
font_manager.get_font_names = font_manager.fontManager.get_font_names
out = {"system_fonts": not_matplotlibs(font_manager.fontManager)}

from PIL import Image, ImageDraw, ImageFont

opened, truetype = [], ImageFont.truetype


def pip_fonts_only(font=None, *args, **kwargs):
    """PIL on a machine without fonts: only files inside installed Python packages open."""
    if isinstance(font, (str, os.PathLike)):
        if not inside(font, PACKAGES):
            raise OSError(f"hidden system font {font}")
        opened.append(os.path.realpath(font))
    return truetype(font, *args, **kwargs)


ImageFont.truetype = pip_fonts_only

from vitviz.core import fonts

if mode == "none":          # the old state: no font shipped
    fonts.hangul_font = lambda: None

logs = []


class Keep(logging.Handler):
    def emit(self, record):
        logs.append(record.getMessage())


logging.getLogger().addHandler(Keep(logging.WARNING))

import numpy as np

from vitviz import modelcard, study
from vitviz.pictures import render

rng = np.random.default_rng(0)
x = np.linspace(0, 1, 6)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    render.scatter_figure(rng.random((3, 4)) * 100, 100, "레이어", "평균 어텐션 거리(픽셀)", "이미지 너비 = 100픽셀",
                          series="헤드")
    render.scatter_figure(rng.random((3, 4)) * 100, 100, "Layer", "mean attention distance (px)", "image width")
    render.curves_figure(x, {"롤아웃": (1 - x, x), "원시 어텐션": (1 - x ** 2, x ** 2)}, "제거한 패치 비율",
                         "정답 클래스 확률", "관련도 높은 패치부터 제거", "낮은 패치부터 제거")
    study.plot([{"model": m, "train_images": n, "test_accuracy": 0.5 + 0.001 * i}
                for i, m in enumerate(study.MODELS) for n in (1000, 5000)], lang="ko")
    modelcard.confusion_figure(np.array([[5, 1], [2, 4]]), ["티셔츠", "바지"])
    image = np.zeros((32, 64, 3), np.uint8)
    korean_bar = render.with_colorbar(image, low="낮음", high="높음")
    other_bar = render.with_colorbar(image, low="가가", high="나나")
    render.tiles(rng.random((2, 4, 4)), 2, labels=["레이어 0", "레이어 1"])
    render.token_sequence(np.zeros((32, 32, 3), np.uint8), (4, 4), 8, prefix_names=("[CLS]", "등록"))
    from vitviz.pictures import lens as lens_views
    from vitviz.pictures import evidence as sanity_views
    lens_views.top_plot(np.zeros((3, 2)), {0: "가방", 1: "바지"}, "ko")
    sanity_views.curve(np.ones(3), np.ones(3), "ko")

out["warnings"] = [str(w.message) for w in caught]
out["logs"] = logs
out["family"] = list(matplotlib.rcParams["font.family"])
out["latin_font"] = os.path.basename(font_manager.findfont(
    font_manager.FontProperties(family=matplotlib.rcParams["font.family"]), fallback_to_default=False))
out["mpl_fonts_outside_packages"] = [f for f in not_matplotlibs(font_manager.fontManager) if not inside(f, PACKAGES)]
out["pil_opened"] = sorted(set(opened))

font = render.font(12)
out["pil_font"] = font.path if isinstance(getattr(font, "path", None), str) else None   # None: PIL's own


def ink(text):
    img = Image.new("L", (48, 24), 0)
    ImageDraw.Draw(img).text((2, 2), text, fill=255, font=font)
    return np.asarray(img)


out["han_ink"] = int((ink("한") > 0).sum())
out["han_differs_from_ga"] = not np.array_equal(ink("한"), ink("가"))
out["colorbar_words_differ"] = not np.array_equal(korean_bar, other_bar)
print("RESULT " + json.dumps(out, ensure_ascii=False))
'''


def _run(mode: str, tmp_path: Path) -> dict:
    empty = tmp_path / mode
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MPL_IGNORE_SYSTEM_FONTS"}
    env.update(MPLCONFIGDIR=str(empty), XDG_DATA_DIRS=str(empty), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), mode], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=180)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def _glyph_complaints(out: dict) -> list[str]:
    return [m for m in out["warnings"] + out["logs"] if "Glyph" in m or "missing from font" in m or "findfont" in m]


def test_korean_labels_draw_with_the_pip_font_alone(tmp_path):
    from vitviz.core import fonts

    bundled = fonts.hangul_font()
    assert bundled, "no bundled Hangul font: pip install -r requirements.txt (koreanize-matplotlib)"
    out = _run("bundled", tmp_path)
    assert out["system_fonts"] == [], "the machine's fonts were not hidden from matplotlib"
    assert out["mpl_fonts_outside_packages"] == []
    assert all("/usr/share/fonts" not in p for p in out["pil_opened"])
    assert _glyph_complaints(out) == []
    # English stays DejaVu Sans; Hangul falls back glyph by glyph to the bundled font
    assert out["family"][0] == "DejaVu Sans" and len(out["family"]) > 1
    assert out["latin_font"] == "DejaVuSans.ttf"
    # PIL draws real Hangul with the bundled file, not PIL's default font and its boxes
    assert out["pil_font"] and os.path.samefile(out["pil_font"], bundled)
    assert out["han_ink"] > 20 and out["han_differs_from_ga"]
    assert out["colorbar_words_differ"]


def test_without_the_pip_font_korean_is_boxes(tmp_path):
    """The harness really hides the machine's fonts: the old code (no shipped font) draws boxes there."""
    out = _run("none", tmp_path)
    if not _glyph_complaints(out):
        pytest.fail(f"system fonts leaked into the hidden-fonts harness: {out}")
    assert not out["han_differs_from_ga"] and not out["colorbar_words_differ"]
