"""Model work of the Queries-and-keys view (vitviz.heads.qk): the photos' analyses (the session's photo and
the example photos chosen, each analysed once and shared through the context's example store), one forward
per layer and set of photos that keeps the queries and keys, and the 2-D embeddings made from them. One set
is kept with the session's analysis (trying many layers does not push the analysis's other results out of
its memo). Bounded on a public server: the photos drawn at once, and the points t-SNE may place
(RequestRefused, said in the user's language). Run where the model lives (kind "queries")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..analysis import Analysis
from ..core import limits
from ..core.limits import RequestRefused
from ..heads import qk
from . import examples
from .context import AppContext, Opened

MAX_PHOTOS = 16               # photos drawn together (the view's 1 + 15 examples)
MAX_PHOTOS_PUBLIC = 8
TSNE_POINTS_PUBLIC = 1600     # queries and keys t-SNE may place on a public server (ViT-B/16: 4 photos)
KEPT = ("qk",)                # memo key: the one set kept with the analysis


@dataclass
class Kept:
    """The queries and keys of one layer for one set of photos, and what was made from them."""
    key: tuple                                   # (example names, layer)
    analyses: list[Analysis]                     # the session's photo first, then the examples
    names: list[str | None]                      # None: the session's photo; else the example's file name
    vectors: qk.QueriesKeys
    tokens: qk.Tokens
    embeddings: dict = field(default_factory=dict)     # (head, method) -> Embedding
    overview: list | None = None                        # [(Embedding, correlations)] per head, by PCA
    shown: object = None                                # (2·B·N, 2) pixels of the points in the scatter last drawn


def example_names(loaded) -> list[str]:
    """The example photos offered, those the model knows first (garments for a Fashion-MNIST model)."""
    return [Path(p).name for (p,) in examples.order(loaded)]


def chosen_examples(loaded, names) -> tuple[str, ...]:
    """The names among the examples offered, in their order (anything else is left out)."""
    wanted = set(names or ())
    return tuple(n for n in example_names(loaded) if n in wanted)


def check(ctx: AppContext, photos: int, method: str, points: int) -> None:
    """RequestRefused past the bounds: photos (err_qk_photos), t-SNE's points on a public server (err_qk_tsne)."""
    limit = MAX_PHOTOS_PUBLIC if ctx.policy.public else MAX_PHOTOS
    if photos > limit:
        raise RequestRefused("err_qk_photos", count=photos, limit=limit)
    if method not in qk.PROJECTIONS:
        raise ValueError(f"method must be one of {qk.PROJECTIONS}, got {method!r}")
    if method == "tsne" and ctx.policy.public and points > TSNE_POINTS_PUBLIC:
        raise RequestRefused("err_qk_tsne", points=points, limit=TSNE_POINTS_PUBLIC)


def photos(ctx: AppContext, opened: Opened, names: tuple[str, ...]) -> tuple[list[Analysis], list[str | None]]:
    """The session's analysis and the chosen examples' at its size (an example that is the session's photo
    itself is left out)."""
    loaded, an = opened.loaded, opened.an
    size = tuple(an.pixel_values.shape[-2:])
    paths = {Path(p).name: p for (p,) in examples.order(loaded)}
    found = ctx.analyze(loaded, [paths[n] for n in names], size)[0] if names else []
    pairs = [(a, n) for a, n in zip(found, names) if not torch.equal(a.pixel_values, an.pixel_values)]
    return [an] + [a for a, _ in pairs], [None] + [n for _, n in pairs]


def kept(ctx: AppContext, opened: Opened, names, layer: int) -> Kept:
    """The set for these examples and layer: found with the analysis, else made (one forward for all photos)."""
    names = chosen_examples(opened.loaded, names)
    key = (names, int(layer))
    found = opened.an.memo.lookup(KEPT)
    if found is not None and found.key == key:
        return found
    check(ctx, 1 + len(names), "pca", 0)
    loaded, size = opened.loaded, tuple(opened.an.pixel_values.shape[-2:])
    limits.check_budget(limits.Shape.of(loaded), size, ctx.policy.request_budget, images=1 + len(names))
    analyses, labels = photos(ctx, opened, names)
    batch = torch.stack([a.pixel_values for a in analyses])
    vectors = ctx.run(qk.queries_keys, loaded, batch, (int(layer),), kind="queries")
    tokens = qk.token_facts([a.seen for a in analyses], opened.an.grid, opened.an.prefix)
    result = Kept(key, analyses, labels, vectors, tokens)
    opened.an.memo.put(KEPT, result)
    return result


def embedding(ctx: AppContext, opened: Opened, names, layer: int, head: int, method: str) -> tuple[Kept, qk.Embedding]:
    """One head's 2-D embedding of the set (made once per head and method while the set is kept)."""
    found = kept(ctx, opened, names, layer)
    b, _, _, n, _ = found.vectors.queries.shape
    check(ctx, b, method, 2 * b * n)
    if (head, method) not in found.embeddings:
        found.embeddings[head, method] = qk.embed(found.vectors, int(layer), int(head), method)
    return found, found.embeddings[head, method]


def overview(ctx: AppContext, opened: Opened, names, layer: int) -> list[tuple[qk.Embedding, dict]]:
    """Every head of the layer by PCA, with its correlations (made once while the set is kept)."""
    found = kept(ctx, opened, names, layer)
    if found.overview is None:
        found.overview = [(e, qk.correlations(e, found.tokens)) for e in qk.layer_overview(found.vectors, int(layer))]
    return found.overview
