"""Train the from-scratch ViT and save it in transformers' format.

    python -m vitviz.train --out assets/models/vit-fashion-mnist            # Fashion-MNIST (Debian package)
    python -m vitviz.train --image-folder DIR --image-size 64 --out OUT     # any folder of class subfolders

AdamW + cross-entropy (label smoothing), linear warm-up then cosine decay,
random-crop and flip augmentation, a fixed seed. The saved folder holds
config.json (with id2label), model.safetensors and preprocessor_config.json,
so vitviz loads it through the same path as a Hub model.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .scratch import ScratchConfig, ScratchViT, to_hf

# Pixel normalisation the saved processor applies: x/255 -> (x - 0.5) / 0.5, in [-1, 1].
MEAN, STD = 0.5, 0.5


@dataclass
class TrainSettings:
    epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    crop_padding: int = 2          # random translation by up to this many pixels
    flip: bool = True              # horizontal flips (fine for clothes; not for digits)
    erase: float = 0.0             # probability of random erasing per image
    seed: int = 0
    threads: int = 0               # 0: torch's default
    progress: bool = True


@dataclass
class TrainResult:
    model: ScratchViT
    history: list = field(default_factory=list)   # per epoch: loss, train acc, test acc, seconds
    test_accuracy: float = float("nan")
    confusion: np.ndarray | None = None             # (K, K): rows true class, columns predicted
    seconds: float = 0.0
    initial_pos_embed: np.ndarray | None = None     # (1 + P, D) before training: for the inductive-bias figure


def to_input(images_u8: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 (B, C0, H, W) -> float (B, channels, H, W), normalised like the saved processor does."""
    x = images_u8.float().div_(255).sub_(MEAN).div_(STD)
    if x.shape[1] == 1 and channels == 3:  # grey -> RGB by repetition, as PIL's convert("RGB") does
        x = x.expand(-1, 3, -1, -1)
    return x


def augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator, erase: float = 0.0) -> torch.Tensor:
    """Per image: random translation by up to ``pad`` pixels (the border filled with black), a
    horizontal flip with probability ½, and with probability ``erase`` a black rectangle of 2–25 %
    of the image (random erasing, Zhong et al. 2020). (B, C, H, W) -> (B, C, H, W)."""
    b, _, h, w = x.shape
    black = -MEAN / STD
    if pad:
        padded = F.pad(x, (pad, pad, pad, pad), value=black)
        rows = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen) + torch.arange(h)   # (B, H)
        cols = torch.randint(0, 2 * pad + 1, (b, 1), generator=gen) + torch.arange(w)   # (B, W)
        x = padded[torch.arange(b)[:, None, None], :, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
        x = x.permute(0, 3, 1, 2)
    if flip:
        mask = torch.rand(b, generator=gen) < 0.5
        x = torch.where(mask[:, None, None, None], x.flip(-1), x)
    if erase:
        area = torch.empty(b).uniform_(0.02, 0.25, generator=gen) * h * w
        aspect = torch.exp(torch.empty(b).uniform_(-1.2, 1.2, generator=gen))
        eh = (area * aspect).sqrt().round().clamp(1, h).long()
        ew = (area / aspect).sqrt().round().clamp(1, w).long()
        top = (torch.rand(b, generator=gen) * (h - eh + 1)).long()
        left = (torch.rand(b, generator=gen) * (w - ew + 1)).long()
        ys, xs = torch.arange(h), torch.arange(w)
        inside = (((ys >= top[:, None]) & (ys < (top + eh)[:, None]))[:, :, None]
                  & ((xs >= left[:, None]) & (xs < (left + ew)[:, None]))[:, None, :])      # (B, H, W)
        inside &= (torch.rand(b, generator=gen) < erase)[:, None, None]
        x = x.masked_fill(inside[:, None], black)
    return x.contiguous()


@torch.no_grad()
def predict(model, images: np.ndarray, batch_size: int = 500) -> dict[str, np.ndarray]:
    """Predicted classes of uint8 images (N, C, H, W): {"logits": (N,), and for a distilled
    model also "cls" and "dist", the classes each head alone predicts}."""
    model.eval()
    channels = model.config.num_channels
    preds: dict[str, list] = {}
    for i in range(0, len(images), batch_size):
        out = model(to_input(torch.from_numpy(images[i:i + batch_size]), channels))
        heads = {"logits": out.logits}
        if out.dist_logits is not None:
            heads.update(cls=out.cls_logits, dist=out.dist_logits)
        for name, logits in heads.items():
            preds.setdefault(name, []).append(logits.argmax(-1).numpy())
    return {name: np.concatenate(p) for name, p in preds.items()}


def evaluate(model, images: np.ndarray, labels: np.ndarray, num_classes: int, batch_size: int = 500):
    """(accuracy, confusion matrix (K, K): rows true class, columns predicted) of model on uint8 images."""
    pred = predict(model, images, batch_size)["logits"]
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels, pred), 1)
    return confusion.trace() / max(1, confusion.sum()), confusion


def lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * progress))


def hard_distillation_loss(out, labels: torch.Tensor, teacher_labels: torch.Tensor | None,
                           smoothing: float) -> torch.Tensor:
    """DeiT's hard-label distillation: ½·CE([CLS] head, true labels) + ½·CE([DIST] head, the teacher's
    top-1). Label smoothing applies to the true labels only, as in DeiT. A model without a
    distillation head (or no teacher) gets plain cross-entropy on ``out.logits``."""
    if out.dist_logits is None or teacher_labels is None:
        return F.cross_entropy(out.logits, labels, label_smoothing=smoothing)
    return (0.5 * F.cross_entropy(out.cls_logits, labels, label_smoothing=smoothing)
            + 0.5 * F.cross_entropy(out.dist_logits, teacher_labels))


def _optimizer(model, s: TrainSettings) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms, tokens and position embeddings."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "pos_embed" not in name else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": s.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=s.lr)


def _progress_bar(steps: int, desc: str, enabled: bool):
    if not enabled:
        return range(steps)
    from tqdm.auto import tqdm
    return tqdm(range(steps), desc=desc, mininterval=2.0)


def train(model: torch.nn.Module, train_x: np.ndarray, train_y: np.ndarray,
          test_x: np.ndarray, test_y: np.ndarray, s: TrainSettings,
          teacher: torch.nn.Module | None = None, log=print) -> TrainResult:
    """Train a ScratchViT, HybridViT or SmallCNN on uint8 images (N, C, H, W) and int labels (N,).

    With a teacher and a distilled ViT, the [DIST] head learns the teacher's top-1 class of each
    augmented image (DeiT hard distillation). The model's initial weights come from its own
    construction: seed torch before building it for a reproducible run (``seeded``).
    """
    if s.threads:
        torch.set_num_threads(s.threads)
    gen = torch.Generator().manual_seed(s.seed)
    pos = getattr(getattr(model, "encoder", None), "pos_embed", None)
    result = TrainResult(model, initial_pos_embed=None if pos is None else pos.detach()[0].numpy().copy())
    if teacher is not None:
        teacher.eval()
    opt = _optimizer(model, s)
    steps_per_epoch = math.ceil(len(train_x) / s.batch_size)
    total, warmup = s.epochs * steps_per_epoch, int(s.warmup_epochs * steps_per_epoch)
    xs, ys = torch.from_numpy(train_x), torch.from_numpy(train_y)
    channels = model.config.num_channels
    start, step = time.perf_counter(), 0
    for epoch in range(s.epochs):
        model.train()
        order = torch.randperm(len(xs), generator=gen)
        seen = correct = 0
        loss_sum = 0.0
        for b in _progress_bar(steps_per_epoch, f"epoch {epoch + 1}/{s.epochs}", s.progress):
            idx = order[b * s.batch_size:(b + 1) * s.batch_size]
            x = augment(to_input(xs[idx], channels), s.crop_padding, s.flip, gen, s.erase)
            y = ys[idx]
            teacher_y = None
            if teacher is not None:
                with torch.no_grad():   # not inference_mode: its tensors cannot be loss targets
                    teacher_y = teacher(x).logits.argmax(-1)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, s.lr)
            out = model(x)
            loss = hard_distillation_loss(out, y, teacher_y, s.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            seen += len(y)
            correct += (out.logits.argmax(-1) == y).sum().item()
            loss_sum += loss.item() * len(y)
        test_acc, _ = evaluate(model, test_x, test_y, model.config.num_classes) if len(test_x) else (float("nan"), None)
        elapsed = time.perf_counter() - start
        result.history.append({"epoch": epoch + 1, "loss": loss_sum / seen, "train_acc": correct / seen,
                               "test_acc": float(test_acc), "seconds": elapsed})
        log(f"epoch {epoch + 1}: loss {loss_sum / seen:.4f}  train acc {correct / seen:.4f}  "
            f"test acc {test_acc:.4f}  ({elapsed:.0f} s)")
    result.seconds = time.perf_counter() - start
    if len(test_x):
        acc, result.confusion = evaluate(model, test_x, test_y, model.config.num_classes)
        result.test_accuracy = float(acc)
    return result


def save(result: TrainResult, out: str | Path, class_names: list[str], settings: TrainSettings, command: str,
         train_images: int = 0) -> Path:
    """Write the model in transformers' format plus the training record used by the model card."""
    from transformers import ViTImageProcessor

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = result.model.config
    hf = to_hf(result.model, {i: n for i, n in enumerate(class_names)})
    hf.save_pretrained(out)
    ViTImageProcessor(do_resize=True, size={"height": cfg.image_size[0], "width": cfg.image_size[1]},
                      resample=2, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
                      image_mean=[MEAN] * cfg.num_channels, image_std=[STD] * cfg.num_channels,
                      ).save_pretrained(out)
    record = {
        "command": command, "train_images": train_images, "settings": settings.__dict__, "config": cfg.to_dict(),
        "test_accuracy": result.test_accuracy, "seconds": result.seconds, "history": result.history,
        "confusion": result.confusion.tolist() if result.confusion is not None else None,
        "class_names": class_names, "torch": torch.__version__, "threads": torch.get_num_threads(),
    }
    (out / "training.json").write_text(json.dumps(record, indent=1))
    np.save(out / "pos_embed_init.npy", result.initial_pos_embed)
    return out


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    from . import data

    p = argparse.ArgumentParser(prog="python -m vitviz.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (transformers format)")
    p.add_argument("--data-dir", default=str(data.FASHION_MNIST_DIR), help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--image-folder", help="train on root/<class>/* images instead of Fashion-MNIST")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--patch-size", type=int, default=4)
    p.add_argument("--hidden-size", type=int, default=96)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mlp-size", type=int, default=192)
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    for f in ("epochs", "batch_size", "lr", "weight_decay", "seed", "threads"):
        default = getattr(TrainSettings, f)
        p.add_argument("--" + f.replace("_", "-"), type=type(default), default=default)
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)

    if a.image_folder:
        root = Path(a.image_folder)
        size = (a.image_size, a.image_size)
        if (root / "train").is_dir() and (root / "test").is_dir():
            train_x, train_y, names = data.load_image_folder(root / "train", size)
            test_x, test_y, _ = data.load_image_folder(root / "test", size)
        else:  # hold out every 10th image for testing
            x, y, names = data.load_image_folder(root, size)
            held = np.arange(len(x)) % 10 == 0
            train_x, train_y, test_x, test_y = x[~held], y[~held], x[held], y[held]
    else:
        train_x, train_y = data.load_idx_split(a.data_dir, "train")
        test_x, test_y = data.load_idx_split(a.data_dir, "t10k")
        names = data.FASHION_MNIST_LABELS
    if a.limit:
        train_x, train_y = train_x[:a.limit], train_y[:a.limit]
    cfg = ScratchConfig(image_size=(a.image_size, a.image_size), patch_size=a.patch_size, num_channels=3,
                        hidden_size=a.hidden_size, num_layers=a.layers, num_heads=a.heads,
                        mlp_size=a.mlp_size, num_classes=len(names))
    settings = TrainSettings(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                             seed=a.seed, threads=a.threads, flip=not a.no_flip, progress=not a.no_progress)
    print(f"training on {len(train_x)} images, testing on {len(test_x)}; {cfg}", flush=True)
    torch.manual_seed(settings.seed)
    result = train(ScratchViT(cfg), train_x, train_y, test_x, test_y, settings)
    command = "python -m vitviz.train " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    out = save(result, a.out, names, settings, command, len(train_x))
    print(f"test accuracy {result.test_accuracy:.4f} after {result.seconds / 60:.1f} min; saved to {out}")
    try:
        from .modelcard import write_model_card
        write_model_card(out)
    except Exception as exc:  # the weights are saved; the card can be rebuilt with python -m vitviz.modelcard
        print(f"model card not written ({exc}); run: python -m vitviz.modelcard {out}")


if __name__ == "__main__":
    main()
