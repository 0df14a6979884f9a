"""Per-sample results that survive a killed run.

Each process appends one JSON line per finished sample to its own file under the output folder
(``part-<rank>-of-<world>.jsonl``) and forces it to disk. Starting again reads every part file,
whatever number of processes wrote it, and trusts a line only if it is complete: it ends with a
newline, parses, and carries the checksum of its own content. A line cut by a kill is dropped
(and cut off its file before that file is appended to again), so its sample is computed again.

The settings a run was started with are kept in ``settings.json``; a run with other settings
pointed at the same folder is refused rather than mixing results.
"""

from __future__ import annotations

import json
import os
import zlib
from pathlib import Path

SETTINGS = "settings.json"


class SettingsChanged(ValueError):
    """The output folder holds results made with other settings."""


def _crc(payload: dict) -> int:
    return zlib.crc32(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())


def encode(record: dict) -> str:
    return json.dumps({**record, "crc": _crc(record)}, sort_keys=True, separators=(",", ":")) + "\n"


def decode(line: str) -> dict | None:
    """The record of a complete, intact line; None for anything else."""
    if not line.endswith("\n"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or "crc" not in record:
        return None
    crc = record.pop("crc")
    return record if crc == _crc(record) and isinstance(record.get("index"), int) else None


class Journal:
    def __init__(self, folder: str | Path, rank: int = 0, world: int = 1):
        self.folder = Path(folder)
        self.path = self.folder / f"part-{rank:04d}-of-{world:04d}.jsonl"
        self._file = None

    # ------------------------------------------------------------ settings
    def check_settings(self, settings: dict) -> None:
        """Remember the settings of a new folder; refuse a folder made with other settings."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / SETTINGS
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(settings, indent=1, sort_keys=True))
            os.replace(tmp, path)          # atomic: a kill leaves the old state or the new one
            return
        before = json.loads(path.read_text())
        changed = {k: (before.get(k), settings.get(k)) for k in sorted(set(before) | set(settings))
                   if before.get(k) != settings.get(k)}
        if changed:
            what = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changed.items())
            raise SettingsChanged(f"{self.folder} holds results made with other settings ({what}). "
                                  "Use another --out, or delete the folder to start again.")

    # ------------------------------------------------------------ reading
    def records(self) -> dict[int, dict]:
        """Every trusted record of every part file, by sample index (the last one if repeated)."""
        found: dict[int, dict] = {}
        for part in sorted(self.folder.glob("part-*.jsonl")):
            with open(part, encoding="utf-8", newline="") as f:
                for line in f:
                    record = decode(line)
                    if record is not None:
                        found[record["index"]] = record
        return found

    # ------------------------------------------------------------ writing
    def open(self) -> None:
        """Get this process's file ready for appending: a torn last line is cut off first."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            with open(self.path, "rb+") as f:
                data = f.read()
                keep = data.rfind(b"\n") + 1       # everything up to the last complete line
                if keep < len(data):
                    f.truncate(keep)
        self._file = open(self.path, "a", encoding="utf-8", newline="")

    def append(self, record: dict) -> None:
        self._file.write(encode(record))
        self._file.flush()
        os.fsync(self._file.fileno())             # on disk before the next sample: a lost node loses one

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
