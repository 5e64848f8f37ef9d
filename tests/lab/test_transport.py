"""Transport and bad input against real hosts: strict host keys, unreachable hosts, parallel runs."""

from __future__ import annotations

import socket
import threading

import yaml

from conftest import invoke


def listener():
    """A TCP port that records whether anything connected to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.settimeout(0.2)
    hits = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                hits.append(1)
                conn.close()
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], hits, stop


BAD_INPUTS = {
    "unknown host": ("hosts:\n  mail1:\n    address: 127.0.0.1\n    port: {port}\n    known_hosts: {known}\n    vars: {{myhostname: a.example.com, mydomain: example.com}}\n",
                     ["--host", "nosuchhost"], "no host named 'nosuchhost'"),
    "malformed YAML": ("hosts:\n  mail1:\n    address: [127.0.0.1\n", ["--host", "mail1"], "malformed YAML"),
    "unknown key": ("hosts:\n  mail1:\n    address: 127.0.0.1\n    port: {port}\n    known_hosts: {known}\n    prot: 22\n    vars: {{myhostname: a.example.com, mydomain: example.com}}\n",
                    ["--host", "mail1"], "hosts.mail1.prot: unknown key"),
    "wrong type": ("hosts:\n  mail1:\n    address: 127.0.0.1\n    port: {port}\n    known_hosts: {known}\n    vars: {{myhostname: a.example.com, mydomain: example.com, submission: 'yes'}}\n",
                   ["--host", "mail1"], "hosts.mail1.vars.submission: Input should be a valid boolean"),
}


def test_bad_input_gets_one_line_error_exit_1_and_no_connection(tmp_path):
    port, hits, stop = listener()
    known = tmp_path / "known_hosts"
    known.write_text("")
    try:
        for name, (text, args, message) in BAD_INPUTS.items():
            path = tmp_path / f"{name.replace(' ', '_')}.yaml"
            path.write_text(text.format(port=port, known=known))
            outcome = invoke("provision", "--inventory", str(path), *args, json_report=False)
            assert outcome.code == 1, (name, outcome.out)
            errors = [line for line in outcome.out.splitlines() if line.startswith("error:")]
            assert len(errors) == 1 and message in errors[0] and str(path) in errors[0], (name, outcome.out)
    finally:
        stop.set()
    assert hits == []


def test_changed_host_key_is_refused(lab, tmp_path):
    lab3 = next(h for h in lab.hosts if h.name == "lab3")
    other = next(h for h in lab.hosts if h.name == "lab1")
    known = lab.known_hosts_path.read_text().splitlines()
    other_key = next(line.split(" ", 1)[1] for line in known if line.startswith(other.address + " "))
    forged = [line if not line.startswith(lab3.address + " ") else f"{lab3.address} {other_key}" for line in known]
    known_path = tmp_path / "known_hosts"
    known_path.write_text("\n".join(forged) + "\n")
    inv = yaml.safe_load(lab.inventory_path.read_text())
    inv["defaults"]["known_hosts"] = str(known_path)
    inv_path = tmp_path / "inv.yaml"
    inv_path.write_text(yaml.safe_dump(inv))
    outcome = invoke("provision", "--inventory", str(inv_path), "--host", "lab3", "--dry-run", tmp=tmp_path)
    assert outcome.code == 1
    lab3_report = outcome.report["hosts"]["lab3"]
    assert lab3_report["status"] == "unreachable"
    assert "host key for" in lab3_report["error"] and "CHANGED" in lab3_report["error"]
    assert "(got ssh-ed25519 key SHA256:" in lab3_report["error"]  # as ssh-keygen -lf prints it

    # An unknown host (no entry at all) is refused too, never trusted on first use.
    known_path.write_text("\n".join(line for line in known if not line.startswith(lab3.address + " ")) + "\n")
    outcome = invoke("provision", "--inventory", str(inv_path), "--host", "lab3", "--dry-run", tmp=tmp_path)
    assert outcome.code == 1 and "is not in" in outcome.report["hosts"]["lab3"]["error"]


def test_one_unreachable_host_does_not_stop_the_others(lab, tmp_path):
    inv = yaml.safe_load(lab.inventory_path.read_text())
    # A closed port on this machine: unreachable without sending anything elsewhere.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()
    inv["hosts"]["ghost"] = {"address": "127.0.0.1", "port": closed_port, "connect_timeout": 2,
                             "vars": {"myhostname": "ghost.example.test"}}
    inv["groups"]["lab"]["hosts"].append("ghost")
    inv_path = tmp_path / "inv.yaml"
    inv_path.write_text(yaml.safe_dump(inv))
    outcome = invoke("provision", "--inventory", str(inv_path), "--group", "lab", "--dry-run", tmp=tmp_path)
    assert outcome.code == 1, outcome.out
    hosts = outcome.report["hosts"]
    assert hosts["ghost"]["status"] == "unreachable"
    assert {hosts[name]["status"] for name in ("lab1", "lab2", "lab3")} <= {"ok", "pending"}


def test_a_sudo_user_sees_the_same_plan_as_root(lab, tmp_path):
    """A non-root user with NOPASSWD sudo: same facts (SSH_CONNECTION survives sudo), same plan."""
    from conftest import ssh

    pub = lab.key_path.with_suffix(".pub") if lab.key_path.with_suffix(".pub").exists() else None
    key_line = pub.read_text().strip() if pub else ssh(lab, "lab3", "cat /root/.ssh/authorized_keys").stdout.strip()
    ssh(lab, "lab3", "id deploy >/dev/null 2>&1 || useradd -m -s /bin/sh deploy; "
                     "install -d -m 700 -o deploy -g deploy /home/deploy/.ssh; "
                     f"printf '%s\\n' '{key_line}' > /home/deploy/.ssh/authorized_keys; "
                     "chown deploy:deploy /home/deploy/.ssh/authorized_keys; chmod 600 /home/deploy/.ssh/authorized_keys; "
                     "echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy; chmod 440 /etc/sudoers.d/deploy")
    inv = yaml.safe_load(lab.inventory_path.read_text())
    inv["hosts"]["lab3"].update({"user": "deploy", "sudo": True})
    inv_path = tmp_path / "inv.yaml"
    inv_path.write_text(yaml.safe_dump(inv))
    as_root = invoke("provision", "--inventory", str(lab.inventory_path), "--host", "lab3", "--dry-run", tmp=tmp_path)
    as_deploy = invoke("provision", "--inventory", str(inv_path), "--host", "lab3", "--dry-run", tmp=tmp_path)
    assert as_root.code in (0, 2) and as_deploy.code == as_root.code, as_deploy.out
    assert as_deploy.summaries("lab3") == as_root.summaries("lab3")

    ssh(lab, "lab3", "rm -f /etc/sudoers.d/deploy")
    refused = invoke("provision", "--inventory", str(inv_path), "--host", "lab3", "--dry-run", tmp=tmp_path)
    assert refused.code == 1 and "sudo needs a password for deploy" in refused.report["hosts"]["lab3"]["error"]
