"""Class names in the reader's language: "이집트 고양이 (Egyptian cat)" for Korean, the model's own label for English.

A model is recognised by its labels, never by its name: any checkpoint whose config carries the standard
ImageNet-1k English labels (google/vit-base-patch16-224, DeiT, BEiT, ConvNeXt, ... share one list) or the
Fashion-MNIST garments, in the standard index order, gets the Korean names. A model with its own classes
keeps them unchanged: a wrong translation would be worse than none.

The names live in assets/labels/<set>-ko.tsv, one row per class: ``index<TAB>english<TAB>korean`` under a
header; the English column is what recognition compares against.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

from .paths import LABELS_DIR

FILES = {"imagenet-1k": "imagenet1k-ko.tsv", "fashion-mnist": "fashion-mnist-ko.tsv"}   # label set -> file


@lru_cache(maxsize=None)
def table(name: str) -> tuple[tuple[str, str], ...]:
    """((english, korean), ...) by class index for a known label set, read from its file once per process."""
    if name not in FILES:
        raise ValueError(f"expected a label set among {sorted(FILES)}, got {name!r}")
    rows = []
    with open(LABELS_DIR / FILES[name], encoding="utf-8") as f:
        next(f)                                    # header: index, english, korean
        for line in f:
            index, english, korean = line.rstrip("\n").split("\t")
            if int(index) != len(rows):            # a dropped or doubled row would shift every name after it
                raise ValueError(f"{FILES[name]}: expected index {len(rows)}, got {index}")
            rows.append((english, korean))
    return tuple(rows)


def _key(label: str) -> str:
    # Exports differ in case, underscores and spacing ("great_white_shark"), not in which class is which
    return re.sub(r"\s+", " ", label.replace("_", " ")).strip().casefold()


@lru_cache(maxsize=None)
def _keys(name: str) -> tuple[frozenset[str], ...]:
    """Per class index, the spellings that count as that class: the full label and its first synonym."""
    return tuple(frozenset({_key(english), _key(english.split(",")[0])}) for english, _ in table(name))


def _in_order(id2label: Mapping) -> list[str] | None:
    """Labels for indices 0..K-1, or None unless the keys are exactly those (as ints or, from JSON, strings)."""
    try:
        by_index = {int(k): str(v) for k, v in id2label.items()}
    except (TypeError, ValueError):
        return None
    if sorted(by_index) != list(range(len(by_index))):
        return None
    return [by_index[i] for i in range(len(by_index))]


def label_set(id2label: Mapping[int, str]) -> str | None:
    """The label set a model's K classes are, index by index: "imagenet-1k", "fashion-mnist" or None.

    id2label: {class index: English label}, as in a transformers config (int or str keys).
    """
    labels = _in_order(id2label)
    if not labels:
        return None
    for name in FILES:
        keys = _keys(name)
        if len(keys) == len(labels) and all(_key(label) in k for label, k in zip(labels, keys)):
            return name
    return None


def localized(id2label: Mapping[int, str], lang: str) -> dict[int, str]:
    """{class index: name to show}: "한국어 (English label)" for lang "ko" and a recognised label set;
    the model's labels unchanged otherwise (English, or classes we have no names for).

    id2label: {class index: label} (int or str keys); lang: "en" or "ko". Keys come back as ints.
    """
    labels = _in_order(id2label)
    if labels is None:                             # keys that are not 0..K-1: nothing to align with
        return dict(id2label)
    name = label_set(id2label) if lang == "ko" else None
    if name is None:
        return dict(enumerate(labels))
    return {i: f"{korean} ({label})" for i, (label, (_, korean)) in enumerate(zip(labels, table(name)))}
