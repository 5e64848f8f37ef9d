"""Command-line values checked before any host is touched: fork counts and output paths."""

from __future__ import annotations

import os

from provisioner.validation import InputError, shown

from provisioner.engine.batches import Serial

MAX_FORKS = 256


def parse_forks(value: int | str) -> int:
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_FORKS:
        raise InputError(f"--forks: {shown(value)} is not a whole number from 1 to {MAX_FORKS}")
    return int(text)


def parse_serial(value: str | int | None) -> Serial | None:
    """--serial N (hosts per batch) or N% (of the selected hosts, rounded up); None: the default."""
    if value is None:
        return None
    text = str(value).strip()
    number, percent = (text[:-1], True) if text.endswith("%") else (text, False)
    if not (number.isascii() and number.isdigit()) or not 1 <= int(number) <= (100 if percent else 100000):
        raise InputError(f"--serial: {shown(value)} is not a number of hosts (1 or more) or a percentage (1% to 100%)")
    return Serial(percent=int(number)) if percent else Serial(count=int(number))


def parse_max_fail(value: str | int | None) -> int | None:
    """--max-fail N: how many hosts may fail before later batches are not started; None: the default."""
    if value is None:
        return None
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()):
        raise InputError(f"--max-fail: {shown(value)} is not a whole number of hosts (0 or more)")
    return int(text)


VERIFY_MODES = ("auto", "always", "never")


def parse_verify_mode(value: str | bool, no_verify: bool = False) -> str:
    """--verify auto|always|never; --no-verify (and False, from older callers) is never."""
    if value is True:
        value = "auto"
    elif value is False:
        value = "never"
    text = str(value).strip().lower()
    if text not in VERIFY_MODES:
        raise InputError(f"--verify: {shown(value)} is not one of {', '.join(VERIFY_MODES)}")
    if no_verify:
        if text == "always":
            raise InputError("--verify always and --no-verify contradict each other: give one")
        return "never"
    return text


def check_output_path(path: str | None, option: str) -> None:
    """Refuse an output file that could not be written, by really opening it (then leaving it as it was).

    An existing file is opened for appending, which changes nothing; a new one
    is created and removed again. A directory, a missing parent directory, a
    read-only file system or missing permissions are refused.
    """
    if path is None:
        return
    if not path:
        raise InputError(f"{option}: the path is empty")
    if os.path.isdir(path):
        raise InputError(f"{path}: {option} names a directory; give a file path")
    parent = os.path.dirname(path) or "."
    if not os.path.isdir(parent):
        missing = "does not exist" if not os.path.lexists(parent) else "is not a directory"
        raise InputError(f"{path}: {option}: {parent} {missing}")
    try:
        if os.path.lexists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK))
        else:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            os.unlink(path)
    except OSError as exc:
        raise InputError(f"{path}: {option}: cannot write there: {exc.strerror or exc}") from None
