"""Train the from-scratch ViT, DeiT-style, and save it in transformers' format.

    python -m vitviz.train --out assets/models/deit-tiny-fashion-mnist       # Fashion-MNIST (Debian package)
    python -m vitviz.train --no-distill --out OUT                           # a plain ViT, no teacher
    python -m vitviz.train --image-folder DIR --image-size 64 --out OUT     # any folder of class subfolders

By default a small CNN (vitviz.cnn) is trained first and becomes the teacher: the ViT gets a
[DIST] token whose head learns the teacher's top-1 class of every augmented image, while [CLS]
learns the true labels (DeiT's hard-label distillation); the prediction averages both heads.
AdamW + cross-entropy (label smoothing on the true labels), linear warm-up then cosine decay,
random translation and flips, a fixed seed. The saved folder holds config.json (with id2label
and DeiTForImageClassificationWithTeacher as its architecture), model.safetensors and
preprocessor_config.json, so vitviz loads it through the same path as a Hub model.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .cnn import CNNConfig, SmallCNN
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
    eval_every: int = 1            # test accuracy every this many epochs (and after the last; 0: only at the end)
    compile: bool = False          # torch.compile the training forward (fuses the small ops between matmuls)
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


@dataclass
class _Run:
    """The state one training run carries from step to step."""
    model: torch.nn.Module
    forward: torch.nn.Module                   # the model, or its compiled version
    teacher: torch.nn.Module | None
    opt: torch.optim.Optimizer
    gen: torch.Generator
    s: TrainSettings
    total_steps: int
    warmup_steps: int
    step: int = 0


def _train_epoch(run: _Run, xs: torch.Tensor, ys: torch.Tensor, desc: str) -> dict:
    """One pass over the data in a random order: {"loss", "train_acc"} on the augmented images."""
    model, s = run.model, run.s
    model.train()
    order = torch.randperm(len(xs), generator=run.gen)
    seen = correct = 0
    loss_sum = 0.0
    for b in _progress_bar(math.ceil(len(xs) / s.batch_size), desc, s.progress):
        idx = order[b * s.batch_size:(b + 1) * s.batch_size]
        x = augment(to_input(xs[idx], model.config.num_channels), s.crop_padding, s.flip, run.gen, s.erase)
        y = ys[idx]
        teacher_y = None
        if run.teacher is not None:
            with torch.no_grad():   # not inference_mode: its tensors cannot be loss targets
                teacher_y = run.teacher(x).logits.argmax(-1)
        for group in run.opt.param_groups:
            group["lr"] = lr_at(run.step, run.total_steps, run.warmup_steps, s.lr)
        out = run.forward(x)
        loss = hard_distillation_loss(out, y, teacher_y, s.label_smoothing)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        run.opt.step()
        run.step += 1
        seen += len(y)
        correct += (out.logits.argmax(-1) == y).sum().item()
        loss_sum += loss.item() * len(y)
    return {"loss": loss_sum / seen, "train_acc": correct / seen}


def train(model: torch.nn.Module, train_x: np.ndarray, train_y: np.ndarray,
          test_x: np.ndarray, test_y: np.ndarray, s: TrainSettings,
          teacher: torch.nn.Module | None = None, log=print) -> TrainResult:
    """Train a ScratchViT, HybridViT or SmallCNN on uint8 images (N, C, H, W) and int labels (N,).

    With a teacher and a distilled ViT, the [DIST] head learns the teacher's top-1 class of each
    augmented image (DeiT hard distillation). The model's initial weights come from its own
    construction: seed torch before building it for a reproducible run.
    """
    if s.threads:
        torch.set_num_threads(s.threads)
    pos = getattr(getattr(model, "encoder", None), "pos_embed", None)
    result = TrainResult(model, initial_pos_embed=None if pos is None else pos.detach()[0].numpy().copy())
    if teacher is not None:
        teacher.eval()
    steps_per_epoch = math.ceil(len(train_x) / s.batch_size)
    compiled = torch.compile(model) if s.compile else model    # evaluation stays eager: no recompiling
    run = _Run(model, compiled, teacher, _optimizer(model, s), torch.Generator().manual_seed(s.seed), s,
               s.epochs * steps_per_epoch, int(s.warmup_epochs * steps_per_epoch))
    xs, ys = torch.from_numpy(train_x), torch.from_numpy(train_y)
    n_classes = model.config.num_classes
    start = time.perf_counter()
    for epoch in range(1, s.epochs + 1):
        record = {"epoch": epoch, **_train_epoch(run, xs, ys, f"epoch {epoch}/{s.epochs}")}
        if len(test_x) and s.eval_every and (epoch % s.eval_every == 0 or epoch == s.epochs):
            record["test_acc"] = float(evaluate(model, test_x, test_y, n_classes)[0])
        record["seconds"] = time.perf_counter() - start
        result.history.append(record)
        log(f"epoch {epoch}: loss {record['loss']:.4f}  train acc {record['train_acc']:.4f}  "
            f"test acc {record.get('test_acc', float('nan')):.4f}  ({record['seconds']:.0f} s)")
    result.seconds = time.perf_counter() - start
    if len(test_x):
        acc, result.confusion = evaluate(model, test_x, test_y, n_classes)
        result.test_accuracy = float(acc)
    return result


def head_accuracies(model, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Test accuracy of the prediction and, for a distilled model, of each head alone."""
    return {name: float((pred == labels).mean()) for name, pred in predict(model, images).items()}


def run_record(result: TrainResult, settings: TrainSettings) -> dict:
    """What the model card reports of one trained model."""
    cfg = result.model.config
    return {"config": cfg.to_dict(), "settings": asdict(settings), "test_accuracy": result.test_accuracy,
            "seconds": result.seconds, "history": result.history,
            "parameters": sum(p.numel() for p in result.model.parameters()),
            "confusion": result.confusion.tolist() if result.confusion is not None else None}


def save(result: TrainResult, out: str | Path, class_names: list[str], settings: TrainSettings, command: str,
         train_images: int = 0, extra: dict | None = None) -> Path:
    """Write the model in transformers' format plus the training record used by the model card.
    extra: more of the record (the teacher's run, each head's accuracy, the total time)."""
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
    record = {"command": command, "train_images": train_images, **run_record(result, settings),
              "class_names": class_names, "torch": torch.__version__, "threads": torch.get_num_threads(),
              "machine": machine(), **(extra or {})}
    (out / "training.json").write_text(json.dumps(record, indent=1))
    np.save(out / "pos_embed_init.npy", result.initial_pos_embed)
    return out


def machine() -> str:
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs"


def load_data(a) -> tuple:
    """(train_x, train_y, test_x, test_y, class names) from Fashion-MNIST or a folder of class folders."""
    from . import data

    if not a.image_folder:
        train_x, train_y = data.load_idx_split(a.data_dir, "train")
        test_x, test_y = data.load_idx_split(a.data_dir, "t10k")
        names = data.FASHION_MNIST_LABELS
    else:
        root, size = Path(a.image_folder), (a.image_size, a.image_size)
        if (root / "train").is_dir() and (root / "test").is_dir():
            train_x, train_y, names = data.load_image_folder(root / "train", size)
            test_x, test_y, _ = data.load_image_folder(root / "test", size)
        else:  # hold out every 10th image for testing
            x, y, names = data.load_image_folder(root, size)
            held = np.arange(len(x)) % 10 == 0
            train_x, train_y, test_x, test_y = x[~held], y[~held], x[held], y[held]
    if a.limit:
        train_x, train_y = train_x[:a.limit], train_y[:a.limit]
    return train_x, train_y, test_x, test_y, names


def parser() -> argparse.ArgumentParser:
    from . import data

    p = argparse.ArgumentParser(prog="python -m vitviz.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (transformers format)")
    p.add_argument("--data-dir", default=str(data.FASHION_MNIST_DIR), help="folder with the Fashion-MNIST IDX files")
    p.add_argument("--image-folder", help="train on root/<class>/* images instead of Fashion-MNIST")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (0: all)")
    p.add_argument("--patch-size", type=int, default=4)
    p.add_argument("--hidden-size", type=int, default=96)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mlp-size", type=int, default=192)
    for f in ("epochs", "batch_size", "lr", "weight_decay", "erase", "eval_every", "seed", "threads"):
        default = getattr(TrainSettings, f)
        p.add_argument("--" + f.replace("_", "-"), type=type(default), default=default)
    p.add_argument("--distill", action=argparse.BooleanOptionalAction, default=True,
                   help="train a CNN teacher first and distil from it through a [DIST] token (DeiT)")
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--teacher-widths", type=int, nargs="+", default=[32, 64, 128])
    p.add_argument("--teacher-lr", type=float, default=3e-3)
    p.add_argument("--student-translate", type=int, default=2,
                   help="the ViT's random translation in pixels, 0 for none (the teacher always gets 2)")
    p.add_argument("--compile", action="store_true", help="torch.compile the student's training forward")
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p


def train_teacher(a, train_x, train_y, test_x, test_y, n_classes: int) -> tuple[torch.nn.Module, dict]:
    """The CNN teacher: trained first, on the same data and augmentation, then frozen."""
    settings = TrainSettings(epochs=a.teacher_epochs, batch_size=a.batch_size, lr=a.teacher_lr,
                             weight_decay=a.weight_decay, seed=a.seed, threads=a.threads, flip=not a.no_flip,
                             progress=not a.no_progress)
    torch.manual_seed(a.seed)
    teacher = SmallCNN(CNNConfig(image_size=(a.image_size, a.image_size), widths=tuple(a.teacher_widths),
                                 num_classes=n_classes))
    print(f"teacher: {teacher.config}", flush=True)
    result = train(teacher, train_x, train_y, test_x, test_y, settings, log=lambda m: print("teacher", m, flush=True))
    teacher.requires_grad_(False)
    return teacher.eval(), run_record(result, settings)


def main(argv: list[str] | None = None) -> None:
    import shlex
    import sys

    a = parser().parse_args(argv)
    started = time.perf_counter()
    train_x, train_y, test_x, test_y, names = load_data(a)
    teacher, extra = None, {}
    if a.distill:
        teacher, extra["teacher"] = train_teacher(a, train_x, train_y, test_x, test_y, len(names))
    cfg = ScratchConfig(image_size=(a.image_size, a.image_size), patch_size=a.patch_size, num_channels=3,
                        hidden_size=a.hidden_size, num_layers=a.layers, num_heads=a.heads,
                        mlp_size=a.mlp_size, num_classes=len(names), distilled=a.distill)
    settings = TrainSettings(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                             erase=a.erase, eval_every=a.eval_every, seed=a.seed, threads=a.threads,
                             crop_padding=a.student_translate, flip=not a.no_flip, progress=not a.no_progress,
                             compile=a.compile)
    print(f"training on {len(train_x)} images, testing on {len(test_x)}; {cfg}", flush=True)
    torch.manual_seed(settings.seed)
    result = train(ScratchViT(cfg), train_x, train_y, test_x, test_y, settings, teacher=teacher,
                   log=lambda m: print(m, flush=True))
    if len(test_x):
        extra["heads"] = head_accuracies(result.model, test_x, test_y)
    extra["total_seconds"] = time.perf_counter() - started
    command = "python -m vitviz.train " + " ".join(shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    out = save(result, a.out, names, settings, command, len(train_x), extra)
    print(f"test accuracy {result.test_accuracy:.4f}; {extra['total_seconds'] / 60:.1f} min in all; saved to {out}")
    try:
        from .modelcard import write_model_card
        write_model_card(out)
    except Exception as exc:  # the weights are saved; the card can be rebuilt with python -m vitviz.modelcard
        print(f"model card not written ({exc}); run: python -m vitviz.modelcard {out}")


if __name__ == "__main__":
    main()
