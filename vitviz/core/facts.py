"""What a model is: the one place the rest of vitviz asks.

Sizes (layers, heads, widths, patch), the tokens before the patches and what the model can do differ
between families and hide in differently named config fields (MAE's encoder, DeiT's distillation
token, DINOv2's registers, SigLIP's pooling probe). Each family's adapter (vitviz.families) reads
them once and states them here, so nothing else reads a config or compares a family's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .classnames import label_set, localized

LANGUAGES = ("en", "ko")


@dataclass
class ModelFacts:
    family: str                        # what the adapter calls the model (config.model_type): for people, not for ifs
    layers: int                        # encoder blocks
    heads: int                         # attention heads per block
    hidden_size: int                   # D, the width of every token
    mlp_size: int                      # the width inside each block's MLP
    patch_size: int                    # P: a patch is P×P pixels
    prefix_names: tuple[str, ...]      # tokens before the patches: ("[CLS]",), ("[CLS]", "[DIST]"), registers
    id2label: dict[int, str]           # class names, {} without a classifier
    has_classifier: bool               # a head that scores classes (class maps, evidence, top-5)
    can_reconstruct: bool = field(default=False, kw_only=True)   # a decoder fills in masked patches (MAE)
    # What maps start from: "[CLS]", or "probe" where an attention-pooling head's learned query reads the
    # patches after the encoder (SigLIP: no prefix tokens at all; the analysis keeps the probe's attention).
    query_name: str = field(default="[CLS]", kw_only=True)
    # How the head reads the last layer's tokens (the logit lens and LeGrad read every layer the same way:
    # LoadedModel.readout), in words; "" where there is no head to read through.
    head_reads: str = field(default="", kw_only=True)
    # The classes are labels the user types (CLIP, SigLIP: image–text scores), not a fixed head.
    typed_labels: bool = field(default=False, kw_only=True)
    # Its text encoder reads many languages (SigLIP 2), not only English (CLIP, SigLIP): typed labels in
    # Korean are scored, not refused (vitviz.core.labels).
    multilingual_text: bool = field(default=False, kw_only=True)
    compiles: bool = field(default=False, kw_only=True)    # its analysis forward may be compiled (vitviz.core.compiled)
    int8: bool = field(default=False, kw_only=True)        # int8 may serve it, behind the fidelity gate (vitviz.quant)

    @property
    def prefix(self) -> int:
        return len(self.prefix_names)

    @property
    def registers(self) -> int:
        """Register tokens among the prefix (DINOv2 with registers, timm's reg variants)."""
        return sum(name.startswith("[REG") for name in self.prefix_names)

    @cached_property
    def label_set(self) -> str | None:
        """"imagenet-1k", "fashion-mnist" or None: recognised by the labels (vitviz.core.classnames)."""
        return label_set(self.id2label) if self.id2label else None

    @cached_property
    def class_names(self) -> dict[str, dict[int, str]]:
        """Per language: "이집트 고양이 (Egyptian cat)" for a known label set, else the model's own labels."""
        return {lang: localized(self.id2label, lang) for lang in LANGUAGES}

    def grid(self, size: tuple[int, int]) -> tuple[int, int]:
        """(gh, gw) patches for an input of (H, W) pixels."""
        return size[0] // self.patch_size, size[1] // self.patch_size

    def tokens(self, size: tuple[int, int]) -> int:
        """N = prefix + gh·gw for an input of (H, W) pixels."""
        gh, gw = self.grid(size)
        return self.prefix + gh * gw

    @property
    def removal_fill(self) -> str:
        """What removed pixels become by default when measuring evidence: black where black is the
        training images' background ("nothing there", Fashion-MNIST), else the data mean, as in
        Chefer et al."""
        return "black" if self.label_set == "fashion-mnist" else "mean"


def register_names(n: int) -> tuple[str, ...]:
    """The prefix names of n register tokens."""
    return tuple(f"[REG{i}]" for i in range(n))
