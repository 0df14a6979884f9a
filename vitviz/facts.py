"""What a model is, read once from its config: the one place the rest of vitviz asks.

Sizes (layers, heads, widths, patch), the tokens before the patches and what the model can do
(classify, reconstruct, which label set) differ between families and hide in differently named
config fields (MAE's encoder, DeiT's distillation token, DINOv2's registers). ``read`` resolves
them here, so a view never reads a config or branches on a family's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .classnames import label_set, localized

LANGUAGES = ("en", "ko")


@dataclass
class ModelFacts:
    family: str                        # config.model_type: vit, deit, beit, dinov2, vit_mae, ...
    layers: int                        # encoder blocks
    heads: int                         # attention heads per block
    hidden_size: int                   # D, the width of every token
    mlp_size: int                      # the width inside each block's MLP
    patch_size: int                    # P: a patch is P×P pixels
    prefix_names: tuple[str, ...]      # tokens before the patches: ("[CLS]",), ("[CLS]", "[DIST]"), registers
    has_classifier: bool               # a head that scores classes (class maps, faithfulness, top-5)
    can_reconstruct: bool              # a decoder that fills in masked patches (MAE)
    id2label: dict[int, str]           # class names, {} without a classifier
    label_set: str | None              # "imagenet-1k", "fashion-mnist" or None (vitviz.classnames)
    class_names: dict[str, dict[int, str]]   # per language: "이집트 고양이 (Egyptian cat)" for known label sets
    # What maps start from: "[CLS]", or "probe" where an attention-pooling head's learned query reads the
    # patches after the encoder (SigLIP: no prefix tokens at all; the analysis keeps the probe's attention).
    query_name: str = field(default="[CLS]", kw_only=True)
    # The classes are labels the user types (CLIP, SigLIP: image–text scores), not a fixed head.
    typed_labels: bool = field(default=False, kw_only=True)

    @property
    def prefix(self) -> int:
        return len(self.prefix_names)

    @property
    def registers(self) -> int:
        """Register tokens among the prefix (DINOv2 with registers, timm's reg variants)."""
        return sum(name.startswith("[REG") for name in self.prefix_names)

    def grid(self, size: tuple[int, int]) -> tuple[int, int]:
        """(gh, gw) patches for an input of (H, W) pixels."""
        return size[0] // self.patch_size, size[1] // self.patch_size

    def tokens(self, size: tuple[int, int]) -> int:
        """N = prefix + gh·gw for an input of (H, W) pixels."""
        gh, gw = self.grid(size)
        return self.prefix + gh * gw

    @property
    def removal_fill(self) -> str:
        """What removed pixels become by default when measuring faithfulness: black where black is
        the training images' background ("nothing there", Fashion-MNIST), else the data mean, as
        in Chefer et al."""
        return "black" if self.label_set == "fashion-mnist" else "mean"


def prefix_names(config) -> tuple[str, ...]:
    """[CLS], then DeiT's distillation token or DINOv2's registers."""
    if config.model_type == "deit":
        return ("[CLS]", "[DIST]")
    registers = int(getattr(config, "num_register_tokens", 0) or 0)
    return ("[CLS]",) + tuple(f"[REG{i}]" for i in range(registers))


def mlp_size(config) -> int:
    """The MLP width: intermediate_size, or hidden_size × mlp_ratio (DINOv2)."""
    width = getattr(config, "intermediate_size", None)
    return int(width) if width else int(config.hidden_size * getattr(config, "mlp_ratio", 4))


def read(config, has_classifier: bool) -> ModelFacts:
    """The facts of a transformers vision config (an MAE's sizes are its encoder's)."""
    encoder = getattr(config, "encoder_config", None) or config
    patch = config.patch_size if isinstance(config.patch_size, int) else config.patch_size[0]
    id2label = {int(k): v for k, v in (config.id2label or {}).items()} if has_classifier else {}
    return ModelFacts(
        family=config.model_type,
        layers=int(encoder.num_hidden_layers),
        heads=int(encoder.num_attention_heads),
        hidden_size=int(encoder.hidden_size),
        mlp_size=mlp_size(encoder),
        patch_size=int(patch),
        prefix_names=prefix_names(config),
        has_classifier=has_classifier,
        can_reconstruct=config.model_type == "vit_mae",
        id2label=id2label,
        label_set=label_set(id2label) if id2label else None,
        class_names={lang: localized(id2label, lang) for lang in LANGUAGES},
    )
