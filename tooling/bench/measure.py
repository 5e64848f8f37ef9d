"""One timed run of a tool: wall time, control-node CPU, changes; and the untimed counting runs.

Wall time is ``time.perf_counter`` around the process; control-node CPU is
user+sys of the process tree (``resource.getrusage(RUSAGE_CHILDREN)`` before
and after: the tool and every descendant it waited for, such as Ansible's
ssh processes; a daemonized ControlPersist master is not among them).
"""

from __future__ import annotations

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tooling.bench.show import BenchView

from tooling.bench.peers import (
    PYINFRA_COUNTS,
    REPO_ROOT,
    BenchError,
    Tool,
    ansible_changes,
    provisioner_changes,
    provisioner_report,
    pyinfra_changes,
)


@dataclass
class Outcome:
    seconds: float
    cpu_seconds: float
    code: int
    changes: int | None
    output: str
    round_trips: int | None = None
    ssh_masters: int | None = None  # Ansible: ControlMaster sockets the run opened
    verified: bool | None = None  # provisioner: every host's verify passed (None: no verify ran)
    verified_hosts: int | None = None  # provisioner: hosts whose verify passed
    profile: dict[str, float] | None = None  # provisioner, one host: seconds per step and phase


@dataclass
class Stats:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    changes: list[int | None] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.times.append(outcome.seconds)
        self.cpu.append(outcome.cpu_seconds)
        self.changes.append(outcome.changes)

    def row(self) -> dict[str, Any]:
        return {
            "median_s": round(statistics.median(self.times), 3) if self.times else None,
            "min_s": round(min(self.times), 3) if self.times else None,
            "runs_s": [round(t, 3) for t in self.times],
            "cpu_median_s": round(statistics.median(self.cpu), 3) if self.cpu else None,
            "cpu_runs_s": [round(t, 3) for t in self.cpu],
            "changes": self.changes,
        }


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str] | None = None, timeout: float = 1800,
          stdin: str | None = None) -> tuple[subprocess.CompletedProcess, float, float]:
    """(the finished process, wall seconds, CPU seconds of its process tree)."""
    cpu_before = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, input=stdin,
                          stdin=None if stdin is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    return proc, seconds, children_cpu() - cpu_before


def _close_masters(control_dir: Path) -> None:
    for sock in control_dir.iterdir() if control_dir.exists() else ():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"],
                       capture_output=True, timeout=10)


def run_tool(tool: Tool, job: str, extra: list[str] | None = None) -> Outcome:
    """One run in a fresh process; the timed part is the subprocess only."""
    apply = job != "check"
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool.key}-") as name:
        tmp = Path(name)
        argv = [a.replace("{tmp}", name) for a in tool.argv[job]] + (extra or [])
        env = {**os.environ, **tool.env}
        control = tmp / "cp"
        if tool.control_dir:
            control.mkdir()
            env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(control)
        proc, seconds, cpu = timed(argv, env)
        masters = None
        if tool.control_dir:
            masters = sum(1 for _ in control.iterdir())
            _close_masters(control)
        output = proc.stdout
        round_trips = verified = verified_hosts = profile = None
        if tool.key == "provisioner":
            changes, round_trips = provisioner_changes(tmp / "provisioner.json", list(tool.hosts))
            hosts = provisioner_report(tmp / "provisioner.json") or {}
            states = [hosts[n].verified if n in hosts else False for n in tool.hosts]
            verified = None if all(v is None for v in states) else all(v is True for v in states)
            verified_hosts = sum(v is True for v in states)
            if len(tool.hosts) == 1 and tool.hosts[0] in hosts:
                profile = hosts[tool.hosts[0]].profile
        elif tool.key.startswith("ansible"):
            changes = ansible_changes(output)
        else:
            changes = pyinfra_changes(output, apply)
        return Outcome(seconds, cpu, proc.returncode, changes, output, round_trips, masters, verified, verified_hosts, profile)


def count_ansible(tool: Tool) -> dict[str, int]:
    """SSH processes and master connections of one check run, from -vvv (untimed)."""
    outcome = run_tool(tool, "check", extra=["-vvv"])
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
    argv = [sys.executable, "-c", PYINFRA_COUNTER, *tool.argv["check"][1:]]
    proc = subprocess.run(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith(PYINFRA_COUNTS):
            return json.loads(line[len(PYINFRA_COUNTS):])
    return None


def count_tool(tool: Tool) -> dict[str, int] | None:
    if tool.key == "provisioner":
        rt = run_tool(tool, "check").round_trips
        # provisioner's round trips = the connection + one per remote script.
        return {"ssh_connections": 1, "remote_commands": rt - 1} if rt else None
    if tool.key.startswith("ansible"):
        return count_ansible(tool)
    return count_pyinfra(tool)


def rotate(tools: list[Tool], round_: int) -> list[Tool]:
    """Each round starts with a different tool, so that no tool always runs first."""
    shift = round_ % len(tools)
    return tools[shift:] + tools[:shift]


def fail(tool: Tool, what: str, outcome: Outcome) -> BenchError:
    return BenchError(f"{tool.label}: {what}: exit {outcome.code}, changes {outcome.changes}\n"
                      + outcome.output[-3000:])


def timed_rounds(view: BenchView, tools: list[Tool], job: str, runs: int, title: str,
                 before=None, after=None, warm_up: bool = True) -> dict[str, Stats]:
    """``runs`` interleaved rounds (after one untimed warm-up round unless the caller had one);
    each run must succeed as ``after`` says."""
    stats = {tool.key: Stats() for tool in tools}
    for round_ in range(0 if warm_up else 1, runs + 1):
        for tool in rotate(tools, round_):
            if before:
                before()
            outcome = run_tool(tool, job)
            problem = after(tool, outcome) if after else (
                None if outcome.code == 0 and outcome.changes == 0 else "not a no-op")
            if problem:
                raise fail(tool, f"{title}, round {round_}: {problem}", outcome)
            if round_:
                stats[tool.key].add(outcome)
        if round_:
            view.note(f"{title}, round {round_}: " + ", ".join(
                f"{t.label} {stats[t.key].times[-1]:.2f}s" for t in tools))
    return stats
