"""Explanation methods: each registered once, with what it needs and how it is computed.

Every list of methods (the class view's choices, the evidence table's rows, the CLI's ``--methods``,
the evaluation, tools for assistants) reads this registry, so a new method is one module that calls
``register`` (like timm's ``register_model``) plus its two names in vitviz.core.i18n (``map_<id>``,
short, for tables; ``method_<id>``, for the class view's choices). A method registered from outside
the library (a notebook, a test) may bring its names along (``strings``).

What a method needs decides what its ``compute`` is handed:

- ATTENTIONS: computed from the analysis alone, no model run. ``compute(an, seed) -> (gh, gw)``
  (``seed``: the random map's; the evaluation passes each image's index).
- BACKWARD: needs ∂y_c/∂A, the gradients of class c's score with respect to every attention, from
  one forward and backward shared by every such method. ``compute(g: Gradients) -> (gh, gw)``.
- GRAPH: runs its own backward passes on a forward that kept its graph and hidden states (LeGrad:
  one per layer). ``compute(loaded, out, an, target) -> (gh, gw)``.

BACKWARD and GRAPH methods explain a class, so they need a classifier (or typed labels).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

from ..core import i18n
from ..core.conventions import Convention

ATTENTIONS = "attentions"
BACKWARD = "backward"
GRAPH = "graph"
NEEDS = (ATTENTIONS, BACKWARD, GRAPH)


@dataclass(frozen=True)
class Method:
    id: str                      # the name in code, URLs, records and the command line: [a-z0-9_]+
    needs: str                   # ATTENTIONS, BACKWARD or GRAPH (the module's doc)
    compute: Callable            # its signature follows `needs`
    order: float = 50.0          # where it is listed (random, the control, comes last)
    convention: Convention | None = None   # the paper and code it follows, named (results record it)
    strings: dict[str, dict[str, str]] | None = None   # {lang: {key: text}} for a method outside the library

    def __post_init__(self):
        if not self.id or not all(c.islower() or c.isdigit() or c == "_" for c in self.id):
            raise ValueError(f"a method's id is lower-case letters, digits and _, got {self.id!r}")
        if self.needs not in NEEDS:
            raise ValueError(f"needs must be one of {NEEDS}, got {self.needs!r}")

    @property
    def class_specific(self) -> bool:
        """It explains one class (a backward pass), so it needs a model that scores classes."""
        return self.needs != ATTENTIONS

    def name(self, lang: str = "en") -> str:
        """Its short name, for tables and figures."""
        return i18n.t(f"map_{self.id}", lang)

    def label(self, lang: str = "en") -> str:
        """Its name with its reference, for a list to choose from: in `lang` where it has one, else its
        short name in `lang`, else the English label."""
        for key, in_lang in ((f"method_{self.id}", lang), (f"map_{self.id}", lang), (f"method_{self.id}", "en")):
            if i18n.has(key, in_lang):
                return i18n.t(key, lang)
        return self.name(lang)


_METHODS: dict[str, Method] = {}
_LOCK = threading.Lock()


def register(method: Method) -> Method:
    """Add a method under its id, with its names (ValueError when another method has the id, or its
    names lack English or clash with the library's). Registering the same method again changes nothing."""
    with _LOCK:
        if method.id in _METHODS:
            if _METHODS[method.id] is not method:
                raise ValueError(f"a method {method.id!r} is registered already")
            return method
        if method.strings:
            i18n.add(method.strings)
        _METHODS[method.id] = method
    return method


def unregister(method_id: str) -> None:
    with _LOCK:
        method = _METHODS.pop(method_id, None)
    if method is not None and method.strings:
        i18n.remove(method.strings)


@contextmanager
def registered(method: Method):
    """The method registered for the block (a test's or a notebook's own method)."""
    register(method)
    try:
        yield method
    finally:
        unregister(method.id)


def get(method_id: str) -> Method:
    with _LOCK:
        if method_id not in _METHODS:
            raise ValueError(f"method must be one of {ids()}, got {method_id!r}")
        return _METHODS[method_id]


def all_methods() -> list[Method]:
    """Every method, in listing order."""
    with _LOCK:
        return sorted(_METHODS.values(), key=lambda m: (m.order, m.id))


def ids() -> tuple[str, ...]:
    return tuple(m.id for m in all_methods())


def class_specific() -> tuple[str, ...]:
    """The methods that explain one class, in listing order."""
    return tuple(m.id for m in all_methods() if m.class_specific)


def offered(loaded) -> tuple[str, ...]:
    """The methods a model can be explained with: class-specific ones only where it scores classes."""
    return tuple(m.id for m in all_methods() if loaded.has_classifier or not m.class_specific)


def check(method_ids) -> tuple[str, ...]:
    """The ids as a tuple; ValueError naming the unknown ones."""
    method_ids = tuple(method_ids)
    unknown = [m for m in method_ids if m not in ids()]
    if unknown:
        raise ValueError(f"methods must be among {ids()}, got {unknown}")
    return method_ids


def passes(method_ids) -> list[tuple[str, ...]]:
    """The class-specific methods among `method_ids` grouped by the backward pass they share: every
    BACKWARD method in one group, each GRAPH method alone (so showing one does not pay for another)."""
    chosen = [get(m) for m in method_ids if get(m).class_specific]
    shared = tuple(m.id for m in chosen if m.needs == BACKWARD)
    return ([shared] if shared else []) + [(m.id,) for m in chosen if m.needs == GRAPH]
