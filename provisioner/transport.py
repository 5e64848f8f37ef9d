"""One SSH connection per host (through its ProxyJump hosts), strict host keys, scripts on stdin.

Scripts travel on the channel's stdin (``sh -s``) so that file contents,
including keys, never show in the remote process list. A caller waiting on
a script can give up on it (``give_up``: the link is lost, or the user
aborted); a script that outlives its ``command_timeout`` raises
``RemoteCommandError`` with ``timed_out`` set, and keeps running on the host
until the run's holder stops it (provisioner/hostlock.py).

Every hop is a paramiko client of its own that loads only the inventory's
known_hosts file and refuses unknown and changed keys: a jump host's key is
checked exactly like the target's. ``~/.ssh/config`` is read by the inventory
(provisioner/sshconfig.py), never here. Fingerprints are shown the way
``ssh-keygen -lf`` prints them (``SHA256:`` and unpadded base64), so that
they can be compared with the host's console.
"""

from __future__ import annotations

import base64
import hashlib
import os
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import paramiko

from provisioner.inventory import Host

# Raised (sys.audit) before anything is sent: tests refuse it to prove that bad input never gets this far.
AUDIT_EVENT = "provisioner.transport.open"

#: The longest a channel is waited on between two checks of a run's give-up (an interrupt, a deadline).
DRAIN_WAIT = 0.05


class TransportError(Exception):
    """The host could not be reached or refused us (reported as 'unreachable')."""


class RemoteCommandError(Exception):
    def __init__(self, what: str, exit_status: int, stderr: str, stdout: str = "", timed_out: float | None = None):
        self.what = what
        self.exit_status = exit_status
        self.stderr = stderr
        self.stdout = stdout
        self.timed_out = timed_out  # the timeout (s) the script outlived, or None
        if timed_out is not None:
            super().__init__(f"{what} timed out after {timed_out:.0f}s (command_timeout)")
            return
        tail = (stderr.strip() or stdout.strip()).splitlines()[-5:]
        super().__init__(f"{what} failed with exit status {exit_status}" + (": " + " | ".join(tail) if tail else ""))


# Called while waiting on a remote script: an exception to stop waiting with, or None to go on.
GiveUp = Callable[[], "Exception | None"]


@dataclass
class RunResult:
    stdout: str
    stderr: str
    exit_status: int


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` as ``ssh-keygen -lf`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def describe_key(key: paramiko.PKey) -> str:
    return f"{key.get_name()} key {fingerprint(key)}"


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, key: paramiko.PKey):
        super().__init__("host key not found in known_hosts")
        self.key = key


_parsed_known_hosts: dict[tuple[str, int, int, int], paramiko.HostKeys] = {}
_parsed_known_hosts_lock = threading.Lock()


def known_host_keys(path: str) -> paramiko.HostKeys:
    """The known_hosts file parsed once per process and version of the file.

    Every host of a fleet run is checked against the same file: parsing it
    for each connection cost CPU in hosts x lines (2.6 ms a host with 50
    lines, on this machine), and a sysadmin's file may hold thousands.
    """
    st = os.stat(path)
    version = (path, st.st_ino, st.st_mtime_ns, st.st_size)
    with _parsed_known_hosts_lock:
        keys = _parsed_known_hosts.get(version)
        if keys is None:
            keys = paramiko.HostKeys(path)
            _parsed_known_hosts[version] = keys
        return keys


class _Transport(paramiko.Transport):
    # AES-GCM first: its integrity check runs in C (cryptography's AESGCM), while with the CTR ciphers and
    # their HMACs paramiko compares every packet's MAC byte by byte in Python (12.7 ms of CPU a host in a
    # fleet dry run, half of all its CPU per host). A server without GCM (OpenSSH before 6.2: EL6) still
    # agrees on a CTR cipher: the rest of paramiko's list follows, in its order.
    _preferred_ciphers = (
        *(c for c in paramiko.Transport._preferred_ciphers if c.endswith("-gcm@openssh.com")),
        *(c for c in paramiko.Transport._preferred_ciphers if not c.endswith("-gcm@openssh.com")),
    )


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client, hostname, key):
        raise _UnknownHostKey(key)


@dataclass(frozen=True)
class _Hop:
    what: str  # how messages name it
    address: str
    port: int
    user: str
    keys: tuple[str, ...]
    defaults: bool  # also try ssh-agent and ~/.ssh/id_*

    @property
    def known_hosts_name(self) -> str:
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


def _hops(host: Host) -> list[_Hop]:
    """The jump hosts, then the target. Jumps use their ssh_config keys, then the inventory's key."""
    own = (os.path.expanduser(host.key),) if host.key else ()
    hops = [
        _Hop(f"jump host {jump.label()}", jump.address, jump.port, jump.user, (*jump.keys, *own), True)
        for jump in host.jumps
    ]
    hops.append(_Hop(host.address, host.address, host.port, host.user, own, not own))
    return hops


class HostConnection:
    """A live SSH session to one inventory host."""

    def __init__(self, host: Host):
        self.host = host
        self.round_trips = 0
        self._conn: paramiko.SSHClient | None = None
        self._clients: list[paramiko.SSHClient] = []

    # -------------------------------------------------------------- connect

    def open(self) -> "HostConnection":
        sys.audit(AUDIT_EVENT, self.host.name)
        known_hosts = os.path.expanduser(self.host.known_hosts)
        if not os.path.isfile(known_hosts):
            raise TransportError(f"{self.host.name}: known_hosts file {known_hosts} does not exist (strict host-key checking)")
        hops = _hops(self.host)
        try:
            sock = None
            for index, hop in enumerate(hops):
                if index:
                    sock = self._tunnel(hops[index - 1], hop)
                self._clients.append(self._connect(hop, sock, known_hosts))
                self.round_trips += 1  # each connection is one
        except BaseException:
            self.close()
            raise
        self._conn = self._clients[-1]
        return self

    def _tunnel(self, via: _Hop, to: _Hop) -> paramiko.Channel:
        transport = self._clients[-1].get_transport()
        try:
            return transport.open_channel("direct-tcpip", (to.address, to.port), ("127.0.0.1", 0),
                                          timeout=self.host.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"{self.host.name}: {via.what} could not open a connection to "
                                 f"{to.address}:{to.port}: {exc}") from exc

    def _connect(self, hop: _Hop, sock, known_hosts: str) -> paramiko.SSHClient:
        name = self.host.name
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(_RefuseUnknown())
        try:
            known = known_host_keys(known_hosts).lookup(hop.known_hosts_name)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise TransportError(f"{name}: cannot read known_hosts {known_hosts}: {exc}") from exc
        for keytype, key in (known or {}).items():
            client.get_host_keys().add(hop.known_hosts_name, keytype, key)
        timeout = self.host.connect_timeout
        try:
            client.connect(
                hostname=hop.address, port=hop.port, username=hop.user, sock=sock,
                key_filename=list(hop.keys) or None, look_for_keys=hop.defaults, allow_agent=hop.defaults,
                timeout=timeout, banner_timeout=timeout, auth_timeout=timeout, transport_factory=_Transport,
            )
        except _UnknownHostKey as exc:
            raise TransportError(
                f"{name}: {hop.known_hosts_name} is not in {known_hosts}; refusing an unknown host key "
                f"({hop.what} offers {describe_key(exc.key)}). Compare it with `ssh-keygen -lf` on the host's "
                "console, then add it"
            ) from exc
        except paramiko.BadHostKeyException as exc:
            raise TransportError(
                f"{name}: host key for {hop.what} has CHANGED (got {describe_key(exc.key)}, known_hosts has "
                f"{describe_key(exc.expected_key)}); refusing to connect. If the change is expected, remove the "
                f"old entry (ssh-keygen -R '{hop.known_hosts_name}' -f {known_hosts}) and add the new one"
            ) from exc
        except paramiko.AuthenticationException as exc:
            raise TransportError(f"{name}: {hop.what}: authentication as {hop.user} failed: {exc}") from exc
        except (socket.timeout, TimeoutError) as exc:
            raise TransportError(f"{name}: connection to {hop.what} port {hop.port} timed out") from exc
        except (paramiko.SSHException, EOFError) as exc:
            raise TransportError(f"{name}: SSH to {hop.what} port {hop.port} failed: {exc}") from exc
        except OSError as exc:
            raise TransportError(f"{name}: cannot connect to {hop.what} port {hop.port}: {exc.strerror or exc}") from exc
        return client

    def close(self) -> None:
        while self._clients:
            self._clients.pop().close()
        self._conn = None

    def __enter__(self) -> "HostConnection":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- commands

    def _remote_shell(self, shell: str = "sh") -> str:
        if self.host.sudo and self.host.user != "root":
            # sudo drops SSH_CONNECTION, which the firewall step needs.
            return f'sudo -n -- env "SSH_CONNECTION=$SSH_CONNECTION" {shell} -s'
        return f"{shell} -s"

    def _session(self, shell: str, what: str) -> paramiko.Channel:
        if self._conn is None:
            raise TransportError(f"{self.host.name}: not connected")
        transport = self._conn.get_transport()
        if transport is None or not transport.is_active():
            raise TransportError(f"{self.host.name}: SSH session is closed")
        try:
            channel = transport.open_session(timeout=self.host.connect_timeout)
            channel.exec_command(self._remote_shell(shell))
        except (socket.timeout, TimeoutError, paramiko.SSHException, EOFError, OSError) as exc:
            raise TransportError(f"{self.host.name}: SSH failure during {what}: {exc}") from exc
        return channel

    def open_stream(self, shell: str = "bash", what: str = "run lock") -> paramiko.Channel:
        """A channel running ``shell -s`` whose stdin stays open: the caller writes the script, then commands."""
        return self._session(shell, what)

    def run_script(self, script: str, what: str = "script", timeout: float | None = None, check: bool = True,
                   give_up: GiveUp | None = None) -> RunResult:
        """Run ``script`` with sh on the host (as root through sudo when configured)."""
        timeout = timeout or self.host.command_timeout
        channel = self._session("sh", what)
        self.round_trips += 1
        try:
            channel.settimeout(timeout)
            channel.sendall(script.encode())
            channel.shutdown_write()
            stdout, stderr = self._drain(channel, timeout, what, give_up)
            status = channel.recv_exit_status()
            channel.close()
        except (socket.timeout, TimeoutError) as exc:
            channel.close()
            raise RemoteCommandError(what, -1, "", timed_out=timeout) from exc
        except paramiko.SSHException as exc:
            raise TransportError(f"{self.host.name}: SSH failure during {what}: {exc}") from exc
        except BaseException:
            channel.close()
            raise
        result = RunResult(stdout=stdout, stderr=stderr, exit_status=status)
        if check and status != 0:
            if self.host.sudo and "a password is required" in stderr:
                raise RemoteCommandError(what, status, f"sudo needs a password for {self.host.user}; "
                                         "configure NOPASSWD sudo for the provisioning user")
            raise RemoteCommandError(what, status, stderr, stdout)
        return result

    @staticmethod
    def _drain(channel: paramiko.Channel, timeout: float, what: str, give_up: GiveUp | None = None) -> tuple[str, str]:
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        # Set by paramiko when stdout or stderr data or the end of output arrives: waiting on it costs no
        # CPU while the remote script is silent (polling every few ms cost about 6 ms of CPU per second per
        # host, most of a fleet run's CPU per host). The wait is bounded so that give_up is asked often.
        ready = channel.fileno()
        while True:
            if give_up is not None:
                reason = give_up()
                if reason is not None:
                    raise reason
            if channel.recv_ready():
                out += channel.recv(65536)
                continue
            if channel.recv_stderr_ready():
                err += channel.recv_stderr(65536)
                continue
            # sshd can send the exit status before the last of the output (on 50 loaded lab hosts, 2 of about
            # 550 fact scripts read cut short): the output is whole only at the channel's EOF.
            ended = channel.eof_received or channel.closed
            if ended and channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            if channel.eof_received:
                channel.status_event.wait(DRAIN_WAIT)  # all output is in: only the exit status is to come
            else:
                select.select([ready], [], [], DRAIN_WAIT)
        return out.decode(errors="replace"), err.decode(errors="replace")
