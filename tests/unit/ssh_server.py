"""An in-process SSH server (paramiko's server side) for the transport's unit tests.

``Server`` accepts any client key (and "none"), and runs ``behave(channel)`` in
a thread for each exec request. ``listening`` serves it on a loopback port.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import paramiko

Behave = Callable[[paramiko.Channel], None]


class Server(paramiko.ServerInterface):
    def __init__(self, behave: Behave):
        self.behave = behave

    def check_auth_none(self, username):
        return paramiko.AUTH_SUCCESSFUL

    def check_auth_publickey(self, username, key):
        return paramiko.AUTH_SUCCESSFUL

    def get_allowed_auths(self, username):
        return "none,publickey"

    def check_channel_request(self, kind, chanid):
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel, command):
        threading.Thread(target=self.behave, args=(channel,), daemon=True).start()
        return True


def start_server(sock: socket.socket, host_key: paramiko.PKey, behave: Behave,
                 ciphers: tuple[str, ...] | None = None) -> paramiko.Transport:
    """``ciphers``: the only ciphers the server agrees to (default: paramiko's)."""
    server = paramiko.Transport(sock)
    if ciphers is not None:
        server.get_security_options().ciphers = ciphers
    server.add_server_key(host_key)
    server.start_server(event=threading.Event(), server=Server(behave))  # returns at once
    return server


def echo_exit(channel: paramiko.Channel) -> None:
    """Reads the script sent on stdin to its end, then says ok and exits 0."""
    while channel.recv(65536):
        pass
    channel.sendall(b"ok\n")
    channel.send_exit_status(0)
    channel.shutdown_write()
    channel.close()


@contextmanager
def listening(host_key: paramiko.PKey, behave: Behave = echo_exit,
              ciphers: tuple[str, ...] | None = None) -> Iterator[int]:
    """The server on 127.0.0.1, one connection after another; yields its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    stop = threading.Event()
    servers: list[paramiko.Transport] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            servers.append(start_server(conn, host_key, behave, ciphers))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for server in servers:
            server.close()
