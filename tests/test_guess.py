"""Guess where it looks without a browser: the view's render and Reveal by name, the class board's
bounds and escaping, and the bounds on what the drawing editor accepts."""

import io
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from ui import guess, sketch, upload
from vitviz import activity as act
from vitviz import attention as A
from vitviz.service import board
from vitviz.service.context import AppContext, Session

from .conftest import app_context, app_settings


@pytest.fixture
def photo_path(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return str(path)


def new_session(ctx, path) -> Session:
    return upload.analyze_group(ctx, {}, [path], ctx.start.name, "", ["en"])[0]["session"]


@pytest.fixture
def session(ctx, photo_path):
    return new_session(ctx, photo_path)


def render(ctx, session, lang):
    return guess.render(ctx, ctx.open(session), lang)


def reveal(ctx, session, lang, drawing, share=False, nickname="", owner="tab-1"):
    return guess.reveal(ctx, ctx.open(session), lang, drawing, share, nickname, owner)


def reveal_button(ctx):
    """The Reveal button's handler as the page wires it (ui.guess.wire), from the tab's session:
    (session, lang, drawing, share, nickname) -> the outputs by name."""
    import gradio as gr

    from ui.view import Shared

    with gr.Blocks() as demo:
        shared = Shared(gr.State(None), gr.Radio(["en", "ko"], value="en"), gr.Slider(0.0, 1.0))
        view = replace(guess.build(ctx, shared), id=guess.ID, section="see", shared=shared)
        guess.wire(ctx, view, shared)
    button = view.extra["reveal"]._id
    [fn] = [f.fn for f in demo.fns.values() if (button, "click") in [tuple(t) for t in f.targets]]
    names = {id(c): name for name, c in view.outputs.items()}
    return lambda *args: {names[id(c)]: value for c, value in fn(*args).items()}


def layer_for(ctx, session, rows: slice, cols: slice) -> np.ndarray:
    """An editor layer over the view's picture with paint in rows × cols (of the picture's pixels)."""
    h, w = guess.picture(ctx.open(session).an).shape[:2]
    layer = np.zeros((h, w, 4), np.uint8)
    layer[rows, cols] = (0, 200, 255, 255)
    return layer


def test_the_tab_gets_its_picture_once_and_keeps_the_drawing(ctx, session):
    an = ctx.open(session).an
    first = render(ctx, session, "en")
    assert first["drawing"]["background"].shape == guess.picture(an).shape
    assert first["drawing"]["background"].shape[0] >= guess.PICTURE_SIDE and first["rollout"] is None
    again = render(ctx, session, "ko")                  # a language switch or a return to the tab
    assert "drawing" not in again and again["score"] == "사진 위에 그린 다음 정답 보기를 누르세요."


def test_reveal_scores_a_drawn_quarter_against_the_maps(ctx, session):
    an = ctx.open(session).an
    render(ctx, session, "en")
    h, w = guess.picture(an).shape[:2]
    quarter = layer_for(ctx, session, slice(0, h // 2), slice(0, w // 2))     # the top-left 2×2 of 4×4 patches
    out = reveal(ctx, session, "en", {"background": None, "layers": [quarter], "composite": None})
    roll = A.normalize(A.rollout(an.att(), an.prefix, an.grid)).numpy()      # as the rollout view shows it
    expected = roll[:2, :2].sum() / roll.sum()
    assert f"**{expected:.0%}** of the map's mass" in out["score"].splitlines()[1]
    assert "covers **25%** of the picture" in out["score"]
    assert out["rollout"].shape[1] == w and out["classmap"] is not None
    row, col = np.unravel_index(np.argmax(roll), roll.shape)
    assert ("is inside it ✓" in out["score"].splitlines()[1]) == (row < 2 and col < 2)
    korean = render(ctx, session, "ko")                 # the answer redrawn in Korean, same numbers
    assert f"그림 안에 들어온 맵의 양 **{expected:.0%}**" in korean["score"] and korean["rollout"] is not None


def test_everything_drawn_holds_all_the_mass(ctx, session):
    render(ctx, session, "en")
    full = layer_for(ctx, session, slice(None), slice(None))
    out = reveal(ctx, session, "en", {"layers": [full]})
    assert out["score"].count("**100%** of the map's mass") == 2 and out["score"].count("✓") == 2


def test_nothing_drawn_a_wrong_shape_and_a_refused_drawing_get_plain_sentences(ctx, session):
    render(ctx, session, "en")
    empty = layer_for(ctx, session, slice(0, 0), slice(0, 0))
    assert reveal(ctx, session, "en", {"layers": [empty]})["score"].startswith("Nothing is drawn yet")
    assert reveal(ctx, session, "ko", {"layers": []})["score"].startswith("아직 아무것도")
    assert reveal(ctx, session, "en", None)["score"].startswith("Nothing is drawn yet")
    wide = np.zeros((100, 300, 4), np.uint8)
    wide[..., 3] = 255
    assert "does not fit the picture" in reveal(ctx, session, "en", {"layers": [wide]})["score"]
    refused = {"background": None, "layers": [], "composite": None, "refused": True}
    assert sketch.refused(refused) and "too large" in reveal(ctx, session, "en", refused)["score"]
    # the page's Reveal button opens the tab's session: none yet, or one whose analysis is gone
    press = reveal_button(ctx)
    assert press(None, "en", {"layers": []}, False, "")["score"] == "Upload a photo or click an example first."
    gone = Session("no-such-key", ctx.start.name)
    assert "no longer kept" in press(gone, "en", {"layers": []}, False, "")["score"]
    assert "no longer kept" in guess.reveal(ctx, None, "en", {"layers": []})["score"]
    assert press(session, "en", {"layers": [empty]}, False, "")["score"].startswith("Nothing is drawn yet")


def test_the_class_board_only_on_a_classroom_server(ctx, session, tiny_vit_dir, photo_path):
    render(ctx, session, "en")
    quarter = layer_for(ctx, session, slice(0, 50), slice(0, 50))
    assert ctx.board is None                                       # not a classroom server: no board to put it on
    assert "board" not in reveal(ctx, session, "en", {"layers": [quarter]}, share=True, nickname="kim")
    assert render(ctx, session, "en")["board"] == ""
    classroom = app_context(tiny_vit_dir, classroom=True)
    assert len(classroom.board) == 0
    session = new_session(classroom, photo_path)
    render(classroom, session, "en")
    out = reveal(classroom, session, "en", {"layers": [quarter]}, share=True, nickname="<b>kim</b>")
    assert "| &lt;b&gt;kim&lt;\\/b&gt; |" in out["board"] and "<b>" not in out["board"] and len(classroom.board) == 1
    long = reveal(classroom, session, "ko", {"layers": [quarter]}, share=True, nickname="x" * 21)
    assert long["board"].startswith(guess.t("board_nick_long", "ko", limit=20)) and len(classroom.board) == 1
    other = render(classroom, new_session(classroom, photo_path), "en")["board"]   # another tab, the same photo
    assert "(1 on the board;" in other and "| Nickname |" in other


# ---------------------------------------------------------------- the board

def test_the_classroom_switch(tiny_vit_dir):
    from vitviz.core.settings import Settings

    for value, on in (("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)):
        settings = Settings.from_env({"VITVIZ_CLASSROOM": value})
        assert settings.classroom is on, value
        ctx = AppContext.create(settings.overridden(model=tiny_vit_dir, device="cpu", dtype="float32"))
        assert (ctx.board is not None) is on, value
    assert not Settings.from_env({}).classroom
    assert AppContext.create(app_settings(tiny_vit_dir, classroom=False)).board is None


def test_the_classroom_flag_turns_the_board_on_in_public_mode_too(tiny_vit_dir, monkeypatch):
    import app

    class Started(Exception):
        pass

    asked = []

    def create(settings=None):
        asked.append(settings)
        raise Started                      # stop before loading a model and serving

    real_create = AppContext.create
    monkeypatch.delenv("VITVIZ_CLASSROOM", raising=False)
    monkeypatch.setattr(app.AppContext, "create", create)
    with pytest.raises(Started):
        app.main(["--classroom", "--public"])
    [settings] = asked
    assert settings.classroom and settings.public
    ctx = real_create(settings.overridden(model=tiny_vit_dir, device="cpu", dtype="float32"))
    assert ctx.board is not None and ctx.policy.public


def test_board_bounds_per_photo_photos_and_total():
    b = board.Board(per_photo=3, photos=2, total=5)
    for name in "abc":
        b.add("p1", name, [(0.5, True)], owner=name)
    b.add("p1", "a", [(0.9, False)], owner="a")             # its owner's new score replaces the old one
    assert len(b) == 3 and b.entries("p1")[0].scores == ((0.9, False),)
    with pytest.raises(board.BoardRefused) as full:
        b.add("p1", "d", [(0.1, False)], owner="d")
    assert full.value.key == "board_full" and full.value.fields == {"limit": 3}
    b.add("p2", "a", [(0.1, False)], owner="a")
    b.add("p2", "b", [(0.1, False)], owner="b")             # 5 in all: the total
    b.add("p3", "z", [(0.2, True)], owner="z")              # a third photo: the oldest (p1) goes
    assert b.entries("p1") == [] and len(b.entries("p2")) == 2 and len(b.entries("p3")) == 1 and len(b) == 3


def test_board_total_makes_room_by_dropping_old_photos_and_refuses_when_it_cannot():
    b = board.Board(per_photo=10, photos=10, total=3)
    for name in "abc":
        b.add("old", name, [(0.5, True)], owner=name)
    b.add("new", "d", [(0.5, True)], owner="d")             # the old photo's board goes to make room
    assert b.entries("old") == [] and len(b) == 1
    for name in "ef":
        b.add("new", name, [(0.5, True)], owner=name)
    with pytest.raises(board.BoardRefused) as full:
        b.add("new", "g", [(0.5, True)], owner="g")         # nothing older to drop
    assert full.value.fields == {"limit": 3} and len(b) == 3


def test_a_nickname_belongs_to_the_session_that_first_used_it_on_a_photo():
    b = board.Board()
    b.add("photo", "Kim", [(0.6, True)], owner="tab-a")
    for impostor in ("Kim", "KIM", "kim", "ｋｉｍ", "Кіm", "K\u200bim", " Kim "):   # case, width, Cyrillic К і, hidden
        with pytest.raises(board.BoardRefused) as taken:
            b.add("photo", impostor, [(0.99, True)], owner="tab-b")
        assert taken.value.key == "board_nick_taken", impostor
    assert [(e.nickname, e.scores, e.owner) for e in b.entries("photo")] == [("Kim", ((0.6, True),), "tab-a")]
    b.add("photo", "KIM", [(0.7, False)], owner="tab-a")        # its owner may post again, in any case
    assert [(e.nickname, e.scores) for e in b.entries("photo")] == [("KIM", ((0.7, False),))]
    b.add("photo", "Lee", [(0.2, False)], owner="tab-b")        # a nickname of one's own is fine
    b.add("another photo", "Kim", [(0.1, False)], owner="tab-b")   # a nickname is held per photo
    assert len(b) == 3 and {e.owner for e in b.entries("another photo")} == {"tab-b"}


def test_nicknames_that_look_alike_are_one_and_different_ones_are_not():
    from vitviz.core.text import alike

    for a, b in (("Kim", "KIM"), ("Kim", "ｋｉｍ"), ("Kim", "Кіm"), ("Tom", "T0m"), ("TOM", "t0m"), ("Iris", "lris"),
                 ("mary", "rnary"), ("paypal", "раураl"), ("민수", "민수"), ("민수", "\u1106\u1175\u11ab수")):
        assert alike(a, b), (a, b)
    different = (("Kim", "Kin"), ("Bob", "Rob"), ("Anna", "Ana"), ("민수", "민지"), ("minsu", "minsu2"),
                 ("José", "Jose"))
    for a, b in different:
        assert not alike(a, b), (a, b)


def test_two_tabs_one_nickname_on_the_board(tiny_vit_dir, photo_path):
    classroom = app_context(tiny_vit_dir, classroom=True)
    first, second = new_session(classroom, photo_path), new_session(classroom, photo_path)
    for s in (first, second):
        render(classroom, s, "en")
    quarter = layer_for(classroom, first, slice(0, 50), slice(0, 50))
    reveal(classroom, first, "en", {"layers": [quarter]}, share=True, nickname="minsu", owner="tab-a")
    en = reveal(classroom, second, "en", {"layers": [quarter]}, share=True, nickname="MINSU", owner="tab-b")
    ko = reveal(classroom, second, "ko", {"layers": [quarter]}, share=True, nickname="minsu", owner="tab-b")
    assert en["board"].startswith("Someone else already uses that nickname")
    assert ko["board"].startswith(guess.t("board_nick_taken", "ko")) and "| minsu |" in ko["board"]
    assert [e.owner for e in classroom.board.entries(guess.photo_key(classroom.open(first).loaded,
                                                                         classroom.open(first).an))] == ["tab-a"]


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


def uploaded(tmp_path, name: str, blob: bytes):
    """A layer as Gradio 6's editor sends it: uploaded first, named in the event as a file."""
    from gradio.data_classes import FileData

    path = tmp_path / name
    path.write_bytes(blob)
    return FileData(path=str(path))


def test_the_editor_bounds_the_layers_it_is_sent_as_files(tmp_path):
    """The way a browser sends a drawing in Gradio 6.31: layers decoded within the bounds, the
    background and composite never decoded, a layer of too many pixels refused."""
    import gradio as gr
    from gradio.components.image_editor import EditorData

    with gr.Blocks():
        ed = sketch.editor("draw", "ed")
    heavy = uploaded(tmp_path, "bg.png", png(act.MAX_SIDE + 1, act.MAX_SIDE + 1))    # would be refused if read
    layer = uploaded(tmp_path, "l.png", png(40, 30))
    value = ed.preprocess(EditorData(background=heavy, composite=heavy, layers=[layer]))
    assert not sketch.refused(value) and value["layers"][0].shape == (30, 40, 4) and value["background"] is None
    huge = EditorData(layers=[uploaded(tmp_path, "huge.png", png(act.MAX_SIDE + 1, 2))])
    assert sketch.refused(ed.preprocess(huge))
    many = EditorData(layers=[uploaded(tmp_path, f"l{i}.png", png(4, 4)) for i in range(sketch.MAX_LAYERS + 1)])
    assert sketch.refused(ed.preprocess(many))


def test_regression_a_sessions_copy_of_the_editor_keeps_its_bounds():
    """Gradio answers an update of a component in a session (even the empty one a handler that leaves
    the editor alone sends) with a fresh copy built from the class and its constructor arguments; the
    bounds were patched on the instance, so every browser's drawing after its first tab switch was
    decoded unbounded. Here the copy is made as Gradio makes it, and refuses as the editor does."""
    import gradio as gr

    with gr.Blocks():
        ed = sketch.editor("draw", "ed")
    copy = type(ed)(**{**ed.constructor_args, "render": False})          # gradio/blocks.py postprocess_data
    assert copy is not ed and copy.get_block_name() == "imageeditor"       # served by the editor's frontend
    post(copy, "huge", "layer", png(act.MAX_SIDE + 1, 2), index=0)
    assert sketch.refused(copy.preprocess(SimpleNamespace(id="huge", background=None, layers=[], composite=None)))
    for i in range(sketch.MAX_PENDING + 5):                                # one budget for the editor and its copies
        post(ed if i % 2 else copy, f"k{i}", "layer", png(4, 4), index=0)
    assert copy.blob_storage is ed.blob_storage and len(ed.blob_storage) == sketch.MAX_PENDING
