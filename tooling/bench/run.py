"""The bench itself: converge the host, check fairness, then time and count each tool.

Before timing, every tool's check run must report 0 changes on the converged
host; a tool that does not is a broken comparison and the bench stops.

Runs are interleaved (one of each tool per round), each tool gets one untimed
warm-up run, and every run is a fresh process with a cold SSH connection
(Ansible gets a new ControlPath directory per run). Wall time is
``time.perf_counter`` around ``subprocess.run``.
"""

from __future__ import annotations

import json
import os
import platform as pyplatform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from provisioner.desired import MAIN_CF, desired_state
from provisioner.inventory import Host
from provisioner.platforms import DEBIAN12
from tooling.bench.peer_state import peer_desired
from tooling.bench.peers import (
    BENCH_DIR,
    BENCH_HOST,
    PYINFRA_COUNTS,
    REPO_ROOT,
    BenchError,
    Tool,
    ansible_changes,
    ansible_inventory,
    make_tools,
    provisioner_changes,
    pyinfra_changes,
    pyinfra_inventory,
    ssh_options,
)
from tooling.bench.show import BenchView

GENERATED_DIR = BENCH_DIR / "generated"
RESULTS_PATH = BENCH_DIR / "results.json"

# The drift the repair job puts back: a value provisioner manages, edited by hand.
DRIFT_KEY = "smtpd_tls_loglevel"
DRIFT_VALUE = "1"
REPAIR_TITLE = f"repair one drift ({DRIFT_KEY} edited by hand; apply, reload postfix)"


@dataclass
class Outcome:
    seconds: float
    code: int
    changes: int | None
    output: str
    round_trips: int | None = None
    ssh_masters: int | None = None  # Ansible: ControlMaster sockets the run opened


@dataclass
class Stats:
    times: list[float] = field(default_factory=list)
    changes: list[int | None] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {
            "median_s": round(statistics.median(self.times), 3) if self.times else None,
            "min_s": round(min(self.times), 3) if self.times else None,
            "runs_s": [round(t, 3) for t in self.times],
            "changes": self.changes,
        }


def _close_masters(control_dir: Path) -> None:
    for sock in control_dir.iterdir() if control_dir.exists() else ():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"],
                       capture_output=True, timeout=10)


def run_tool(tool: Tool, apply: bool, extra: list[str] | None = None) -> Outcome:
    """One run in a fresh process; the timed part is the subprocess only."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool.key}-") as name:
        tmp = Path(name)
        argv = [a.replace("{tmp}", name) for a in (tool.apply_argv if apply else tool.check_argv)]
        argv += extra or []
        env = {**os.environ, **tool.env}
        control = tmp / "cp"
        if tool.control_dir:
            control.mkdir()
            env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control)
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
        seconds = time.perf_counter() - start
        masters = None
        if tool.control_dir:
            masters = sum(1 for _ in control.iterdir())
            _close_masters(control)
        output = proc.stdout
        round_trips = None
        if tool.key == "provisioner":
            changes, round_trips = provisioner_changes(tmp / "provisioner.json")
        elif tool.key.startswith("ansible"):
            changes = ansible_changes(output)
        else:
            changes = pyinfra_changes(output, apply)
        return Outcome(seconds, proc.returncode, changes, output, round_trips, masters)


def count_ansible(tool: Tool) -> dict[str, int]:
    """SSH processes and master connections of one check run, from -vvv (untimed)."""
    outcome = run_tool(tool, apply=False, extra=["-vvv"])
    # Each ssh (or sftp) process Ansible starts is one remote command; with
    # ControlMaster=auto they share the TCP connections whose control sockets
    # the run left in its ControlPath directory.
    execs = len(re.findall(r"SSH: EXEC (?:ssh|sftp|scp) ", outcome.output))
    return {"ssh_connections": outcome.ssh_masters or 0, "remote_commands": execs}


PYINFRA_COUNTER = r"""
import json, sys
from pyinfra.connectors.ssh import SSHConnector
counts = {"ssh_connections": 0, "remote_commands": 0}
def wrap(name, key):
    original = getattr(SSHConnector, name)
    def wrapped(self, *a, **k):
        counts[key] += 1
        return original(self, *a, **k)
    setattr(SSHConnector, name, wrapped)
wrap("connect", "ssh_connections")
for method in ("run_shell_command", "put_file", "get_file"):
    wrap(method, "remote_commands")
from pyinfra_cli.main import main
sys.argv = ["pyinfra", *sys.argv[1:]]
try:
    main()
finally:
    print("@@bench-pyinfra-counts " + json.dumps(counts))
"""


def count_pyinfra(tool: Tool) -> dict[str, int] | None:
    """Connections and remote commands of one --dry run, by wrapping pyinfra's SSH connector (untimed)."""
    argv = [sys.executable, "-c", PYINFRA_COUNTER, *tool.check_argv[1:]]
    proc = subprocess.run(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith(PYINFRA_COUNTS):
            return json.loads(line[len(PYINFRA_COUNTS):])
    return None


# ---------------------------------------------------------------- host side


def _ssh(host: Host, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    argv = ["ssh", "-F", "/dev/null", *ssh_options(host), "-p", str(host.port)]
    if host.key:
        argv += ["-i", os.path.expanduser(host.key)]
    argv += [f"{host.user}@{host.address}", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def _main_cf_value(host: Host, key: str) -> str:
    result = _ssh(host, f"grep -E '^{key}[[:space:]]*=' {MAIN_CF}")
    return result.stdout.strip()


def _drift(host: Host) -> None:
    result = _ssh(host, f"sed -i 's/^{DRIFT_KEY} = .*/{DRIFT_KEY} = {DRIFT_VALUE}/' {MAIN_CF} && "
                        f"grep -qx '{DRIFT_KEY} = {DRIFT_VALUE}' {MAIN_CF}")
    if result.returncode != 0:
        raise BenchError(f"could not put the drift in {MAIN_CF}: {result.stderr.strip()}")


def tool_versions() -> dict[str, str]:
    return {
        "provisioner": metadata.version("provisioner"),
        "ansible-core": metadata.version("ansible-core"),
        "pyinfra": metadata.version("pyinfra"),
        "python": pyplatform.python_version(),
        "openssh": subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip(),
        "paramiko": metadata.version("paramiko"),
        "target": "Debian 12 (systemd-nspawn lab host, own netns)",
        "control node": f"{os.cpu_count()} CPUs, {pyplatform.platform(terse=True)}",
    }


# ---------------------------------------------------------------- the run


def run_bench(runs: int = 5, repair: bool = True) -> int:
    from provisioner import app, inventory
    from tooling.lab import up

    view = BenchView()
    if runs < 1:
        view.error("--runs must be at least 1")
        return 1
    try:
        versions = tool_versions()
    except metadata.PackageNotFoundError as exc:
        view.error(f"{exc} is not installed: run `make bench` (installs '.[bench]')")
        return 1

    view.heading("1. boot the bench host and converge it with provisioner")
    lab = up(hosts=1)
    inv = inventory.load(lab.inventory_path)
    host = inv.hosts[BENCH_HOST]
    # Ansible needs Python on the target and python3-apt for its apt module (from the lab's offline repo).
    view.note(f"installing python3 python3-apt on {host.name} for Ansible (untimed)")
    result = _ssh(host, "command -v python3 >/dev/null && python3 -c 'import apt' 2>/dev/null || "
                        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-apt", timeout=600)
    if result.returncode != 0:
        view.error("apt-get install python3 python3-apt failed:", f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return 1
    code = app.provision(str(lab.inventory_path), [host.name], show_diff=False)
    if code != 0:
        view.error("provisioning the bench host failed; no bench without a converged, verified host")
        return 1

    GENERATED_DIR.mkdir(parents=True, exist_ok=True)
    desired_path = GENERATED_DIR / "desired.json"
    desired_path.write_text(json.dumps(peer_desired(host.vars, DEBIAN12), indent=2) + "\n")
    (GENERATED_DIR / "ansible-inventory.json").write_text(json.dumps(ansible_inventory(host), indent=2) + "\n")
    (GENERATED_DIR / "pyinfra_inventory.py").write_text(pyinfra_inventory(host, desired_path))
    try:
        tools = make_tools(lab.inventory_path, host, GENERATED_DIR)
    except BenchError as exc:
        view.error(str(exc))
        return 1

    view.heading("2. every tool's check run must report 0 changes on the converged host")
    rows = []
    broken = []
    converged: dict[str, int | None] = {}
    for tool in tools:
        outcome = run_tool(tool, apply=False)
        converged[tool.key] = outcome.changes
        ok = outcome.changes == 0 and outcome.code == 0
        rows.append((tool, outcome.code, outcome.changes, ok))
        if not ok:
            broken.append((tool, outcome))
    view.fairness(rows)
    for tool, outcome in broken:
        view.error(f"{tool.label} output (last 3000 characters):", outcome.output[-3000:])
    if broken:
        return 1

    view.heading("3. count SSH connections and remote commands (untimed)")
    counts: dict[str, dict[str, int] | None] = {}
    for tool in tools:
        if tool.key == "provisioner":
            rt = run_tool(tool, apply=False).round_trips
            # provisioner's round trips = the connection + one per remote script.
            counts[tool.key] = {"ssh_connections": 1, "remote_commands": rt - 1} if rt else None
        elif tool.key.startswith("ansible"):
            counts[tool.key] = count_ansible(tool)
        else:
            counts[tool.key] = count_pyinfra(tool)
        view.note(f"{tool.label}: {counts[tool.key]}")

    view.heading(f"4. drift check, {runs} timed runs per tool, interleaved")
    check = {tool.key: Stats() for tool in tools}
    for round_ in range(runs):
        for tool in rotate(tools, round_):
            outcome = run_tool(tool, apply=False)
            if outcome.code != 0 or outcome.changes != 0:
                view.error(f"{tool.label}: run {round_ + 1} exit {outcome.code}, changes {outcome.changes}",
                           outcome.output[-3000:])
                return 1
            check[tool.key].times.append(outcome.seconds)
            check[tool.key].changes.append(outcome.changes)
        view.note(f"round {round_ + 1}: " + ", ".join(f"{t.label} {check[t.key].times[-1]:.2f}s" for t in tools))

    repaired: dict[str, Stats] = {}
    if repair:
        view.heading(f"5. repair one drift ({DRIFT_KEY} = {DRIFT_VALUE} by hand), {runs} timed runs per tool")
        want = dict(desired_state(host.vars, DEBIAN12).main_cf.lines)[DRIFT_KEY]
        repaired = {tool.key: Stats() for tool in tools}
        for round_ in range(runs + 1):  # round 0: untimed warm-up
            for tool in rotate(tools, round_):
                _drift(host)
                outcome = run_tool(tool, apply=True)
                now = _main_cf_value(host, DRIFT_KEY)
                if outcome.code != 0 or now != want or not outcome.changes:
                    view.error(f"{tool.label}: repair run exit {outcome.code}, changes {outcome.changes}, "
                               f"main.cf now {now!r} (want {want!r})", outcome.output[-3000:])
                    return 1
                if round_:
                    repaired[tool.key].times.append(outcome.seconds)
                    repaired[tool.key].changes.append(outcome.changes)
            if round_:
                view.note(f"round {round_}: " + ", ".join(
                    f"{t.label} {repaired[t.key].times[-1]:.2f}s" for t in tools))
        # The host is converged again for the peers' check too.
        for tool in tools:
            outcome = run_tool(tool, apply=False)
            if outcome.changes != 0:
                view.error(f"{tool.label} sees changes after the repair runs", outcome.output[-3000:])
                return 1

    results = build_results(tools, check, repaired, counts, versions, runs)
    results["converged_check_changes"] = converged
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    view.heading("results")
    view.results(results, REPAIR_TITLE)
    view.note(f"written: {RESULTS_PATH.relative_to(REPO_ROOT)}; lab host {host.name} is still up "
              "(`invoke lab.down` removes it)")
    return 0


def rotate(tools: list[Tool], round_: int) -> list[Tool]:
    """Each round starts with a different tool, so that no tool always runs first."""
    shift = round_ % len(tools)
    return tools[shift:] + tools[:shift]


def build_results(tools: list[Tool], check: dict[str, Stats], repaired: dict[str, Stats],
                  counts: dict[str, dict[str, int] | None], versions: dict[str, str], runs: int) -> dict[str, Any]:
    def job(stats: dict[str, Stats]) -> dict[str, Any]:
        base = statistics.median(stats["provisioner"].times)
        rows = {}
        for tool in tools:
            row = stats[tool.key].row()
            row["ratio_vs_provisioner"] = round(row["median_s"] / base, 2) if base else None
            rows[tool.key] = row
        return rows

    return {
        "runs": runs,
        "host": f"{BENCH_HOST} (Debian 12 lab host), converged and verified by provisioner before timing",
        "versions": versions,
        "tools": {tool.key: {"label": tool.label, "what": tool.what, **(counts.get(tool.key) or {})}
                  for tool in tools},
        "drift_check": job(check),
        "repair": job(repaired) if repaired else None,
        "timing": "wall time of the whole CLI process (time.perf_counter around subprocess.run); "
                  "one untimed warm-up run per tool; runs interleaved; cold SSH connection each run",
    }
