"""What one request may cost, checked before anything large is allocated.

A public server trusts nothing it is sent. Input sizes arrive as text ("224x224") and are
parsed here; the memory a request will hold is estimated from the model's shape and the
input size (attentions grow with the square of the number of tokens, so a size ten times
the training size per side costs ten thousand times the attention memory) and refused
above a budget, with the numbers, before the model runs.

Refusals are ``RequestRefused`` errors: an i18n key plus the values its message needs,
so the app can say what was wrong in the user's language without showing exception text.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

GiB = 2**30
MiB = 2**20
MAX_SIDE = 4096                  # no model here was trained above 518 px; more is never useful


class RequestRefused(ValueError):
    """A request vitviz will not run. ``key`` names the message in vitviz.core.i18n; ``fields`` fill it."""

    def __init__(self, key: str, **fields):
        super().__init__(f"{key}: {fields}")
        self.key = key
        self.fields = fields


# ---------------------------------------------------------------- input sizes

_SIZE = re.compile(r"^\s*(\d{1,5})\s*[x×X*,]\s*(\d{1,5})\s*$")


def parse_size(text: str | None, patch_size: int) -> tuple[int, int] | None:
    """'224x224' (also '224×224', '224 x 224') -> (224, 224); empty -> None (the model's own size).

    Both sides must be multiples of the patch size, between one patch and MAX_SIDE pixels.
    Raises RequestRefused with a suggestion otherwise.
    """
    if text is None or not str(text).strip():
        return None
    match = _SIZE.match(str(text))
    if not match:
        raise RequestRefused("err_size_format", value=str(text)[:40])
    h, w = int(match[1]), int(match[2])
    if not (patch_size <= h <= MAX_SIDE and patch_size <= w <= MAX_SIDE):
        raise RequestRefused("err_size_range", value=f"{h}x{w}", low=patch_size, high=MAX_SIDE)
    if h % patch_size or w % patch_size:
        def nearest(v):
            return min(max(patch_size, round(v / patch_size) * patch_size), MAX_SIDE // patch_size * patch_size)
        raise RequestRefused("err_size_patch", value=f"{h}x{w}", patch=patch_size,
                             suggestion=f"{nearest(h)}x{nearest(w)}")
    return h, w


def format_size(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


# ---------------------------------------------------------------- the memory estimate

@dataclass(frozen=True)
class Shape:
    """What the memory of a forward pass depends on."""
    layers: int
    heads: int
    hidden: int
    mlp: int
    prefix: int          # tokens before the patches
    patch: int
    dtype_bytes: int     # of the model's activations

    @classmethod
    def of(cls, loaded) -> "Shape":
        """The shape of a LoadedModel (its facts, vitviz.core.facts)."""
        return cls(layers=loaded.layers, heads=loaded.heads, hidden=loaded.hidden_size, mlp=loaded.mlp_size,
                   prefix=loaded.prefix, patch=loaded.patch_size,
                   dtype_bytes=2 if loaded.dtype in ("bfloat16", "float16") else 4)

    def tokens(self, size: tuple[int, int]) -> int:
        return self.prefix + (size[0] // self.patch) * (size[1] // self.patch)


def request_bytes(shape: Shape, size: tuple[int, int], images: int = 1, kind: str = "analysis") -> int:
    """Bytes a request holds at its peak, estimated from the model's shape.

    analysis: one forward with every layer's attention returned (L·H·N² in the model's dtype),
    the softmax's float32 scores of one layer, the activations (N·D and N·MLP), the float16
    copy each analysis keeps and the float32 copy the maps are computed from.
    class: the same forward kept for a backward pass (autograd saves every layer's softmax output in
    float32 and its copy in the model's dtype, and the activations), the gradients of the
    attentions and the relevance maths in float32.
    perturbation: 32 perturbed inputs at a time, no attentions kept.
    How close these come to what a forward holds: results/measured.md, "Memory estimate".
    """
    n = shape.tokens(size)
    attn = shape.heads * n * n                                   # one layer's attention, one image
    act = n * (4 * shape.hidden + shape.mlp)                     # one layer's activations, one image
    s = shape.dtype_bytes
    if kind == "analysis":
        per_image = shape.layers * attn * s + attn * (4 + s) + act * s + shape.layers * attn * (2 + 4)
        return images * per_image
    if kind == "class":
        saved = shape.layers * (attn * (4 + 2 * s) + act * s * 3)  # autograd keeps these for the backward
        maths = shape.layers * attn * 4 * 3                      # attentions, gradients, relevance (float32)
        return images * (saved + maths + attn * (4 + s))
    if kind == "perturbation":
        chunk = 32
        return chunk * (attn * (4 + 2 * s) + 2 * act * s)
    raise ValueError(f"kind must be analysis, class or perturbation, got {kind!r}")


# ---------------------------------------------------------------- the budget

def host_memory_bytes() -> int:
    """Physical memory of this machine (Linux and macOS); 4 GiB where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 * GiB


def default_budget_bytes(megabytes: float | None = None) -> int:
    """What one request may hold: `megabytes` (Settings.request_memory_mb), else a tenth of the
    machine's memory, between 256 MiB and 4 GiB. Up to four requests run at once (a queue batch), and
    the server keeps the models and the sessions' analyses besides."""
    if megabytes:
        return int(float(megabytes) * MiB)
    return int(min(max(host_memory_bytes() // 10, 256 * MiB), 4 * GiB))


def session_budget_bytes(megabytes: float | None = None) -> int:
    """What the sessions' analyses may hold together: `megabytes` (Settings.session_memory_mb), else an
    eighth of the machine's memory, between 256 MiB and 2 GiB (a ViT-B/16 analysis takes about 12 MB:
    2 GiB keeps some 170 sessions)."""
    if megabytes:
        return int(float(megabytes) * MiB)
    return int(min(max(host_memory_bytes() // 8, 256 * MiB), 2 * GiB))


def human_bytes(n: float) -> str:
    return f"{n / GiB:.1f} GB" if n >= GiB else f"{max(1, round(n / MiB))} MB"


def check_budget(shape: Shape, size: tuple[int, int], budget: int, images: int = 1, kind: str = "analysis") -> int:
    """The estimate for this request; RequestRefused("err_memory") when it exceeds the budget."""
    need = request_bytes(shape, size, images, kind)
    if need > budget:
        raise RequestRefused("err_memory", size=format_size(size), need=human_bytes(need / images),
                             limit=human_bytes(budget))
    return need
