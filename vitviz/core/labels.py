"""Labels a user types for a model that scores typed labels (CLIP, SigLIP): parsed and bounded here,
before any model sees them, and the prompt each is read in.

A label is read in a sentence of its own language: "a photo of a cat", "고양이 사진". Only a model
whose text encoder was trained on many languages reads Korean (SigLIP 2; its ``multilingual_text``
fact): CLIP's and SigLIP's encoders read English, so a label in another script is refused for them
with a plain message rather than scored as noise.
"""

from __future__ import annotations

import re
import unicodedata

from .limits import RequestRefused
from .text import clean

MAX_LABELS = 20
MAX_LABEL_CHARS = 40
# What the example photos show, so the first analysis of an example ranks something sensible; in the
# page's language where the model reads it.
DEFAULTS = {"en": ("cat", "coffee", "rocket", "astronaut", "person", "dog"),
            "ko": ("고양이", "커피", "로켓", "우주 비행사", "사람", "개")}
DEFAULT_LABELS = DEFAULTS["en"]
# The sentence a label is read in, per language ("a photo of a cat", "고양이 사진").
TEMPLATES = {"en": "a photo of a {}", "ko": "{} 사진"}
# the ASCII comma, the full-width and the ideographic one, and line breaks (a pasted list)
_SEPARATORS = re.compile(r"[,，、\n\r\v\f\x85\u2028\u2029]")


def language(label: str) -> str:
    """"ko" for a label with Hangul in it, else "en" (the template it is read in)."""
    return "ko" if any("가" <= ch <= "힣" or "ᄀ" <= ch <= "ᇿ" or "ㄱ" <= ch <= "ㆎ" for ch in label) else "en"


def prompt(label: str) -> str:
    """'cat' -> 'a photo of a cat', '고양이' -> '고양이 사진'."""
    return TEMPLATES[language(label)].format(label)


def english(label: str) -> bool:
    """Whether every letter of label is a Latin one (what an English-only text encoder reads)."""
    return all(not ch.isalpha() or unicodedata.name(ch, "").startswith("LATIN") for ch in label)


def defaults(lang: str, multilingual: bool) -> tuple[str, ...]:
    """The labels scored when none are typed: in the page's language where the model reads it."""
    return DEFAULTS[lang] if multilingual and lang in DEFAULTS else DEFAULTS["en"]


def parse_labels(text: str | None, lang: str = "en", multilingual: bool = True) -> tuple[str, ...]:
    """'cat, dog,  고양이' -> ('cat', 'dog', '고양이'): split at commas and line breaks, each cleaned as a
    nickname is (vitviz.core.text.clean: control and format characters such as NUL, ESC or U+202E
    dropped, whitespace runs as one space), empties and repeats dropped; nothing typed -> the
    defaults for the page's language `lang`. RequestRefused past MAX_LABELS labels or MAX_LABEL_CHARS
    characters in one label (checked before any splitting of a huge text), and for a label not in
    Latin letters when the model reads English only (not `multilingual`)."""
    text = "" if text is None else str(text)
    if len(text) > MAX_LABELS * (MAX_LABEL_CHARS + 2):
        raise RequestRefused("err_labels_many", limit=MAX_LABELS)
    labels = tuple(dict.fromkeys(c for c in map(clean, _SEPARATORS.split(text)) if c))
    if not labels:
        return defaults(lang, multilingual)
    if len(labels) > MAX_LABELS:
        raise RequestRefused("err_labels_many", limit=MAX_LABELS)
    long = [s for s in labels if len(s) > MAX_LABEL_CHARS]
    if long:
        raise RequestRefused("err_labels_long", label=long[0][:MAX_LABEL_CHARS] + "…", limit=MAX_LABEL_CHARS)
    foreign = [s for s in labels if not multilingual and not english(s)]
    if foreign:
        raise RequestRefused("err_labels_english", label=foreign[0])
    return labels
