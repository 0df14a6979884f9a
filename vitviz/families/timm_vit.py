"""timm's VisionTransformer (register variants included), loaded from timm's Hub layout.

A timm checkpoint is a folder (or Hub repo ``timm/...``) with ``config.json`` (architecture,
model_args, pretrained_cfg) and ``model.safetensors``. timm builds the model itself
(``timm.create_model("local-dir:...")``); vitviz only reads it:

- Attention maps come from timm's own ``timm.utils.AttentionExtract`` over the model's traced graph
  (torch.fx): the softmax of every block, the tokens between blocks and the head's logits, in one
  forward pass that keeps its graph, so class maps take gradients through it. Fused attention has
  no softmax to read, so the model is built with ``timm.layers.set_fused_attn(False)``.
- ``dynamic_img_size=True`` lets timm resample its position embeddings for other input sizes.

Only class-token ViTs are offered: vitviz's maps start from [CLS] (or a pooling probe).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import torch
from PIL import Image

from ..core.compat import timm_graph_nodes
from ..core.facts import ModelFacts, register_names
from ..core.family import BlockParts, Family, Projection, frozen_layer_norm, layer_scale
from ..core.loaded import LoadedModel
from ..core.loading import Source
from ..core.outputs import Embeddings, PatchEmbeddings, VisionOutput, conv_patches
from ..core.preprocess import PreprocessSpec

PREFIX = "timm/"
_BUILDING = threading.Lock()      # set_fused_attn is timm-global: one model built at a time


def available() -> bool:
    try:
        import timm  # noqa: F401
    except Exception:   # not installed, or a torchvision that does not match torch
        return False
    return True


# ---------------------------------------------------------------- the model

class TimmViT(torch.nn.Module):
    """A timm VisionTransformer with vitviz's surface (vitviz.core.outputs): logits, per-block
    attentions (B, H, N, N) and the hidden states between blocks (B, N, D)."""

    def __init__(self, model):
        super().__init__()
        from timm.utils import AttentionExtract

        self.vit = model
        self.config = _Config(model)
        nodes = timm_graph_nodes(model)                              # the eval graph, in order
        blocks = len(model.blocks)
        self.att_nodes = [f"blocks.{i}.attn.softmax" for i in range(blocks)]
        if not set(self.att_nodes) <= set(nodes):
            raise ValueError(f"expected a softmax in each of {blocks} attention blocks (fused attention off), "
                             f"found {sum(n.endswith('attn.softmax') for n in nodes)}")
        # each block's output is its last node; the embeddings are the node before the first block
        last = {i: [n for n in nodes if n.startswith(f"blocks.{i}.")][-1] for i in range(blocks)}
        first = nodes[nodes.index(next(n for n in nodes if n.startswith("blocks.0."))) - 1]
        self.hidden_nodes = [first] + [last[i] for i in range(blocks)]
        self.classifies = getattr(model, "num_classes", 0) > 0
        wanted = self.att_nodes + self.hidden_nodes + (["head"] if self.classifies else [])
        self.extract = AttentionExtract(model, names=wanted, method="fx")
        proj = model.patch_embed.proj
        self.embeddings = Embeddings(PatchEmbeddings(conv_patches(proj), lambda: proj.weight),
                                     lambda: model.pos_embed)

    @property
    def base_model(self):
        return self

    def forward(self, pixel_values: torch.Tensor, output_attentions: bool = False, output_hidden_states: bool = False,
                interpolate_pos_encoding: bool = False, **kw) -> VisionOutput:
        if not (output_attentions or output_hidden_states):          # perturbation batches: logits only
            return VisionOutput(self.vit(pixel_values) if self.classifies else None)
        out = self.extract(pixel_values)
        return VisionOutput(out["head"] if self.classifies else None,
                            tuple(out[n] for n in self.att_nodes) if output_attentions else (),
                            tuple(out[n] for n in self.hidden_nodes) if output_hidden_states else None)

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """Class logits from any block's tokens (B, N, D), through the final norm and head."""
        return self.vit.forward_head(self.vit.norm(hidden))


class _Config:
    """The few config fields vitviz reads (position embeddings: the training grid)."""
    model_type = "timm_vit"

    def __init__(self, model):
        self.patch_size = int(model.patch_embed.patch_size[0])
        self.image_size = tuple(int(s) for s in model.patch_embed.img_size)


# ---------------------------------------------------------------- loading

def prefix_names(model) -> tuple[str, ...]:
    names = ["[CLS]"] if getattr(model, "cls_token", None) is not None else []
    if getattr(model, "dist_token", None) is not None:
        names.append("[DIST]")
    return tuple(names) + register_names(int(getattr(model, "num_reg_tokens", 0) or 0))


def facts(model, label_names: list[str] | None) -> ModelFacts:
    block = model.blocks[0]
    classes = int(getattr(model, "num_classes", 0) or 0)
    names = label_names if label_names and len(label_names) == classes else [str(i) for i in range(classes)]
    return ModelFacts(family="timm_vit", layers=len(model.blocks), heads=int(block.attn.num_heads),
                      hidden_size=int(model.embed_dim), mlp_size=int(block.mlp.fc1.out_features),
                      patch_size=int(model.patch_embed.patch_size[0]), prefix_names=prefix_names(model),
                      id2label=dict(enumerate(names)), has_classifier=classes > 0,
                      head_reads="the model's own pooling and head" if classes > 0 else "")


def _label_names(folder: Path, classes: int) -> list[str] | None:
    """Class names from config.json (``label_names``), else ImageNet-1k's for 1000 classes."""
    config = json.loads((folder / "config.json").read_text())
    names = config.get("label_names") or config.get("pretrained_cfg", {}).get("label_names")
    if names:
        return list(names)
    if classes == 1000:
        from timm.data import ImageNetInfo

        return list(ImageNetInfo().label_descriptions())
    return None


def spec_of(model) -> PreprocessSpec:
    """timm's evaluation preprocessing: resize the short side to size / crop_pct, centre-crop."""
    cfg = model.pretrained_cfg
    _, h, w = cfg.get("input_size", (3, 224, 224))
    crop_pct = float(cfg.get("crop_pct", 0.875) or 1.0)
    filters = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}
    return PreprocessSpec(resize=None, shortest_edge=int(h / crop_pct), crop=(int(h), int(w)),
                          resample=int(filters.get(cfg.get("interpolation", "bicubic"), Image.BICUBIC)),
                          mean=tuple(float(m) for m in cfg.get("mean", (0.485, 0.456, 0.406))),
                          std=tuple(float(s) for s in cfg.get("std", (0.229, 0.224, 0.225))))


def build(folder: Path, dtype: str = "float32"):
    """timm's own model from a folder in its Hub layout, eager attention, any input size."""
    import timm
    from timm.layers import set_fused_attn, use_fused_attn

    with _BUILDING:
        fused = use_fused_attn()
        set_fused_attn(False)
        try:
            model = timm.create_model(f"local-dir:{folder}", pretrained=True, dynamic_img_size=True)
        finally:
            set_fused_attn(fused)
    if getattr(model, "cls_token", None) is None:
        raise ValueError(f"expected a timm ViT with a class token, got {type(model).__name__} without one")
    return model.to(getattr(torch, dtype)).eval()


class Timm(Family):
    """timm's VisionTransformer: a Hub id under timm/ or a folder in timm's layout (config.json names an
    ``architecture``)."""
    name = "timm"
    order = 10
    models = {"timm/vit_small_patch16_224.augreg_in21k_ft_in1k": "timm ViT-S/16 (ImageNet-1k)"}

    def recognises(self, source: Source) -> bool:
        return source.name.startswith(PREFIX) or "architecture" in source.config

    def load(self, source: Source, device: str, dtype: str) -> LoadedModel:
        folder = source.download(allow_patterns=["config.json", "model.safetensors"])
        model = build(folder, dtype).to(device)
        model.requires_grad_(False)
        known = facts(model, _label_names(folder, int(getattr(model, "num_classes", 0) or 0)))
        return LoadedModel(**{f: getattr(known, f) for f in known.__dataclass_fields__}, name=source.name,
                           model=TimmViT(model), processor=dict(model.pretrained_cfg), spec=spec_of(model),
                           device=device, dtype=dtype, adapter=self, source=source.source)

    def readout(self, loaded: LoadedModel, hidden: torch.Tensor) -> torch.Tensor:
        return loaded.model.readout(hidden)

    def blocks(self, loaded: LoadedModel) -> torch.nn.ModuleList:
        return loaded.model.vit.blocks

    def block_parts(self, loaded: LoadedModel, index: int) -> BlockParts:
        """timm's Block: one fused qkv projection (queries, keys and values in thirds), proj, LayerScale ls1/ls2."""
        block = loaded.model.vit.blocks[index]
        d = loaded.hidden_size
        qkv = block.attn.qkv
        return BlockParts(Projection(qkv, slice(0, d)), Projection(qkv, slice(d, 2 * d)),
                          Projection(qkv, slice(2 * d, 3 * d)), block.attn.proj, block.mlp,
                          layer_scale(block.ls1), layer_scale(block.ls2))

    def frozen_readout(self, loaded: LoadedModel, hidden: torch.Tensor):
        """timm's head after its final LayerNorm, frozen at `hidden`; None where a second norm (fc_norm)
        follows the pooling."""
        vit = loaded.model.vit
        if not isinstance(getattr(vit, "fc_norm", None), torch.nn.Identity) or not isinstance(vit.norm,
                                                                                              torch.nn.LayerNorm):
            return None
        norm = frozen_layer_norm(vit.norm, hidden)
        return lambda x: vit.forward_head(norm(x))

