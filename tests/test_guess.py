"""Guess where it looks without a browser: the view's render and Reveal by name, the class board's
bounds and escaping, and the bounds on what the drawing editor accepts."""

import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from ui import board, guess, sketch, upload
from ui.context import Session
from vitviz import activity as act
from vitviz import attention as A


@pytest.fixture
def session(ctx, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return upload.analyze_group(ctx, [str(path)], ctx.start.name, "", ["en"])[0]["session"]


def layer_for(ctx, session, rows: slice, cols: slice) -> np.ndarray:
    """An editor layer over the view's picture with paint in rows × cols (of the picture's pixels)."""
    h, w = guess.picture(ctx.open(session)[1]).shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    layer[rows, cols] = (0, 200, 255, 255)
    return layer


def test_the_tab_gets_its_picture_once_and_keeps_the_drawing(ctx, session):
    _, an = ctx.open(session)
    first = guess.render(ctx, session, "en")
    assert first["drawing"]["background"].shape == guess.picture(an).shape
    assert first["drawing"]["background"].shape[0] >= guess.PICTURE_SIDE and first["rollout"] is None
    again = guess.render(ctx, session, "ko")                  # a language switch or a return to the tab
    assert "drawing" not in again and again["score"] == "사진 위에 그린 다음 정답 보기를 누르세요."


def test_reveal_scores_a_drawn_quarter_against_the_maps(ctx, session):
    loaded, an = ctx.open(session)
    guess.render(ctx, session, "en")
    h, w = guess.picture(an).shape[:2]
    quarter = layer_for(ctx, session, slice(0, h // 2), slice(0, w // 2))     # the top-left 2×2 of 4×4 patches
    out = guess.reveal(ctx, session, "en", {"background": None, "layers": [quarter], "composite": None})
    roll = A.normalize(A.rollout(an.att(), an.prefix, an.grid)).numpy()      # as the rollout view shows it
    expected = roll[:2, :2].sum() / roll.sum()
    assert f"**{expected:.0%}** of the map's mass" in out["score"].splitlines()[1]
    assert "covers **25%** of the picture" in out["score"]
    assert out["rollout"].shape[1] == w and out["classmap"] is not None
    row, col = np.unravel_index(np.argmax(roll), roll.shape)
    assert ("is inside it ✓" in out["score"].splitlines()[1]) == (row < 2 and col < 2)
    korean = guess.render(ctx, session, "ko")                 # the answer redrawn in Korean, same numbers
    assert f"그림 안에 들어온 맵의 양 **{expected:.0%}**" in korean["score"] and korean["rollout"] is not None


def test_everything_drawn_holds_all_the_mass(ctx, session):
    guess.render(ctx, session, "en")
    full = layer_for(ctx, session, slice(None), slice(None))
    out = guess.reveal(ctx, session, "en", {"layers": [full]})
    assert out["score"].count("**100%** of the map's mass") == 2 and out["score"].count("✓") == 2


def test_nothing_drawn_a_wrong_shape_and_a_refused_drawing_get_plain_sentences(ctx, session):
    guess.render(ctx, session, "en")
    empty = layer_for(ctx, session, slice(0, 0), slice(0, 0))
    assert guess.reveal(ctx, session, "en", {"layers": [empty]})["score"].startswith("Nothing is drawn yet")
    assert guess.reveal(ctx, session, "ko", {"layers": []})["score"].startswith("아직 아무것도")
    assert guess.reveal(ctx, session, "en", None)["score"].startswith("Nothing is drawn yet")
    wide = np.zeros((100, 300, 4), np.uint8)
    wide[..., 3] = 255
    assert "does not fit the picture" in guess.reveal(ctx, session, "en", {"layers": [wide]})["score"]
    refused = {"background": None, "layers": [], "composite": None, "refused": True}
    assert sketch.refused(refused) and "too large" in guess.reveal(ctx, session, "en", refused)["score"]
    assert guess.reveal(ctx, None, "en", {"layers": []})["score"] == "Upload a photo or click an example first."
    gone = Session("no-such-key", ctx.start.name)
    assert "no longer kept" in guess.reveal(ctx, gone, "en", {"layers": []})["score"]


def test_the_class_board_only_on_a_classroom_server(ctx, session, monkeypatch):
    board.BOARD.clear()
    guess.render(ctx, session, "en")
    quarter = layer_for(ctx, session, slice(0, 50), slice(0, 50))
    monkeypatch.delenv(board.ENV, raising=False)
    assert "board" not in guess.reveal(ctx, session, "en", {"layers": [quarter]}, share=True, nickname="kim")
    assert len(board.BOARD) == 0
    monkeypatch.setenv(board.ENV, "1")
    out = guess.reveal(ctx, session, "en", {"layers": [quarter]}, share=True, nickname="<b>kim</b>")
    assert "| &lt;b&gt;kim&lt;\\/b&gt; |" in out["board"] and "<b>" not in out["board"] and len(board.BOARD) == 1
    long = guess.reveal(ctx, session, "ko", {"layers": [quarter]}, share=True, nickname="x" * 21)
    assert long["board"].startswith("별명이 너무 깁니다. 20자까지") and len(board.BOARD) == 1
    other = guess.render(ctx, session, "en")["board"]            # another tab's view of the same photo
    assert "(1 on the board;" in other and "| Nickname |" in other
    board.BOARD.clear()


# ---------------------------------------------------------------- the board

def test_the_classroom_switch(monkeypatch):
    for value, on in (("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)):
        monkeypatch.setenv(board.ENV, value)
        assert board.enabled() is on, value
    monkeypatch.delenv(board.ENV)
    assert not board.enabled()


def test_the_classroom_flag_turns_the_board_on_in_public_mode_too(monkeypatch):
    import app

    class Started(Exception):
        pass

    def create(*args, **kwargs):
        raise Started                      # stop before loading a model and serving

    monkeypatch.delenv(board.ENV, raising=False)
    monkeypatch.setattr(app.AppContext, "create", create)
    with pytest.raises(Started):
        app.main(["--classroom", "--public"])
    assert board.enabled()


def test_board_bounds_per_photo_photos_and_total():
    b = board.Board(per_photo=3, photos=2, total=5)
    for name in "abc":
        b.add("p1", name, [(0.5, True)])
    b.add("p1", "a", [(0.9, False)])                        # a nickname's new score replaces its old one
    assert len(b) == 3 and b.entries("p1")[0].scores == ((0.9, False),)
    with pytest.raises(board.BoardRefused) as full:
        b.add("p1", "d", [(0.1, False)])
    assert full.value.key == "board_full" and full.value.fields == {"limit": 3}
    b.add("p2", "a", [(0.1, False)])
    b.add("p2", "b", [(0.1, False)])                        # 5 in all: the total
    b.add("p3", "z", [(0.2, True)])                         # a third photo: the oldest (p1) goes
    assert b.entries("p1") == [] and len(b.entries("p2")) == 2 and len(b.entries("p3")) == 1 and len(b) == 3


def test_board_total_makes_room_by_dropping_old_photos_and_refuses_when_it_cannot():
    b = board.Board(per_photo=10, photos=10, total=3)
    for name in "abc":
        b.add("old", name, [(0.5, True)])
    b.add("new", "d", [(0.5, True)])                        # the old photo's board goes to make room
    assert b.entries("old") == [] and len(b) == 1
    for name in "ef":
        b.add("new", name, [(0.5, True)])
    with pytest.raises(board.BoardRefused) as full:
        b.add("new", "g", [(0.5, True)])                    # nothing older to drop
    assert full.value.fields == {"limit": 3} and len(b) == 3


def test_nicknames_are_cleaned_and_refused_plainly():
    assert board.clean_nickname("  민수\n\t 2학년\u200b\u202e ") == "민수 2학년"
    assert board.clean_nickname("\u1106\u1175\u11ab") == "민"                # NFC: jamo become one syllable
    assert board.clean_nickname("x" * board.NICK_MAX) == "x" * board.NICK_MAX
    for bad, key in (("", "board_nick_empty"), ("\x00\u200b \x07", "board_nick_empty"), (None, "board_nick_empty"),
                     ("x" * (board.NICK_MAX + 1), "board_nick_long"), ("y" * 10_000, "board_nick_long")):
        with pytest.raises(board.BoardRefused) as refused:
            board.clean_nickname(bad)
        assert refused.value.key == key


def test_nicknames_show_as_typed_with_no_markup_or_links():
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    nasty = ["<script>alert(1)</script>", "[click](http://evil.example)", "<http://evil.example>", "**bold** _it_",
             "a | b", "`code`", "![x](http://e.x/i.png)", "&amp; &#60;", "# head", "1. list", "> quote",
             "<img src=x onerror=alert(1)>"]
    entries = [board.Entry(board.clean_nickname(n[:board.NICK_MAX]), ((0.5, True),)) for n in nasty]
    html = md.render(board.table(entries, ["Nickname", "Rollout"]))
    for tag in ("<a", "<script", "<img", "<strong", "<em", "<code", "<h1", "<ol", "<blockquote"):
        assert tag not in html, tag
    assert html.count("<tr>") == len(nasty) + 1                 # "|" in a nickname opens no extra cell or row
    assert all(row.count("<td") == 2 for row in html.split("<tr>")[2:])
    assert "&lt;script&gt;alert(1)&lt;/sc" in html and "[click](http://evil." in html     # cut to NICK_MAX
    assert "&amp;amp; &amp;#60;" in html                        # an entity typed is shown as typed


# ---------------------------------------------------------------- the editor's bounds

def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (w, h), (0, 0, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def post(ed, key, kind, blob, index=None):
    """What the browser posts: form fields arrive as text ("0", "null")."""
    meta = {"type": kind, "index": "null" if index is None else str(index), "id": key}
    ed.accept_blobs(SimpleNamespace(data=meta, files=[("blob", blob)]))


def test_the_editor_refuses_absurd_drawings_and_bounds_what_waits():
    import gradio as gr

    with gr.Blocks():
        ed = sketch.editor("draw", "ed")
    post(ed, "ok", "layer", png(40, 30), index=0)
    value = ed.preprocess(SimpleNamespace(id="ok", background=None, layers=[], composite=None))
    assert value["layers"][0].shape == (30, 40, 4) and not sketch.refused(value) and "ok" not in ed.blob_storage
    post(ed, "huge", "layer", png(act.MAX_SIDE + 1, 2), index=0)          # small file, too many pixels
    assert sketch.refused(ed.preprocess(SimpleNamespace(id="huge", background=None, layers=[], composite=None)))
    for key, index in (("far", 10**9), ("odd", "x"), ("neg", -1)):
        post(ed, key, "layer", png(4, 4), index=index)
        assert key not in ed.blob_storage
        assert sketch.refused(ed.preprocess(SimpleNamespace(id=key, background=None, layers=[], composite=None)))
    post(ed, "big", "background", b"\0" * (sketch.MAX_IMAGE_BYTES + 1))
    assert "big" not in ed.blob_storage
    for i in range(sketch.MAX_PENDING + 10):                               # posted and never used
        post(ed, f"k{i}", "layer", png(4, 4), index=0)
    assert len(ed.blob_storage) == sketch.MAX_PENDING and f"k{sketch.MAX_PENDING + 9}" in ed.blob_storage
    assert getattr(ed.accept_blobs, "_is_server_fn", False)                 # Gradio still calls it
