"""Finding a model's files: offline first, the Hugging Face Hub only when it answers quickly.

``Source`` is what a family's adapter is handed: the name asked for, where its files are, and its
``config.json`` read once. A machine without internet must not sit in the Hub client's retry loop
for minutes, so every fetch tries the local cache first and the Hub only when a TCP connect to it
succeeds within HUB_TIMEOUT_S.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .paths import BUNDLED_DIR

BUNDLED = "bundled"                      # the name the UI and CLI use for the bundled model
HUB_TIMEOUT_S = 3.0


class ModelUnavailable(RuntimeError):
    """A model could not be loaded. ``key`` names the user's message in vitviz.core.i18n (``fields``
    fill it); the English text, for logs and the command line, names no server path.

    keys: model_not_cached (not in the local cache, Hub unreachable), model_download (the Hub
    refused or failed), model_broken (files found but not a model vitviz can load),
    bundled_missing (the offline model is not in this checkout)."""

    def __init__(self, key: str, message: str, **fields):
        super().__init__(message)
        self.key = key
        self.fields = fields


def hub_reachable(offline: bool = False, timeout: float = HUB_TIMEOUT_S) -> bool:
    """True if huggingface.co answers a TCP connect within `timeout` seconds (never when offline).

    Runs in a thread because DNS lookups ignore socket timeouts."""
    from huggingface_hub import constants

    if offline or constants.HF_HUB_OFFLINE:
        return False
    host = constants.ENDPOINT.split("://")[-1].split("/")[0]
    ok = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return bool(ok)


def cache_first(fetch, name: str, offline: bool = False):
    """(fetch(local_files_only=True), "cache") when the local cache has it; else, only if the Hub answers
    quickly, (fetch(local_files_only=False), "hub"). ModelUnavailable says which failed. A missing cache
    entry is an OSError in transformers and huggingface_hub alike (LocalEntryNotFoundError)."""
    try:
        return fetch(local_files_only=True), "cache"
    except OSError:
        pass
    if not hub_reachable(offline):
        raise ModelUnavailable("model_not_cached", f"{name} is not in the local cache and the Hugging Face Hub "
                               "cannot be reached.", model=name)
    try:
        return fetch(local_files_only=False), "hub"
    except Exception as exc:
        raise ModelUnavailable("model_download", f"{name} could not be downloaded.", model=name) from exc


@dataclass
class Source:
    """Where a model's files are. where: "bundled", "local" (a folder) or "hub" (an id, cache first)."""
    name: str                   # what the user asked for (Hub id, folder, or "bundled")
    path: str                   # the folder, or the Hub id
    where: str
    offline: bool = False
    fetched_from: str = field(default="", init=False)    # "cache" or "hub" once something came from the Hub

    @property
    def source(self) -> str:
        """How the model came: "bundled", "local", "cache" or "hub"."""
        return self.fetched_from or self.where

    def fetch(self, loader, **kw):
        """loader.from_pretrained(path, **kw): local files as they are, Hub ids cache first."""
        if self.where != "hub":
            return loader.from_pretrained(self.path, **kw)
        value, came = cache_first(lambda local_files_only: loader.from_pretrained(
            self.path, local_files_only=local_files_only, **kw), self.name, self.offline)
        self.fetched_from = "hub" if "hub" in (came, self.fetched_from) else came
        return value

    def download(self, **kw) -> Path:
        """A local folder with the repository's files (huggingface_hub.snapshot_download's arguments)."""
        if self.where != "hub":
            return Path(self.path)
        from huggingface_hub import snapshot_download

        folder, came = cache_first(lambda local_files_only: snapshot_download(
            self.path, local_files_only=local_files_only, **kw), self.name, self.offline)
        self.fetched_from = "hub" if "hub" in (came, self.fetched_from) else came
        return Path(folder)

    @cached_property
    def config(self) -> dict:
        """config.json as a dict ({} where there is none): what an adapter recognises a model by."""
        if self.where != "hub":
            file = Path(self.path) / "config.json"
        else:
            from huggingface_hub import hf_hub_download

            file, came = cache_first(lambda local_files_only: hf_hub_download(
                self.path, "config.json", local_files_only=local_files_only), self.name, self.offline)
            self.fetched_from = self.fetched_from or came
            file = Path(file)
        try:
            config = json.loads(file.read_text())
        except (OSError, ValueError):
            return {}
        return config if isinstance(config, dict) else {}


def resolve(name: str, offline: bool = False) -> Source:
    """Where the model `name` is. Local folders and the bundled model need no network."""
    if name == BUNDLED:
        if not (BUNDLED_DIR / "config.json").exists():
            raise ModelUnavailable("bundled_missing", "The bundled model is missing from this copy of vitviz; "
                                   "train it with: python -m vitviz.train (see its model card)", model=name)
        return Source(name, str(BUNDLED_DIR), "bundled", offline)
    if Path(name).is_dir():
        return Source(name, name, "local", offline)
    return Source(name, name, "hub", offline)
