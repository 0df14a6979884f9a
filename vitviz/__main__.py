"""Command line: the app's figures for many images, and pre-fetching models for offline classrooms.

    python -m vitviz explain IMAGE_OR_FOLDER... --out DIR [--model ID] [--methods chefer legrad ...]
                             [--labels "cat, dog"] [--batch 8]
    python -m vitviz prefetch [MODEL ...]        # download into the Hugging Face cache while online
    python -m vitviz heads PHOTO --out DIR [--model ID] [--class K] [--size HxW]   # direct logit attribution
    python -m vitviz qk PHOTOS... --layer L --head H --out DIR [--model ID] [--projection pca|tsne] [--size HxW]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from . import methods, models, quant
from .analysis import analyze_batch
from .commands.heads import heads_command
from .commands.qk import qk_command
from .core.compiled import MAX_BATCH
from .core.i18n import say
from .core.labels import parse_labels
from .core.limits import RequestRefused
from .core.preprocess import BadImage
from .pictures import maps
from .posemb import NoAbsolutePositions

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def expand(paths: list[str]) -> list[Path]:
    """Files as given, folders as their images (sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out


def figures(loaded, an, method_ids=("chefer",)) -> dict:
    """name -> (H, W, 3) uint8: the app's class-agnostic figures, and each named method's map of the
    predicted class over the photo ("class_<id>" for class-specific methods, "map_<id>" for the others)."""
    from .methods.attention_maps import DINO_MASS

    grid, tokens = maps.patches(an)
    ro_seen, ro_photo = maps.rollout(an, "mean", 0.0, 0.5)
    raw_grid, _, _, raw_means = maps.raw_attention(an, an.num_layers - 1, None, False, 0.5)
    out = {"patch_grid": grid, "tokens": tokens, "rollout": ro_seen, "rollout_photo": ro_photo,
           "raw_attention": raw_grid, "raw_attention_layer_means": raw_means,
           "dino_heads": maps.dino_heads(an, DINO_MASS),
           "attention_distance": maps.attention_distance_plot(an)}
    try:
        out["position_similarity"] = maps.position_similarity(loaded, an.grid)
    except NoAbsolutePositions:
        pass
    wanted = [m for m in method_ids if loaded.has_classifier or not methods.get(m).class_specific]
    if wanted:
        made = methods.maps(loaded, an, wanted)
        for m in wanted:
            prefix = "class" if methods.get(m).class_specific else "map"
            out[f"{prefix}_{m}"] = maps.class_specific(an, {m: torch.from_numpy(made[m])}, m, 0.5)[1]
    return out


def explain(argv: list[str]) -> int:
    from PIL import Image

    p = argparse.ArgumentParser(prog="python -m vitviz explain")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--out", required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--labels", default=None, help='comma-separated labels for CLIP / SigLIP, e.g. "cat, dog" '
                   '(read as "a photo of a cat"); required for them, refused for classifiers')
    p.add_argument("--methods", nargs="+", default=["chefer"], choices=methods.ids(),
                   help="the methods whose map of the predicted class is drawn over each photo (default: chefer)")
    a = p.parse_args(argv)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        def tqdm(it, **_):
            return it
    loaded = models.load(a.model, a.device, a.dtype)
    if loaded.reason:
        print(loaded.reason, file=sys.stderr)
    asked = loaded                     # an int8 model keeps its gate's figures for settings.json
    loaded = quant.settle(loaded)      # int8: compiled and checked now, else float32 (vitviz.quant)
    batch = min(a.batch, MAX_BATCH) if loaded.dtype == "int8" else a.batch   # int8's compiled batches
    loaded = with_labels(loaded, a.labels)
    if loaded is None:
        return 2
    files = expand(a.images)
    out = Path(a.out)
    failed = 0
    for start in tqdm(range(0, len(files), batch), desc="explaining", unit="batch"):
        chunk = files[start:start + batch]
        try:
            results = list(zip(chunk, analyze_batch(loaded, chunk)))
        except BadImage:                      # find the bad one(s), keep the rest
            results = []
            for f in chunk:
                try:
                    results.append((f, analyze_batch(loaded, [f])[0]))
                except BadImage as exc:
                    failed += 1
                    print(f"{f}: {exc}", file=sys.stderr)
        for f, an in results:
            folder = out / f.stem
            folder.mkdir(parents=True, exist_ok=True)
            for name, img in figures(loaded, an, a.methods).items():
                Image.fromarray(img).save(folder / f"{name}.png")
            (folder / "predictions.txt").write_text("".join(f"{lab}\t{p:.4f}\n" for _, lab, p in an.top(5)))
    out.mkdir(parents=True, exist_ok=True)
    (out / "settings.json").write_text(json.dumps({"model": loaded.name, "device": loaded.device,
                                                   **quant.record(asked)}, indent=1))
    print(f"{len(files) - failed} image(s) explained with {loaded.name} into {out}/" +
          (f"; {failed} could not be read" if failed else ""))
    return 1 if failed == len(files) else 0


def with_labels(loaded, labels: str | None):
    """The model scoring the typed labels (CLIP, SigLIP), the model itself (classifiers, backbones), or
    None after saying why the labels are missing, refused or out of bounds."""
    if not loaded.typed_labels:
        if labels is not None:
            print(f"--labels is for models that score typed labels (CLIP, SigLIP); {loaded.name} has its own "
                  "classes: leave --labels out.", file=sys.stderr)
            return None
        return loaded
    if not (labels or "").strip():
        print(f'{loaded.name} scores labels you type: add --labels "cat, dog, car".', file=sys.stderr)
        return None
    try:
        return loaded.with_labels(parse_labels(labels))
    except RequestRefused as exc:
        print(say(exc.key, "en", **exc.fields), file=sys.stderr)
        return None


def prefetch(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m vitviz prefetch")
    p.add_argument("names", nargs="*", help="Hub ids (default: every model in the app's selector)")
    a = p.parse_args(argv)
    names = a.names or [n for n in models.known_models() if n != models.BUNDLED]
    from huggingface_hub import snapshot_download

    bad = 0
    for name in names:
        try:
            # *.model: SigLIP's SentencePiece vocabulary
            path = snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"])
            print(f"ok      {name} -> {path}")
        except Exception as exc:  # report and go on: one missing model must not stop the others
            bad += 1
            print(f"FAILED  {name}: {type(exc).__name__}: {exc}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = {"explain": explain, "prefetch": prefetch, "heads": heads_command, "qk": qk_command}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
