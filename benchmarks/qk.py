"""How long do the queries and keys of 8 photos take for every head of ViT-B/16?

    python benchmarks/qk.py [--photos 8] [--tsne-heads 2]

A random-weight ViT-B/16 (transformers' ViTConfig(), built here: no download; it costs what the real one
costs) in float32 on the CPU. Prints, for the photos (the example photos, at 224×224):
- the overview of all 12 × 12 heads by PCA: preprocessing, one forward that keeps every layer's queries
  and keys (vitviz.heads.qk.queries_keys), each head normalised and projected, its correlations, and the
  small multiples of each layer drawn (vitviz.pictures.qk.overview); the issue asks for at most 60 s on
  two CPU cores;
- the time per head with t-SNE (scikit-learn), over --tsne-heads heads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")      # as app.py, before torch loads OpenMP

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks.bench import cpu_flags, vit_b16_folder  # noqa: E402
from vitviz import models  # noqa: E402
from vitviz.analysis import prepare_images  # noqa: E402
from vitviz.core.paths import example_photos  # noqa: E402
from vitviz.heads import qk  # noqa: E402
from vitviz.pictures import qk as pictures  # noqa: E402


def overview_of_every_head(loaded, photos: list[str]) -> dict[str, float]:
    """Seconds of each step of the all-heads overview by PCA."""
    seconds = {}
    t0 = time.perf_counter()
    prepared = prepare_images(loaded, photos)
    batch = torch.stack([p.pixel_values for _, p in prepared])
    tokens = qk.token_facts([p.seen for _, p in prepared], loaded.grid(tuple(batch.shape[-2:])), loaded.prefix)
    t1 = time.perf_counter()
    vectors = qk.queries_keys(loaded, batch)
    t2 = time.perf_counter()
    layers = []
    for layer in range(loaded.layers):
        embs = qk.layer_overview(vectors, layer)
        layers.append((embs, [qk.correlations(e, tokens) for e in embs]))
    t3 = time.perf_counter()
    for embs, corr in layers:
        pictures.overview(embs, tokens, "row", corr)
    t4 = time.perf_counter()
    seconds.update(prepare=t1 - t0, forward=t2 - t1, project=t3 - t2, draw=t4 - t3, total=t4 - t0)
    return seconds, vectors, tokens


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--photos", type=int, default=8)
    p.add_argument("--tsne-heads", type=int, default=2)
    a = p.parse_args()
    loaded = models.load(vit_b16_folder(), "cpu", "float32")
    photos = [str(x) for x in sorted(example_photos())][:a.photos]
    print(f"{cpu_flags()}; {len(photos)} photos, ViT-B/16 (random weights) float32, "
          f"{loaded.layers}×{loaded.heads} heads")
    seconds, vectors, tokens = overview_of_every_head(loaded, photos)
    heads = loaded.layers * loaded.heads
    points = 2 * len(photos) * vectors.queries.shape[3]
    print(f"overview of all {heads} heads by PCA ({points} points each): {seconds['total']:.1f} s "
          f"(preprocess {seconds['prepare']:.2f} s, forward {seconds['forward']:.2f} s, "
          f"normalise+PCA+correlations {seconds['project']:.2f} s, draw {seconds['draw']:.2f} s)")
    took = []
    for head in range(a.tsne_heads):
        t0 = time.perf_counter()
        qk.embed(vectors, loaded.layers - 1, head, "tsne")
        took.append(time.perf_counter() - t0)
    print(f"t-SNE: {sum(took) / len(took):.1f} s per head ({points} points; mean of {len(took)} heads)")


if __name__ == "__main__":
    main()
