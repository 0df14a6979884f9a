"""One door per kind of thing: a new explanation method is one registration (plus its names), a new model
family one adapter. Each test brings its own method or family and finds it everywhere it should be,
without any other file changed; registering is undone after each test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vitviz import methods, models
from vitviz.analysis import analyze
from vitviz.core.family import Family, registered
from vitviz.core.loaded import LoadedModel
from vitviz.core.outputs import VisionOutput
from vitviz.core.preprocess import PreprocessSpec

from .conftest import LABELS, app_context

# ---------------------------------------------------------------- a method of the test's own

def last_layer_gradient_times_attention(g: methods.compute.Gradients) -> torch.Tensor:
    """The query's row of the last layer's (∂y/∂A ⊙ A)⁺, mean over heads: a one-layer attribution."""
    return g.token_map(g.start @ (g.grads[-1] * g.att[-1]).clamp_min(0).mean(0))


TOY = methods.Method("toy_last_layer", methods.BACKWARD, last_layer_gradient_times_attention, order=60,
                     strings={"en": {"map_toy_last_layer": "last layer ∇⊙A", "method_toy_last_layer":
                                     "last layer gradient × attention (a test's own method)"},
                              "ko": {"map_toy_last_layer": "마지막 레이어 ∇⊙A"}})


@pytest.fixture
def toy_method():
    with methods.registered(TOY):
        yield TOY
    assert "toy_last_layer" not in methods.ids()


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory):
    rng = np.random.default_rng(1)
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


def session_of(ctx, photo_path):
    from ui import upload

    return upload.analyze_group(ctx, {}, [str(photo_path)], ctx.start.name, "", ["en"])[0]["session"]


def test_a_registered_method_is_offered_by_the_class_view(toy_method, tiny_vit_dir, photo_path):
    from ui import classmap

    assert ("last layer gradient × attention (a test's own method)", "toy_last_layer") in classmap.method_choices("en")
    assert ("마지막 레이어 ∇⊙A", "toy_last_layer") in classmap.method_choices("ko")   # no Korean label: its name
    ctx = app_context(tiny_vit_dir)
    out = classmap.render(ctx, ctx.open(session_of(ctx, photo_path)), "en", method="toy_last_layer")
    assert out["on_input"].ndim == 3 and out["method"]["value"] == "toy_last_layer"


def test_a_registered_method_is_computed_with_the_shared_backward(toy_method, tiny_loaded, photo):
    an = analyze(tiny_loaded, photo)
    both = methods.class_maps(tiny_loaded, an, 2, ("chefer", "toy_last_layer"))
    alone = methods.class_maps(tiny_loaded, an, 2, ("toy_last_layer",))["toy_last_layer"]
    assert methods.passes(("chefer", "toy_last_layer", "legrad")) == [("chefer", "toy_last_layer"), ("legrad",)]
    assert both["toy_last_layer"].shape == an.grid and torch.allclose(both["toy_last_layer"], alone)
    assert not torch.allclose(both["toy_last_layer"], both["chefer"])


def test_a_registered_method_is_accepted_by_the_explain_command(toy_method, tiny_vit_dir, photo_path, tmp_path):
    from vitviz.__main__ import main

    assert main(["explain", str(photo_path), "--out", str(tmp_path), "--model", tiny_vit_dir,
                 "--methods", "toy_last_layer", "raw"]) == 0
    assert (tmp_path / "photo" / "class_toy_last_layer.png").exists() and (tmp_path / "photo" / "map_raw.png").exists()


def test_a_registered_method_is_accepted_by_the_evaluation(toy_method, tiny_vit_dir, tmp_path):
    from vitviz.evidence.evaluate import main

    rng = np.random.default_rng(0)
    for label in LABELS[:2]:
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(2):
            picture = Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
            picture.save(tmp_path / "data" / label / f"{i}.png")
    main(["--folder", str(tmp_path / "data"), "--model", tiny_vit_dir, "--methods", "toy_last_layer", "random",
          "--limit", "4", "--out", str(tmp_path / "out"), "--threads", "1"])
    summary = json.loads((tmp_path / "out" / "results.json").read_text())
    assert summary["settings"]["methods"] == ["toy_last_layer", "random"]
    assert set(summary["results"]) == {"last layer ∇⊙A", "random"} and summary["n"] == 4


def test_a_registered_method_is_scored_in_the_evidence_table(toy_method, tiny_vit_dir, photo_path):
    from ui import evidence

    ctx = app_context(tiny_vit_dir)
    out = evidence.render(ctx, ctx.open(session_of(ctx, photo_path)), "en", "mean", action="measure")
    row = next(line for line in out["table"].splitlines() if line.startswith("| last layer ∇⊙A |"))
    assert len([c for c in row.split("|") if c.strip() and c.strip() != "–"]) >= 4    # name, AUCs, SaCo (, MPRT)


def test_a_method_is_refused_twice_and_needs_english_names():
    with methods.registered(TOY):
        with pytest.raises(ValueError, match="registered already"):
            methods.register(methods.Method("toy_last_layer", methods.ATTENTIONS, lambda an, seed: None))
    with pytest.raises(ValueError, match="English"):
        methods.register(methods.Method("toy_no_english", methods.ATTENTIONS, lambda an, seed: None,
                                        strings={"ko": {"map_toy_no_english": "영어 없음"}}))
    assert "toy_no_english" not in methods.ids()


# ---------------------------------------------------------------- a model family of the test's own

class ToyViT(torch.nn.Module):
    """A ViT written here in plain torch ([CLS], learned positions, pre-LN blocks, a head): not a
    model any built-in adapter knows."""

    def __init__(self, size: int, patch: int, dim: int, depth: int, heads: int, classes: int):
        super().__init__()
        self.heads, self.grid = heads, size // patch
        self.patch = torch.nn.Conv2d(3, dim, patch, patch)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim))
        self.pos = torch.nn.Parameter(torch.randn(1, 1 + self.grid ** 2, dim))
        self.blocks = torch.nn.ModuleList(torch.nn.ModuleDict({
            "norm1": torch.nn.LayerNorm(dim), "qkv": torch.nn.Linear(dim, 3 * dim), "proj": torch.nn.Linear(dim, dim),
            "norm2": torch.nn.LayerNorm(dim), "mlp": torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(),
                                                                         torch.nn.Linear(2 * dim, dim))})
            for _ in range(depth))
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, pixel_values, output_attentions=False, output_hidden_states=False, **kw) -> VisionOutput:
        x = self.patch(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(x), -1, -1), x], 1) + self.pos
        hidden, atts = [x], []
        for blk in self.blocks:
            b, n, d = x.shape
            q, k, v = blk["qkv"](blk["norm1"](x)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            att = (q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5).softmax(-1)                  # (B, H, N, N)
            x = x + blk["proj"]((att @ v).transpose(1, 2).reshape(b, n, d))
            x = x + blk["mlp"](blk["norm2"](x))
            hidden.append(x)
            atts.append(att)
        return VisionOutput(self.readout(x), tuple(atts) if output_attentions else (),
                            tuple(hidden) if output_hidden_states else None)

    def readout(self, hidden):
        return self.head(self.norm(hidden[:, 0]))


class ToyFamily(Family):
    name = "toy-vit"
    order = 5

    def __init__(self, folder: str):
        self.models = {folder: "Toy ViT (a test's own family)"}

    def recognises(self, source):
        return "toy_vit" in source.config

    def load(self, source, device, dtype):
        config = source.config
        model = ToyViT(**config["toy_vit"]).eval()
        model.load_state_dict(torch.load(f"{source.path}/weights.pt"))
        model.requires_grad_(False)
        args = config["toy_vit"]
        return LoadedModel(family="toy_vit", layers=args["depth"], heads=args["heads"], hidden_size=args["dim"],
                           mlp_size=2 * args["dim"], patch_size=args["patch"], prefix_names=("[CLS]",),
                           id2label=dict(enumerate(config["labels"])), has_classifier=True, head_reads="[CLS]",
                           name=source.name, model=model, processor=None,
                           spec=PreprocessSpec(resize=(args["size"],) * 2, shortest_edge=None, crop=None,
                                               resample=Image.BILINEAR, mean=(0.5,) * 3, std=(0.5,) * 3),
                           device=device, dtype="float32", adapter=self, source=source.source)

    def readout(self, loaded, hidden):
        return loaded.model.readout(hidden)

    def blocks(self, loaded):
        return loaded.model.blocks


@pytest.fixture
def toy_family(tmp_path):
    folder = tmp_path / "toy-vit"
    folder.mkdir()
    args = dict(size=32, patch=8, dim=32, depth=2, heads=4, classes=len(LABELS))
    torch.manual_seed(0)
    torch.save(ToyViT(**args).state_dict(), folder / "weights.pt")
    # a model_type the transformers adapter would take, and fail on: the toy's adapter must be asked first
    (folder / "config.json").write_text(json.dumps({"model_type": "toy_vit", "toy_vit": args, "labels": LABELS}))
    with registered(ToyFamily(str(folder))) as family:
        yield family, str(folder)
    models.clear_cache()


def test_a_registered_family_loads_analyses_and_explains(toy_family, photo):
    family, folder = toy_family
    loaded = models.load(folder, "cpu", "float32")
    assert loaded.adapter is family and loaded.grid((32, 32)) == (4, 4) and loaded.label_set is None
    an = analyze(loaded, photo)
    assert an.attentions.shape == (2, 4, 17, 17) and an.top(1)[0][1] in LABELS
    made = methods.maps(loaded, an, methods.offered(loaded))
    assert set(made) == set(methods.ids()) and all(m.shape == (4, 4) for m in made.values())
    with torch.no_grad():          # its own read-out of the last layer is its prediction, as LeGrad reads it
        out = loaded.model(an.pixel_values[None], output_hidden_states=True)
    assert torch.allclose(loaded.readout(out.hidden_states[-1]), out.logits)


def test_a_registered_family_appears_in_the_model_choices_and_the_command_line(toy_family, photo_path, tmp_path):
    from ui import upload
    from vitviz.__main__ import main

    _, folder = toy_family
    assert models.known_models()[folder] == "Toy ViT (a test's own family)"
    ctx = app_context(folder)
    assert (models.display_name(folder), folder) in upload.model_choices(ctx)
    assert main(["explain", str(photo_path), "--out", str(tmp_path / "out"), "--model", folder]) == 0
    assert (tmp_path / "out" / "photo" / "class_chefer.png").exists()


def test_a_registered_family_is_asked_before_the_catch_all(toy_family, tiny_vit_dir):
    """The transformers adapter takes any config with a model_type; the toy's comes first, and a ViT
    still goes to the transformers adapter."""
    from vitviz.families.transformers import Transformers

    _, folder = toy_family
    assert isinstance(models.load(folder, "cpu", "float32").adapter, ToyFamily)
    assert isinstance(models.load(tiny_vit_dir, "cpu", "float32").adapter, Transformers)
