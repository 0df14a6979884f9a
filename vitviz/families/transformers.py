"""transformers' vision transformers: ViT, DeiT (distilled: [CLS] + [DIST]), BEiT, DINO, DINOv2 (with
registers) and MAE, as classifiers or self-supervised backbones.

The adapter of last resort: it takes any checkpoint whose config.json names a ``model_type`` and loads
it with eager attention (the maps need the softmax). What differs between these models is read here
once from the config and stated as facts: the tokens before the patches, the MLP width, whether there
is a classifier, whether MAE's decoder can reconstruct, and how the head reads the last layer (the
logit lens and LeGrad read every layer the same way).
"""

from __future__ import annotations

import torch

from ..core.facts import ModelFacts, register_names
from ..core.family import Family, frozen_layer_norm
from ..core.loaded import LoadedModel
from ..core.loading import Source
from ..core.preprocess import spec_from_processor

DEFAULT_MODEL = "google/vit-base-patch16-224"

# How a classifier's head reads the last layer's tokens (normed: after the final norm), by its facts' name.
READOUTS = {
    "[CLS]": lambda model, normed, loaded: model.classifier(normed[:, 0]),
    # a distilled DeiT averages its [CLS] and [DIST] heads, as its own forward does
    "[CLS] and [DIST]": lambda model, normed, loaded: (model.cls_classifier(normed[:, 0])
                                                       + model.distillation_classifier(normed[:, 1])) / 2,
    # BEiT mean-pools the patches (its pooler norms the mean)
    "patch mean": lambda model, normed, loaded: model.classifier(model.base_model.pooler(normed)),
    # DINOv2's head reads [CLS] beside the mean of the patch tokens (registers left out)
    "[CLS] and patch mean": lambda model, normed, loaded: model.classifier(
        torch.cat([normed[:, 0], normed[:, loaded.prefix:].mean(1)], dim=-1)),
}


class Transformers(Family):
    name = "transformers"
    order = 90
    models = {
        DEFAULT_MODEL: "ViT-B/16 (ImageNet-1k)",
        "facebook/deit-tiny-patch16-224": "DeiT-Tiny",
        "facebook/deit-base-distilled-patch16-224": "DeiT-B distilled ([CLS] + [DIST])",
        "microsoft/beit-base-patch16-224": "BEiT-B (relative position bias)",
        "facebook/dino-vitb16": "DINO ViT-B/16 (self-supervised)",
        "facebook/vit-mae-base": "MAE ViT-B (masked autoencoder)",
        "facebook/dinov2-small": "DINOv2-S/14 (self-supervised)",
        "facebook/dinov2-with-registers-small": "DINOv2-S/14 with registers ([CLS] + 4 registers)",
    }

    def recognises(self, source: Source) -> bool:
        return "model_type" in source.config

    def load(self, source: Source, device: str, dtype: str) -> LoadedModel:
        import transformers
        from transformers import AutoConfig, AutoImageProcessor

        config = source.fetch(AutoConfig)
        family = config.model_type
        reconstructs = family == "vit_mae"
        classifier = not reconstructs and any("ImageClassification" in a for a in (config.architectures or ()))
        loader = (transformers.ViTMAEForPreTraining if reconstructs
                  else transformers.AutoModelForImageClassification if classifier
                  else transformers.AutoModel)             # self-supervised backbones (DINO): attention views only
        kw = {"attn_implementation": "eager", "dtype": getattr(torch, dtype)}
        if reconstructs:
            kw["mask_ratio"] = 0.0  # attention views see every patch; vitviz.mae masks on demand
        if loader is transformers.AutoModel and family == "vit":
            kw["add_pooling_layer"] = False
        model = source.fetch(loader, **kw).to(device).eval()
        model.requires_grad_(False)  # class-specific maps ask for gradients of attentions, not weights
        processor = source.fetch(AutoImageProcessor)
        return LoadedModel(**facts(config, model, classifier), name=source.name, model=model, processor=processor,
                           spec=spec_from_processor(processor), device=device, dtype=dtype, adapter=self,
                           source=source.source)

    def forward(self, loaded: LoadedModel, pixel_values: torch.Tensor, **kw):
        if loaded.can_reconstruct and "noise" not in kw:
            # Attention views need every patch in order: MAE shuffles tokens by argsort(noise) even at
            # mask ratio 0, so give it increasing noise (identity order). vitviz.mae masks separately.
            n = (pixel_values.shape[-2] // loaded.patch_size) * (pixel_values.shape[-1] // loaded.patch_size)
            kw["noise"] = torch.arange(n, dtype=torch.float32, device=pixel_values.device).expand(
                pixel_values.shape[0], n)
        return loaded.model(pixel_values=pixel_values, **kw)

    def readout(self, loaded: LoadedModel, hidden: torch.Tensor) -> torch.Tensor:
        if loaded.head_reads not in READOUTS:
            raise ValueError(f"{loaded.name} has no head vitviz can read its layers through")
        base = loaded.model.base_model
        normed = base.layernorm(hidden) if getattr(base, "layernorm", None) is not None else hidden
        return READOUTS[loaded.head_reads](loaded.model, normed, loaded)

    def frozen_readout(self, loaded: LoadedModel, hidden: torch.Tensor):
        """The head after the final norm frozen at `hidden`'s tokens (and BEiT's pooler norm at their
        patch mean): affine in the residual stream."""
        if loaded.head_reads not in READOUTS:
            return None
        model, base = loaded.model, loaded.model.base_model
        norm = getattr(base, "layernorm", None)
        normed = frozen_layer_norm(norm, hidden) if isinstance(norm, torch.nn.LayerNorm) else (lambda x: x)
        if loaded.head_reads == "patch mean":
            pool = frozen_layer_norm(base.pooler.layernorm, normed(hidden)[:, 1:].mean(1))
            return lambda x: model.classifier(pool(normed(x)[:, 1:].mean(1)))
        return lambda x: READOUTS[loaded.head_reads](model, normed(x), loaded)

    def reinitialise(self, loaded: LoadedModel, module: torch.nn.Module) -> None:
        """transformers' own initialiser of the model (what post_init applies), else reset_parameters."""
        from ..core.compat import init_weights

        if not init_weights(loaded.model, module):
            super().reinitialise(loaded, module)


def facts(config, model, classifier: bool) -> dict:
    """The facts of a transformers vision model, as LoadedModel's keyword arguments (an MAE's sizes are
    its encoder's)."""
    encoder = getattr(config, "encoder_config", None) or config
    patch = config.patch_size if isinstance(config.patch_size, int) else config.patch_size[0]
    family = config.model_type
    if family == "deit":                            # transformers' DeiT always carries the distillation token
        prefix = ("[CLS]", "[DIST]")
    else:
        prefix = ("[CLS]",) + register_names(int(getattr(config, "num_register_tokens", 0) or 0))
    width = getattr(encoder, "intermediate_size", None)
    mlp = int(width) if width else int(encoder.hidden_size * getattr(encoder, "mlp_ratio", 4))
    known = ModelFacts(
        family=family, layers=int(encoder.num_hidden_layers), heads=int(encoder.num_attention_heads),
        hidden_size=int(encoder.hidden_size), mlp_size=mlp, patch_size=int(patch), prefix_names=prefix,
        id2label={int(k): v for k, v in (config.id2label or {}).items()} if classifier else {},
        has_classifier=classifier, can_reconstruct=family == "vit_mae",
        head_reads=head_reads(family, model) if classifier else "",
        compiles=family in ("vit", "deit"),     # a plain encoder forward: MAE's noise and BEiT's bias stay eager
        int8=family in ("vit", "deit"))
    return {f: getattr(known, f) for f in known.__dataclass_fields__}


def head_reads(family: str, model) -> str:
    """How this classifier's head reads the last layer: a key of READOUTS ("" where none fits)."""
    if hasattr(model, "cls_classifier") and hasattr(model, "distillation_classifier"):
        return "[CLS] and [DIST]"
    if family == "beit" and getattr(model.base_model, "pooler", None) is not None:
        return "patch mean"
    if family in ("dinov2", "dinov2_with_registers"):
        return "[CLS] and patch mean"
    if family in ("vit", "deit"):
        return "[CLS]"
    return ""

