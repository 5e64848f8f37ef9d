"""The latency relay: its delay line (pure, on a given clock) and real bytes through it on loopback."""

from __future__ import annotations

import socket
import threading

import pytest

from tooling.bench.relay import DelayLine, Relay, Route, lab_routes, relay_address, relay_known_hosts_line


def test_delay_line_holds_each_chunk_for_the_delay_in_order():
    line = DelayLine(0.025)
    line.push(10.0, b"a")
    line.push(10.010, b"b")
    assert line.next_due() == pytest.approx(10.025)
    assert line.pop_due(10.024) == []
    assert line.pop_due(10.025) == [b"a"]
    assert line.pop_due(10.030) == []
    assert line.pop_due(10.040) == [b"b"]
    assert len(line) == 0 and line.next_due() is None


def test_delay_line_end_of_stream_never_overtakes_data():
    line = DelayLine(0.025)
    line.push(1.0, b"last bytes")
    line.push(1.0, None)
    assert line.pop_due(2.0) == [b"last bytes", None]


def test_delay_line_refuses_a_negative_delay():
    with pytest.raises(ValueError):
        DelayLine(-0.001)


def test_routes_of_a_lab_host():
    routes = lab_routes(7, "10.200.7.2", "10.200.7.1", (25, 587))
    assert [(r.listen_host, r.listen_port, r.target_host, r.target_port, r.source_address) for r in routes] == [
        ("127.77.0.7", 2222, "10.200.7.2", 22, "10.200.7.1"),
        ("127.77.0.7", 25, "10.200.7.2", 25, "10.200.7.1"),
        ("127.77.0.7", 587, "10.200.7.2", 587, "10.200.7.1"),
    ]
    with pytest.raises(ValueError):
        relay_address(0)


def test_known_hosts_line_for_the_relay_keeps_the_key():
    line = "10.200.3.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
    assert relay_known_hosts_line(line, "127.77.0.3", 2222) == \
        "[127.77.0.3]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
    with pytest.raises(ValueError):
        relay_known_hosts_line("garbage", "127.77.0.3", 2222)


def _echo_server() -> tuple[socket.socket, int]:
    """An upper-casing echo server on 127.0.0.1 that closes after the client's EOF."""
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return srv, port


def test_bytes_pass_through_intact_both_ways_and_eof_propagates():
    srv, port = _echo_server()
    payload = bytes(range(256)) * 2000  # 512 kB, many chunks
    with srv, Relay([Route("127.0.0.1", 0, "127.0.0.1", port)], delay=0.001) as relay:
        listen_port = relay._servers[0].sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", listen_port), timeout=10) as client:
            sender = threading.Thread(target=lambda: (client.sendall(payload), client.shutdown(socket.SHUT_WR)))
            sender.start()
            received = bytearray()
            while chunk := client.recv(65536):
                received += chunk
            sender.join()
    assert bytes(received) == payload.upper()
    assert relay.connections == 1


def test_a_refused_upstream_closes_the_client():
    probe = socket.create_server(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    with Relay([Route("127.0.0.1", 0, "127.0.0.1", dead_port)], delay=0.001) as relay:
        listen_port = relay._servers[0].sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", listen_port), timeout=10) as client:
            assert client.recv(10) == b""


def test_the_relay_stops_with_a_connection_still_open():
    upstream = socket.create_server(("127.0.0.1", 0))
    accepted = []
    threading.Thread(target=lambda: accepted.append(upstream.accept()), daemon=True).start()
    with upstream, Relay([Route("127.0.0.1", 0, "127.0.0.1", upstream.getsockname()[1])], delay=0.001) as relay:
        listen_port = relay._servers[0].sockets[0].getsockname()[1]
        client = socket.create_connection(("127.0.0.1", listen_port), timeout=10)
        client.sendall(b"x")
        for _ in range(100):
            if accepted:
                break
            threading.Event().wait(0.02)
        assert accepted[0][0].recv(1) == b"x"
    assert client.recv(10) == b""  # the relay closed it on stop
    client.close()


def test_the_relay_inventory_keeps_one_host_addressed_through_the_relay(tmp_path):
    import dataclasses

    import yaml

    from provisioner import inventory
    from tooling.bench.latency import relay_inventory
    from tooling.lab.inventory import render_inventory
    from tooling.lab.models import LabHost
    from tooling.lab.naming import plan_hosts

    key, known = tmp_path / "id", tmp_path / "known_hosts"
    key.write_text("k")
    key.chmod(0o600)
    known.write_text("10.200.2.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("{}\n")
    hosts = [LabHost(name=p.name, address=p.address, control_address=p.control_address,
                     outsider_address=p.outsider_address, netns=p.netns, root=tmp_path) for p in plan_hosts(3)]
    lab_yaml = tmp_path / "lab.yaml"
    lab_yaml.write_text(render_inventory(hosts, secrets_path=secrets, key_path=key, known_hosts_path=known))
    host = inventory.load(str(lab_yaml)).hosts["lab2"]
    relay_kh = tmp_path / "relay_known_hosts"
    relay_kh.write_text("[127.77.0.2]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n")
    via = dataclasses.replace(host, address="127.77.0.2", port=2222, known_hosts=str(relay_kh))
    out = relay_inventory(lab_yaml, host, via, tmp_path / "relay.yaml")
    data = yaml.safe_load(out.read_text())
    assert list(data["hosts"]) == ["lab2"]
    assert data["groups"]["lab"]["hosts"] == ["lab2"]
    loaded = inventory.load(str(out)).hosts["lab2"]
    assert (loaded.address, loaded.port, loaded.known_hosts) == ("127.77.0.2", 2222, str(relay_kh))
    assert loaded.vars.control_address == "10.200.2.1" and loaded.vars.myhostname == "lab2.example.test"
