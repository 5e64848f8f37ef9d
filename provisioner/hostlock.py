"""The control node's side of a run's holder (provisioner/journal.py): the host lock, heartbeats, commit, rollback.

A real run opens one more channel on its SSH connection, concurrently with
the fact script (no round trip is added to a converged run), and runs the
holder script (provisioner/holder.py) there with bash. The holder takes the host's lock (``flock``)
or answers ``busy`` with the holder's run id, control node and start time:
the run then fails at once, before it changes anything.

While the run lasts, a thread sends ``beat`` every ``beat_every`` seconds
and the holder answers ``alive``. If the holder hears nothing for
``stale_after`` seconds (a link that dropped without closing), or its
channel closes (the control node died, or a second Ctrl-C closed the
connection), it stops a step script that may still run and rolls the run
back on the host, then releases the lock. The same silence seen from this
side (no answer for ``stale_after`` seconds) makes ``give_up()`` return a
TransportError, so the run stops waiting and reports the host unreachable.

``commit`` marks the run done (its journal is kept or pruned, see
journal.py); ``rollback`` asks the holder to undo the run and returns what
it did, one line per entry.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import paramiko

from provisioner.holder import holder_script
from provisioner.transport import HostConnection, TransportError

STALE_AFTER = 20.0  # seconds without an answer after which either side gives the other up
BEAT_EVERY = 2.0


class HostLocked(Exception):
    """Another run holds the host's lock."""

    def __init__(self, host: str, fields: dict[str, str]):
        self.fields = fields
        who = fields.get("control", "an unknown control node")
        super().__init__(
            f"{host} is locked by run {fields.get('run_id', '?')} from {who} since {fields.get('started', '?')} "
            "(another provisioner run is applying changes there; try again when it has finished)"
        )


class LockError(Exception):
    """The host cannot hold a run lock (e.g. flock is missing): the host fails, nothing is changed."""


@dataclass
class RollbackOutcome:
    status: str  # rolled-back | rollback-failed | unknown
    lines: list[str] = field(default_factory=list)  # "ok<TAB>..." / "failed<TAB>..." / "note<TAB>..."

    @property
    def done(self) -> list[str]:
        return [line.split("\t", 1)[1] for line in self.lines if line.startswith("ok\t")]

    @property
    def failed(self) -> list[str]:
        return [line.split("\t", 1)[1] for line in self.lines if line.startswith("failed\t")]

    @property
    def notes(self) -> list[str]:
        return [line.split("\t", 1)[1] for line in self.lines if line.startswith("note\t")]


_CLOSED = object()


class RunHolder:
    def __init__(self, conn: HostConnection, run_id: str, control: str, started: str,
                 stale_after: float = STALE_AFTER, beat_every: float = BEAT_EVERY,
                 abort: Callable[[], Exception | None] = lambda: None):
        self.conn = conn
        self.abort = abort  # while waiting on the holder: an exception to stop waiting with (a second Ctrl-C)
        self.host = conn.host.name
        self.run_id = run_id
        self.control = control
        self.started = started
        self.stale_after = stale_after
        self.beat_every = beat_every
        self.recovered: list[RollbackOutcome] = []
        self._channel: paramiko.Channel | None = None
        self._lines: queue.Queue = queue.Queue()
        self._send_lock = threading.Lock()
        self._heard = time.monotonic()
        self._busy = False  # a command is running on the holder: silence is not a lost link
        self._lost: str | None = None
        self._closed = threading.Event()
        self._acquired = False

    # ------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Open the holder's channel and send its script, in the background (the fact script runs meanwhile)."""
        threading.Thread(target=self._open, name=f"holder-open-{self.host}", daemon=True).start()

    def _open(self) -> None:
        try:
            self._channel = self.conn.open_stream("bash", what="run lock")
            self._send(holder_script(self.run_id, self.control, self.started, int(self.stale_after)))
        except (TransportError, OSError, EOFError, paramiko.SSHException) as exc:
            self._lines.put(f"transport\t{exc}")
            self._lines.put(_CLOSED)
            return
        self._read()

    def wait_acquired(self, timeout: float) -> None:
        """Wait for the lock (usually already there when the facts arrive); HostLocked if another run holds it."""
        current: RollbackOutcome | None = None
        while True:
            line = self._next(timeout, "taking the run lock")
            kind, _, rest = line.partition("\t")
            if kind == "acquired":
                self._acquired = True
                self._heard = time.monotonic()
                threading.Thread(target=self._beat, name=f"holder-beat-{self.host}", daemon=True).start()
                return
            if kind == "busy":
                fields = dict(item.split("=", 1) for item in rest.split("\t") if "=" in item)
                raise HostLocked(self.host, fields)
            if kind == "error":
                raise LockError(f"{self.host}: cannot take the run lock: {rest}")
            if kind == "transport":
                raise TransportError(rest)
            if kind == "recover":
                current = RollbackOutcome(status="rolled back", lines=[f"note\trun {rest} (left open)"])
                self.recovered.append(current)
            elif current is not None:
                current.lines.append(line)

    def give_up(self) -> Exception | None:
        """For HostConnection.run_script: a TransportError once the holder has gone silent."""
        if self._lost:
            return TransportError(f"{self.host}: {self._lost}")
        return None

    @property
    def lost(self) -> str | None:
        return self._lost

    def commit(self, timeout: float) -> None:
        self._command("commit", timeout, "committing the run")
        line = self._next(timeout, "committing the run")
        self._busy = False
        if line != "committed":
            raise TransportError(f"{self.host}: the run lock answered {line!r} to commit")

    def rollback(self, timeout: float) -> RollbackOutcome:
        """Ask the holder to undo this run (it stops a step script that still runs first)."""
        self._command("rollback", timeout, "rolling back")
        outcome = RollbackOutcome(status="unknown")
        while True:
            line = self._next(timeout, "rolling back")
            if line.startswith("done\t"):
                outcome.status = line.split("\t", 1)[1]
                self._busy = False
                return outcome
            outcome.lines.append(line)

    def close(self) -> None:
        """Release: closing stdin ends the holder (it rolls back an open run that recorded changes)."""
        self._closed.set()
        channel = self._channel
        if channel is None:
            return
        try:
            if self._acquired and not self._lost:
                self._send("release\n")
            channel.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException):
            pass
        channel.close()

    # ------------------------------------------------------------ internals

    def _send(self, text: str) -> None:
        assert self._channel is not None
        with self._send_lock:
            self._channel.sendall(text.encode())

    def _command(self, command: str, timeout: float, what: str) -> None:
        if self._lost:
            raise TransportError(f"{self.host}: {self._lost}")
        self._busy = True
        try:
            self._send(command + "\n")
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise TransportError(f"{self.host}: the run lock's channel failed while {what}: {exc}") from exc

    def _next(self, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            if self._lost:
                raise TransportError(f"{self.host}: {self._lost} (while {what})")
            stop = self.abort()
            if stop is not None:
                raise stop
            try:
                item = self._lines.get(timeout=min(0.2, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise TransportError(f"{self.host}: no answer from the run lock within {timeout:.0f}s "
                                         f"while {what}") from None
                continue
            if item is _CLOSED:
                raise TransportError(f"{self.host}: the run lock's channel closed while {what}"
                                     + self._stderr_tail())
            return item

    def _stderr_tail(self) -> str:
        channel = self._channel
        try:
            if channel is not None and channel.recv_stderr_ready():
                text = channel.recv_stderr(65536).decode(errors="replace").strip()
                return f": {text.splitlines()[-1]}" if text else ""
        except (OSError, socket.timeout):
            pass
        return ""

    def _read(self) -> None:
        channel = self._channel
        assert channel is not None
        channel.settimeout(0.5)
        buffer = b""
        while True:
            try:
                data = channel.recv(4096)
            except socket.timeout:
                if self._closed.is_set():
                    break
                continue
            except (OSError, EOFError, paramiko.SSHException):
                break
            if not data:
                break
            buffer += data
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                self._heard = time.monotonic()
                line = raw.decode(errors="replace")
                if line != "alive":
                    self._lines.put(line)
        self._lines.put(_CLOSED)

    def _beat(self) -> None:
        while not self._closed.wait(self.beat_every):
            silent = time.monotonic() - self._heard
            if silent > self.stale_after and not self._busy:
                self._lost = f"no answer from the host for {silent:.0f}s: the link is lost"
                return
            try:
                self._send("beat\n")
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self._lost = f"the connection failed: {exc}"
                return
