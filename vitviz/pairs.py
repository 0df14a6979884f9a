"""Models offered in pairs that differ in one thing, so a view can show that thing side by side.

DINOv2 with and without registers (Darcet et al., ICLR 2024): the same training, four extra tokens.
Learn · Token norms shows both on the same photo when the selector offers both.
"""

from __future__ import annotations

REGISTER_PAIRS = {
    "facebook/dinov2-small": "facebook/dinov2-with-registers-small",
    "facebook/dinov2-base": "facebook/dinov2-with-registers-base",
}
_BOTH_WAYS = {**REGISTER_PAIRS, **{b: a for a, b in REGISTER_PAIRS.items()}}


def register_partner(name: str, offered) -> str | None:
    """The same model with registers (or without them) when it is offered too, else None."""
    partner = _BOTH_WAYS.get(name)
    return partner if partner in tuple(offered) else None
