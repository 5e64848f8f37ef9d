"""HostConnection._drain on a real paramiko channel (an in-process SSH server over a socket pair).

The drain collects stdout and stderr until the exit status, waits without
burning CPU while the remote command is silent, and honours its deadline and
the run's give-up check.
"""

from __future__ import annotations

import socket
import time

import paramiko
import pytest

from provisioner.transport import DRAIN_WAIT, HostConnection

from .ssh_server import start_server


_HOST_KEY = paramiko.RSAKey.generate(2048)  # the in-process server's, for this test only


@pytest.fixture
def channel_for():
    opened = []

    def open_(behave):
        a, b = socket.socketpair()
        server = start_server(a, _HOST_KEY, behave)
        client = paramiko.Transport(b)
        client.connect()
        client.auth_none("root")
        channel = client.open_session()
        channel.exec_command("sh")
        opened.append((client, server))
        return channel

    yield open_
    for client, server in opened:
        client.close()
        server.close()


def _script(*events, status_first: bool = False):
    def behave(channel):
        if status_first:
            channel.send_exit_status(3)
        for kind, value in events:
            if kind == "out":
                channel.sendall(value)
            elif kind == "err":
                channel.sendall_stderr(value)
            elif kind == "sleep":
                time.sleep(value)
        if not status_first:
            channel.send_exit_status(3)
        channel.shutdown_write()
        channel.close()
    return behave


def test_stdout_and_stderr_until_the_exit_status(channel_for):
    big = b"x" * 300_000
    channel = channel_for(_script(("out", b"hello\n"), ("err", b"warn\n"), ("sleep", 0.1), ("out", big)))
    out, err = HostConnection._drain(channel, 10, "test")
    assert out == "hello\n" + big.decode() and err == "warn\n"
    assert channel.recv_exit_status() == 3


def test_output_after_the_exit_status_is_kept_until_the_end_of_output(channel_for):
    # sshd may send the exit status before the last of the output: only the EOF says the output is whole.
    channel = channel_for(_script(("sleep", 0.2), ("out", b"facts\n"), ("sleep", 0.2), ("err", b"late\n"),
                                  status_first=True))
    out, err = HostConnection._drain(channel, 10, "test")
    assert (out, err) == ("facts\n", "late\n")
    assert channel.recv_exit_status() == 3


def test_a_silent_command_is_waited_on_not_polled(channel_for):
    channel = channel_for(_script(("sleep", 1.0), ("out", b"done\n")))
    asked = []
    out, _ = HostConnection._drain(channel, 10, "test", lambda: asked.append(1))
    assert out == "done\n"
    # The loop sleeps on the channel, DRAIN_WAIT at most, between two looks: about 20 in a silent second
    # (polling every 5 ms looked about 200 times, and cost about 6 ms of CPU per second per host).
    assert 5 <= len(asked) <= 1.0 / DRAIN_WAIT * 2


def test_the_deadline_and_the_give_up_check(channel_for):
    channel = channel_for(_script(("sleep", 5.0)))
    with pytest.raises(TimeoutError):
        HostConnection._drain(channel, 0.3, "test")
    channel = channel_for(_script(("sleep", 5.0)))
    stop = RuntimeError("interrupted")
    asked = []

    def give_up():
        asked.append(1)
        return stop if len(asked) > 2 else None

    with pytest.raises(RuntimeError):
        HostConnection._drain(channel, 10, "test", give_up)
