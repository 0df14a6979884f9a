"""Every figure and tile sheet a view shows starts below a white band, so Gradio's label badge
(top left) and buttons (top right) never cover its first line: plot titles and reference lines,
the first row of tiles, the first heads."""

import numpy as np
import pytest
from PIL import Image

from ui import dino, distance, evidence, filters, guess, posemb, upload
from ui.view import BADGE_BAND


@pytest.fixture(scope="module")
def session(ctx, tmp_path_factory):
    path = tmp_path_factory.mktemp("clear") / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(path)
    return upload.analyze_group(ctx, {}, [str(path)], ctx.start.name, "", ["en"])[0]["session"]


def pixels(value) -> np.ndarray:
    """A picture as an array, whether a view returned it as an array or as a file."""
    return np.asarray(Image.open(value).convert("RGB")) if isinstance(value, str) else value


def test_every_figure_starts_below_the_badge_band(ctx, session):
    from vitviz.evidence.perturb import FRACTIONS
    from vitviz.pictures import evidence as evidence_pictures
    from vitviz.pictures import maps as views

    opened = ctx.open(session)
    loaded, an = opened.loaded, opened.an
    guess.render(ctx, opened, "en")
    side = guess.picture(an).shape[0]
    drawn = np.zeros((side, guess.picture(an).shape[1], 4), np.uint8)
    drawn[: side // 2, :, 3] = 255
    answer = guess.reveal(ctx, opened, "en", {"layers": [drawn]})
    curves = evidence.render(ctx, opened, "en", "black", action="measure")["plot"]
    curves_h = evidence_pictures.curves_plot(an.memo.lookup(("evidence", "black"))["curves"], FRACTIONS,
                                             "en").shape[0]
    figures = {        # the view's picture, and the height of the library's picture it shows
        "distance": (distance.render(ctx, opened, "en")["plot"], views.attention_distance_plot(an, "en").shape[0]),
        "dino": (dino.render(ctx, opened, "en", mass=0.6)["heads"], views.dino_heads(an, 0.6).shape[0]),
        "filters": (filters.render(ctx, opened, "en")["picture"], views.embedding_filters(loaded).shape[0]),
        "posemb": (posemb.render(ctx, opened, "en")["picture"], views.position_similarity(loaded, an.grid).shape[0]),
        "evidence curves": (curves, curves_h),
        "guess rollout": (answer["rollout"], side + 30),              # the picture and its colour bar
        "guess class map": (answer["classmap"], side + 30),
    }
    for name, (value, library_h) in figures.items():
        picture = pixels(value)
        assert picture.shape[0] == library_h + BADGE_BAND, name
        assert (picture[:BADGE_BAND] >= 250).all(), name          # white (PNG) or nearly (JPEG)
