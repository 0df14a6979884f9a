"""The app's pictures: an Analysis plus control values -> images (uint8 arrays) and text.

Pure rendering over cached tensors: nothing here runs the model, except where a
function says so. Model-only work is cached on the LoadedModel.
"""

from __future__ import annotations

import numpy as np

from . import attention as A
from . import render as R
from .analysis import Analysis, prefix_names
from .i18n import t

CMAP = "inferno"
OVERVIEW_TILE = 56  # pixels per tile of the layers × heads overview
DINO_MASS = 0.6   # DINO's visualisations keep the tokens holding 60% of the attention mass


def predictions(an: Analysis, k: int = 5) -> dict[str, float]:
    return {label: p for _, label, p in an.top(k)}


def patches(an: Analysis, family: str = "vit") -> tuple[np.ndarray, np.ndarray]:
    """(the input cut into its patch grid with indices, the token sequence strip)."""
    names = prefix_names(family, an.prefix)
    return (R.patch_grid(an.seen, an.grid, an.patch_size),
            R.token_sequence(an.seen, an.grid, an.patch_size, names))


def shapes_text(an: Analysis, hidden_size: int | None = None, lang: str = "en") -> str:
    gh, gw = an.grid
    p, h, w = an.patch_size, *an.seen.shape[:2]
    n = an.prefix + gh * gw
    d = f"{hidden_size}" if hidden_size else "D"
    return t("shapes", lang, h=h, w=w, gh=gh, gw=gw, np=gh * gw, p=p, pp=3 * p * p, d=d, prefix=an.prefix, n=n,
             layers=an.num_layers, heads=an.num_heads)


def rollout_maps(an: Analysis, fusion: str = "mean", discard: float = 0.0, start_layer: int = 0,
                 query: int = 0) -> np.ndarray:
    """(gh, gw) rollout of one token, normalised to [0, 1]."""
    start_layer = int(min(max(start_layer, 0), an.num_layers - 1))
    m = A.rollout(an.attentions, an.prefix, an.grid, fusion, float(discard), start_layer, query)
    return A.normalize(m).numpy()


def heat_pair(an: Analysis, m: np.ndarray, alpha: float, lang: str = "en", cmap: str = CMAP):
    """The map over the model's input (enlarged if tiny) and over the original photo, each with a colour bar."""
    seen, _ = R.enlarge(an.seen, 224)
    on_seen = R.with_colorbar(R.overlay(seen, m, alpha, cmap), cmap, t("low", lang), t("high", lang))
    on_photo = R.with_colorbar(R.overlay_on_upload(an.upload, an.box, m, alpha, cmap), cmap,
                               t("low", lang), t("high", lang))
    return on_seen, on_photo


def rollout(an: Analysis, fusion: str, discard: float, alpha: float, start_layer: int = 0, lang: str = "en"):
    return heat_pair(an, rollout_maps(an, fusion, discard, start_layer), alpha, lang)


def position_similarity(loaded, grid: tuple[int, int] | None = None, highlight: int | None = None) -> np.ndarray:
    """The ViT-paper tile grid of the model's position-embedding similarity at `grid` (default: the
    training grid; another grid interpolates). Raises NoAbsolutePositions for BEiT."""
    from .posemb import NoAbsolutePositions, position_embeddings

    if grid is None:
        grid = position_embeddings(loaded.model)[1]
    key = ("posemb_image", tuple(grid), highlight)
    if key not in loaded.cache:                      # model-only work: drawn once per model and grid
        sim = patch_similarity(loaded, grid)
        if sim is None:
            position_embeddings(loaded.model)        # raises with the model's own explanation
            raise NoAbsolutePositions(f"{loaded.name} has no absolute position embeddings")
        loaded.cache[key] = R.similarity_grid(sim, grid, highlight=highlight)
    return loaded.cache[key]


# ---------------------------------------------------------------- raw attention (issue 4)

def raw_attention(an: Analysis, layer: int, head: int | str, shared_scale: bool, alpha: float,
                  lang: str = "en", query: int = 0):
    """(layers × heads small multiples, the selected map over the input and photo, head mean per layer).

    head: an index or "mean". shared_scale: one colour scale for all tiles so maps compare.
    """
    maps = A.raw_maps(an.att(), an.prefix, an.grid, query)          # (L, H, gh, gw)
    n_layers, n_heads = maps.shape[:2]
    layer = int(min(max(layer, 0), n_layers - 1))
    vmin, vmax = (0.0, float(maps.max())) if shared_scale else (None, None)
    labels = [f"L{i} H{j}" for i in range(n_layers) for j in range(n_heads)]
    chosen = maps[layer].mean(0) if head == "mean" else maps[layer, int(head) % n_heads]
    pick = None if head == "mean" else layer * n_heads + int(head) % n_heads
    grid = R.tiles(maps.reshape(-1, *an.grid), n_heads, tile=OVERVIEW_TILE, labels=labels, vmin=vmin, vmax=vmax,
                   cmap=CMAP, highlight=pick)
    means = R.tiles(maps.mean(1), n_layers, tile=56, labels=[f"L{i}" for i in range(n_layers)],
                    vmin=vmin, vmax=vmax, cmap=CMAP)
    m = chosen.numpy() / max(float(maps.max()), 1e-12) if shared_scale else A.normalize(chosen).numpy()
    on_seen, on_photo = heat_pair(an, m, alpha, lang)
    return grid, on_seen, on_photo, means


def overview_cell(an: Analysis, x: float, y: float) -> tuple[int, int]:
    """(layer, head) of the tile under pixel (x, y) of the layers × heads overview."""
    tile, gap, cap = OVERVIEW_TILE, R.TILE_GAP, R.CAPTION_H
    th = max(1, round(tile * an.grid[0] / an.grid[1]))
    head = int(min(max((x - gap) // (tile + gap), 0), an.num_heads - 1))
    layer = int(min(max((y - gap) // (th + gap + cap), 0), an.num_layers - 1))
    return layer, head


# ---------------------------------------------------------------- class-specific (issue 4)

def class_choices(an: Analysis, k: int = 5) -> list[tuple[str, int]]:
    return [(f"{label} ({p:.1%})", i) for i, label, p in an.top(k)]


def class_relevance(loaded, an: Analysis, target: int | None, method: str) -> np.ndarray:
    """(gh, gw) class-specific map in [0, 1]. Both methods come from one backward pass and are
    kept on the Analysis for the latest target, so switching method costs nothing."""
    from .explain import CLASS_METHODS, class_maps

    if method not in CLASS_METHODS:
        raise ValueError(f"method must be one of {CLASS_METHODS}, got {method!r}")
    target = an.top(1)[0][0] if target is None else int(target)
    cached = an.extras.get("class")
    if cached is None or cached[0] != target:
        maps = {k: A.normalize(m).numpy() for k, m in class_maps(loaded, an, target).items()}
        an.extras["class"] = cached = (target, maps)
    return cached[1][method]


def class_specific(loaded, an: Analysis, target: int | None, method: str, alpha: float, lang: str = "en"):
    return heat_pair(an, class_relevance(loaded, an, target, method), alpha, lang)


# ---------------------------------------------------------------- DINO heads (issue 4)

def dino_heads(an: Analysis, mass: float, alpha: float = 0.6):
    """Last-layer [CLS] attention per head, raw and thresholded to the top `mass` share, over the input."""
    maps = A.raw_maps(an.att()[-1:], an.prefix, an.grid)[0]        # (H, gh, gw)
    masks = A.dino_threshold(maps, mass).float()
    seen, _ = R.enlarge(an.seen, 112)
    tiles = []
    for m, k in zip(maps, masks):
        heat = R.overlay(seen, A.normalize(m).numpy(), alpha, CMAP)
        keep = R.upsample(k.numpy(), seen.shape[:2], smooth=False)[..., None]
        cut = (seen * (0.25 + 0.75 * keep)).astype(np.uint8)
        tiles.append((heat, cut))
    heads = np.concatenate([np.concatenate(pair, 0) for pair in tiles], 1)
    return heads


# ---------------------------------------------------------------- attention distance (issue 4)

def attention_distance_plot(an: Analysis, lang: str = "en") -> np.ndarray:
    """ViT paper Fig. 7 (right) for this image: mean attention distance (pixels) per head and layer."""
    dist = A.mean_attention_distance(an.att(), an.prefix, an.grid, an.patch_size).numpy()   # (L, H)
    width = an.grid[1] * an.patch_size
    return R.scatter_figure(dist, width, t("layer", lang), "mean attention distance (px)",
                            f"image width = {width} px")


# ---------------------------------------------------------------- embedding filters (issue 4)

def embedding_filters(loaded, k: int = 28) -> np.ndarray:
    from .explain import embedding_filters as filters

    key = ("filters", k)
    if key not in loaded.cache:
        f = filters(loaded.model, k)                                  # (k, P, P, 3)
        loaded.cache[key] = R.rgb_tiles(f, ncols=7, tile=64)
    return loaded.cache[key]


# ---------------------------------------------------------------- faithfulness (issue 4)

def faithfulness(loaded, an: Analysis, methods: dict[str, np.ndarray], lang: str = "en"):
    """Deletion / negative-perturbation curves of several maps on this image: (plot, markdown table)."""
    from .explain import FRACTIONS, faithfulness as measure

    res = measure(loaded, an, methods)
    rows = ["| map | positive AUC ↓ | negative AUC ↑ |", "|---|---|---|"]
    rows += [f"| {n} | {100 * r['auc_pos']:.1f} | {100 * r['auc_neg']:.1f} |" for n, r in res.items()]
    plot = R.curves_figure(FRACTIONS, {n: (r["positive"], r["negative"]) for n, r in res.items()},
                           "share of pixels removed", "probability of the predicted class")
    return plot, "\n".join(rows)


def standard_maps(loaded, an: Analysis) -> dict[str, np.ndarray]:
    """Every map the evaluation compares, for the predicted class: name -> (gh, gw)."""
    from .explain import random_map

    att = an.att()
    maps = {"raw attention (last layer)": A.raw_maps(att[-1:], an.prefix, an.grid)[0].mean(0).numpy()}
    for fusion in A.FUSIONS:
        maps[f"rollout ({fusion})"] = A.rollout(att, an.prefix, an.grid, fusion).numpy()
    if loaded.has_classifier:
        maps["Chefer generic"] = class_relevance(loaded, an, None, "chefer")
        maps["gradient rollout"] = class_relevance(loaded, an, None, "grad_rollout")
    last = A.raw_maps(att[-1:], an.prefix, an.grid)[0]                      # (H, gh, gw)
    maps["DINO head mean"] = A.dino_threshold(last, DINO_MASS).float().mean(0).numpy()
    maps["random"] = random_map(an.grid)
    return maps


# ---------------------------------------------------------------- click a patch (issue 5)

CLICK_SIDE = 448   # the clickable input is shown at least this large


def click_canvas(an: Analysis, query: int | None = None) -> np.ndarray:
    """The model's input, enlarged, with its patch grid (and the clicked patch marked)."""
    img = R.patch_grid(an.seen, an.grid, an.patch_size, numbers=False)
    return mark_patch(img, query, an) if query is not None else img


def mark_patch(canvas: np.ndarray, query: int, an: Analysis) -> np.ndarray:
    """Mark patch `query` on an already drawn click canvas."""
    return R.mark_patch(canvas, query, an.grid)


def patch_at(an: Analysis, x: float, y: float, canvas_hw: tuple[int, int]) -> int:
    """Patch index under pixel (x, y) of the click canvas (row-major over the grid)."""
    h, w = canvas_hw
    gh, gw = an.grid
    r = int(min(max(y, 0) * gh / h, gh - 1))
    c = int(min(max(x, 0) * gw / w, gw - 1))
    return r * gw + c


def query_maps(loaded, an: Analysis, patch: int, layer: int, head: int | str, alpha: float):
    """Where patch `patch` looks: (its attention at layer/head, the head mean at that layer, rollout
    from it, its position-embedding similarity) as overlays on the input, the patch marked."""
    token = an.prefix + patch
    att = an.att()
    layer = int(min(max(layer, 0), an.num_layers - 1))
    maps = A.raw_maps(att[layer:layer + 1], an.prefix, an.grid, token)[0]          # (H, gh, gw)
    one = maps.mean(0) if head == "mean" else maps[int(head) % an.num_heads]
    out = [A.normalize(one).numpy(), A.normalize(maps.mean(0)).numpy(),
           A.normalize(A.rollout(att, an.prefix, an.grid, query=token)).numpy()]
    sim = patch_similarity(loaded, an.grid)
    out.append(None if sim is None else (sim[patch].reshape(an.grid).numpy() + 1) / 2)   # cosine -1..1 -> 0..1
    seen, _ = R.enlarge(an.seen, 336)
    return [None if m is None else R.mark_patch(R.overlay(seen, m, alpha, CMAP), patch, an.grid) for m in out]


def patch_similarity(loaded, grid: tuple[int, int]):
    """(P, P) position-embedding cosine similarity at `grid` (interpolated if needed); None for BEiT."""
    from .posemb import NoAbsolutePositions, similarity_tiles

    key = ("posemb", tuple(grid))
    if key not in loaded.cache:
        try:
            loaded.cache[key] = similarity_tiles(loaded.model, tuple(grid))
        except NoAbsolutePositions:
            loaded.cache[key] = (None, tuple(grid))
    return loaded.cache[key][0]


# ---------------------------------------------------------------- inside the ViT (issue 5)

def inside_steps(loaded, an: Analysis, lang: str = "en") -> list[tuple[str, np.ndarray | None]]:
    """The tutorial's pipeline for this photo, each step with its real tensor shape and a picture."""
    import torch

    gh, gw = an.grid
    p, n_p = an.patch_size, gh * gw
    n = an.prefix + n_p
    model = loaded.model
    emb = getattr(getattr(model, "base_model", model), "embeddings", None)
    d = getattr(model.config, "hidden_size", None)
    with torch.inference_mode():
        x = an.pixel_values[None].to(loaded.device, getattr(torch, loaded.dtype))
        proj = emb.patch_embeddings(x, **({"interpolate_pos_encoding": True}
                                          if _accepts(emb.patch_embeddings, "interpolate_pos_encoding") else {}))
        proj = proj[0] if isinstance(proj, tuple) else proj
        proj = proj.float()[0].cpu()                                         # (P, D)
    flat = torch.tensor(an.seen, dtype=torch.float32).reshape(gh, p, gw, p, 3).permute(0, 2, 1, 3, 4)
    flat = flat.reshape(n_p, -1) / 255                                        # (P, P·P·3) pixel values
    fmt = dict(h=an.seen.shape[0], w=an.seen.shape[1], gh=gh, gw=gw, p=p, np=n_p, pp=p * p * 3, d=d, n=n,
               prefix=an.prefix, names=", ".join(prefix_names(loaded.family, an.prefix)), layers=an.num_layers,
               heads=an.num_heads)
    top = (", ".join(f"{lab} {pr:.1%}" for _, lab, pr in an.top(5)) if an.probs is not None
           else t("inside_no_head", lang))
    steps = [
        (t("inside_1", lang, **fmt), R.patch_grid(an.seen, an.grid, p, numbers=n_p <= 256)),
        (t("inside_2", lang, **fmt), R.matrix_image(flat, "gray")),
        (t("inside_3", lang, **fmt), R.matrix_image(proj, "coolwarm", symmetric=True)),
        (t("inside_4", lang, **fmt), _posemb_matrix(loaded)),
        (t("inside_5", lang, **fmt),
         R.tiles(A.raw_maps(an.att(), an.prefix, an.grid).mean(1), min(an.num_layers, 12), tile=64,
                 labels=[f"L{i}" for i in range(an.num_layers)], cmap=CMAP)),
        (t("inside_6", lang, top=top), None),
    ]
    return steps


def _accepts(fn, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(fn.forward if hasattr(fn, "forward") else fn).parameters
    except (TypeError, ValueError):
        return False


def _posemb_matrix(loaded):
    from .posemb import NoAbsolutePositions, position_embeddings

    try:
        pos, _ = position_embeddings(loaded.model)
    except NoAbsolutePositions:
        return None
    return R.matrix_image(pos, "coolwarm", symmetric=True)


# ---------------------------------------------------------------- MAE (issue 5)

def mae_reconstruction(loaded, an: Analysis, ratio: float = 0.75, seed: int = 0):
    """MAE: (the input with `ratio` of its patches masked, the reconstruction, reconstruction with the
    visible patches pasted back), each (H, W, 3) uint8 over the model's input."""
    import torch

    from .analysis import forward

    if loaded.family != "vit_mae":
        raise ValueError(f"{loaded.name} is not a masked autoencoder (family {loaded.family})")
    gh, gw = an.grid
    noise = torch.rand(1, gh * gw, generator=torch.Generator().manual_seed(seed))
    cfg = loaded.model.config
    old = cfg.mask_ratio
    cfg.mask_ratio = ratio     # the embeddings read it at call time
    try:
        with torch.inference_mode():
            out = forward(loaded, an.pixel_values[None], output_attentions=False, noise=noise)
    finally:
        cfg.mask_ratio = old
    pred = out.logits.float()                                           # (1, P, p·p·3)
    if getattr(cfg, "norm_pix_loss", False):                            # per-patch normalised targets
        target = loaded.model.patchify(an.pixel_values[None].float())
        pred = pred * (target.var(-1, keepdim=True) + 1e-6).sqrt() + target.mean(-1, keepdim=True)
    recon = loaded.model.unpatchify(pred, (an.seen.shape[0], an.seen.shape[1]))[0]   # (3, H, W) normalised
    mean = torch.tensor(loaded.spec.mean)[:, None, None]
    std = torch.tensor(loaded.spec.std)[:, None, None]
    rgb = ((recon.cpu() * std + mean) / loaded.spec.rescale).clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8)
    mask = out.mask[0].reshape(gh, gw).cpu().numpy()                   # 1 = masked
    keep = R.upsample(1 - mask, an.seen.shape[:2], smooth=False)[..., None]
    masked = (an.seen * keep + 127 * (1 - keep)).astype(np.uint8)
    pasted = (an.seen * keep + rgb * (1 - keep)).astype(np.uint8)
    return masked, rgb, pasted
