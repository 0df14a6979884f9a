"""Named conventions: the ways one measure or map can be computed, each with the reference it follows.

Evidence agrees with a paper only under the paper's convention, so every choice that changes the
numbers (how SaCo groups pixels, how MPRT randomises the model, which layers LeGrad reads) has a
name and a reference, the reference's convention is the default, and results say which was used
(settings.json's ``conventions``, the evidence table).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Convention:
    name: str          # what results call it: "paper", "quantus", "reference", ...
    reference: str     # the paper, repository and file it follows (or "vitviz ..." for vitviz's own)
    does: str          # one sentence: what it does differently

    def record(self) -> dict[str, str]:
        """What settings.json keeps of it."""
        return asdict(self)


class Conventions(Mapping):
    """The conventions of one measure by name, and its default (the reference's)."""

    def __init__(self, measure: str, conventions: Iterable[Convention], default: str):
        self.measure = measure
        self._by_name = {c.name: c for c in conventions}
        if default not in self._by_name:
            raise ValueError(f"the default {default!r} is not among {measure}'s conventions {tuple(self._by_name)}")
        self.default = default

    def __getitem__(self, name: str) -> Convention:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def named(self, name: str | None = None) -> Convention:
        """The named convention (None: the default); ValueError naming the choices for any other name."""
        name = self.default if name is None else name
        if name not in self._by_name:
            raise ValueError(f"{self.measure} convention must be one of {tuple(self._by_name)}, got {name!r}")
        return self._by_name[name]
