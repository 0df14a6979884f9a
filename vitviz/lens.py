"""What each layer already "thinks": its hidden state read through the model's own final norm and
classifier head (the logit lens, as in ViT-Prisma; each patch token can be read alone the same way).
The head was trained on the last layer only, so an earlier layer's read-out is a probe of what that
head can read there, not the model's belief. How a head reads a layer is the model's own
(``LoadedModel.readout``, stated by its family's adapter); LeGrad (vitviz.methods.legrad) explains
with the same read-out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .analysis import forward


def token_logits(loaded, hidden: torch.Tensor, chunk_bytes: int = 32 * 2**20) -> torch.Tensor:
    """Every token of a layer read alone through the final norm and the head: (B, N, D) -> (B, N, K).

    Token t is read as if every token the head looks at were t: a sequence of prefix + 1 copies of
    t, so whatever the head pools ([CLS]; the mean of DeiT's [CLS] and [DIST] heads; the mean of the
    patches) it finds t alone. For a ViT this is classifier(layernorm(t)), the patch logit lens of
    ViT-Prisma. Differentiable."""
    b, n, d = hidden.shape
    length = loaded.prefix + 1                       # the prefix tokens and one patch: every head's pooling reads t
    per = max(1, chunk_bytes // max(1, b * length * d * hidden.element_size()))
    out = []
    for start in range(0, n, per):
        part = hidden[:, start:start + per]                                        # (B, c, D)
        c = part.shape[1]
        copies = part[:, :, None].expand(b, c, length, d).reshape(b * c, length, d)
        out.append(loaded.readout(copies).reshape(b, c, -1))
    return torch.cat(out, 1)


@dataclass
class LayerReadout:
    """The logit lens of one input: each layer read through the final norm and the head."""
    logits: torch.Tensor        # (L+1, K): row 0 the embeddings, row l block l's output, as the head reads it
    patch_class: torch.Tensor   # (L+1, P) int64: each patch token's top class, the token read alone
    patch_prob: torch.Tensor    # (L+1, P) float32: that class's probability


def read_layers(loaded, pixel_values: torch.Tensor) -> LayerReadout:
    """The model's read-out of every layer and each patch token's top class at every layer, from one
    forward of one input (3, H, W). On the CPU."""
    with torch.inference_mode():
        out = forward(loaded, pixel_values[None], output_attentions=False, output_hidden_states=True)
        logits = torch.cat([loaded.readout(h) for h in out.hidden_states]).float().cpu()
        best = [token_logits(loaded, h[:, loaded.prefix:])[0].float().softmax(-1).max(-1) for h in out.hidden_states]
    return LayerReadout(logits, torch.stack([b.indices for b in best]).cpu(),
                        torch.stack([b.values for b in best]).cpu())


def layer_logits(loaded, pixel_values: torch.Tensor) -> torch.Tensor:
    """The logit lens of one input (3, H, W): row 0 reads the embeddings, row l the output of block l,
    row L equals the model's logits. (L+1, K) float32 on the CPU."""
    with torch.inference_mode():
        out = forward(loaded, pixel_values[None], output_attentions=False, output_hidden_states=True)
        return torch.cat([loaded.readout(h) for h in out.hidden_states]).float().cpu()
