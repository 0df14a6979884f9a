"""`python -m vitviz heads PHOTO --model M [--class K] [--size HxW] --out D`: one class's logit split over the
embeddings, every head and every MLP (vitviz.heads.attribution), written as the grid the app draws
(grid.png), every head's sources as small multiples (sources.png) and attribution.csv:

    component,layer,head,contribution
    embeddings,,,0.41
    head,0,0,-0.02          one row per layer and head
    mlp,0,,0.13             one row per layer
    bias,,,0.07             the output projections' biases and the read-out's constant
    logit,,,3.25            the model's own logit: every other row sums to it
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .. import models
from ..analysis import analyze
from ..core.i18n import say
from ..core.labels import parse_labels
from ..core.limits import RequestRefused, parse_size
from ..core.preprocess import BadImage
from ..heads.attribution import Attribution, NotAffine, attribution
from ..pictures import heads as pictures

FIELDS = ("component", "layer", "head", "contribution")


def heads_command(argv: list[str]) -> int:
    from PIL import Image

    p = argparse.ArgumentParser(prog="python -m vitviz heads", description=__doc__.split("\n\n")[0])
    p.add_argument("photo", help="an image file")
    p.add_argument("--out", required=True, help="the folder for grid.png, sources.png and attribution.csv")
    p.add_argument("--model", default=None)
    p.add_argument("--class", dest="target", default=None,
                   help="the class whose logit is split: its index or its name (default: the predicted class)")
    p.add_argument("--size", default=None, help="input size HxW, multiples of the patch size (default: the model's)")
    p.add_argument("--labels", default=None, help='comma-separated labels for CLIP, e.g. "cat, dog"')
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default="float32",
                   help="float32 (default): the parts add up to the logit to float32's rounding, not bfloat16's")
    a = p.parse_args(argv)
    loaded = models.load(a.model, a.device, a.dtype)
    if loaded.reason:
        print(loaded.reason, file=sys.stderr)
    try:
        loaded = labelled(loaded, a.labels)
        an = analyze(loaded, a.photo, parse_size(a.size, loaded.patch_size))
        target = class_index(a.target, an.labels, an.top(1)[0][0])
        attr = attribution(loaded, an, target)
    except RequestRefused as exc:
        print(say(exc.key, "en", **exc.fields), file=sys.stderr)
        return 2
    except (BadImage, NotAffine, ValueError) as exc:
        print(f"{a.photo}: {exc}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = an.labels.get(target, str(target))
    Image.fromarray(pictures.contribution_grid(attr, name)).save(out / "grid.png")
    Image.fromarray(pictures.all_sources(attr)).save(out / "sources.png")
    write_csv(attr, out / "attribution.csv")
    print(f"the logit of {name!r} ({attr.logit:.4f}) split over {attr.heads.size} heads, "
          f"{attr.mlp.size} MLPs, the embeddings and the bias into {out}/")
    return 0


def labelled(loaded, labels: str | None):
    """The model scoring the typed labels (CLIP), or the model itself; ValueError where labels are missing
    or not wanted, RequestRefused where they are out of bounds."""
    if loaded.typed_labels:
        if not (labels or "").strip():
            raise ValueError(f'{loaded.name} scores labels you type: add --labels "cat, dog, car"')
        return loaded.with_labels(parse_labels(labels))
    if labels is not None:
        raise ValueError(f"{loaded.name} has its own classes: leave --labels out")
    if not loaded.has_classifier:
        raise ValueError(f"{loaded.name} has no class scores to split")
    return loaded


def class_index(wanted: str | None, labels: dict[int, str], predicted: int) -> int:
    """--class as a class index: a number, or a class name (any case); the predicted class when not given."""
    if wanted is None:
        return int(predicted)
    text = wanted.strip()
    if text.lstrip("-").isdigit():
        if int(text) in labels:
            return int(text)
        raise ValueError(f"no class {text}: the model has {len(labels)} classes, 0 to {len(labels) - 1}")
    by_name = {str(n).casefold(): i for i, n in labels.items()}
    if text.casefold() in by_name:
        return by_name[text.casefold()]
    raise ValueError(f"no class named {text!r}")


def rows(attr: Attribution) -> list[tuple[str, object, object, float]]:
    """attribution.csv's rows (component, layer, head, contribution): every part, then the model's logit."""
    layers, heads = attr.heads.shape
    every = [(layer, head) for layer in range(layers) for head in range(heads)]
    return ([("embeddings", "", "", attr.embeddings)]
            + [("head", layer, head, float(attr.heads[layer, head])) for layer, head in every]
            + [("mlp", layer, "", float(attr.mlp[layer])) for layer in range(layers)]
            + [("bias", "", "", attr.bias), ("logit", "", "", attr.logit)])


def write_csv(attr: Attribution, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FIELDS)
        writer.writerows((c, layer, head, repr(float(v))) for c, layer, head, v in rows(attr))
