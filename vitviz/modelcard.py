"""Model card for a model saved by vitviz.train: README.md plus figures, from training.json.

    python -m vitviz.modelcard assets/models/vit-tiny-fashion-mnist
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import render as R
from .posemb import similarity


def confusion_figure(conf: np.ndarray, names: list[str]) -> np.ndarray:
    fig, ax = R._figure((6.4, 5.6))
    share = conf / conf.sum(1, keepdims=True).clip(min=1)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, str(conf[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    return R.figure_to_array(fig)


def write_model_card(folder: str | Path) -> Path:
    from transformers import ViTForImageClassification

    folder = Path(folder)
    rec = json.loads((folder / "training.json").read_text())
    cfg = rec["config"]
    grid = (cfg["image_size"][0] // cfg["patch_size"], cfg["image_size"][1] // cfg["patch_size"])
    n_p = grid[0] * grid[1]
    model = ViTForImageClassification.from_pretrained(folder)
    trained = model.vit.embeddings.position_embeddings.detach()[0, -n_p:].float()
    initial = torch.from_numpy(np.load(folder / "pos_embed_init.npy"))[-n_p:].float()
    Image.fromarray(R.similarity_grid(similarity(initial), grid)).save(folder / "posemb_init.png")
    Image.fromarray(R.similarity_grid(similarity(trained), grid)).save(folder / "posemb_trained.png")
    names = rec["class_names"]
    conf = np.array(rec["confusion"])
    Image.fromarray(confusion_figure(conf, names)).save(folder / "confusion.png")

    def neighbour_sim(pos):
        """Mean cosine similarity of horizontally/vertically adjacent patches minus that of all pairs."""
        s = similarity(pos).reshape(grid[0], grid[1], grid[0], grid[1])
        adj = [s[r, c, r, c + 1] for r in range(grid[0]) for c in range(grid[1] - 1)]
        adj += [s[r, c, r + 1, c] for r in range(grid[0] - 1) for c in range(grid[1])]
        off = similarity(pos)[~torch.eye(n_p, dtype=torch.bool)]
        return float(torch.stack(adj).mean()), float(off.mean())

    adj0, all0 = neighbour_sim(initial)
    adj1, all1 = neighbour_sim(trained)
    size_kb = (folder / "model.safetensors").stat().st_size / 1024
    n_params = sum(p.numel() for p in model.parameters())
    hist = "\n".join(f"| {h['epoch']} | {h['loss']:.4f} | {100 * h['train_acc']:.2f} | {100 * h['test_acc']:.2f} | "
                     f"{h['seconds'] / 60:.1f} |" for h in rec["history"])
    conf_rows = "\n".join(f"| **{names[i]}** | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(conf))
    card = f"""---
license: mit
library_name: transformers
pipeline_tag: image-classification
datasets: [fashion_mnist]
---
# vitviz ViT-Tiny for Fashion-MNIST (the app's offline model)

A Vision Transformer trained **from scratch** by vitviz's own code (`vitviz/scratch.py`, the
tutorial's model with its bugs fixed), saved in transformers' `ViTForImageClassification` format so
vitviz loads it exactly like a Hub model. It exists so that vitviz works with no internet.

- **Test accuracy: {100 * rec['test_accuracy']:.2f} %** on the 10,000 Fashion-MNIST test images
  (the dataset authors' two-layer CNN baseline: 91.6 %).
- Training time: {rec['seconds'] / 60:.1f} min on {rec['threads']} CPU threads ({platform.machine()}, torch {rec['torch']}).
- Architecture: {cfg['image_size'][0]}×{cfg['image_size'][1]} RGB input, {cfg['patch_size']}×{cfg['patch_size']} patches
  ({grid[0]}×{grid[1]} = {n_p} tokens + [CLS]), D = {cfg['hidden_size']}, {cfg['num_layers']} pre-LN blocks, {cfg['num_heads']} heads,
  MLP {cfg['mlp_size']}, GELU; {n_params:,} parameters, {size_kb:.0f} KB on disk.
- Input: any photo, through the saved `ViTImageProcessor` (resize to {cfg['image_size'][0]}×{cfg['image_size'][1]}, scale to [−1, 1]).
  Grey training images were repeated over the three channels. The model only knows the 10 clothing
  classes on a black background: photos of anything else get a clothing label.

## Reproduce

```
{rec['command']}
```

Seed {rec['settings']['seed']}; AdamW (lr {rec['settings']['lr']}, weight decay {rec['settings']['weight_decay']}), batch
{rec['settings']['batch_size']}, {rec['settings']['epochs']} epochs, linear warm-up for {rec['settings']['warmup_epochs']} epoch then cosine decay,
label smoothing {rec['settings']['label_smoothing']}, random translation by up to {rec['settings']['crop_padding']} px and horizontal flips.
Data: Debian's `dataset-fashion-mnist` (IDX files), {rec.get('train_images', 60000):,} training images.

Minutes are cumulative wall-clock time on a machine that may have been doing other work too: the
difference between two late epochs is the undisturbed speed.

| epoch | loss | train acc % (augmented) | test acc % | minutes |
|---:|---:|---:|---:|---:|
{hist}

## Confusion matrix (test set; rows: true class, columns: predicted)

![confusion matrix](confusion.png)

| | {' | '.join(names)} |
|---|{'---:|' * len(names)}
{conf_rows}

## What the position embeddings learned (the inductive-bias point)

A ViT is told nothing about which patches are neighbours: its position embeddings start as random
vectors. Each figure shows, for every patch (tile), the cosine similarity of its position embedding
with every other patch's (the ViT paper's Fig. 7, centre; scale −1…1).

| at initialisation | after training |
|---|---|
| ![initial](posemb_init.png) | ![trained](posemb_trained.png) |
| adjacent patches: {adj0:.3f}, all pairs: {all0:.3f} | adjacent patches: {adj1:.3f}, all pairs: {all1:.3f} |

At initialisation every tile is noise with a single bright square (the patch itself). After
training, each tile shows a bright blob around its own position and rows/columns light up: the
2-D layout was learned from data, which a CNN gets for free from its convolutions.

## Licence

Weights: MIT, like Fashion-MNIST (Zalando Research). Code: vitviz.
"""
    (folder / "README.md").write_text(card)
    return folder / "README.md"


if __name__ == "__main__":
    print(write_model_card(sys.argv[1]))
