"""The class board of "Guess where it looks": anonymous nicknames and scores per photo.

Only on a classroom server (``python app.py --classroom`` or VITVIZ_CLASSROOM=1, public mode
included: the app's context holds a Board only then). It lives in this process's memory and nowhere
else, so a restart clears it, and it is bounded three ways: entries per photo, photos (the oldest
photo's board goes first) and entries in all. Nicknames are cleaned (control and format characters
dropped, at most NICK_MAX characters) and escaped when shown, so no markup, link or table syntax a
student types reaches the page.

A nickname belongs to the browser session that first put it on a photo's board: that session's next
score replaces its old one, another session is told the nickname is taken. Nicknames that differ only
by case, width or look-alike characters ("Kim", "KIM", "Кіm") count as one (vitviz.core.text.look).
"""

from __future__ import annotations

import html
import string
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from ..core import text as typed_text

NICK_MAX = 20            # characters in a nickname
PER_PHOTO = 40           # entries on one photo's board: a class
PHOTOS = 30              # photos with a board; a new one pushes out the oldest
TOTAL = 600              # entries on all boards together
class BoardRefused(ValueError):
    """An entry the board does not take; ``key`` names the user's message, ``fields`` fill it."""

    def __init__(self, key: str, **fields):
        super().__init__(key)
        self.key = key
        self.fields = fields


@dataclass(frozen=True)
class Entry:
    nickname: str                            # cleaned, not escaped
    scores: tuple[tuple[float, bool], ...]   # (share of the map's mass inside, peak inside) per map
    owner: str = ""                          # the browser session that put the nickname on this board
    looks: frozenset[str] = field(default=frozenset(), compare=False)   # text.look(nickname)

    def __post_init__(self):
        if not self.looks:
            object.__setattr__(self, "looks", typed_text.look(self.nickname))


def clean_nickname(text) -> str:
    """The nickname as shown: NFC, whitespace runs as one space, control and format characters
    (bidirectional overrides, zero-width joiners) dropped. BoardRefused when empty or too long."""
    text = text if isinstance(text, str) else ""
    if len(text) > 8 * NICK_MAX:               # refuse a flood before any work on it
        raise BoardRefused("board_nick_long", limit=NICK_MAX)
    text = typed_text.clean(text)
    if not text:
        raise BoardRefused("board_nick_empty")
    if len(text) > NICK_MAX:
        raise BoardRefused("board_nick_long", limit=NICK_MAX)
    return text


def escape(text: str) -> str:
    """Text that Markdown and HTML show as typed: HTML's special characters as entities and every
    other ASCII punctuation mark backslash-escaped (no emphasis, links, autolinks, table cells)."""
    out = []
    for ch in text:
        if ch in "&<>\"'":
            out.append(html.escape(ch, quote=True))
        elif ch in string.punctuation:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


class Board:
    """Photo key -> nickname -> Entry, within the bounds; safe to share between request threads."""

    def __init__(self, per_photo: int = PER_PHOTO, photos: int = PHOTOS, total: int = TOTAL):
        if min(per_photo, photos, total) < 1:
            raise ValueError(f"expected bounds of at least 1, got {per_photo}, {photos}, {total}")
        self.per_photo, self.photos, self.total = per_photo, photos, total
        self._boards: OrderedDict[str, OrderedDict[str, Entry]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, photo: str, nickname, scores, owner: str) -> Entry:
        """Put owner's score on a photo's board under nickname: it replaces the owner's old score there.
        BoardRefused for a bad nickname, a nickname another owner holds there, or a full board."""
        entry = Entry(clean_nickname(nickname), tuple((float(m), bool(p)) for m, p in scores), str(owner))
        with self._lock:
            board = self._boards.get(photo)
            held = [e for e in (board or {}).values() if not e.looks.isdisjoint(entry.looks)]
            if any(e.owner != entry.owner for e in held):
                raise BoardRefused("board_nick_taken")
            for e in held:
                del board[e.nickname]                     # the owner's old score (maybe typed "KIM" then)
            fresh = not held
            if board is not None and fresh and len(board) >= self.per_photo:
                raise BoardRefused("board_full", limit=self.per_photo)
            if board is None:
                board = self._boards[photo] = OrderedDict()
            self._boards.move_to_end(photo)
            while len(self._boards) > self.photos or (fresh and self._count() >= self.total and len(self._boards) > 1):
                self._boards.popitem(last=False)           # the photo written to longest ago goes
            if fresh and self._count() >= self.total:
                if not board:
                    del self._boards[photo]
                raise BoardRefused("board_full", limit=self.total)
            board[entry.nickname] = entry
        return entry

    def entries(self, photo: str) -> list[Entry]:
        """A photo's entries, best first (mean share of the mass inside; ties by nickname)."""
        with self._lock:
            rows = list(self._boards.get(photo, {}).values())
        return sorted(rows, key=lambda e: (-sum(m for m, _ in e.scores) / max(len(e.scores), 1), e.nickname))

    def _count(self) -> int:
        return sum(len(b) for b in self._boards.values())

    def __len__(self) -> int:
        with self._lock:
            return self._count()

    def clear(self) -> None:
        with self._lock:
            self._boards.clear()


def table(entries: list[Entry], headers: list[str]) -> str:
    """A Markdown table: nickname then, per map, the share inside and ✓ where the peak was found.
    headers: the nickname column's and each map's (already in the page's language)."""
    rows = ["| " + " | ".join(escape(h) for h in headers) + " |", "|---" + "|---:" * (len(headers) - 1) + "|"]
    for e in entries:
        cells = [f"{100 * m:.0f}%{' ✓' if p else ''}" for m, p in e.scores]
        rows.append("| " + " | ".join([escape(e.nickname), *cells]) + " |")
    return "\n".join(rows)
