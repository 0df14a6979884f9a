"""CLIP, SigLIP and SigLIP 2: zero-shot classification over labels the user types.

An image–text model scores an image against the prompts "a photo of a {label}" ("{label} 사진" for a
Korean label, vitviz.core.labels.prompt): the cosine of the
image embedding and each prompt's text embedding, scaled (SigLIP adds a bias). With the typed
labels bound, the vision tower and the text embeddings form a classifier whose classes are the
labels, so every view (top-k, rollout, class maps, evidence) works on it as on a ViT classifier.

- CLIP's vision tower reads [CLS] + patches; its [CLS] (after the final norm and a projection) is
  the image embedding, so [CLS] is the query of every map.
- SigLIP has no [CLS]: an attention-pooling head's learned probe attends over the patch tokens
  after the encoder. The probe is the query: rollout runs from its attention over the patches back
  through the encoder, and class maps (Chefer et al. ICCV 2021, the Transformer-MM-Explainability
  rule for the image–text score) start from the probe's relevance-weighted attention.
- SigLIP 2 (NaFlex) takes patches, not pictures: the input is cut into patches here, one
  (gh, gw) shape per batch.

Labels are bound lazily: ``LoadedModel.with_labels`` (the adapter's ``bind``) records them and the
first forward pass encodes the prompts where the model lives (the GPU worker on ZeroGPU), kept in a
small per-model cache. Typed text is parsed and bounded before that (vitviz.core.labels).
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from ..core.cache import Cache
from ..core.facts import ModelFacts
from ..core.family import Family, PooledReadout, frozen_layer_norm
from ..core.labels import prompt
from ..core.loaded import LoadedModel
from ..core.loading import Source
from ..core.outputs import Embeddings, PatchEmbeddings, VisionOutput, conv_patches
from ..core.preprocess import spec_from_processor

KINDS = ("clip", "siglip", "siglip2")
MULTILINGUAL = ("siglip2",)        # trained on captions in many languages (Gemma's tokenizer); the others on English
# the English template without a label: LeGrad's reference corrects SigLIP maps with it
EMPTY_PROMPT = "a photo of a"


# ---------------------------------------------------------------- the model

class ZeroShotVision(torch.nn.Module):
    """The vision tower of a CLIP / SigLIP / SigLIP 2 model with vitviz's surface (vitviz.core.outputs):
    logits over the bound labels, the encoder's attentions and hidden states, SigLIP's probe."""

    def __init__(self, full, tokenizer, kind: str):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.full = full
        self.vision = full.vision_model
        self.kind = kind
        vision = self.vision.config
        patch = vision.patch_size if isinstance(vision.patch_size, int) else vision.patch_size[0]
        side = getattr(vision, "image_size", None) or patch * math.isqrt(int(vision.num_patches))   # SigLIP 2: a count
        self.config = SimpleNamespace(model_type=vision.model_type, patch_size=int(patch), image_size=side)
        self.tokenizer = tokenizer
        self.labels: tuple[str, ...] = ()
        self.texts: Cache = Cache(max_entries=32)      # (labels, device) -> (K, E) unit text embeddings
        self.embeddings = Embeddings(PatchEmbeddings(self._patches, self._filters), self._positions)

    @property
    def base_model(self):
        return self

    def bound(self, labels: tuple[str, ...]) -> "ZeroShotVision":
        """A shallow copy scoring `labels` (modules and the text cache shared)."""
        clone = copy.copy(self)
        clone.__dict__["labels"] = tuple(labels)
        return clone

    # ------------------------------------------------------------ embeddings (patches, positions)
    def _patches(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.vision.embeddings.patch_embedding
        if self.kind == "siglip2":
            return emb(patchify(x, self.config.patch_size))
        return conv_patches(emb)(x)

    def _filters(self) -> torch.Tensor:
        w = self.vision.embeddings.patch_embedding.weight
        if self.kind == "siglip2":                      # Linear over (p, p, c) patches -> (D, C, P, P)
            p = self.config.patch_size
            return w.reshape(w.shape[0], p, p, -1).permute(0, 3, 1, 2)
        return w

    def _positions(self) -> torch.Tensor:
        return self.vision.embeddings.position_embedding.weight[None]

    # ------------------------------------------------------------ text
    def text_embeddings(self, labels: tuple[str, ...], device) -> torch.Tensor:
        """(K, E) unit-length embeddings of the prompts for `labels`, kept per label set."""
        return self.prompt_embeddings(tuple(prompt(label) for label in labels), device)

    def prompt_embeddings(self, prompts: tuple[str, ...], device) -> torch.Tensor:
        """(K, E) unit-length embeddings of the prompts as typed, kept per prompt set."""
        return self.texts.get((prompts, str(device)), lambda: self._encode(prompts, device))

    def _encode(self, prompts, device) -> torch.Tensor:
        length = int(self.full.config.text_config.max_position_embeddings)
        # SigLIP was trained on prompts padded to the full length; CLIP pools its end-of-text token
        padding = "max_length" if self.kind != "clip" else True
        # normal tensors even when the first call comes from an inference-mode analysis: class maps use
        # them later in a graph, where inference tensors are refused
        with torch.inference_mode(False), torch.no_grad():
            tok = self.tokenizer(list(prompts), padding=padding, max_length=length, truncation=True,
                                 return_tensors="pt")
            inputs = {k: v.to(device) for k, v in tok.items() if k in ("input_ids", "attention_mask")}
            pooled = self.full.text_model(**inputs).pooler_output
            if self.kind == "clip":
                pooled = self.full.text_projection(pooled)
            return F.normalize(pooled.float(), dim=-1)

    # ------------------------------------------------------------ image
    def forward(self, pixel_values: torch.Tensor, output_attentions: bool = False, output_hidden_states: bool = False,
                interpolate_pos_encoding: bool = False, **kw) -> VisionOutput:
        out = self.vision(**self._vision_inputs(pixel_values, interpolate_pos_encoding),
                          output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        image, probe = self.embed(out.last_hidden_state)
        return VisionOutput(self.scores(image), tuple(out.attentions or ()), out.hidden_states, probe)

    def _vision_inputs(self, x: torch.Tensor, interpolate: bool) -> dict:
        if self.kind != "siglip2":
            return {"pixel_values": x, "interpolate_pos_encoding": interpolate}
        p = self.config.patch_size
        gh, gw = x.shape[-2] // p, x.shape[-1] // p
        return {"pixel_values": patchify(x, p),
                "pixel_attention_mask": torch.ones(x.shape[0], gh * gw, dtype=torch.long, device=x.device),
                "spatial_shapes": torch.tensor([[gh, gw]] * x.shape[0], device=x.device)}

    def embed(self, last: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, N, D) last hidden state as the vision model returns it -> (image embedding (B, E), the
        probe's attention (B, H, 1, N) or None)."""
        if self.kind == "clip":
            return self.full.visual_projection(self.vision.post_layernorm(last[:, 0])), None
        return probe_pool(self.vision.head, last)

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """The label scores read from any layer's hidden state (B, N, D), as the model reads its last
        layer: the logit lens and LeGrad (vitviz.lens) use it."""
        if self.kind == "clip":
            return self.scores(self.embed(hidden)[0])
        return self.scores(self.embed(self.vision.post_layernorm(hidden))[0])

    def frozen_readout(self, hidden: torch.Tensor):
        """CLIP's score with its norms frozen at the last layer's tokens `hidden` (B, N, D): the final norm
        of [CLS] and the image embedding's length, so the score is affine in the residual stream (no
        bias: CLIP's projection has none). None for SigLIP: its attention-pooling head (softmax and MLP)
        stays non-linear with norms frozen, and without labels."""
        if self.kind != "clip" or not self.labels:
            return None
        norm = frozen_layer_norm(self.vision.post_layernorm, hidden[:, :1])
        image = self.full.visual_projection(self.vision.post_layernorm(hidden[:, 0]))
        length = image.float().norm(dim=-1, keepdim=True)
        text = self.text_embeddings(self.labels, hidden.device)
        scale = self.full.logit_scale.float().exp()
        return lambda x: self.full.visual_projection(norm(x[:, :1])[:, 0]).float() / length @ text.T * scale

    def pooled_readout(self, hidden: torch.Tensor) -> PooledReadout:
        """SigLIP's attention pooler applied to any layer's tokens (B, N, D) as LeGrad's reference applies
        it (legrad/wrapper.py, compute_legrad_siglip: ``attn_pool(blk.feat_post_mlp)``): the block's
        output as it is, without the final norm the model's own forward puts before the pooler. Scores
        (B, K), the probe's attention (B, H, 1, N) in the graph, and the score of EMPTY_PROMPT (B,)."""
        pooled, attention = probe_pool(self.vision.head, hidden)
        return PooledReadout(self.scores(pooled), attention,
                             self.similarity(pooled, self.prompt_embeddings((EMPTY_PROMPT,), hidden.device))[:, 0])

    def scores(self, image: torch.Tensor) -> torch.Tensor | None:
        """(B, E) image embeddings -> (B, K) scores for the bound labels (None when none are)."""
        if not self.labels:
            return None
        return self.similarity(image, self.text_embeddings(self.labels, image.device))

    def similarity(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """(B, E) image embeddings and (K, E) unit text embeddings -> (B, K) scores: the scaled cosine
        (SigLIP adds its bias)."""
        logits = F.normalize(image.float(), dim=-1) @ text.T * self.full.logit_scale.float().exp()
        if self.kind != "clip":
            logits = logits + self.full.logit_bias.float()
        return logits


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, gh·gw, p·p·C), patches row by row, pixels in (p, p, C) order as SigLIP 2's
    image processor lays them out."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def probe_pool(head, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """SigLIP's attention-pooling head, written out so that the probe's attention is part of the
    graph (torch's MultiheadAttention returns its weights as a copy that gradients never reach).
    hidden (B, N, D) -> (pooled (B, D), attention (B, H, 1, N)); equal to ``head(hidden)``."""
    mha = head.attention
    b, n, d = hidden.shape
    heads = mha.num_heads
    wq, wk, wv = mha.in_proj_weight.chunk(3)
    bq, bk, bv = mha.in_proj_bias.chunk(3)
    q = F.linear(head.probe.expand(b, 1, d), wq, bq).reshape(b, 1, heads, -1).transpose(1, 2)
    k = F.linear(hidden, wk, bk).reshape(b, n, heads, -1).transpose(1, 2)
    v = F.linear(hidden, wv, bv).reshape(b, n, heads, -1).transpose(1, 2)
    att = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)            # (B, H, 1, N)
    out = mha.out_proj((att @ v).transpose(1, 2).reshape(b, 1, d))
    out = out + head.mlp(head.layernorm(out))
    return out[:, 0], att


# ---------------------------------------------------------------- the adapter

class ZeroShot(Family):
    """CLIP / SigLIP / SigLIP 2: the vision tower scores labels the user types."""
    name = "zero-shot"
    order = 20
    models = {
        "openai/clip-vit-base-patch32": "CLIP ViT-B/32 (labels you type)",
        "google/siglip-base-patch16-224": "SigLIP B/16 (labels you type, no [CLS])",
        "google/siglip2-base-patch16-224": "SigLIP 2 B/16 (labels in many languages, no [CLS])",
    }

    def recognises(self, source: Source) -> bool:
        return source.config.get("model_type") in KINDS

    def load(self, source: Source, device: str, dtype: str) -> LoadedModel:
        """A LoadedModel for a CLIP / SigLIP / SigLIP 2 checkpoint (no labels bound)."""
        import transformers

        config = source.fetch(transformers.AutoConfig)
        kw = {"attn_implementation": "eager", "dtype": getattr(torch, dtype)}
        full = source.fetch(transformers.AutoModel, **kw).to(device).eval()
        full.requires_grad_(False)
        tokenizer = source.fetch(transformers.AutoTokenizer)
        processor = source.fetch(transformers.AutoImageProcessor)
        model = ZeroShotVision(full, tokenizer, config.model_type)
        spec = spec_from_processor(processor)
        if config.model_type == "siglip2":       # NaFlex sizes follow the photo: vitviz runs one square size
            side = model.config.patch_size * int(math.isqrt(int(getattr(processor, "max_num_patches", 256))))
            spec = replace(spec, resize=(side, side), shortest_edge=None, crop=None)
        known = facts(config)
        return LoadedModel(**{f: getattr(known, f) for f in known.__dataclass_fields__}, name=source.name,
                           model=model, processor=processor, spec=spec, device=device, dtype=dtype, adapter=self,
                           source=source.source)

    def readout(self, loaded: LoadedModel, hidden: torch.Tensor) -> torch.Tensor:
        return loaded.model.readout(hidden)

    def frozen_readout(self, loaded: LoadedModel, hidden: torch.Tensor):
        return loaded.model.frozen_readout(hidden)

    def pooled_readout(self, loaded: LoadedModel, hidden: torch.Tensor) -> PooledReadout:
        """CLIP reads [CLS]: the mean of all tokens through its head (the default, as the reference reads
        OpenCLIP ViTs). SigLIP and SigLIP 2 pool by attention: their pooler on the layer's tokens."""
        if loaded.query_name == "[CLS]":
            return super().pooled_readout(loaded, hidden)
        return loaded.model.pooled_readout(hidden)

    def blocks(self, loaded: LoadedModel) -> torch.nn.ModuleList:
        return loaded.model.vision.encoder.layers

    def reinitialise(self, loaded: LoadedModel, module: torch.nn.Module) -> None:
        from ..core.compat import init_weights

        if not init_weights(loaded.model.full, module):
            super().reinitialise(loaded, module)

    def bind(self, loaded: LoadedModel, labels) -> LoadedModel:
        """A copy scoring `labels` (weights and caches shared). Cheap and device-free: the prompts are
        encoded on the first forward pass."""
        labels = tuple(labels)
        return replace(loaded, model=loaded.model.bound(labels), id2label=dict(enumerate(labels)),
                       has_classifier=bool(labels))


def facts(config) -> ModelFacts:
    """The vision tower's facts; [CLS] for CLIP, no prefix and the probe as the query for SigLIP."""
    vision = config.vision_config
    patch = vision.patch_size if isinstance(vision.patch_size, int) else vision.patch_size[0]
    clip = config.model_type == "clip"
    return ModelFacts(family=config.model_type, layers=int(vision.num_hidden_layers),
                      heads=int(vision.num_attention_heads), hidden_size=int(vision.hidden_size),
                      mlp_size=int(vision.intermediate_size), patch_size=int(patch),
                      prefix_names=("[CLS]",) if clip else (), id2label={}, has_classifier=False,
                      query_name="[CLS]" if clip else "probe", typed_labels=True,
                      multilingual_text=config.model_type in MULTILINGUAL,
                      head_reads="[CLS] image embedding" if clip else "pooling probe")

