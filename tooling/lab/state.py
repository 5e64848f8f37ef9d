"""The lab's state file (which hosts run, under which nspawn pid) and its lock."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import config
from .system import write_file

VERSION = 1


def empty() -> dict[str, Any]:
    return {"version": VERSION, "hosts": {}}


def load(path: Path = config.STATE_FILE) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return empty()
    if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("hosts"), dict):
        return empty()
    return data


def save(data: dict[str, Any], path: Path = config.STATE_FILE) -> None:
    write_file(path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600)


@contextmanager
def locked(path: Path = config.STATE_LOCK) -> Iterator[None]:
    """Serialise up()/down() across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
