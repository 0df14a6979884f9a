"""Model card for a model saved by vitviz.train: README.md plus figures, from training.json.

    python -m vitviz.modelcard assets/models/deit-tiny-fashion-mnist
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .core.paths import STUDY_DIR
from .pictures import render as R
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


def neighbour_similarity(pos: torch.Tensor, grid: tuple[int, int]) -> tuple[float, float]:
    """(mean cosine similarity of horizontally/vertically adjacent patches, mean over all pairs)."""
    gh, gw = grid
    sim = similarity(pos)
    s = sim.reshape(gh, gw, gh, gw)
    adj = [s[r, c, r, c + 1] for r in range(gh) for c in range(gw - 1)]
    adj += [s[r, c, r + 1, c] for r in range(gh - 1) for c in range(gw)]
    off = sim[~torch.eye(gh * gw, dtype=torch.bool)]
    return float(torch.stack(adj).mean()), float(off.mean())


def epoch_table(history: list[dict]) -> str:
    rows = ["| epoch | loss | train acc % (augmented) | test acc % | minutes |", "|---:|---:|---:|---:|---:|"]
    for h in history:
        test = f"{100 * h['test_acc']:.2f}" if "test_acc" in h else "–"
        rows.append(f"| {h['epoch']} | {h['loss']:.4f} | {100 * h['train_acc']:.2f} | {test} | "
                    f"{h['seconds'] / 60:.1f} |")
    return "\n".join(rows)


def position_figures(folder: Path, model, grid: tuple[int, int]) -> tuple[str, str]:
    """Similarity figures at initialisation and after training; their captions."""
    n_p = grid[0] * grid[1]
    trained = model.base_model.embeddings.position_embeddings.detach()[0, -n_p:].float()
    initial = torch.from_numpy(np.load(folder / "pos_embed_init.npy"))[-n_p:].float()
    Image.fromarray(R.similarity_grid(similarity(initial), grid)).save(folder / "posemb_init.png")
    Image.fromarray(R.similarity_grid(similarity(trained), grid)).save(folder / "posemb_trained.png")
    (adj0, all0), (adj1, all1) = neighbour_similarity(initial, grid), neighbour_similarity(trained, grid)
    return (f"adjacent patches: {adj0:.3f}, all pairs: {all0:.3f}",
            f"adjacent patches: {adj1:.3f}, all pairs: {all1:.3f}")


def teacher_section(rec: dict) -> str:
    teacher = rec.get("teacher")
    if not teacher:
        return "No teacher: trained on the true labels alone (`--no-distill`).\n"
    heads = rec.get("heads", {})
    widths = ", ".join(str(w) for w in teacher["config"]["widths"])
    s = teacher["settings"]
    return f"""The teacher is a small CNN trained first by the same command (`vitviz/cnn.py`: stages of
{widths} channels, each two 3×3 conv-BN-ReLU and a 2×2 max pool, then global average pooling and
a linear layer; {teacher['parameters']:,} parameters; {s['epochs']} epochs, AdamW lr {s['lr']}, the
same augmentation): **{100 * teacher['test_accuracy']:.2f} %** test accuracy, {teacher['seconds'] / 60:.1f} min.
Its weights are not shipped: only its labels reach the student.

| prediction | test accuracy % |
|---|---:|
| CNN teacher | {100 * teacher['test_accuracy']:.2f} |
| student, [CLS] head alone (learns the true labels) | {100 * heads.get('cls', float('nan')):.2f} |
| student, [DIST] head alone (learns the teacher's labels) | {100 * heads.get('dist', float('nan')):.2f} |
| **student, both heads averaged (the model's prediction)** | **{100 * heads.get('logits', float('nan')):.2f}** |

Teacher, per epoch:

{epoch_table(teacher['history'])}
"""


def study_section() -> str:
    if not (STUDY_DIR / "study.md").exists():
        return "Run `python -m vitviz.study` for the data-efficiency study.\n"
    rec = json.loads((STUDY_DIR / "study.json").read_text())
    return f"""`{rec['command']}` ({rec['seconds'] / 60:.0f} min on {rec['threads']} threads): a CNN, a
ViT and a hybrid ViT (CNN stem, 1×1 patches), each seeing {rec['budget']:,} training images however
large its subset, tested on all {rec['test_images']:,} test images.

{(STUDY_DIR / 'study.md').read_text()}
![accuracy vs training-set size](../../../results/inductive-bias/study.png)
"""


def summary_section(rec: dict, arch: str, size_kb: float) -> str:
    cfg = rec["config"]
    (h, w), p = cfg["image_size"], cfg["patch_size"]
    distilled = cfg.get("distilled", False)
    how = ", DeiT-style: distilled from a CNN that the same command trains first" if distilled else ""
    minutes = rec.get("total_seconds", rec["seconds"]) / 60
    return f"""A Vision Transformer trained **from scratch** by vitviz's own code (`vitviz/scratch.py`, the
tutorial's model with its bugs fixed){how}. It is saved in transformers' `{arch}` format, so
vitviz (and anyone) loads it like a Hub model; it exists so that vitviz works with no internet.

- **Test accuracy: {100 * rec['test_accuracy']:.2f} %** on all 10,000 Fashion-MNIST test images
  (the dataset authors' two-layer CNN benchmark: 91.6 %; with batch norm 93.4 %).
- Training time, teacher included: **{minutes:.1f} min** on {rec['threads']} threads
  ({rec.get('machine', 'CPU')}, torch {rec['torch']}).
- Architecture: {h}×{w} RGB input, {p}×{p} patches ({h // p}×{w // p} = {(h // p) * (w // p)} tokens
  + {'[CLS] + [DIST]' if distilled else '[CLS]'}), D = {cfg['hidden_size']}, {cfg['num_layers']} pre-LN blocks,
  {cfg['num_heads']} heads, MLP {cfg['mlp_size']}, GELU; {rec['parameters']:,} parameters, {size_kb:.0f} KB on disk.
- Input: any photo, through the saved `ViTImageProcessor` (resize to {h}×{w}, scale to [−1, 1]).
  Grey training images were repeated over the three channels. The model only knows the 10 clothing
  classes on a black background: photos of anything else get a clothing label.
"""


def reproduce_section(rec: dict) -> str:
    s = rec["settings"]
    erase = f", random erasing p={s['erase']}" if s.get("erase") else ""
    return f"""```
{rec['command']}
```

Seed {s['seed']}; AdamW (lr {s['lr']}, weight decay {s['weight_decay']}), batch {s['batch_size']},
{s['epochs']} epochs, linear warm-up for {s['warmup_epochs']} epoch then cosine decay, label smoothing
{s['label_smoothing']} on the true labels, random translation by up to {s['crop_padding']} px and
horizontal flips{erase}. Data: Debian's `dataset-fashion-mnist` (IDX files),
{rec.get('train_images', 60000):,} training images. Minutes are cumulative wall-clock time.
"""


def confusion_section(folder: Path, rec: dict) -> str:
    names, conf = rec["class_names"], np.array(rec["confusion"])
    Image.fromarray(confusion_figure(conf, names)).save(folder / "confusion.png")
    rows = "\n".join(f"| **{names[i]}** | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(conf))
    return f"""![confusion matrix](confusion.png)

| | {' | '.join(names)} |
|---|{'---:|' * len(names)}
{rows}
"""


def write_model_card(folder: str | Path) -> Path:
    from transformers import AutoModelForImageClassification

    folder = Path(folder)
    rec = json.loads((folder / "training.json").read_text())
    cfg = rec["config"]
    grid = (cfg["image_size"][0] // cfg["patch_size"], cfg["image_size"][1] // cfg["patch_size"])
    model = AutoModelForImageClassification.from_pretrained(folder)
    init_caption, trained_caption = position_figures(folder, model, grid)
    size_kb = (folder / "model.safetensors").stat().st_size / 1024
    kind = "DeiT" if cfg.get("distilled") else "ViT"
    card = f"""---
license: mit
library_name: transformers
pipeline_tag: image-classification
datasets: [fashion_mnist]
---
# vitviz {kind}-Tiny for Fashion-MNIST (the app's offline model)

{summary_section(rec, model.config.architectures[0], size_kb)}
## Reproduce

{reproduce_section(rec)}
## Distillation (DeiT, Touvron et al. 2021)

{teacher_section(rec)}
## Student, per epoch

{epoch_table(rec['history'])}

## Confusion matrix (test set; rows: true class, columns: predicted)

{confusion_section(folder, rec)}
## What the position embeddings learned

A ViT is told nothing about which patches are neighbours: its position embeddings start as random
vectors. Each figure shows, for every patch (tile), the cosine similarity of its position embedding
with every other patch's (the ViT paper's Fig. 7, centre; scale −1…1).

| at initialisation | after training |
|---|---|
| ![initial](posemb_init.png) | ![trained](posemb_trained.png) |
| {init_caption} | {trained_caption} |

## Does a ViT need more data than a CNN? (inductive bias)

{study_section()}
## Licence

Weights: MIT, like Fashion-MNIST (Zalando Research). Code: vitviz.
"""
    (folder / "README.md").write_text(card)
    return folder / "README.md"


if __name__ == "__main__":
    print(write_model_card(sys.argv[1]))
