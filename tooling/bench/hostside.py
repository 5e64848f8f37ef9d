"""Commands on the lab hosts over plain OpenSSH: the bench's own set-up, and the lab's floor.

The floor: the same fact script provisioner sends, sent to every host at
once, one ``ssh ... sh -s < script`` process per host in parallel. It is what
a no-op dry run cannot go below on this lab (connection, the script's run on
the host, its output back), measured in the same run as the dry runs.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from provisioner.engine.hostrun import run_fact_spec
from provisioner.inventory import Host
from provisioner.probes import new_boundary, spec_script
from tooling.bench.measure import children_cpu
from tooling.bench.peer_state import PEER_MARKER
from tooling.bench.peers import BenchError, ssh_options


def ssh_argv(host: Host, *command: str) -> list[str]:
    argv = ["ssh", "-F", "/dev/null", *ssh_options(host), "-p", str(host.port)]
    if host.key:
        argv += ["-i", os.path.expanduser(host.key)]
    return [*argv, f"{host.user}@{host.address}", *command]


def ssh(host: Host, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(ssh_argv(host, command), capture_output=True, text=True, timeout=timeout)


def on_all(hosts: list[Host], command: str, what: str, timeout: float = 900) -> None:
    """``command`` on every host in parallel; BenchError naming the hosts where it failed."""
    with ThreadPoolExecutor(max_workers=min(len(hosts), 16)) as pool:
        results = list(pool.map(lambda h: (h, ssh(h, command, timeout)), hosts))
    failed = [(h, r) for h, r in results if r.returncode != 0]
    if failed:
        h, r = failed[0]
        raise BenchError(f"{what} failed on {', '.join(h.name for h, _ in failed)}; "
                         f"{h.name}: {(r.stdout + r.stderr)[-1500:]}")


ANSIBLE_NEEDS = ("command -v python3 >/dev/null && python3 -c 'import apt' 2>/dev/null || "
                 "DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-apt")


def prepare_for_peers(hosts: list[Host]) -> None:
    """python3 and python3-apt (Ansible's apt module needs them), from the lab's offline repo; untimed."""
    on_all(hosts, ANSIBLE_NEEDS, "apt-get install python3 python3-apt")


def mark_peers_converged(host: Host) -> None:
    """On a host provisioner converged: the peers' record of a completed job, so their lockdown stays off."""
    result = ssh(host, f"touch {PEER_MARKER}")
    if result.returncode != 0:
        raise BenchError(f"{host.name}: could not write {PEER_MARKER}: {result.stderr.strip()}")


def floor_script(host: Host) -> str:
    """The fact script a provision run of ``host`` sends (its boundary is new each time, as provisioner's)."""
    return spec_script(run_fact_spec(host), new_boundary())


def measure_floor(hosts: list[Host]) -> tuple[float, float]:
    """(wall seconds, control-node CPU seconds) of the fact script sent to all hosts at once over OpenSSH."""
    with tempfile.TemporaryDirectory(prefix="bench-floor-") as name:
        tmp = Path(name)
        scripts = []
        for host in hosts:
            path = tmp / f"{host.name}.sh"
            path.write_text(floor_script(host))
            scripts.append(path)
        cpu_before = children_cpu()
        start = time.perf_counter()
        procs = []
        for host, script in zip(hosts, scripts):
            with open(script, "rb") as stdin, open(tmp / f"{host.name}.out", "wb") as out:
                procs.append((host, subprocess.Popen(ssh_argv(host, "sh", "-s"), stdin=stdin, stdout=out,
                                                     stderr=subprocess.STDOUT)))
        codes = [(host, proc.wait(timeout=600)) for host, proc in procs]
        seconds = time.perf_counter() - start
        cpu = children_cpu() - cpu_before
        failed = [host.name for host, code in codes if code != 0]
        cut = [host.name for host in hosts if b" end\n" not in (tmp / f"{host.name}.out").read_bytes()]
        if failed or cut:
            raise BenchError(f"the floor's fact script failed on {', '.join(failed + cut)}")
        return seconds, cpu
