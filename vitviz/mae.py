"""Masked autoencoder reconstruction (He et al. 2022) without touching the shared model.

transformers' ViTMAE reads the mask ratio from the model's config at call time, so showing a
75 %-masked reconstruction with the model the attention views use (loaded with ratio 0) would
mean changing a config every other request shares. Here the masking is done on the embeddings
directly, as ViTMAEEmbeddings.random_masking does it, and the encoder layers and the decoder
run on the kept tokens; tests/test_families.py checks the result against transformers' own
masked forward.
"""

from __future__ import annotations

import numpy as np
import torch


def _mask(n: int, ratio: float, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids to keep (K,), ids that restore the order (n,), mask (n,) with 1 = hidden) for one image."""
    noise = torch.rand(n, generator=torch.Generator().manual_seed(seed))
    shuffle = torch.argsort(noise)
    restore = torch.argsort(shuffle)
    keep = int(n * (1 - ratio))
    mask = torch.ones(n)
    mask[:keep] = 0
    return shuffle[:keep], restore, mask[restore]


def reconstruct(loaded, pixel_values: torch.Tensor, ratio: float = 0.75, seed: int = 0):
    """One input (3, H, W) -> (reconstruction (H, W, 3) uint8, mask (gh, gw) float with 1 = masked)."""
    if not loaded.can_reconstruct:
        raise ValueError(f"{loaded.name} is not a masked autoencoder: it has no decoder to reconstruct with")
    model, vit = loaded.model, loaded.model.vit
    h, w = pixel_values.shape[-2:]
    gh, gw = h // loaded.patch_size, w // loaded.patch_size
    x = pixel_values[None].to(loaded.device, loaded.torch_dtype)
    interpolate = (h, w) != tuple(loaded.input_size)
    keep, restore, mask = _mask(gh * gw, ratio, seed)
    with torch.inference_mode():
        tokens = vit.embeddings.patch_embeddings(x)                                  # (1, P, D)
        pos = (vit.embeddings.interpolate_pos_encoding(tokens, h, w) if interpolate
               else vit.embeddings.position_embeddings)                              # (1, 1 + P, D)
        tokens = (tokens + pos[:, 1:])[:, keep.to(tokens.device)]                    # the visible 25 %
        hidden = torch.cat([vit.embeddings.cls_token + pos[:, :1], tokens], 1)
        for layer in vit.layers:
            hidden = layer(hidden, None)
        latent = vit.layernorm(hidden)
        pred = model.decoder(latent, restore[None].to(latent.device), interpolate_pos_encoding=interpolate)
        pred = pred.logits.float().cpu()                                             # (1, P, p·p·3)
    cfg = model.config
    if getattr(cfg, "norm_pix_loss", False):                                         # per-patch normalised targets
        target = model.patchify(pixel_values[None].float(), interpolate_pos_encoding=interpolate)
        pred = pred * (target.var(-1, keepdim=True) + 1e-6).sqrt() + target.mean(-1, keepdim=True)
    recon = model.unpatchify(pred, (h, w))[0]                                        # (3, H, W) normalised
    mean = torch.tensor(loaded.spec.mean)[:, None, None]
    std = torch.tensor(loaded.spec.std)[:, None, None]
    rgb = ((recon * std + mean) / loaded.spec.rescale).clamp(0, 255).permute(1, 2, 0).numpy().astype(np.uint8)
    return rgb, mask.reshape(gh, gw).numpy()
