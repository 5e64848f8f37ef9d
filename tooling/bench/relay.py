"""Network latency without netem: a userspace TCP relay that delays every chunk.

This kernel has no netem qdisc (CONFIG_NET_SCH_NETEM is not set), so the
bench's latency rows put a relay in front of each lab host instead: it
listens on a loopback address of its own per host (``127.77.0.N``), one port
per service (SSH on 2222, SMTP on 25 and 587), connects to the host from the
control end of its veth (``10.200.N.1``, the address the lockdown lets
through), and forwards every chunk it reads ``delay`` seconds later, in
order, each way. A 25 ms delay each way adds 50 ms to every round trip.

What it models: the round-trip time of each request/response exchange (SSH
key exchange, every channel open and every command's reply, SMTP dialogue).
What it does not: bandwidth (chunks go on at loopback speed after their
delay), loss, reordering or jitter, TCP's own behaviour on a long path
(slow start, the congestion window, delayed ACKs: the relay's two TCP
connections are local and fast, with TCP_NODELAY so Nagle adds nothing), and
the connect itself: the client's TCP handshake with the relay is local, the
delay starts with the first byte (SSH's banner exchange pays it).

The delay line is pure (``DelayLine``) and unit-tested; ``Relay`` runs it on
asyncio in a thread of the bench process.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass

RELAY_NETWORK = "127.77.0"
SSH_RELAY_PORT = 2222
CHUNK = 65536


def relay_address(index: int) -> str:
    """The loopback address the relay listens on for lab host N."""
    if not 1 <= index <= 254:
        raise ValueError(f"lab host index {index} has no relay address")
    return f"{RELAY_NETWORK}.{index}"


class DelayLine:
    """Chunks in, the same chunks out ``delay`` seconds later, in order.

    ``None`` stands for end of stream and is delayed like data, so a close
    never overtakes the bytes before it.
    """

    def __init__(self, delay: float):
        if delay < 0:
            raise ValueError("delay must be >= 0")
        self.delay = delay
        self._queue: collections.deque[tuple[float, bytes | None]] = collections.deque()

    def push(self, now: float, chunk: bytes | None) -> None:
        self._queue.append((now + self.delay, chunk))

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def pop_due(self, now: float) -> list[bytes | None]:
        """Every chunk whose time has come, oldest first."""
        out = []
        while self._queue and self._queue[0][0] <= now:
            out.append(self._queue.popleft()[1])
        return out

    def __len__(self) -> int:
        return len(self._queue)


@dataclass(frozen=True)
class Route:
    """Listen on listen_host:listen_port; forward to target_host:target_port from source_address."""

    listen_host: str
    listen_port: int
    target_host: str
    target_port: int
    source_address: str | None = None


def _nodelay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader to writer through a DelayLine; half-close writer at the (delayed) end."""
    loop = asyncio.get_running_loop()
    line = DelayLine(delay)
    wake = asyncio.Event()

    async def read() -> None:
        while True:
            try:
                chunk = await reader.read(CHUNK)
            except (ConnectionError, OSError):
                chunk = b""
            line.push(loop.time(), chunk or None)
            wake.set()
            if not chunk:
                return

    reading = asyncio.create_task(read())
    try:
        while True:
            due = line.next_due()
            if due is None:
                wake.clear()
                await wake.wait()
                continue
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            for chunk in line.pop_due(loop.time()):
                if chunk is None:
                    if writer.can_write_eof():
                        writer.write_eof()
                    await writer.drain()
                    return
                writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        reading.cancel()
    finally:
        await asyncio.gather(reading, return_exceptions=True)


class Relay:
    """Every route's listener on one asyncio loop in a daemon thread; ``with Relay(...)`` starts and stops it."""

    def __init__(self, routes: Iterable[Route], delay: float):
        self.routes = list(routes)
        self.delay = delay
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="bench-relay", daemon=True)
        self._servers: list[asyncio.base_events.Server] = []

    async def _handle(self, route: Route, client_r, client_w) -> None:
        self.connections += 1
        try:
            local = (route.source_address, 0) if route.source_address else None
            server_r, server_w = await asyncio.open_connection(route.target_host, route.target_port,
                                                              local_addr=local)
        except OSError:
            client_w.close()
            return
        _nodelay(client_w)
        _nodelay(server_w)
        try:
            await asyncio.gather(_pump(client_r, server_w, self.delay), _pump(server_r, client_w, self.delay))
        except asyncio.CancelledError:
            pass  # the relay stops: the connection ends here
        finally:
            for w in (client_w, server_w):
                w.close()

    async def _start(self) -> None:
        for route in self.routes:
            server = await asyncio.start_server(lambda r, w, route=route: self._handle(route, r, w),
                                                route.listen_host, route.listen_port, reuse_address=True)
            self._servers.append(server)

    def start(self) -> Relay:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    def stop(self) -> None:
        async def close() -> None:
            for server in self._servers:
                server.close()
            # Connections still open (a client that never closed) end here, each closing its sockets.
            others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=30)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        self._loop.close()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def lab_routes(index: int, host_address: str, control_address: str, smtp_ports: Iterable[int]) -> list[Route]:
    """SSH (relay port 2222 -> 22) and each SMTP port (same port) of lab host N, from its control address."""
    listen = relay_address(index)
    routes = [Route(listen, SSH_RELAY_PORT, host_address, 22, control_address)]
    routes += [Route(listen, port, host_address, port, control_address) for port in smtp_ports]
    return routes


def relay_known_hosts_line(line: str, address: str, port: int) -> str:
    """A known_hosts line of the host, re-keyed for the relay's ``[address]:port`` (the key itself unchanged)."""
    fields = line.split(None, 1)
    if len(fields) != 2:
        raise ValueError(f"not a known_hosts line: {line!r}")
    return f"[{address}]:{port} {fields[1]}"
