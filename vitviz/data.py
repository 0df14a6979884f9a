"""Training data: IDX files (MNIST / Fashion-MNIST) and folders of class subfolders.

Everything is loaded into memory as uint8 tensors: images (N, C, H, W), labels (N,).
Small data sets only, which is what a 2-core machine trains on.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FASHION_MNIST_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT")
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed or plain (detected from its magic bytes)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (expected magic 00 00 TT NN, got {raw[:4].hex()})")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX type code 0x{type_code:02x}")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=_IDX_DTYPES[type_code], offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} ({int(np.prod(shape))} values), file holds {data.size}")
    return data.reshape(shape).astype(np.dtype(_IDX_DTYPES[type_code]).newbyteorder("="))


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).exists():
            return directory / name
    raise FileNotFoundError(
        f"{stem}(.gz) not found in {directory}; install Debian's dataset-fashion-mnist or pass --data-dir")


def load_idx_split(directory: str | Path, split: str):
    """(images uint8 (N, 1, 28, 28), labels int64 (N,)) of the 'train' or 't10k' split."""
    directory = Path(directory)
    images = read_idx(_find(directory, f"{split}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{split}-labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise ValueError(f"{directory}: {len(images)} images but {len(labels)} labels")
    return images[:, None], labels.astype(np.int64)


def load_image_folder(root: str | Path, size: tuple[int, int], channels: int = 3):
    """Images under root/<class>/*.{png,jpg,...} -> (uint8 (N, C, H, W), int64 (N,), class names)."""
    from PIL import Image

    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{root}: expected one subfolder per class, found none")
    mode = "RGB" if channels == 3 else "L"
    images, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.suffix.lower() not in {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"}:
                continue
            img = Image.open(f).convert(mode).resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
            images.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise ValueError(f"{root}: no images found in the class subfolders")
    return np.stack(images), np.array(labels, dtype=np.int64), classes


# ---------------------------------------------------------------- samples for the evaluation

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


class Samples:
    """Labelled images read one at a time (ImageNet's validation set does not fit in memory).

    ``sample(i)`` -> (RGB PIL image, label index, mask or None): the mask (H, W) bool marks the
    object where the data set says where it is (Fashion-MNIST: the non-black pixels)."""

    name = "samples"

    def __len__(self) -> int:
        raise NotImplementedError

    def sample(self, i: int):
        raise NotImplementedError


class FashionMNISTSamples(Samples):
    name = "Fashion-MNIST"

    def __init__(self, directory: str | Path = FASHION_MNIST_DIR, split: str = "t10k"):
        images, self.labels = load_idx_split(directory, split)
        self.images = images[:, 0]                         # (N, 28, 28) uint8

    def __len__(self) -> int:
        return len(self.labels)

    def sample(self, i: int):
        from PIL import Image

        raw = self.images[i]
        return Image.fromarray(raw).convert("RGB"), int(self.labels[i]), raw > 0


class FileSamples(Samples):
    """Image files with their label indices."""

    def __init__(self, files: list[Path], labels: list[int], name: str):
        if len(files) != len(labels):
            raise ValueError(f"{len(files)} images but {len(labels)} labels")
        if not files:
            raise ValueError(f"{name}: no images found")
        self.files, self.labels, self.name = files, labels, name

    def __len__(self) -> int:
        return len(self.files)

    def sample(self, i: int):
        from .core.preprocess import open_image

        return open_image(self.files[i]), int(self.labels[i]), None


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def class_folder_samples(root: str | Path, label_of: dict[str, int] | None = None) -> FileSamples:
    """root/<class>/* images. Classes map to the model's labels by name where ``label_of`` (the
    model's label2id) knows them, else to their sorted order (a model trained on this folder)."""
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{root}: expected one subfolder per class, found none")
    known = {k.lower(): v for k, v in (label_of or {}).items()}
    index = {c: known[c.lower()] if c.lower() in known else i for i, c in enumerate(classes)}
    files, labels = [], []
    for c in classes:
        for f in image_files(root / c):
            files.append(f)
            labels.append(index[c])
    return FileSamples(files, labels, f"{root.name} (class folders)")


def imagenet_val_samples(folder: str | Path, labels_file: str | Path) -> FileSamples:
    """ImageNet validation layout: every image in one folder, and a labels file with one line per
    image, either "index" (in the images' sorted file-name order) or "file-name index". Indices
    are the model's own class indices (its id2label order)."""
    folder = Path(folder)
    files = image_files(folder)
    lines = [line.split() for line in Path(labels_file).read_text().splitlines() if line.strip()]
    if lines and len(lines[0]) == 2:
        by_name = {name: int(label) for name, label in lines}
        missing = [f.name for f in files if f.name not in by_name]
        if missing:
            raise ValueError(f"{labels_file}: no label for {len(missing)} images (first: {missing[0]})")
        labels = [by_name[f.name] for f in files]
    else:
        labels = [int(line[0]) for line in lines]
    return FileSamples(files, labels, f"{folder.name} (ImageNet validation layout)")
