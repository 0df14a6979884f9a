"""Short text a user types (nicknames, typed labels): cleaned one way, and compared by how it looks.

``clean`` is what is kept and shown: NFC, whitespace runs as one space, control and format
characters dropped (NUL, ESC, bidirectional overrides such as U+202E, zero-width joiners), so
nothing typed can reorder or hide what the page shows next to it.

``look`` gives the keys two texts are compared by when one must not pass for another (a nickname on
the class board): Unicode's skeletons (UTS #39: each character replaced by the prototype of its
look-alikes, Cyrillic "а" by Latin "a", "1" and "I" by "l", "m" by "rn") of the NFKC form (full-width
and other compatibility forms as their plain letters), as typed and case-folded. Two texts look
alike when they share a key. The look-alike table comes from the ``confusable_homoglyphs``
package (Unicode's confusables.txt as JSON, each pair listed both ways; which side is the prototype
is read back from it: a prototype is listed with all its look-alikes, a look-alike with its
prototype only).
"""

from __future__ import annotations

import functools
import unicodedata

_BIDI_MARKS = "\u200e\u200f"       # the data wraps right-to-left characters in these


def clean(text) -> str:
    """'  민수\\n\\t 2학년\\u200b\\u202e ' -> '민수 2학년'. Anything not a str counts as empty."""
    text = unicodedata.normalize("NFC", text if isinstance(text, str) else "")
    kept = (" " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch)[0] != "C")
    return " ".join("".join(kept).split())


def look(text) -> frozenset[str]:
    """The skeletons a text is known by: of its NFKC form as typed, case-folded, and case-folded after
    the look-alikes are replaced ('T0m' -> 'TOrn' -> 'torn', as 'Tom' gives). 'Kim', 'KIM', 'ｋｉｍ'
    and 'Кіm' (Cyrillic К, і) share one."""
    plain = unicodedata.normalize("NFKC", clean(text))
    return frozenset((skeleton(plain), skeleton(plain.casefold()), skeleton(skeleton(plain).casefold())))


def alike(a, b) -> bool:
    """Whether two texts would pass for each other: they share a skeleton (see ``look``)."""
    return not look(a).isdisjoint(look(b))


def skeleton(text: str) -> str:
    """UTS #39's skeleton: NFD, each character by its prototype, NFD again."""
    prototypes = _prototypes()
    mapped = "".join(prototypes.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


@functools.cache
def _prototypes() -> dict[str, str]:
    """Character -> the prototype of its look-alikes (only characters that are not prototypes)."""
    from confusable_homoglyphs import confusables

    table = {k.strip(_BIDI_MARKS): [a["c"].strip(_BIDI_MARKS) for a in alikes]
             for k, alikes in confusables.confusables_data.items()}
    out = {}
    for ch, alikes in table.items():
        if len(ch) != 1 or len(alikes) != 1:        # a prototype (it has several look-alikes, or is a string)
            continue
        proto = alikes[0]
        if len(proto) == 1 and len(table.get(proto, ())) == 1:
            proto = min(ch, proto)                  # a pair listed only with each other: either is the prototype
        if proto != ch:
            out[ch] = proto
    return out
