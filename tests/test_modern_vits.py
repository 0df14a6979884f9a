"""DINOv2 (with registers), CLIP / SigLIP / SigLIP 2 with typed labels, and timm ViTs: each family through
the app's loader, the views, the app's handlers and the command line, on tiny random checkpoints."""

import ctypes
import ctypes.util

import numpy as np
import pytest
import torch

from vitviz import analysis, methods, models, query
from vitviz import attention as A
from vitviz.analysis import analyze
from vitviz.core import labels as typed
from vitviz.core.limits import RequestRefused
from vitviz.families import timm_vit, zeroshot
from vitviz.methods.compute import graph_forward
from vitviz.pictures import maps as views

from .conftest import app_context
from .tiny_families import save_dinov2, save_timm, save_zero_shot

needs_timm = pytest.mark.skipif(not timm_vit.available(),
                                reason="timm (with a torchvision built for this torch) is not installed")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("modern")
    return {"dinov2": save_dinov2(root / "dinov2"), "dinov2_reg": save_dinov2(root / "dinov2-reg", registers=4),
            "dinov2_reg_cls": save_dinov2(root / "dinov2-reg-cls", registers=4, classifier=True),
            **{kind: save_zero_shot(root / kind, kind) for kind in zeroshot.KINDS}}


def load(path):
    return models.load(path, "cpu", "float32")


def class_maps(loaded, an, target, method_ids=None):
    """Every class-specific method's map for a class (the old default), or those of method_ids."""
    return methods.class_maps(loaded, an, target, methods.class_specific() if method_ids is None else method_ids)


# ---------------------------------------------------------------- DINOv2 and registers

def test_dinov2_registers_are_prefix_tokens_and_never_patches(dirs, photo):
    plain, reg = load(dirs["dinov2"]), load(dirs["dinov2_reg"])
    assert plain.prefix_names == ("[CLS]",) and plain.registers == 0
    assert reg.prefix_names == ("[CLS]", "[REG0]", "[REG1]", "[REG2]", "[REG3]") and reg.registers == 4
    assert reg.mlp_size == 64                                           # hidden 32 × mlp_ratio 2
    an = analyze(reg, photo)
    assert an.grid == (4, 4) and an.attentions.shape[-1] == 5 + 16
    assert views.rollout_map(an).shape == (4, 4)
    assert views.raw_attention(an, 1, None, False, 0.5)[0].ndim == 3
    # the rollout map is the [CLS] row's patch columns: the register columns are not in it
    row = A.rollout_row(an.attentions, 0, keep=5)
    assert np.allclose(views.rollout_map(an), A.normalize(row[5:].reshape(4, 4)).numpy(), atol=1e-6)
    norms = analysis.token_norms(reg, an.pixel_values)
    picture, table = views.token_norms(an, norms, "en")
    assert norms.shape == (3, 21) and all(f"[REG{i}]" in table.splitlines()[0] for i in range(4))


def test_dinov2_with_registers_classifier_gives_class_maps(dirs, photo):
    loaded = load(dirs["dinov2_reg_cls"])
    an = analyze(loaded, photo)
    maps = class_maps(loaded, an, an.top(1)[0][0])
    assert {m.shape for m in maps.values()} == {(4, 4)}


def test_token_strip_draws_registers_apart(dirs, photo):
    an = analyze(load(dirs["dinov2_reg"]), photo)
    strip = views.patches(an)[1]
    blue, teal = np.array([60, 90, 200]), np.array([0, 130, 120])
    tile = 56 + 6                                                       # render.token_sequence's layout
    assert (strip[20, 6 + 20] == blue).all() and all((strip[20, 6 + i * tile + 20] == teal).all() for i in (1, 4))


# ---------------------------------------------------------------- typed labels

def test_typed_labels_come_back_without_control_characters_and_lines_separate_them():
    typed_in = "cat\x00\x1b[31m\u202e, dog\r\nbird\u200b\n\n  red\tfox  \u2028owl"
    assert typed.parse_labels(typed_in) == ("cat[31m", "dog", "bird", "red fox", "owl")
    assert typed.parse_labels("\x00\x1b\u202e\n ,") == typed.DEFAULT_LABELS        # nothing left: the defaults


def test_labels_are_read_in_a_sentence_of_their_language():
    assert typed.prompt("cat") == "a photo of a cat" and typed.prompt("고양이") == "고양이 사진"
    assert typed.prompt("red 여우") == "red 여우 사진"
    assert typed.parse_labels("", "ko") == ("고양이", "커피", "로켓", "우주 비행사", "사람", "개")
    assert typed.parse_labels("", "ko", multilingual=False) == typed.DEFAULT_LABELS
    assert typed.parse_labels("고양이, cat", "en", multilingual=True) == ("고양이", "cat")
    for english_only in ("고양이", "cat, 강아지", "кошка", "猫"):
        with pytest.raises(RequestRefused) as e:
            typed.parse_labels(english_only, "ko", multilingual=False)
        assert e.value.key == "err_labels_english"
    assert typed.parse_labels("café, naïve", multilingual=False) == ("café", "naïve")   # Latin letters


@pytest.mark.parametrize("kind", zeroshot.KINDS)
def test_which_models_read_korean_is_a_fact_of_the_loaded_model(dirs, photo, kind):
    from ui import upload

    ctx = app_context(dirs[kind])
    assert ctx.start.multilingual_text is (kind == "siglip2")
    out = upload.analyze_group(ctx, {}, [photo], ctx.start.name, "32x32", ["ko"], "")[0]
    shown = set(out["predictions"])      # the top five of the six default labels
    if kind == "siglip2":
        assert len(shown) == 5 and shown < set(typed.DEFAULTS["ko"])
    else:
        assert len(shown) == 5 and shown < set(typed.DEFAULTS["en"])
        refused = upload.analyze_group(ctx, {}, [photo], ctx.start.name, "32x32", ["ko"], "고양이, cat")[0]
        assert refused["status"].startswith("“고양이”") and "SigLIP 2" in refused["status"]


def test_labels_are_parsed_and_bounded():
    assert typed.parse_labels(" cat, dog ,,고양이，강아지、cat ") == ("cat", "dog", "고양이", "강아지")
    assert typed.parse_labels("") == typed.DEFAULT_LABELS
    assert len(typed.parse_labels(", ".join(f"l{i}" for i in range(20)))) == 20
    with pytest.raises(RequestRefused) as e:
        typed.parse_labels(", ".join(f"l{i}" for i in range(21)))
    assert e.value.key == "err_labels_many" and e.value.fields["limit"] == 20
    with pytest.raises(RequestRefused) as e:
        typed.parse_labels("cat, " + "x" * 41)
    assert e.value.key == "err_labels_long"
    with pytest.raises(RequestRefused):
        typed.parse_labels("x" * 100_000)                            # refused before any splitting


def reference_logits(path, kind, pixel_values, labels):
    """The image–text logits as transformers' own model computes them."""
    import transformers

    full = transformers.AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    padding = True if kind == "clip" else "max_length"
    text = tok([typed.prompt(x) for x in labels], padding=padding, max_length=32, return_tensors="pt")
    text = {k: v for k, v in text.items() if k in ("input_ids", "attention_mask")}
    x = pixel_values[None]
    if kind == "siglip2":
        image = {"pixel_values": zeroshot.patchify(x, 8), "pixel_attention_mask": torch.ones(1, 16, dtype=torch.long),
                 "spatial_shapes": torch.tensor([[4, 4]])}
    else:
        image = {"pixel_values": x}
    with torch.no_grad():
        return full(**text, **image).logits_per_image[0]


@pytest.mark.parametrize("kind", zeroshot.KINDS)
def test_typed_labels_rank_as_the_model_scores_them(dirs, photo, kind):
    loaded = load(dirs[kind])
    assert loaded.typed_labels and not loaded.has_classifier
    labels = ("cat", "dog", "car", "고양이", "강아지")
    bound = loaded.with_labels(labels)
    an = analyze(bound, photo)
    ref = reference_logits(dirs[kind], kind, an.pixel_values, labels)
    assert np.allclose(an.probs, ref.softmax(-1).numpy(), atol=1e-5)
    order = [i for i, *_ in an.top(5)]
    assert (np.diff(ref[order].numpy()) <= 1e-6).all()                  # best first by the model's own scores
    assert [name for _, name, _ in an.top(5, "ko")] == [labels[i] for i in order]
    assert ref[:3].unique().numel() == 3                                # the scores do tell labels apart


@pytest.mark.parametrize("kind", zeroshot.KINDS)
def test_vision_tower_maps_have_the_patch_grid(dirs, photo, kind):
    bound = load(dirs[kind]).with_labels(("cat", "dog"))
    an = analyze(bound, photo)
    clip = kind == "clip"
    assert an.grid == (4, 4) and an.prefix_names == (("[CLS]",) if clip else ())
    assert an.attentions.shape[-1] == (17 if clip else 16) and (an.probe is None) == clip
    assert bound.query_name == ("[CLS]" if clip else "probe")
    assert views.rollout_map(an).shape == views.dino_heads(an, 0.6).shape[:0] + (4, 4)
    for m in class_maps(bound, an, 1).values():
        assert m.shape == (4, 4) and torch.isfinite(m).all()
    assert set(methods.maps(bound, an, methods.offered(bound), target=0)) >= {"raw", "rollout_mean", "chefer"}


def test_siglip_pooling_probe_is_the_models_own_head(dirs, photo):
    """vitviz writes SigLIP's pooling head out to keep the probe's attention: same output as the head."""
    bound = load(dirs["siglip"]).with_labels(("cat",))
    x = analyze(bound, photo).pixel_values[None]
    with torch.no_grad():
        out = bound.model.vision(pixel_values=x)
        pooled, att = zeroshot.probe_pool(bound.model.vision.head, out.last_hidden_state)
    assert torch.allclose(pooled, out.pooler_output, atol=1e-5)
    assert att.shape == (1, 4, 1, 16) and torch.allclose(att.sum(-1), torch.ones(1, 4, 1))


def test_siglip_rollout_runs_from_the_probe_back_through_the_encoder(dirs, photo):
    an = analyze(load(dirs["siglip"]).with_labels(("cat",)), photo)
    att = an.att()
    row = an.probe.float().mean(0)                                       # the probe's heads, fused by the mean
    for layer in reversed(range(att.shape[0])):
        a = 0.5 * att[layer].mean(0) + 0.5 * torch.eye(16)
        row = row @ (a / a.sum(-1, keepdim=True))
    assert torch.allclose(query.rollout(an), row.reshape(4, 4), atol=1e-6)
    assert torch.allclose(query.last_heads(an), an.probe.float().reshape(4, 4, 4), atol=1e-6)


def test_siglip_chefer_map_equals_the_probe_as_a_last_token(dirs, photo):
    """Chefer's rule with the probe as an extra token that only the pooling layer's row reads: the
    same map as vitviz's probe row times the encoder's relevance."""
    bound = load(dirs["siglip"]).with_labels(("cat", "dog"))
    an = analyze(bound, photo)
    with torch.enable_grad():
        out = graph_forward(bound, an, 1)
        grads = torch.autograd.grad(out.logits[0, 1], [*out.attentions, out.probe_attentions])
    n, heads = 16, 4
    r = torch.eye(n + 1)
    for a, g in zip(out.attentions, grads[:-1]):                         # the probe (index 0) keeps to itself
        cam = torch.zeros(heads, n + 1, n + 1)
        cam[:, 1:, 1:] = (g[0] * a[0]).detach()
        r = r + cam.clamp_min(0).mean(0) @ r
    head = torch.zeros(heads, n + 1, n + 1)
    head[:, 0, 1:] = (grads[-1][0, :, 0] * out.probe_attentions[0, :, 0]).detach()
    r = r + head.clamp_min(0).mean(0) @ r
    ours = class_maps(bound, an, 1, ("chefer",))["chefer"]
    assert torch.allclose(ours, r[0, 1:].reshape(4, 4), atol=1e-6)


# ---------------------------------------------------------------- the app

def test_app_scores_the_typed_labels_and_refuses_too_many_in_korean(dirs, photo):
    from ui import classmap, raw, rollout, upload

    ctx = app_context(dirs["siglip"], public=True)
    out = upload.analyze_group(ctx, {}, [photo], ctx.start.name, "32x32", ["ko"], "kitten\ncat, dog\x00\x1b\u202e")[0]
    assert set(out["predictions"]) == {"kitten", "cat", "dog"}
    opened = ctx.open(out["session"])
    assert "프로브" in rollout.render(ctx, opened, "ko")["note"] and raw.render(ctx, opened, "en")["note"]
    maps = classmap.render(ctx, opened, "en", target=2, method="chefer", alpha=0.5)
    assert maps["on_input"] is not None and maps["target"]["value"] == 2
    refused = upload.analyze_group(ctx, {}, [photo], ctx.start.name, "32x32", ["ko"], ",".join("abcdefghijklmnopqrstu"))
    assert refused[0]["status"] == "낱말이 너무 많아요. 쉼표나 줄 바꿈으로 나누어 20개까지 쓸 수 있어요."


def test_token_norms_compare_with_and_without_registers(dirs, photo, monkeypatch):
    from ui import norms, upload
    from vitviz import pairs

    monkeypatch.setattr(pairs, "_BOTH_WAYS", {dirs["dinov2"]: dirs["dinov2_reg"], dirs["dinov2_reg"]: dirs["dinov2"]})
    ctx = app_context(dirs["dinov2"], models=(dirs["dinov2"], dirs["dinov2_reg"]))      # the selector's models
    session = upload.analyze_group(ctx, {}, [photo], ctx.start.name, "", ["en"])[0]["session"]
    out = norms.render(ctx, ctx.open(session), "en")
    assert out["compare"]["visible"] and out["other_picture"]["visible"]
    assert "[REG3]" in out["other_table"]["value"] and "[REG0]" not in out["table"]
    alone = app_context(dirs["dinov2"], models=(dirs["dinov2"],))
    assert alone.policy.models == (dirs["dinov2"],) and not alone.policy.public
    session = upload.analyze_group(alone, {}, [photo], alone.start.name, "", ["en"])[0]["session"]
    assert norms.render(alone, alone.open(session), "en")["compare"]["visible"] is False


def test_zero_shot_labels_cross_to_the_gpu_worker_as_names(dirs, photo):
    """On ZeroGPU the model is loaded again by name in the worker: the labels go along as strings."""
    from vitviz.service import runner

    ran = []

    def gpu(kind, fn, name, device, dtype, labels, *args):
        ran.append((name, labels))
        return runner._on_device(kind, fn, name, device, dtype, labels, *args)

    r = runner.ModelRunner(zerogpu=False)
    r._gpu = gpu
    bound = load(dirs["clip"]).with_labels(("cat", "dog"))
    batch = analysis.prepare_images(bound, [photo])[0][1].pixel_values[None]
    out = r.call(analysis.run_model, bound, batch).value
    assert ran == [(dirs["clip"], ("cat", "dog"))] and out[0].probs.shape == (2,)


# ---------------------------------------------------------------- command line

def test_cli_needs_labels_for_clip_and_refuses_them_for_a_classifier(dirs, tmp_path, photo, capsys):
    from vitviz.__main__ import main

    img = tmp_path / "photo.png"
    photo.save(img)
    assert main(["explain", str(img), "--out", str(tmp_path / "a"), "--model", dirs["clip"]]) == 2
    assert "--labels" in capsys.readouterr().err
    assert main(["explain", str(img), "--out", str(tmp_path / "b"), "--model", dirs["dinov2_reg_cls"],
                 "--labels", "cat"]) == 2
    assert "own classes" in capsys.readouterr().err
    for kind in ("clip", "siglip", "dinov2_reg"):
        labels = ["--labels", "cat, dog, 고양이"] if kind != "dinov2_reg" else []
        assert main(["explain", str(img), "--out", str(tmp_path / kind), "--model", dirs[kind], *labels]) == 0
        written = {p.name for p in (tmp_path / kind / "photo").iterdir()}
        assert {"rollout.png", "raw_attention.png", "predictions.txt"} <= written
        assert ("class_chefer.png" in written) == (kind != "dinov2_reg")
    assert (tmp_path / "siglip" / "photo" / "predictions.txt").read_text().count("\n") == 3


# ---------------------------------------------------------------- timm

def vit_from_timm(timm_model):
    """The same weights as a transformers ViTForImageClassification (timm's fused qkv split in three)."""
    from transformers import ViTConfig, ViTForImageClassification

    blocks = timm_model.blocks
    d = timm_model.embed_dim
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=d, num_hidden_layers=len(blocks), num_attention_heads=4,
                    intermediate_size=blocks[0].mlp.fc1.out_features, layer_norm_eps=1e-6, num_labels=6,
                    qkv_bias=True, attn_implementation="eager")
    vit = ViTForImageClassification(cfg).eval()
    sd = {"vit.embeddings.cls_token": timm_model.cls_token, "vit.embeddings.position_embeddings": timm_model.pos_embed,
          "vit.embeddings.patch_embeddings.projection.weight": timm_model.patch_embed.proj.weight,
          "vit.embeddings.patch_embeddings.projection.bias": timm_model.patch_embed.proj.bias,
          "vit.layernorm.weight": timm_model.norm.weight, "vit.layernorm.bias": timm_model.norm.bias,
          "classifier.weight": timm_model.head.weight, "classifier.bias": timm_model.head.bias}
    for i, b in enumerate(blocks):
        p = f"vit.layers.{i}."                                           # transformers 5's names
        q, k, v = b.attn.qkv.weight.chunk(3)
        qb, kb, vb = b.attn.qkv.bias.chunk(3)
        sd.update({p + "attention.q_proj.weight": q, p + "attention.q_proj.bias": qb,
                   p + "attention.k_proj.weight": k, p + "attention.k_proj.bias": kb,
                   p + "attention.v_proj.weight": v, p + "attention.v_proj.bias": vb,
                   p + "attention.o_proj.weight": b.attn.proj.weight, p + "attention.o_proj.bias": b.attn.proj.bias,
                   p + "layernorm_before.weight": b.norm1.weight, p + "layernorm_before.bias": b.norm1.bias,
                   p + "layernorm_after.weight": b.norm2.weight, p + "layernorm_after.bias": b.norm2.bias,
                   p + "mlp.fc1.weight": b.mlp.fc1.weight, p + "mlp.fc1.bias": b.mlp.fc1.bias,
                   p + "mlp.fc2.weight": b.mlp.fc2.weight, p + "mlp.fc2.bias": b.mlp.fc2.bias})
    missing, unexpected = vit.load_state_dict({k: v.detach() for k, v in sd.items()}, strict=False)
    assert not unexpected and not [m for m in missing if "pooler" not in m]
    return vit


@needs_timm
def test_timm_vit_attention_equals_the_same_weights_in_transformers(tmp_path, photo):
    from transformers import ViTImageProcessor

    folder, timm_model = save_timm(tmp_path / "timm")
    ours = load(folder)
    assert ours.family == "timm_vit" and ours.prefix_names == ("[CLS]",) and ours.id2label[0] == "cat"
    vit_dir = tmp_path / "vit"
    vit_from_timm(timm_model).save_pretrained(vit_dir)
    processor = ViTImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor.save_pretrained(vit_dir)
    theirs = load(str(vit_dir))
    x = analyze(ours, photo).pixel_values[None]                           # both models read the same input
    with torch.no_grad():
        a, b = (torch.stack([t[0] for t in analysis.forward(m, x).attentions]) for m in (ours, theirs))
        logits = [analysis.forward(m, x, output_attentions=False).logits for m in (ours, theirs)]
    assert a.shape == (2, 4, 17, 17) and torch.allclose(a, b, atol=1e-5)          # raw attention, float32
    for fusion in A.FUSIONS:
        assert torch.allclose(A.rollout(a, 1, (4, 4), fusion), A.rollout(b, 1, (4, 4), fusion), atol=1e-5)
    assert torch.allclose(A.raw_maps(a, 1, (4, 4)), A.raw_maps(b, 1, (4, 4)), atol=1e-5)
    assert torch.allclose(*logits, atol=1e-5)
    assert analyze(ours, photo, (32, 48)).grid == (4, 6)                          # timm resamples its positions


@needs_timm
def test_timm_register_variant_through_the_loader_views_and_cli(tmp_path, photo):
    from vitviz.__main__ import main

    folder, _ = save_timm(tmp_path / "timm-reg", reg_tokens=2)
    loaded = load(folder)
    assert loaded.prefix_names == ("[CLS]", "[REG0]", "[REG1]")
    an = analyze(loaded, photo)
    assert an.grid == (4, 4) and an.attentions.shape[-1] == 3 + 16
    assert {m.shape for m in class_maps(loaded, an, 0).values()} == {(4, 4)}
    assert analysis.token_norms(loaded, an.pixel_values).shape == (3, 19)
    img = tmp_path / "photo.png"
    photo.save(img)
    assert main(["explain", str(img), "--out", str(tmp_path / "out"), "--model", folder]) == 0
    assert (tmp_path / "out" / "photo" / "class_chefer.png").exists()


# ---------------------------------------------------------------- memory

class MallInfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (glibc 2.33+): what malloc has handed out, whatever the process's history."""
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def allocated_bytes_function():
    """() -> bytes in use from malloc (its arenas' allocated blocks plus its mmapped blocks: torch's CPU
    tensors come from there), or None off glibc."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = MallInfo2

    def allocated() -> int:
        info = libc.mallinfo2()
        return info.uordblks + info.hblkhd
    return allocated


def peak_allocation_growth(fn) -> int:
    """How far the bytes allocated by malloc rise above where they stood while fn runs (sampled every half
    millisecond). The allocator's own counter, not the resident size: memory freed by earlier tests and
    reused here would hide growth from the resident size (tests/test_modern_vits.py failed that way when
    run after other tests)."""
    import threading
    import time

    allocated = allocated_bytes_function()
    if allocated is None:
        pytest.skip("the allocator's counters (glibc's mallinfo2) are not available here")
    base = peak = allocated()
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, allocated())
            time.sleep(0.0005)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        fn()
    finally:
        stop.set()
        thread.join()
    return peak - base


def test_the_allocation_counter_sees_memory_that_is_reused():
    """Freed and allocated again, 64 MB shows in the counter both times (the resident size may not grow
    the second time: that is why the estimate test reads the counter)."""
    import numpy

    first = peak_allocation_growth(lambda: numpy.ones(64 * 2**20, dtype=numpy.uint8).sum())
    again = peak_allocation_growth(lambda: numpy.ones(64 * 2**20, dtype=numpy.uint8).sum())
    assert 60 * 2**20 <= first <= 80 * 2**20 and 60 * 2**20 <= again <= 80 * 2**20, (first, again)


@pytest.mark.parametrize("kind,size", [("dinov2_reg", (280, 280)), ("clip", (256, 256)), ("siglip", (256, 256))])
def test_memory_estimate_covers_what_an_analysis_holds(dirs, photo, kind, size):
    """~1,600 and ~1,000 tokens: the attentions dominate, as for a base-size model at a larger input."""
    from vitviz.core import limits

    loaded = load(dirs[kind])
    loaded = loaded.with_labels(("cat", "dog")) if loaded.typed_labels else loaded
    analyze(loaded, photo, (32, 32))                                      # one-time allocations out of the way
    kept = []
    grew = peak_allocation_growth(lambda: kept.append(analyze(loaded, photo, size)))
    estimate = limits.request_bytes(limits.Shape.of(loaded), size)
    assert grew <= 1.2 * estimate + 4 * 2**20, (grew, estimate)
    assert estimate <= 4 * grew + 16 * 2**20, (grew, estimate)                   # and not far above it
