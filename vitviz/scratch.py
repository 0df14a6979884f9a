"""A Vision Transformer from scratch, readable top to bottom.

    image (B, C, H, W)
      -> cut into P×P patches, each flattened          (B, N_p, C·P·P)
      -> linear projection to D                        (B, N_p, D)
      -> prepend [CLS], add learned position embedding (B, 1+N_p, D)
      -> L pre-LN encoder blocks                       (B, 1+N_p, D)
           x = x + MSA(LN(x));  x = x + MLP(LN(x))     (MLP: Linear-GELU-Linear)
      -> LN, head on the final [CLS]                   (B, num_classes)

With ``distilled=True`` it is DeiT (Touvron et al. 2021): a second learned
token, [DIST], sits after [CLS] and has its own head, trained to predict a
teacher's labels; the prediction averages both heads.

This is the model the source tutorial describes, with its code's bugs fixed
(each one is pinned by a test in tests/test_scratch.py):

- patches are cut with reshape + permute so every patch keeps its own pixels
  (a ``view`` after ``unfold`` reinterprets memory and mixes patches);
- the sequence axis stays in place: (B, N_p, C·P·P), not (B, C·P·P, N_p);
- attention is batch-first and mixes tokens of one image, never images;
- blocks are pre-norm with GELU, as in the paper (not post-norm with ReLU).

Its parameters map one-to-one onto transformers' ``ViTForImageClassification`` (or
``DeiTForImageClassificationWithTeacher`` when distilled; see ``hf_key_map``), so weights move both
ways and give the same logits.
A hybrid variant replaces patch cutting by a small CNN stem whose feature map
is read as a grid of 1×1 patches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ScratchConfig:
    image_size: tuple[int, int] = (28, 28)  # (H, W) of the input the model is trained on
    patch_size: int = 4                     # side P of a square patch, in pixels
    num_channels: int = 3                   # RGB, so any photo can go through the same processor
    hidden_size: int = 96                   # D, the width of every token
    num_layers: int = 6                     # L encoder blocks
    num_heads: int = 4                      # H heads; D must divide by H
    mlp_size: int = 192                     # hidden width of each block's MLP
    num_classes: int = 10
    layer_norm_eps: float = 1e-12           # transformers' ViT default, so logits match exactly
    dropout: float = 0.0
    distilled: bool = False                 # DeiT: a [DIST] token after [CLS], with its own head

    def __post_init__(self):
        if isinstance(self.image_size, int):
            self.image_size = (self.image_size, self.image_size)
        self.image_size = tuple(self.image_size)
        h, w = self.image_size
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must divide by num_heads {self.num_heads}")

    @property
    def num_prefix(self) -> int:
        """Tokens before the patches: [CLS], and [DIST] when distilled."""
        return 2 if self.distilled else 1

    @property
    def grid(self) -> tuple[int, int]:
        """(gh, gw): patches per column and per row."""
        return self.image_size[0] // self.patch_size, self.image_size[1] // self.patch_size

    def to_dict(self) -> dict:
        return asdict(self)


class ScratchOutput(NamedTuple):
    logits: torch.Tensor                    # (B, num_classes): the prediction (mean of both heads if distilled)
    attentions: tuple[torch.Tensor, ...]    # L tensors (B, H, N, N), empty unless asked for
    cls_logits: torch.Tensor | None = None  # (B, num_classes) from [CLS]; trained on the true labels
    dist_logits: torch.Tensor | None = None  # (B, num_classes) from [DIST]; trained on the teacher's labels


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Cut images into non-overlapping patches, row by row.

    (B, C, H, W) -> (B, gh·gw, C·P·P). Patch k is the block at row k // gw,
    column k % gw; inside a patch the pixels are ordered (channel, y, x), which
    is the order of a Conv2d kernel, so a conv's weight reshaped to (D, C·P·P)
    is the same projection.
    """
    b, c, h, w = images.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"image of {h}x{w} pixels does not split into {p}x{p} patches")
    gh, gw = h // p, w // p
    x = images.reshape(b, c, gh, p, gw, p)       # split each axis into (grid, within-patch)
    x = x.permute(0, 2, 4, 1, 3, 5)              # (B, gh, gw, C, P, P): grid first
    return x.reshape(b, gh * gw, c * p * p)      # one row per patch


class PatchEmbedding(nn.Module):
    """Patches -> tokens: (B, C, H, W) -> (B, N_p, D)."""

    def __init__(self, cfg: ScratchConfig):
        super().__init__()
        self.patch_size = cfg.patch_size
        self.proj = nn.Linear(cfg.num_channels * cfg.patch_size**2, cfg.hidden_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(patchify(images, self.patch_size))


class SelfAttention(nn.Module):
    """Multi-head self-attention over the tokens of each image (batch-first)."""

    def __init__(self, cfg: ScratchConfig):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.head_dim = cfg.hidden_size // cfg.num_heads
        self.q = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.k = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.v = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.out = nn.Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        """x (B, N, D) -> (output (B, N, D), probabilities (B, H, N, N) or None)."""
        b, n, d = x.shape

        def heads(t):  # (B, N, D) -> (B, H, N, D/H)
            return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.q(x)), heads(self.k(x)), heads(self.v(x))
        if need_weights:
            probs = torch.softmax(q @ k.transpose(-2, -1) * self.head_dim**-0.5, dim=-1)
            mixed = probs @ v
        else:  # same maths, fused kernel: used for training where maps are not needed
            probs, mixed = None, F.scaled_dot_product_attention(q, k, v)
        mixed = mixed.transpose(1, 2).reshape(b, n, d)
        return self.out(mixed), probs


class MLP(nn.Sequential):
    def __init__(self, cfg: ScratchConfig):
        super().__init__(
            nn.Linear(cfg.hidden_size, cfg.mlp_size),
            nn.GELU(),  # the paper's activation; the tutorial's code used ReLU
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.mlp_size, cfg.hidden_size),
        )


class Block(nn.Module):
    """Pre-LN encoder block: normalise *inside* each residual branch."""

    def __init__(self, cfg: ScratchConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.attn = SelfAttention(cfg)
        self.norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.mlp = MLP(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, need_weights: bool = False):
        attended, probs = self.attn(self.norm1(x), need_weights)
        x = x + self.drop(attended)
        x = x + self.drop(self.mlp(self.norm2(x)))
        return x, probs


class Encoder(nn.Module):
    """Tokens (B, N_p, D) -> [CLS] ([DIST]) + position embedding -> L blocks -> LN -> logits."""

    def __init__(self, cfg: ScratchConfig, num_tokens: int):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.hidden_size))
        # [DIST] starts random so that it differs from [CLS] by more than its position embedding.
        self.dist_token = nn.Parameter(torch.randn(1, 1, cfg.hidden_size) * 0.02) if cfg.distilled else None
        self.pos_embed = nn.Parameter(torch.randn(1, cfg.num_prefix + num_tokens, cfg.hidden_size) * 0.02)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.head = nn.Linear(cfg.hidden_size, cfg.num_classes)
        self.dist_head = nn.Linear(cfg.hidden_size, cfg.num_classes) if cfg.distilled else None

    def forward(self, tokens: torch.Tensor, output_attentions: bool = False) -> ScratchOutput:
        prefix = [self.cls_token] + ([self.dist_token] if self.dist_token is not None else [])
        prefix = [t.expand(tokens.shape[0], -1, -1) for t in prefix]
        x = self.drop(torch.cat([*prefix, tokens], dim=1) + self.pos_embed)  # (B, N, D)
        attentions = []
        for block in self.blocks:
            x, probs = block(x, output_attentions)
            if output_attentions:
                attentions.append(probs)
        x = self.norm(x)
        cls_logits = self.head(x[:, 0])  # classify from the final [CLS] token
        if self.dist_head is None:
            return ScratchOutput(cls_logits, tuple(attentions), cls_logits)
        dist_logits = self.dist_head(x[:, 1])
        return ScratchOutput((cls_logits + dist_logits) / 2, tuple(attentions), cls_logits, dist_logits)


class ScratchViT(nn.Module):
    def __init__(self, cfg: ScratchConfig):
        super().__init__()
        self.config = cfg
        self.patch_embed = PatchEmbedding(cfg)
        gh, gw = cfg.grid
        self.encoder = Encoder(cfg, gh * gw)
        self.apply(_init_weights)

    def forward(self, pixel_values: torch.Tensor, output_attentions: bool = False) -> ScratchOutput:
        if tuple(pixel_values.shape[-2:]) != self.config.image_size:
            raise ValueError(f"expected images of {self.config.image_size}, got {tuple(pixel_values.shape[-2:])}")
        return self.encoder(self.patch_embed(pixel_values), output_attentions)


class HybridViT(nn.Module):
    """Hybrid ViT: a CNN stem makes a feature map; each position is a 1×1 patch.

    (B, C, H, W) -> stem -> (B, C', H/s, W/s) -> 1×1 projection -> (B, H/s·W/s, D) -> encoder.
    The CNN brings the locality that plain ViTs must learn from data.
    """

    def __init__(self, cfg: ScratchConfig, stem_channels: int = 32):
        super().__init__()
        self.config = cfg
        # Two stride-2 convs per halving until the feature map has the patch grid's size.
        layers, c_in, stride = [], cfg.num_channels, 1
        while stride < cfg.patch_size:
            layers += [nn.Conv2d(c_in, stem_channels, 3, stride=2, padding=1), nn.BatchNorm2d(stem_channels), nn.ReLU()]
            c_in, stride = stem_channels, stride * 2
        if stride != cfg.patch_size:
            raise ValueError(f"hybrid stem needs a power-of-two patch_size, got {cfg.patch_size}")
        self.stem = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c_in, cfg.hidden_size, kernel_size=1)  # the 1×1 "patches"
        gh, gw = cfg.grid
        self.encoder = Encoder(cfg, gh * gw)
        self.apply(_init_weights)

    def forward(self, pixel_values: torch.Tensor, output_attentions: bool = False) -> ScratchOutput:
        fmap = self.proj(self.stem(pixel_values))       # (B, D, gh, gw)
        tokens = fmap.flatten(2).transpose(1, 2)        # (B, gh·gw, D), row by row
        return self.encoder(tokens, output_attentions)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# ---- weight compatibility with transformers' ViTForImageClassification ----

def hf_key_map(num_layers: int, distilled: bool = False) -> dict[str, str]:
    """Scratch parameter name -> transformers parameter name (same shapes except the patch projection).

    Plain: ``ViTForImageClassification``; distilled: ``DeiTForImageClassificationWithTeacher``.
    """
    base = "deit" if distilled else "vit"
    keys = {
        "patch_embed.proj.weight": f"{base}.embeddings.patch_embeddings.projection.weight",
        "patch_embed.proj.bias": f"{base}.embeddings.patch_embeddings.projection.bias",
        "encoder.cls_token": f"{base}.embeddings.cls_token",
        "encoder.pos_embed": f"{base}.embeddings.position_embeddings",
        "encoder.norm.weight": f"{base}.layernorm.weight",
        "encoder.norm.bias": f"{base}.layernorm.bias",
    }
    if distilled:
        keys["encoder.dist_token"] = "deit.embeddings.distillation_token"
        for p in ("weight", "bias"):
            keys[f"encoder.head.{p}"] = f"cls_classifier.{p}"
            keys[f"encoder.dist_head.{p}"] = f"distillation_classifier.{p}"
    else:
        keys.update({"encoder.head.weight": "classifier.weight", "encoder.head.bias": "classifier.bias"})
    per_block = {
        "norm1": "layernorm_before", "norm2": "layernorm_after",
        "attn.q": "attention.q_proj", "attn.k": "attention.k_proj", "attn.v": "attention.v_proj",
        "attn.out": "attention.o_proj", "mlp.0": "mlp.fc1", "mlp.3": "mlp.fc2",
    }
    for i in range(num_layers):
        for ours, theirs in per_block.items():
            for p in ("weight", "bias"):
                keys[f"encoder.blocks.{i}.{ours}.{p}"] = f"{base}.layers.{i}.{theirs}.{p}"
    return keys


def config_from_hf(hf_config) -> ScratchConfig:
    if hf_config.hidden_act != "gelu" or not hf_config.qkv_bias:
        raise ValueError(f"expected a ViT with exact GELU and qkv bias, got {hf_config.hidden_act}, "
                         f"qkv_bias={hf_config.qkv_bias}")
    size = hf_config.image_size
    return ScratchConfig(
        image_size=tuple(size) if isinstance(size, (list, tuple)) else (size, size),
        patch_size=hf_config.patch_size, num_channels=hf_config.num_channels,
        hidden_size=hf_config.hidden_size, num_layers=hf_config.num_hidden_layers,
        num_heads=hf_config.num_attention_heads, mlp_size=hf_config.intermediate_size,
        num_classes=hf_config.num_labels, layer_norm_eps=hf_config.layer_norm_eps,
        distilled=hf_config.model_type == "deit",
    )


def from_hf(hf_model) -> ScratchViT:
    """A ScratchViT with the weights of a transformers ViTForImageClassification
    (or DeiTForImageClassificationWithTeacher: a distilled ScratchViT)."""
    cfg = config_from_hf(hf_model.config)
    model = ScratchViT(cfg)
    theirs = hf_model.state_dict()
    state = {}
    for ours, name in hf_key_map(cfg.num_layers, cfg.distilled).items():
        t = theirs[name]
        if ours == "patch_embed.proj.weight":  # Conv2d (D, C, P, P) == Linear over (C, P, P)-ordered pixels
            t = t.reshape(t.shape[0], -1)
        state[ours] = t
    model.load_state_dict(state)
    return model.to(next(hf_model.parameters()).dtype)


def hf_config_for(cfg: ScratchConfig, id2label: dict[int, str] | None = None):
    from transformers import DeiTConfig, ViTConfig

    id2label = id2label or {i: str(i) for i in range(cfg.num_classes)}
    config_class = DeiTConfig if cfg.distilled else ViTConfig
    return config_class(
        image_size=list(cfg.image_size) if cfg.image_size[0] != cfg.image_size[1] else cfg.image_size[0],
        patch_size=cfg.patch_size, num_channels=cfg.num_channels, hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers, num_attention_heads=cfg.num_heads,
        intermediate_size=cfg.mlp_size, hidden_act="gelu", layer_norm_eps=cfg.layer_norm_eps,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, qkv_bias=True,
        num_labels=cfg.num_classes, id2label=id2label, label2id={v: k for k, v in id2label.items()},
    )


def to_hf(model: ScratchViT, id2label: dict[int, str] | None = None):
    """A transformers model with this model's weights: ViTForImageClassification, or
    DeiTForImageClassificationWithTeacher when distilled (its config names the class in
    ``architectures`` once saved, so AutoModel-style loading finds it)."""
    from transformers import DeiTForImageClassificationWithTeacher, ViTForImageClassification

    cfg = model.config
    model_class = DeiTForImageClassificationWithTeacher if cfg.distilled else ViTForImageClassification
    hf = model_class(hf_config_for(cfg, id2label))
    ours = model.state_dict()
    state = {}
    for name, theirs in hf_key_map(cfg.num_layers, cfg.distilled).items():
        t = ours[name]
        if name == "patch_embed.proj.weight":
            t = t.reshape(cfg.hidden_size, cfg.num_channels, cfg.patch_size, cfg.patch_size)
        state[theirs] = t
    hf.load_state_dict(state, strict=True)
    return hf.eval()
