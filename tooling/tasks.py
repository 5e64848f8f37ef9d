"""invoke tasks of the tooling: the lab (``lab.up``, ``lab.down``), ``demo`` and ``bench``.

The repository's tasks.py adds them beside the product's own tasks.
"""

from __future__ import annotations

import logging
import sys

from invoke import Collection, Exit, task


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


def _logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="lab: %(message)s", stream=sys.stderr)


@task(name="up", help={"hosts": "number of lab hosts, lab1..labN (default 1)",
                        "suite": "their Debian suite: bookworm (Debian 12, the default) or trixie (Debian 13)",
                        "suites": "each host's suite instead, in order, e.g. bookworm,trixie"})
def lab_up(c, hosts=1, suite="bookworm", suites=None):
    """Boot lab hosts (Debian 12 and/or 13) and write inventories/lab.yaml."""
    from tooling.lab import LabError, up

    _logging()
    try:
        lab = up(hosts=[s.strip() for s in suites.split(",")] if suites else [suite] * int(hosts))
    except LabError as e:
        raise Exit(f"lab.up failed: {e}", code=1) from e
    for h in lab.hosts:
        print(f"{h.name}  {h.address}  {h.suite}  (control {h.control_address}, outsider {h.outsider_address})")
    print(f"inventory: {lab.inventory_path}")
    print(f"secrets:   {lab.secrets_path}")
    print(f"ssh:       ssh -i {lab.key_path} -o UserKnownHostsFile={lab.known_hosts_path} root@{lab.hosts[0].address}")


@task(name="down")
def lab_down(c):
    """Stop and remove all lab hosts and the lab inventory (image cache stays)."""
    from tooling.lab import LabError, down

    _logging()
    try:
        down()
    except LabError as e:
        raise Exit(f"lab.down failed: {e}", code=1) from e
    print("lab is down")


@task(name="reboot", help={"host": "the lab host to reboot (lab1, lab2...)"})
def lab_reboot(c, host):
    """Reboot a lab host as a real reboot would: container restarted, network namespace (and its rules) made again."""
    from tooling.lab import LabError
    from tooling.lab.faults import reboot

    _logging()
    try:
        took = reboot(host)
    except LabError as e:
        raise Exit(f"lab.reboot failed: {e}", code=1) from e
    print(f"{host} rebooted in {took:.1f} s")


@task(name="link", help={"host": "the lab host (lab1, lab2...)", "up": "bring the link back (default: take it down)"})
def lab_link(c, host, up=False):
    """Take a lab host's link down (packets dropped, no FIN or RST), or bring it back with --up."""
    from tooling.lab import LabError
    from tooling.lab.faults import link_down, link_up

    _logging()
    try:
        (link_up if up else link_down)(host)
    except LabError as e:
        raise Exit(f"lab.link failed: {e}", code=1) from e


@task
def demo(c):
    """Boot a lab host, provision it, verify it and print the recap."""
    from tooling.demo import run_demo

    _exit(run_demo())


@task(help={"runs": "timed runs per tool and job (default 5)",
            "repair": "also time the repair of one main.cf drift (default on; --no-repair skips it)",
            "hosts": "scale rows on this many fresh lab hosts (default 1: none)",
            "latency": "the 50 ms RTT rows through the relay (default on; --no-latency skips them)",
            "forks": "provisioner's --forks for the scale rows (default: its own default)"})
def bench(c, runs=5, repair=True, hosts="1", latency=True, forks=None):
    """provisioner vs ansible-core vs pyinfra on fresh lab hosts; scale rows with --hosts N (or 10,50); targets checked."""
    from tooling.bench.run import run_bench

    _exit(run_bench(runs=int(runs), repair=repair, hosts=str(hosts), latency=latency,
                    forks=int(forks) if forks else None))


lab = Collection("lab")
lab.add_task(lab_up)
lab.add_task(lab_down)
lab.add_task(lab_reboot)
lab.add_task(lab_link)

# The tasks tasks.py puts at the top level, beside the product's.
TASKS = (demo, bench)
