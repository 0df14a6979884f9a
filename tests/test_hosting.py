"""Public hosting: the policy (models, sizes), the memory budget, plain messages, load shedding,
the analysis store's bound and the ZeroGPU runner (with a stand-in for the `spaces` package)."""

import contextvars
import multiprocessing
import os
import time
import weakref
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from vitviz import methods, models
from vitviz.analysis import analyze
from vitviz.core import limits
from vitviz.core.limits import RequestRefused
from vitviz.core.settings import Settings
from vitviz.service import hosting
from vitviz.service.hosting import Policy

from .conftest import app_settings

# ---------------------------------------------------------------- sizes

@pytest.mark.parametrize("text,expected", [("224x224", (224, 224)), (" 224 × 448 ", (224, 448)), ("32X64", (32, 64)),
                                           ("", None), (None, None)])
def test_sizes_parse(text, expected):
    assert limits.parse_size(text, 16) == expected


@pytest.mark.parametrize("text,key", [("abc", "err_size_format"), ("224", "err_size_format"),
                                      ("224x224x3", "err_size_format"), ("-16x16", "err_size_format"),
                                      ("8x224", "err_size_range"), ("99999x16", "err_size_range"),
                                      ("224x230", "err_size_patch")])
def test_bad_sizes_are_refused_with_a_reason(text, key):
    with pytest.raises(RequestRefused) as e:
        limits.parse_size(text, 16)
    assert e.value.key == key


def test_a_size_off_the_patch_grid_gets_the_nearest_good_one():
    with pytest.raises(RequestRefused) as e:
        limits.parse_size("230x250", 16)
    assert e.value.fields["suggestion"] == "224x256"


def test_public_mode_offers_only_the_listed_sizes():
    budget = limits.default_budget_bytes()
    public, local = Policy(True, ("m",), budget), Policy(False, ("m",), budget)
    assert public.check_size("336x336", (224, 224), 16) == (336, 336)      # 1.5× the training size
    with pytest.raises(RequestRefused) as e:
        public.check_size("320x320", (224, 224), 16)
    assert e.value.key == "err_size_not_offered" and "224x224, 336x336, 448x448" in e.value.fields["offered"]
    assert local.check_size("320x320", (224, 224), 16) == (320, 320)


# ---------------------------------------------------------------- models

def test_public_mode_refuses_an_unlisted_model_before_touching_files(monkeypatch, tiny_vit_dir):
    """A folder that exists on the server, or a model in its cache, is refused by name alone."""
    touched = []
    monkeypatch.setattr(os.path, "exists", lambda *a: touched.append(a) or True)
    monkeypatch.setattr(models, "resolve", lambda *a: touched.append(a))      # where models.load finds files
    policy = Policy(True, ("google/vit-base-patch16-224", "bundled"), limits.default_budget_bytes())
    for name in (tiny_vit_dir, "/etc", "facebook/some-cached-model", "../../assets/models/vit"):
        with pytest.raises(RequestRefused) as e:
            policy.check_model(name, "bundled")
        assert e.value.key == "err_model_not_offered"
        assert e.value.fields["offered"] == "google/vit-base-patch16-224, bundled"
    assert not touched
    assert policy.check_model("", "bundled") == "bundled" and policy.check_model("bundled", "x") == "bundled"


def test_offered_models_come_from_the_owner():
    owner = Settings.from_env({"VITVIZ_MODELS": "a/one, b/two ,"})
    assert hosting.offered_models(owner, "start") == ("start", "a/one", "b/two")
    assert hosting.policy(owner, "start").models == ("start", "a/one", "b/two")
    assert hosting.offered_models(Settings.from_env({}), models.BUNDLED) == tuple(models.known_models())


def test_public_mode_is_on_in_a_space():
    assert not hosting.policy(Settings.from_env({})).public
    space = Settings.from_env({"SPACE_ID": "someone/vitviz"})
    assert hosting.policy(space).public and not hosting.policy(space.overridden(public=False)).public


def test_a_folder_that_is_not_a_model_is_a_keyed_failure(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-family"}')
    with pytest.raises(models.ModelUnavailable) as e:
        models.load(str(tmp_path), "cpu", "float32")
    assert e.value.key == "model_broken" and str(tmp_path) not in models.ModelUnavailable.__doc__


# ---------------------------------------------------------------- memory

def test_memory_estimate_grows_with_the_square_of_the_tokens(tiny_loaded):
    shape = limits.Shape.of(tiny_loaded)
    small = limits.request_bytes(shape, (32, 32))
    big = limits.request_bytes(shape, (320, 320))               # 10× per side: 100× the patches
    assert big > 5000 * small / 1.1                             # attention memory ~ N², N ≈ 100×
    assert limits.request_bytes(shape, (64, 64), kind="class") > limits.request_bytes(shape, (64, 64))


def test_memory_estimate_covers_the_attentions_the_model_returns(tiny_loaded, photo):
    shape = limits.Shape.of(tiny_loaded)
    for size in ((32, 32), (64, 96)):
        an = analyze(tiny_loaded, photo, size)
        returned = an.attentions.numel() * 4                    # as the model returns them (float32)
        estimate = limits.request_bytes(shape, size)
        assert returned <= estimate <= 20 * returned + 4 * 2**20


def test_a_request_over_the_budget_is_refused_with_the_numbers(tiny_loaded):
    shape = limits.Shape.of(tiny_loaded)
    with pytest.raises(RequestRefused) as e:
        limits.check_budget(shape, (4096, 4096), budget=2**30)
    f = e.value.fields
    assert e.value.key == "err_memory" and f["size"] == "4096x4096" and f["limit"] == "1.0 GB"
    assert f["need"].endswith("GB")
    assert limits.check_budget(shape, (32, 32), budget=2**30) > 0


def test_default_budget_follows_the_machine_and_the_owner():
    assert 256 * 2**20 <= limits.default_budget_bytes() <= 4 * 2**30
    assert hosting.policy(Settings.from_env({})).request_budget == limits.default_budget_bytes()
    owner = Settings.from_env({"VITVIZ_REQUEST_MEMORY_MB": "8000"})
    assert limits.default_budget_bytes(owner.request_memory_mb) == 8000 * 2**20
    assert hosting.policy(owner).request_budget == 8000 * 2**20


def test_refused_size_allocates_nothing(tiny_vit_dir, photo, monkeypatch):
    """The budget is checked before the model runs: a huge size never reaches the forward pass."""
    from vitviz.service import context
    from vitviz.service.context import AppContext

    psutil = pytest.importorskip("psutil")
    ctx = AppContext.create(app_settings(tiny_vit_dir))
    ran = []
    monkeypatch.setattr(context, "analyze_batch", lambda *a, **k: ran.append(a))
    rss = psutil.Process().memory_info().rss
    for _ in range(5):
        with pytest.raises(RequestRefused):
            ctx.input_size(ctx.start, "4096x4096")
    assert not ran and psutil.Process().memory_info().rss - rss < 50 * 2**20


# ---------------------------------------------------------------- messages

def test_messages_never_carry_exception_text_or_paths(caplog):
    from vitviz.service.context import failure_message

    exc = RuntimeError("DefaultCPUAllocator: can't allocate memory at /srv/secret/path")
    for lang in ("en", "ko"):
        msg = failure_message(exc, lang, "analysis")
        assert "DefaultCPUAllocator" not in msg and "/srv" not in msg and "RuntimeError" not in msg
        request_id = msg.split("(")[-1].split(":")[0].split()[-1]
        assert len(request_id) == 8
        assert request_id in caplog.text and "DefaultCPUAllocator" in caplog.text   # the log has it all


def test_model_failures_are_explained_in_the_users_language():
    from vitviz.service.context import failure_message

    exc = models.ModelUnavailable("model_not_cached", "x is not cached", model="org/x")
    assert "org/x" in failure_message(exc, "en") and "cache" in failure_message(exc, "en")
    assert "캐시" in failure_message(exc, "ko")


def test_too_large_message_says_how_large(tmp_path):
    from vitviz.core.i18n import say
    from vitviz.core.preprocess import MAX_PIXELS, BadImage, open_image

    big = tmp_path / "big.png"
    Image.new("L", (8000, 6000)).save(big)                        # 48 MP, over the 40 MP limit
    with pytest.raises(BadImage) as e:
        open_image(big)
    msg = say(e.value.key, "en", **e.value.fields)
    assert "8000×6000" in msg and str(MAX_PIXELS // 1_000_000) in msg and "()" not in msg


# ---------------------------------------------------------------- load shedding and the store

def test_a_flood_is_told_to_come_back(tiny_vit_dir):
    import gradio as gr

    from ui import upload
    from vitviz.service.context import Waiting

    ctx = SimpleNamespace(waiting=Waiting(expire_s=60))
    for tab in range(upload.MAX_WAITING):
        assert upload.admit(ctx, f"tab{tab}", "en")                    # still room
    with pytest.raises(gr.Error) as e:
        upload.admit(ctx, "one more", "ko")
    assert str(e.value.message) == upload.t("err_busy", "ko", waiting=upload.MAX_WAITING)
    assert upload.admit(ctx, "tab0", "en", "new.png")                  # a tab waiting already keeps its place
    ctx.waiting.done("tab3")                                           # one answered: room for one more
    assert upload.admit(ctx, "one more", "en")
    assert len(ctx.waiting) == upload.MAX_WAITING


def test_regression_a_photo_reported_twice_takes_one_place():
    """Gradio reports a replacing upload twice; each report took a place, so 30 students' second photos
    filled the 32 places and were refused "busy" (benchmarks/classroom.py)."""
    from vitviz.service.context import Waiting

    waiting = Waiting(expire_s=60)
    assert waiting.admit("tab", 2, "a.png")
    assert not waiting.admit("tab", 2, "a.png")          # the same photo again: nothing to analyse
    assert waiting.admit("tab", 2, "b.png")              # a newer photo takes the older one's place
    assert waiting.admit("other", 2, "a.png")
    assert len(waiting) == 2
    waiting.done("tab")
    assert waiting.admit("tab", 2, "b.png")              # answered, then chosen again: analysed again


def test_unanswered_places_expire():
    from vitviz.service.context import Busy, Waiting

    waiting = Waiting(expire_s=0.05)
    for tab in "abc":
        waiting.admit(tab, 3)
    with pytest.raises(Busy):
        waiting.admit("d", 3)
    time.sleep(0.1)
    assert waiting.admit("d", 3) and len(waiting) == 1   # the three closed tabs no longer count


def test_the_store_keeps_the_sessions_within_its_budget(tiny_loaded, photo):
    from vitviz.analysis import Analysis
    from vitviz.core.cache import Cache

    an = analyze(tiny_loaded, photo)
    store = Cache(max_bytes=int(an.nbytes() * 3.5), size_of=Analysis.nbytes)
    for key in range(10):
        store.put(key, analyze(tiny_loaded, photo))
    assert len(store) == 3 and store.nbytes <= store.max_bytes
    assert store.lookup(0) is None and store.lookup(9) is not None


def test_an_analysis_keeps_a_display_copy_not_the_upload(tiny_loaded):
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8))
    an = analyze(tiny_loaded, photo)
    assert max(an.upload.size) == 640 and an.box == pytest.approx((0, 0, 640, 480))
    assert an.nbytes() < 2 * 2**20


# ---------------------------------------------------------------- ZeroGPU

class ForkedGPU:
    """Stands in for spaces.GPU: runs the function in another process, arguments and result by
    pickle, as ZeroGPU's worker does, and records what ran there and the seconds it asked for.

    The worker is spawned, not forked: a fork of this multi-threaded process (torch's OpenMP team,
    Gradio's and the model's threads) copies locks that other threads held, and the child can hang on
    one. One worker per stand-in, started on first use (its imports take seconds) and kept for the
    calls after; close() (or the stand-in's collection, or the interpreter's exit) ends it. One CPU
    thread there: the tests' machine is small and the work tiny."""

    def __init__(self, fn, duration):
        self.fn, self.duration, self.calls = fn, duration, []
        self._pool = None

    def __call__(self, *args):
        kind, work = args[0], args[1]
        self.calls.append((kind, work.__name__, self.duration(*args)))
        return self.pool().apply(self.fn, args)

    def pool(self):
        if self._pool is None:
            import torch

            self._pool = multiprocessing.get_context("spawn").Pool(1, initializer=torch.set_num_threads,
                                                                   initargs=(1,))
            self._ends = weakref.finalize(self, self._pool.terminate)
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._ends()                   # terminate, once
            self._pool.join()
            self._pool = None


def zerogpu_context(tiny_vit_dir):
    from vitviz.service import runner
    from vitviz.service.context import AppContext

    ctx = AppContext.create(app_settings(tiny_vit_dir))
    ctx.runner = runner.ModelRunner(zerogpu=False)
    ctx.runner.zerogpu, ctx.runner._gpu = True, ForkedGPU(runner._on_device, runner._gpu_seconds)
    return ctx


def test_zerogpu_work_crosses_a_process_boundary(tiny_vit_dir, photo):
    """Model work on ZeroGPU receives a model name and tensors and returns picklable results;
    the forward, the class-specific backward, the evidence batch and the sanity check run there, each asking
    for seconds that follow its work; the drawing stays here."""
    from ui import classmap, evidence, upload

    ctx = zerogpu_context(tiny_vit_dir)
    try:
        analyses, on_cpu, _ = ctx.analyze(ctx.start, [photo], (32, 32))
        local = analyze(ctx.start, photo)
        assert not on_cpu and np.allclose(analyses[0].probs, local.probs, atol=1e-6)
        ctx.analyze(ctx.start, [photo] * 4, (64, 64))
        session = upload.analyze_group(ctx, {}, [photo], ctx.start.name, "32x32", ["en"])[0]["session"]
        classmap.render(ctx, ctx.open(session), "en", target=None, method="chefer", alpha=0.5)
        evidence.render(ctx, ctx.open(session), "en", "black", action="measure")
    finally:
        ctx.runner._gpu.close()
    ran = ctx.runner._gpu.calls
    passes = len(methods.passes(methods.class_specific()))        # Chefer's backward, then each LeGrad's
    assert [(kind, fn) for kind, fn, _ in ran] == ([("forward", "run_model")] * 3 + [("class", "class_maps")] * passes
                                                   + [("evidence", "measure"), ("sanity", "mprt")])
    seconds = [s for *_, s in ran]
    assert seconds[0] < seconds[1] <= runner_max()            # four images at twice the side ask for more
    # the backward passes, then ~270 forwards, then L+1 class-map passes, ask for more
    evidence_at = 3 + passes
    assert seconds[0] == seconds[2] < seconds[3] and len(set(seconds[3:evidence_at])) == 1
    assert seconds[3] < seconds[evidence_at] < seconds[evidence_at + 1]


def runner_max():
    from vitviz.service.runner import MAX_SECONDS

    return MAX_SECONDS


def test_zerogpu_seconds_follow_the_work():
    from vitviz.service.runner import MAX_SECONDS, gpu_seconds

    one = gpu_seconds("forward", 1, 224 * 224)
    assert one < gpu_seconds("forward", 4, 224 * 224) < gpu_seconds("forward", 4, 448 * 448) <= MAX_SECONDS
    assert gpu_seconds("forward", 1, 224 * 224) < gpu_seconds("class", 1, 224 * 224) \
        < gpu_seconds("perturbation", 1, 224 * 224)
    assert gpu_seconds("perturbation", 64, 1024 * 1024) == MAX_SECONDS


def test_zerogpu_quota_falls_back_to_the_cpu(tiny_vit_dir, photo):
    import gradio as gr

    from ui import upload

    def refuse(*args):
        refused.append(args[0])
        raise gr.Error("You have exceeded your GPU quota (60s requested vs. 12s left).",
                       title="ZeroGPU quota exceeded")

    refused = []
    ctx = zerogpu_context(tiny_vit_dir)
    ctx.runner._gpu.close()                # the stand-in is replaced by the refusal: nothing runs there
    ctx.runner.cpu_dtype, ctx.runner._gpu = "float32", refuse
    analyses, on_cpu, _ = ctx.analyze(ctx.start, [photo], (32, 32))
    assert on_cpu and analyses[0].probs is not None and refused == ["forward"]
    status = upload.analyze_group(ctx, {}, [photo], ctx.start.name, "32x32", ["en"])[0]["status"]
    assert status.startswith("Analyzed") and "ran on the CPU" in status     # a note, not an error


def test_the_model_thread_sees_the_requests_context():
    """ZeroGPU reads who is asking from a context variable: it must reach the model thread."""
    from vitviz.service.runner import ModelRunner

    who = contextvars.ContextVar("who")
    who.set("student-7")
    assert ModelRunner(zerogpu=False).on_thread(who.get) == "student-7"


def test_model_work_asked_for_from_the_model_thread_runs_there():
    """A view rendered on the model thread that needs more model work (class maps for the
    evidence view) must not wait for the thread it is on."""
    import threading

    from vitviz.service.runner import ModelRunner

    runner = ModelRunner(zerogpu=False)
    names = runner.on_thread(lambda: runner.on_thread(lambda: threading.current_thread().name))
    assert names.startswith("vitviz-model")


def test_the_real_spaces_decorator_is_harmless_off_zerogpu(tiny_vit_dir, photo, monkeypatch):
    """With Hugging Face's own `spaces` package: off ZeroGPU its decorator changes nothing, so the
    ZeroGPU code path runs here as it will there, minus the GPU."""
    pytest.importorskip("spaces")
    from vitviz.service.context import AppContext
    from vitviz.service.runner import ModelRunner

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    ctx = AppContext.create(app_settings(tiny_vit_dir))
    ctx.runner = ModelRunner(zerogpu=True, cpu_dtype="float32")
    analyses, on_cpu, _ = ctx.analyze(ctx.start, [photo], (32, 32))
    assert not on_cpu and analyses[0].probs is not None


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_the_offline_notice_names_the_model_it_could_not_load(tiny_loaded, lang):
    """Regression: the notice said "it is not in this computer's model cache" without saying which model."""
    from dataclasses import replace

    from ui.upload import model_notes

    failed = models.ModelUnavailable("model_not_cached", "not cached", model="google/vit-base-patch16-224")
    notes = model_notes(replace(tiny_loaded, fallback_from=failed), lang)
    assert "google/vit-base-patch16-224" in notes.splitlines()[0]
    assert ("cache" if lang == "en" else "캐시") in notes.splitlines()[0]


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_a_shared_example_says_it_was_shared_not_zero_seconds(tiny_vit_dir, lang):
    """Regression: the second click on an example said "Analyzed … in 0.00 s"."""
    from ui import upload
    from ui.text import t
    from vitviz.core.paths import example_photos

    from .conftest import app_context

    ctx = app_context(tiny_vit_dir)
    example = str(example_photos()[0])
    first = upload.analyze_group(ctx, {}, [example], ctx.start.name, "32x32", [lang])[0]["status"]
    again = upload.analyze_group(ctx, {}, [example], ctx.start.name, "32x32", [lang])[0]["status"]
    shared_words = t("ok_shared", lang, model="@", device="@", dtype="@").split("@")[-1]
    assert shared_words not in first and shared_words in again
    assert " 0.00" not in again and "0.00초" not in again
