"""`make bench`: provisioner side by side with Ansible and pyinfra, on the same lab host.

Two jobs, each tool doing the same one (docs/bench.md says exactly what):

1. drift check of a converged host: ``invoke provision --dry-run --no-verify``,
   ``ansible-playbook --check --diff``, ``pyinfra --dry --diff``;
2. repair of one drift: one main.cf key edited by hand before each run, then
   each tool applies and must put it back (and reload Postfix).

The peers' desired state is generated here from ``main_cf_settings`` and the
lab inventory's vars (``peer_desired``), so it cannot drift from provisioner's.
Before timing, every tool's check run must report 0 changes on the converged
host; a tool that does not is a broken comparison and the bench stops.

Runs are interleaved (one of each tool per round), each tool gets one untimed
warm-up run, and every run is a fresh process with a cold SSH connection
(Ansible gets a new ControlPath directory per run). Wall time is
``time.perf_counter`` around ``subprocess.run``. SSH connections and remote
commands are counted, never guessed: provisioner's from its JSON report,
Ansible's from an extra ``-vvv`` run, pyinfra's from an extra run with its SSH
connector's methods wrapped (both untimed).

This module prints: it is a CLI front end, like ``report``.
"""

from __future__ import annotations

import json
import os
import platform as pyplatform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from provisioner.desired import (
    ALIASES,
    MAIN_CF,
    PAM_ALLOW_FILE,
    PAM_LISTFILE_LINE,
    PAM_SMTP,
    VIRTUAL_MAP,
    main_cf_settings,
)
from provisioner.inventory import Host
from provisioner.vars import MailVars
from provisioner.platforms import DEBIAN, Platform
from provisioner.steps.aliases import render_virtual
from provisioner.steps.main_cf import render_line
from provisioner.steps.pam import allow_file_content
from provisioner.steps.sasl import SMTPD_CONF, render_assignment, saslauthd_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "bench"
GENERATED_DIR = BENCH_DIR / "generated"
RESULTS_PATH = BENCH_DIR / "results.json"
PLAYBOOK = BENCH_DIR / "ansible" / "playbook.yml"
ANSIBLE_CFG = BENCH_DIR / "ansible" / "ansible.cfg"
PYINFRA_DEPLOY = BENCH_DIR / "pyinfra" / "deploy.py"
BENCH_HOST = "lab1"

# Debian 12's sasl2-bin ships these variables double-quoted; provisioner keeps
# a line's quoting when it replaces it, and appends START unquoted.
DEBIAN_QUOTED_SASLAUTHD = frozenset({"MECHANISMS", "OPTIONS"})

# The drift the repair job puts back: a value provisioner manages, edited by hand.
DRIFT_KEY = "smtpd_tls_loglevel"
DRIFT_VALUE = "1"


# ---------------------------------------------------------------- pure parts


def peer_desired(vars: MailVars, platform: Platform = DEBIAN) -> dict[str, Any]:
    """The desired state the peers check, as data, from provisioner's own definitions.

    Lines are rendered exactly as provisioner writes them, so that a host
    provisioner converged is converged for the peers too.
    """
    settings = main_cf_settings(vars, platform)
    sasl = saslauthd_settings(platform)
    return {
        "main_cf_path": MAIN_CF,
        "main_cf_set": [
            {"key": key, "line": render_line(key, value).rstrip("\n")}
            for key, value in settings.items()
            if value is not None
        ],
        "main_cf_absent": [key for key, value in settings.items() if value is None],
        "mail_packages": list(platform.mail_packages),
        "sendmail_packages": list(platform.sendmail_packages) if vars.remove_sendmail else [],
        "smtpd_sasl_conf": {"path": platform.smtpd_sasl_conf, "content": SMTPD_CONF},
        "saslauthd_defaults": {
            "path": platform.saslauthd_defaults,
            "lines": [
                {"key": key, "line": render_assignment(key, value, key in DEBIAN_QUOTED_SASLAUTHD).rstrip("\n")}
                for key, value in sasl.items()
            ],
        },
        "pam_smtp": {"path": PAM_SMTP, "line": PAM_LISTFILE_LINE},
        "pam_allow_file": {"path": PAM_ALLOW_FILE, "content": allow_file_content([vars.mail_group])},
        "mail_group": vars.mail_group,
        "mail_users": list(vars.mail_users),
        "virtual_map": {"path": VIRTUAL_MAP, "content": render_virtual(vars.virtual_aliases)},
        "aliases": {"path": ALIASES, "root_line": f"root:\t\t{vars.root_alias}" if vars.root_alias else None},
        "services": ["saslauthd", "postfix"],
    }


def ssh_options(host: Host) -> list[str]:
    """Strict host keys, the inventory's known_hosts only, the inventory's key only."""
    return [
        "-o", "StrictHostKeyChecking=yes",
        "-o", f"UserKnownHostsFile={os.path.expanduser(host.known_hosts)}",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "IdentitiesOnly=yes",
        "-o", "BatchMode=yes",
    ]


def ansible_inventory(host: Host) -> dict[str, Any]:
    hostvars: dict[str, Any] = {
        "ansible_host": host.address,
        "ansible_port": host.port,
        "ansible_user": host.user,
        "ansible_ssh_common_args": " ".join(ssh_options(host)),
    }
    if host.key:
        hostvars["ansible_ssh_private_key_file"] = host.key
    return {"all": {"children": {"bench": {"hosts": {host.name: hostvars}}}}}


def pyinfra_inventory(host: Host, desired_path: Path) -> str:
    data: dict[str, Any] = {
        "ssh_user": host.user,
        "ssh_port": host.port,
        "ssh_known_hosts_file": os.path.expanduser(host.known_hosts),
        "ssh_strict_host_key_checking": "yes",
        "ssh_allow_agent": False,
        "ssh_look_for_keys": False,
        "bench_desired": str(desired_path),
    }
    if host.key:
        data["ssh_key"] = host.key
    return (
        "# generated by provisioner.bench; do not edit\n"
        f"bench = [({host.address!r}, {data!r})]\n"
    )


RECAP_RE = re.compile(r"^\S+\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def ansible_changes(output: str) -> int | None:
    """changed=N from the PLAY RECAP; None when there is no recap or a failure."""
    match = RECAP_RE.search(output)
    if not match or int(match.group(3)) or int(match.group(4)):
        return None
    return int(match.group(2))


PYINFRA_COUNTS = "@@bench-pyinfra-counts "


def pyinfra_changes(output: str, apply: bool) -> int | None:
    """Operations pyinfra changes (apply) or would change (--dry); None on an error.

    --dry: the "Detected changes" table, one row per operation, whose Change
    column is "-" when the operation would change nothing (its "Conditional
    Change" column lists handlers guarded by ``_if``: they run only when the
    operations they watch change). Apply: the ``[host] Success`` lines.
    """
    if re.search(r"^\s*\[[^\]]+\]\s+(Error|Could not connect)", output, re.MULTILINE) or "No hosts remaining" in output:
        return None
    if apply:
        if "--> Results:" not in output:
            return None
        return len(re.findall(r"^\s*\[[^\]]+\]\s+Success\b", output, re.MULTILINE))
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("--> Detected changes:"))
    except StopIteration:
        return None
    header = lines[start + 1]
    change_at = header.find("Change")
    conditional_at = header.find("Conditional")
    if change_at < 0 or conditional_at < 0:
        return None
    changes = 0
    for line in lines[start + 2:]:
        if not line.strip():
            break
        if line[change_at:conditional_at].strip() not in ("-", ""):
            changes += 1
    return changes


# ---------------------------------------------------------------- tools


@dataclass
class Tool:
    key: str
    label: str
    what: str
    check_argv: list[str]
    apply_argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    control_dir: bool = False  # a fresh ANSIBLE_SSH_CONTROL_PATH_DIR per run


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


def _venv_bin(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise BenchError(f"{path} missing: run `make bench` (it installs '.[bench]' into the venv)")
    return str(path)


class BenchError(Exception):
    pass


def _provisioner_changes(tmp: Path) -> tuple[int | None, int | None]:
    try:
        data = json.loads((tmp / "provisioner.json").read_text())
    except (OSError, ValueError):
        return None, None
    host = data["hosts"].get(BENCH_HOST, {})
    if host.get("status") not in ("ok", "changed", "pending"):
        return None, None
    return len(host.get("changes", [])), host.get("round_trips")


def make_tools(inventory_path: Path, host: Host, gen: Path) -> list[Tool]:
    invoke = _venv_bin("invoke")
    playbook = _venv_bin("ansible-playbook")
    pyinfra = _venv_bin("pyinfra")
    common = ["provision", "--inventory", str(inventory_path), "--host", host.name, "--no-verify"]
    ansible_base = [playbook, "-i", str(gen / "ansible-inventory.json"), "-e",
                    f"desired_file={gen / 'desired.json'}", str(PLAYBOOK)]
    ansible_env = {
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(gen / "ansible-tmp"),
        "ANSIBLE_HOME": str(gen / "ansible-home"),
    }
    pyinfra_base = [pyinfra, str(gen / "pyinfra_inventory.py"), str(PYINFRA_DEPLOY), "--diff"]
    return [
        Tool(
            key="provisioner",
            label="provisioner",
            what="invoke provision --no-verify (one SSH connection, one batched fact script)",
            check_argv=[invoke, *common, "--dry-run", "--json", "{tmp}/provisioner.json"],
            apply_argv=[invoke, *common, "--json", "{tmp}/provisioner.json"],
        ),
        Tool(
            key="ansible",
            label="ansible (defaults)",
            what="ansible-playbook, shipped defaults: no pipelining; ssh_args -C -o ControlMaster=auto "
                 "-o ControlPersist=60s (the default); interpreter discovery",
            check_argv=[*ansible_base, "--check", "--diff"],
            apply_argv=[*ansible_base, "--diff"],
            env=dict(ansible_env),
            control_dir=True,
        ),
        Tool(
            key="ansible-tuned",
            label="ansible (tuned)",
            what="ansible-playbook with pipelining on, ControlMaster/ControlPersist on, "
                 "interpreter_python=/usr/bin/python3 (no discovery)",
            check_argv=[*ansible_base, "--check", "--diff"],
            apply_argv=[*ansible_base, "--diff"],
            env={
                **ansible_env,
                "ANSIBLE_PIPELINING": "True",
                "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=auto -o ControlPersist=60s",
                "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
            },
            control_dir=True,
        ),
        Tool(
            key="pyinfra",
            label="pyinfra",
            what="pyinfra (one paramiko connection; a remote command per fact and per change)",
            check_argv=[*pyinfra_base, "--dry"],
            apply_argv=[*pyinfra_base, "-y"],
        ),
    ]


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
            changes, round_trips = _provisioner_changes(tmp)
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
    def first_line(argv: list[str]) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout
        except OSError:
            return "?"
        return out.strip().splitlines()[0] if out.strip() else "?"

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
    from rich.console import Console
    from rich.table import Table

    from provisioner import app, inventory
    from provisioner.lab import up

    console = Console(highlight=False)
    if runs < 1:
        console.print("[red]--runs must be at least 1[/red]")
        return 1
    try:
        versions = tool_versions()
    except metadata.PackageNotFoundError as exc:
        console.print(f"[red]{exc} is not installed: run `make bench` (installs '.[bench]')[/red]")
        return 1

    console.rule("[bold]1. boot the bench host and converge it with provisioner")
    lab = up(hosts=1)
    inv = inventory.load(lab.inventory_path)
    host = inv.hosts[BENCH_HOST]
    # Ansible needs Python on the target and python3-apt for its apt module (from the lab's offline repo).
    console.print(f"installing python3 python3-apt on {host.name} for Ansible (untimed)")
    result = _ssh(host, "command -v python3 >/dev/null && python3 -c 'import apt' 2>/dev/null || "
                        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-apt", timeout=600)
    if result.returncode != 0:
        console.print(f"[red]apt-get install python3 python3-apt failed:[/red] {result.stdout[-2000:]}{result.stderr[-2000:]}")
        return 1
    code = app.provision(str(lab.inventory_path), [host.name], show_diff=False)
    if code != 0:
        console.print("[red]provisioning the bench host failed; no bench without a converged, verified host[/red]")
        return 1

    GENERATED_DIR.mkdir(parents=True, exist_ok=True)
    desired_path = GENERATED_DIR / "desired.json"
    desired_path.write_text(json.dumps(peer_desired(host.vars, DEBIAN), indent=2) + "\n")
    (GENERATED_DIR / "ansible-inventory.json").write_text(json.dumps(ansible_inventory(host), indent=2) + "\n")
    (GENERATED_DIR / "pyinfra_inventory.py").write_text(pyinfra_inventory(host, desired_path))
    try:
        tools = make_tools(lab.inventory_path, host, GENERATED_DIR)
    except BenchError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1

    console.rule("[bold]2. every tool's check run must report 0 changes on the converged host")
    fairness = Table(title="converged-host check (untimed; also each tool's warm-up run)")
    for column in ("tool", "exit", "changes reported", "verdict"):
        fairness.add_column(column)
    broken = []
    converged: dict[str, int | None] = {}
    for tool in tools:
        outcome = run_tool(tool, apply=False)
        converged[tool.key] = outcome.changes
        ok = outcome.changes == 0 and outcome.code == 0
        fairness.add_row(tool.label, str(outcome.code), "?" if outcome.changes is None else str(outcome.changes),
                         "[green]0 changes[/green]" if ok else "[red]NOT converged for this tool[/red]")
        if not ok:
            broken.append((tool, outcome))
    console.print(fairness)
    for tool, outcome in broken:
        console.print(f"[red]{tool.label} output (last 3000 characters):[/red]\n{outcome.output[-3000:]}")
    if broken:
        return 1

    console.rule("[bold]3. count SSH connections and remote commands (untimed)")
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
        console.print(f"{tool.label}: {counts[tool.key]}")

    console.rule(f"[bold]4. drift check, {runs} timed runs per tool, interleaved")
    check = {tool.key: Stats() for tool in tools}
    for round_ in range(runs):
        for tool in rotate(tools, round_):
            outcome = run_tool(tool, apply=False)
            if outcome.code != 0 or outcome.changes != 0:
                console.print(f"[red]{tool.label}: run {round_ + 1} exit {outcome.code}, "
                              f"changes {outcome.changes}[/red]\n{outcome.output[-3000:]}")
                return 1
            check[tool.key].times.append(outcome.seconds)
            check[tool.key].changes.append(outcome.changes)
        console.print(f"round {round_ + 1}: " + ", ".join(
            f"{t.label} {check[t.key].times[-1]:.2f}s" for t in tools))

    repaired: dict[str, Stats] = {}
    if repair:
        console.rule(f"[bold]5. repair one drift ({DRIFT_KEY} = {DRIFT_VALUE} by hand), {runs} timed runs per tool")
        want = render_line(DRIFT_KEY, main_cf_settings(host.vars, DEBIAN)[DRIFT_KEY] or "").strip()
        repaired = {tool.key: Stats() for tool in tools}
        for round_ in range(runs + 1):  # round 0: untimed warm-up
            for tool in rotate(tools, round_):
                _drift(host)
                outcome = run_tool(tool, apply=True)
                now = _main_cf_value(host, DRIFT_KEY)
                if outcome.code != 0 or now != want or not outcome.changes:
                    console.print(f"[red]{tool.label}: repair run exit {outcome.code}, changes {outcome.changes}, "
                                  f"main.cf now {now!r} (want {want!r})[/red]\n{outcome.output[-3000:]}")
                    return 1
                if round_:
                    repaired[tool.key].times.append(outcome.seconds)
                    repaired[tool.key].changes.append(outcome.changes)
            if round_:
                console.print(f"round {round_}: " + ", ".join(
                    f"{t.label} {repaired[t.key].times[-1]:.2f}s" for t in tools))
        # The host is converged again for the peers' check too.
        for tool in tools:
            outcome = run_tool(tool, apply=False)
            if outcome.changes != 0:
                console.print(f"[red]{tool.label} sees changes after the repair runs[/red]\n{outcome.output[-3000:]}")
                return 1

    results = build_results(tools, check, repaired, counts, versions, runs)
    results["converged_check_changes"] = converged
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    console.rule("[bold]results")
    print_results(console, results)
    console.print(f"written: {RESULTS_PATH.relative_to(REPO_ROOT)}; lab host {host.name} is still up "
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


def print_results(console, results: dict[str, Any]) -> None:
    from rich.table import Table

    for job, title in (("drift_check", "drift check of a converged host (check mode, 0 changes)"),
                       ("repair", f"repair one drift ({DRIFT_KEY} edited by hand; apply, reload postfix)")):
        rows = results.get(job)
        if not rows:
            continue
        table = Table(title=f"{title}, {results['runs']} runs")
        for column in ("tool", "median", "min", "conns", "cmds", "ratio"):
            table.add_column(column, justify="left" if column == "tool" else "right", no_wrap=True)
        for key, row in rows.items():
            tool = results["tools"][key]
            table.add_row(
                tool["label"],
                f"{row['median_s']:.2f}s",
                f"{row['min_s']:.2f}s",
                str(tool.get("ssh_connections", "")) if job == "drift_check" else "",
                str(tool.get("remote_commands", "")) if job == "drift_check" else "",
                f"{row['ratio_vs_provisioner']:.1f}×",
            )
        console.print(table)
    console.print("conns: SSH connections; cmds: remote commands (each a round trip or more), "
                  "counted in an untimed check run; ratio: median / provisioner's median")
    for key, value in results["versions"].items():
        console.print(f"  {key}: {value}")
