"""Training: IDX reading, a smoke run whose loss goes down, saving in transformers' format, and the
bundled model (loads offline, small, bfloat16 agrees with float32)."""

import gzip
import struct

import numpy as np
import pytest
import torch

from vitviz import data, models
from vitviz.analysis import analyze
from vitviz.core import paths
from vitviz.scratch import ScratchConfig, ScratchViT
from vitviz.train import TrainSettings, save, to_input, train


def write_idx(path, arr: np.ndarray, compress: bool):
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_reader_gzip_and_plain(tmp_path, compress):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    x, y = data.load_idx_split(tmp_path, "t10k")
    assert x.shape == (5, 1, 28, 28) and np.array_equal(x[:, 0], images)
    assert y.dtype == np.int64 and y.tolist() == [3, 1, 4, 1, 5]


def test_idx_reader_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(ValueError, match="holds 3"):
        data.read_idx(tmp_path / "short")


def test_image_folder_of_class_subfolders(tmp_path):
    from PIL import Image

    for k, name in enumerate(["ants", "bees"]):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 30), (80 * k, 10 * i, 0)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "bees" / "notes.txt").write_text("ignored")
    x, y, names = data.load_image_folder(tmp_path, (16, 16))
    assert names == ["ants", "bees"] and x.shape == (6, 3, 16, 16) and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert x[3, 0, 0, 0] == 80


def synthetic(n=256, seed=0):
    """Two classes a ViT must use position for: a bright blob in the top or the bottom half."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 40, (n, 1, 16, 16)).astype(np.uint8)
    y = rng.integers(0, 2, n)
    for i in range(n):
        r = rng.integers(0, 3) + (8 if y[i] else 0)
        c = rng.integers(0, 8)
        x[i, 0, r:r + 6, c:c + 8] = 250
    return x, y.astype(np.int64)


def tiny_cfg(**kw):
    return ScratchConfig(image_size=16, patch_size=4, hidden_size=32, num_layers=2, num_heads=4, mlp_size=64,
                         num_classes=2, **kw)


def tiny_vit(seed=0, **kw):
    torch.manual_seed(seed)          # the initial weights come from torch's generator
    return ScratchViT(tiny_cfg(**kw))


def test_training_smoke_loss_goes_down_and_saves_for_the_app(tmp_path):
    x, y = synthetic(512)
    tx, ty = synthetic(64, seed=1)
    s = TrainSettings(epochs=8, batch_size=32, lr=2e-3, warmup_epochs=0.5, progress=False, crop_padding=1,
                      flip=True, seed=0)
    result = train(tiny_vit(), x, y, tx, ty, s)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.8
    assert result.test_accuracy > 0.8
    assert result.confusion.sum() == 64

    folder = save(result, tmp_path / "model", ["top", "bottom"], s, "python -m vitviz.train --test", len(x))
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in folder.iterdir()}
    loaded = models.load(str(folder), "cpu", "float32")          # the app's own loading path
    assert loaded.id2label == {0: "top", 1: "bottom"}
    from PIL import Image

    img = Image.fromarray(tx[0, 0]).convert("RGB")
    an = analyze(loaded, img)
    with torch.no_grad():
        ours = result.model.eval()(to_input(torch.from_numpy(tx[:1]), 3)).logits.softmax(-1)[0].numpy()
    assert np.allclose(an.probs, ours, atol=1e-5)


def test_training_is_reproducible_with_the_seed():
    x, y = synthetic(64)
    s = TrainSettings(epochs=1, batch_size=16, progress=False, seed=3)
    a = train(tiny_vit(3), x, y, x[:0], y[:0], s).model.state_dict()
    b = train(tiny_vit(3), x, y, x[:0], y[:0], s).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- the bundled model ----

@pytest.fixture(scope="module")
def bundled():
    assert (paths.BUNDLED_DIR / "config.json").exists(), "the bundled model is missing from assets/models/"
    return paths.BUNDLED_DIR


def test_bundled_model_is_small_and_loads_offline(bundled):
    size = sum(p.stat().st_size for p in bundled.iterdir() if p.suffix in {".safetensors", ".json"})
    assert size <= 5 * 2**20
    loaded = models.load(models.BUNDLED, "cpu", "float32")
    assert loaded.source == "bundled" and len(loaded.id2label) == 10


def test_bundled_model_classifies_the_fashion_mnist_examples(bundled):
    loaded = models.load(models.BUNDLED, "cpu", "float32")
    examples = sorted(paths.EXAMPLES_DIR.glob("fmnist-*.png"))
    assert len(examples) >= 5
    names = {v.lower().replace("/", "-").replace(" ", "-"): v for v in loaded.id2label.values()}
    hits = 0
    for f in examples:
        truth = f.stem[len("fmnist-"):].rsplit("-test", 1)[0]
        hits += analyze(loaded, f).top(1)[0][1] == names[truth]
    assert hits >= len(examples) - 1


def test_bundled_model_reaches_92_percent_through_transformers_alone(bundled):
    """Loaded by its config's architecture with its own image processor, as anyone would load it:
    at least 92 % on all 10,000 Fashion-MNIST test images, and the number its model card states."""
    import json

    import transformers
    from PIL import Image

    if not data.FASHION_MNIST_DIR.exists():
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    config = transformers.AutoConfig.from_pretrained(bundled)
    model = getattr(transformers, config.architectures[0]).from_pretrained(bundled).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(bundled)
    x, y = data.load_idx_split(data.FASHION_MNIST_DIR, "t10k")
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(x), 1000):
            images = [Image.fromarray(a[0]).convert("RGB") for a in x[i:i + 1000]]
            pixels = processor(images=images, return_tensors="pt")["pixel_values"]
            correct += int((model(pixel_values=pixels).logits.argmax(-1).numpy() == y[i:i + 1000]).sum())
    assert correct / len(x) >= 0.92
    assert correct / len(x) == pytest.approx(json.loads((bundled / "training.json").read_text())["test_accuracy"])


def test_bfloat16_and_float32_agree_on_the_bundled_model(bundled):
    """The fast path (bfloat16) must show the same prediction and the same maps."""
    from vitviz import attention as A

    f32 = models.load(models.BUNDLED, "cpu", "float32")
    b16 = models.load(models.BUNDLED, "cpu", "bfloat16")
    for f in sorted(paths.EXAMPLES_DIR.glob("*"))[:8]:
        a, b = analyze(f32, f), analyze(b16, f)
        assert a.top(1)[0][0] == b.top(1)[0][0]
        ra = A.rollout(a.att(), a.prefix, a.grid).flatten()
        rb = A.rollout(b.att(), b.prefix, b.grid).flatten()
        assert np.corrcoef(ra.numpy(), rb.numpy())[0, 1] >= 0.999


# ---- distillation and the study ----

def test_hard_distillation_loss_halves_true_and_teacher_labels():
    import torch.nn.functional as F

    from vitviz.scratch import ScratchOutput
    from vitviz.train import hard_distillation_loss

    g = torch.Generator().manual_seed(0)
    cls, dist = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    y, teacher = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([0, 0, 2, 1, 1, 2])
    out = ScratchOutput((cls + dist) / 2, (), cls, dist)
    loss = hard_distillation_loss(out, y, teacher, smoothing=0.1)
    want = 0.5 * F.cross_entropy(cls, y, label_smoothing=0.1) + 0.5 * F.cross_entropy(dist, teacher)
    assert torch.allclose(loss, want)
    # the [DIST] head only ever sees the teacher's labels, [CLS] only the true ones
    cls.requires_grad_(True)
    dist.requires_grad_(True)
    hard_distillation_loss(ScratchOutput((cls + dist) / 2, (), cls, dist), y, teacher, 0.0).backward()
    manual = dist.detach().clone().requires_grad_(True)
    (0.5 * F.cross_entropy(manual, teacher)).backward()
    assert torch.allclose(dist.grad, manual.grad)
    plain = ScratchOutput(cls, (), cls)
    assert torch.allclose(hard_distillation_loss(plain, y, teacher, 0.0), F.cross_entropy(cls, y))


def test_distilled_training_with_a_cnn_teacher_saves_a_deit(tmp_path):
    from vitviz.cnn import CNNConfig, SmallCNN
    from vitviz.train import head_accuracies

    x, y = synthetic(512)
    tx, ty = synthetic(64, seed=1)
    # Four epochs on 384 images left the ViT at chance on some machines; eight on 512 learn it on every seed tried.
    s = TrainSettings(epochs=8, batch_size=32, lr=2e-3, warmup_epochs=0.5, progress=False, flip=False)
    torch.manual_seed(0)
    teacher = SmallCNN(CNNConfig(image_size=16, widths=(8, 16), num_classes=2))
    assert train(teacher, x, y, tx, ty, s).test_accuracy > 0.8
    result = train(tiny_vit(distilled=True), x, y, tx, ty, s, teacher=teacher.eval())
    heads = head_accuracies(result.model, tx, ty)
    assert set(heads) == {"logits", "cls", "dist"} and heads["dist"] > 0.7
    folder = save(result, tmp_path / "deit", ["top", "bottom"], s, "test", len(x), {"heads": heads})
    loaded = models.load(str(folder), "cpu", "float32")
    assert loaded.family == "deit"
    from PIL import Image

    an = analyze(loaded, Image.fromarray(tx[0, 0]).convert("RGB"))
    assert an.prefix == 2                                       # [CLS] and [DIST] reach the app


def test_study_runs_end_to_end_on_a_tiny_subset(tmp_path):
    from vitviz import study

    rng = np.random.default_rng(0)
    x = rng.integers(0, 30, (120, 1, 28, 28)).astype(np.uint8)
    y = np.repeat(np.arange(2), 60)
    x[y == 1, :, 4:12, 4:24] = 250                              # class 1: a bright bar at the top
    x[y == 0, :, 16:24, 4:24] = 250                             # class 0: at the bottom
    order = rng.permutation(120)
    x, y = x[order], y[order]
    records = study.study((x[:100], y[:100], x[100:], y[100:]), sizes=(20, 60), budget=120,
                          settings=TrainSettings(batch_size=16, progress=False, flip=False), log=lambda *_: None)
    assert len(records) == 6 and {r["model"] for r in records} == set(study.MODELS)
    assert {r["images_seen"] for r in records} == {120}           # every run sees the same number of images
    assert all(0 <= r["test_accuracy"] <= 1 for r in records)
    table = study.table(records)
    assert "| 20 |" in table and "hybrid ViT" in table
    assert study.plot(records).ndim == 3
    idx = study.balanced_subset(np.repeat(np.arange(10), 7), 25)
    assert len(idx) == 25 and np.bincount(np.repeat(np.arange(10), 7)[idx]).max() == 3
