"""A guard that refuses every connection attempt: the proof that bad input never reaches a host.

It is an audit hook (PEP 578). Once added, a hook cannot be removed, and it
sees the interpreter's own events, raised by the C code of the socket
module whatever Python wrapper calls it: connect (TCP and UDP alike), name
resolution, sendto/sendmsg, and every way of starting a program (ssh, a
shell). provisioner.transport raises its own event before it opens the first
connection, so reaching the transport is refused too, even with a file that
would fail before any socket is made.

Two modes:
* in a test process (``arm()`` / ``disarm()``): a refused event is recorded
  and aborts the operation with ``ConnectionAttempted``, a BaseException that
  ``except Exception`` cannot swallow; the test asserts the record is empty;
* in a CLI subprocess (``install_hard()``, from sitecustomize): the event is
  written to the file named by NOCONNECT_RECORD and the process ends at once
  with exit status 97 (``os._exit``: nothing can catch it).
"""

from __future__ import annotations

import os
import sys

REFUSED = frozenset({
    "provisioner.transport.open",
    "socket.connect",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
    "socket.sendto",
    "socket.sendmsg",
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "pty.spawn",
})
HARD_EXIT = 97


class ConnectionAttempted(BaseException):
    pass


class _State:
    armed = False
    hard_record: str | None = None
    events: list[str] = []


def _describe(event: str, args: tuple) -> str:
    return f"{event} {args!r}"[:300]


def _hook(event: str, args: tuple) -> None:
    if event not in REFUSED:
        return
    if _State.hard_record is not None:
        try:
            fd = os.open(_State.hard_record, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.write(fd, (_describe(event, args) + "\n").encode())
            os.close(fd)
        finally:
            os._exit(HARD_EXIT)
    if _State.armed:
        _State.events.append(_describe(event, args))
        raise ConnectionAttempted(event)


_installed = False


def _install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def install_hard(record_path: str) -> None:
    _State.hard_record = record_path
    _install()


def arm() -> list[str]:
    """Refuse from now on; returns the list the refused events are recorded in."""
    _install()
    _State.events = []
    _State.armed = True
    return _State.events


def disarm() -> None:
    _State.armed = False
