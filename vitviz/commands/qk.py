"""`python -m vitviz qk PHOTOS... --model M --layer L --head H [--projection pca|tsne] [--size HxW] --out D`:
one head's queries and keys of many photos as a picture (qk.png), their 2-D coordinates as qk.csv (one row
per token, query and key, of every photo) and the head's correlations with the patches' row, column and
brightness as correlations.json."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import models
from ..analysis import analyze_batch
from ..core.limits import parse_size
from ..heads import qk
from ..pictures import qk as pictures

CSV_COLUMNS = ("photo", "token", "row", "col", "kind", "x", "y", "norm")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


def photo_paths(paths: list[str]) -> list[Path]:
    """Files as given, folders as their images (sorted)."""
    out = []
    for p in map(Path, paths):
        out += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES) if p.is_dir() else [p]
    return out


def write_csv(path: Path, emb: qk.Embedding, tokens: qk.Tokens, photos: list[str]) -> int:
    """One row per photo, token and kind: the token's patch row and column (empty for a prefix token), its 2-D
    position and the vector's norm before the normalisation. Returns the rows written."""
    _, b, n, _ = emb.xy.shape
    rows = 0
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        for k, kind in enumerate(qk.KINDS):
            for i in range(b):
                for token in range(n):
                    patch = token >= tokens.prefix
                    x, y = emb.xy[k, i, token]
                    out.writerow([photos[i], token, int(tokens.row[i, token]) if patch else "",
                                  int(tokens.column[i, token]) if patch else "", kind, f"{x:.6g}", f"{y:.6g}",
                                  f"{emb.norms[k, i, token]:.6g}"])
                    rows += 1
    return rows


def qk_command(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m vitviz qk")
    p.add_argument("photos", nargs="+", help="image files or folders (1 to 16 photos in all)")
    p.add_argument("--model", default=None)
    p.add_argument("--layer", type=int, required=True)
    p.add_argument("--head", type=int, required=True)
    p.add_argument("--projection", choices=qk.PROJECTIONS, default="pca")
    p.add_argument("--colour", choices=pictures.COLOURINGS, default="kind")
    p.add_argument("--size", default=None, help="HxW to run at (default: the model's own)")
    p.add_argument("--out", required=True)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    a = p.parse_args(argv)
    paths = photo_paths(a.photos)
    if not 1 <= len(paths) <= 16:
        p.error(f"expected 1 to 16 photos, got {len(paths)}")
    loaded = models.load(a.model, a.device, a.dtype)
    if not (0 <= a.layer < loaded.layers and 0 <= a.head < loaded.heads):
        p.error(f"--layer must be in 0..{loaded.layers - 1} and --head in 0..{loaded.heads - 1}")
    size = parse_size(a.size, loaded.patch_size)
    analyses = analyze_batch(loaded, [str(x) for x in paths], size)
    vectors = qk.queries_keys(loaded, torch.stack([an.pixel_values for an in analyses]), (a.layer,))
    tokens = qk.token_facts([an.seen for an in analyses], analyses[0].grid, analyses[0].prefix)
    emb = qk.embed(vectors, a.layer, a.head, a.projection)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pictures.scatter(emb, tokens, a.colour)[0]).save(out / "qk.png")
    rows = write_csv(out / "qk.csv", emb, tokens, [x.name for x in paths])
    corr = qk.correlations(emb, tokens)
    (out / "correlations.json").write_text(json.dumps({"layer": a.layer, "head": a.head, "projection": a.projection,
                                                       "R": {k: round(v, 4) for k, v in corr.items()},
                                                       "sorts_by": list(qk.sorts_by(corr))}, indent=1))
    print(f"{loaded.name}: layer {a.layer}, head {a.head}, {len(paths)} photo(s), {rows} points; "
          f"R row {corr['row']:.2f}, column {corr['column']:.2f}, brightness {corr['brightness']:.2f} -> {out}")
    return 0 if np.isfinite(emb.xy).all() else 1
