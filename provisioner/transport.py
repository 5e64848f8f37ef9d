"""One SSH connection per host, strict host keys, scripts sent on stdin.

Scripts travel on the channel's stdin (``sh -s``) so that file contents,
including keys, never show in the remote process list. A caller waiting on
a script can give up on it (``give_up``: the link is lost, or the user
aborted); a script that outlives its ``command_timeout`` raises
``RemoteCommandError`` with ``timed_out`` set, and keeps running on the host
until the run's holder stops it (provisioner/hostlock.py).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Callable

import paramiko
from fabric import Connection

from provisioner.inventory import Host


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


class HostConnection:
    """A live SSH session to one inventory host."""

    def __init__(self, host: Host):
        self.host = host
        self.round_trips = 0
        self._conn: Connection | None = None

    # -------------------------------------------------------------- connect

    def open(self) -> "HostConnection":
        host = self.host
        known_hosts = os.path.expanduser(host.known_hosts)
        if not os.path.exists(known_hosts):
            raise TransportError(f"{host.name}: known_hosts file {known_hosts} does not exist (strict host-key checking)")
        connect_kwargs = {
            "look_for_keys": host.key is None,
            "allow_agent": host.key is None,
            "timeout": host.connect_timeout,
            "banner_timeout": host.connect_timeout,
            "auth_timeout": host.connect_timeout,
        }
        if host.key:
            connect_kwargs["key_filename"] = [os.path.expanduser(host.key)]
        conn = Connection(host.address, user=host.user, port=host.port, connect_kwargs=connect_kwargs)
        client = conn.client
        # Fabric trusts unknown hosts by default; we never do.
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client._system_host_keys = paramiko.HostKeys()
        client._host_keys = paramiko.HostKeys()
        try:
            client.load_host_keys(known_hosts)
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(f"{host.name}: cannot read known_hosts {known_hosts}: {exc}") from exc
        try:
            conn.open()
        except paramiko.BadHostKeyException as exc:
            raise TransportError(
                f"{host.name}: host key for {host.address} has CHANGED (got {exc.key.get_name()} "
                f"{exc.key.get_fingerprint().hex()}); refusing to connect. If the change is expected, "
                f"remove the old entry from {known_hosts}"
            ) from exc
        except paramiko.SSHException as exc:
            text = str(exc)
            if "not found in known_hosts" in text:
                raise TransportError(
                    f"{host.name}: {host.address} is not in {known_hosts}; refusing an unknown host key "
                    "(add it after checking its fingerprint, e.g. with ssh-keyscan and ssh-keygen -lf)"
                ) from exc
            raise TransportError(f"{host.name}: SSH to {host.address}:{host.port} failed: {text}") from exc
        except (socket.timeout, TimeoutError) as exc:
            raise TransportError(f"{host.name}: connection to {host.address}:{host.port} timed out") from exc
        except OSError as exc:
            raise TransportError(f"{host.name}: cannot connect to {host.address}:{host.port}: {exc}") from exc
        self._conn = conn
        self.round_trips += 1  # the connection itself
        return self

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
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
        transport = self._conn.client.get_transport()
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
            if channel.exit_status_ready() and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            time.sleep(0.005)
        return out.decode(errors="replace"), err.decode(errors="replace")
