"""The bench itself: boot fresh lab hosts, converge, check fairness, then time and count each tool.

One invocation gives every row (docs/bench.md):

1. one-host rows on ``1 + 3 x runs`` fresh hosts: lab1 converged by
   provisioner for the drift check, the repair of one drift and the real
   rerun (four tools); the other hosts each get one timed fresh converge by
   one tool (provisioner with verify, Ansible tuned, pyinfra), interleaved;
2. scale rows (``--hosts N``, or ``10,50`` for one lab of each size, every
   size > 1) on N fresh hosts: provisioner's fresh converge of all N, then
   the floor, no-op dry runs of N and of 1 host, and the real rerun of N,
   interleaved (``tooling.bench.scale``); the targets read the largest size;
3. latency rows: the drift check and the real rerun of a converged host
   through a relay adding 50 ms RTT, three tools (``tooling.bench.latency``);
4. the issue's targets, each with its figure and PASS/FAIL (``tooling.bench.targets``).

Before timing, every tool's check run must report 0 changes on the converged
host; a tool that does not is a broken comparison and the bench stops. Every
run is a fresh process with a cold SSH connection (Ansible gets a new
ControlPath directory per run). The lab is taken down at the end.
"""

from __future__ import annotations

import compileall
import json
import os
import platform as pyplatform
import statistics
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from provisioner.desired import MAIN_CF, desired_state
from provisioner.inventory import Host
from provisioner.platforms import DEBIAN12
from tooling.bench.hostside import mark_peers_converged, prepare_for_peers, ssh
from tooling.bench.measure import Outcome, Stats, count_tool, fail, rotate, run_tool, timed_rounds
from tooling.bench.peer_state import peer_desired
from tooling.bench.peers import BENCH_DIR, BENCH_HOST, REPO_ROOT, BenchError, Tool, make_tools, write_peer_files
from tooling.bench.show import BenchView
from tooling.bench.targets import evaluate

GENERATED_DIR = BENCH_DIR / "generated"
RESULTS_PATH = BENCH_DIR / "results.json"

# The drift the repair job puts back: a value provisioner manages, edited by hand.
DRIFT_KEY = "smtpd_tls_loglevel"
DRIFT_VALUE = "1"
REPAIR_TITLE = f"repair one drift ({DRIFT_KEY} edited by hand; apply, reload postfix)"
FRESH_TOOLS = ("provisioner", "ansible-tuned", "pyinfra")


def _main_cf_value(host: Host, key: str) -> str:
    return ssh(host, f"grep -E '^{key}[[:space:]]*=' {MAIN_CF}").stdout.strip()


def _drift(host: Host) -> None:
    result = ssh(host, f"sed -i 's/^{DRIFT_KEY} = .*/{DRIFT_KEY} = {DRIFT_VALUE}/' {MAIN_CF} && "
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


def _tools_for(lab_inventory: Path, host: Host, **kw: Any) -> list[Tool]:
    files = write_peer_files(host, peer_desired(host.vars, DEBIAN12), GENERATED_DIR)
    return make_tools(lab_inventory, host, files, **kw)


def _converge(view: BenchView, lab_inventory: Path, host: Host) -> None:
    from provisioner import app

    view.note(f"converging {host.name} with provisioner (untimed)")
    if app.provision(str(lab_inventory), [host.name], show_diff=False, live=False) != 0:
        raise BenchError(f"provisioning {host.name} failed; no bench without a converged, verified host")
    mark_peers_converged(host)


# ---------------------------------------------------------------- one-host rows


def fairness(view: BenchView, tools: list[Tool]) -> dict[str, int | None]:
    rows, broken, converged = [], [], {}
    for tool in tools:
        outcome = run_tool(tool, "check")
        converged[tool.key] = outcome.changes
        ok = outcome.changes == 0 and outcome.code == 0
        rows.append((tool, outcome.code, outcome.changes, ok))
        if not ok:
            broken.append((tool, outcome))
    view.fairness(rows)
    if broken:
        tool, outcome = broken[0]
        raise fail(tool, "not converged for this tool", outcome)
    return converged


def fresh_rounds(view: BenchView, lab_inventory: Path, hosts: list[Host], runs: int
                 ) -> tuple[dict[str, Stats], list[dict[str, float]]]:
    """Each tool converges fresh hosts, one host per run, interleaved; each run ends converged for that tool.

    Also returns provisioner's own profile of each of its runs (seconds per step and phase, from its JSON).
    """
    stats = {key: Stats() for key in FRESH_TOOLS}
    profiles: list[dict[str, float]] = []
    spare = list(hosts)
    for round_ in range(runs):
        order = rotate(list(FRESH_TOOLS), round_)
        for key in order:
            host = spare.pop(0)
            tool = next(t for t in _tools_for(lab_inventory, host, ansible_defaults=False) if t.key == key)
            outcome = run_tool(tool, "apply")
            if outcome.code != 0 or not outcome.changes or (key == "provisioner" and outcome.verified is not True):
                raise fail(tool, f"fresh converge of {host.name} (verified: {outcome.verified})", outcome)
            again = run_tool(tool, "check")  # untimed: the job really completed
            if again.code != 0 or again.changes != 0:
                raise fail(tool, f"check after the fresh converge of {host.name}", again)
            stats[key].add(outcome)
            if outcome.profile:
                profiles.append(outcome.profile)
        view.note(f"fresh converge, round {round_ + 1}: " + ", ".join(
            f"{key} {stats[key].times[-1]:.2f}s" for key in FRESH_TOOLS))
    return stats, profiles


def one_host_rows(view: BenchView, lab, runs: int, repair: bool) -> dict[str, Any]:
    from provisioner import inventory

    inv = inventory.load(str(lab.inventory_path))
    hosts = list(inv.hosts.values())
    host = inv.hosts[BENCH_HOST]
    view.note(f"installing python3 python3-apt on {len(hosts)} hosts for Ansible (untimed)")
    prepare_for_peers(hosts)
    _converge(view, lab.inventory_path, host)
    tools = all_tools = _tools_for(lab.inventory_path, host)

    view.heading("every tool's check run must report 0 changes on the converged host")
    converged = fairness(view, tools)
    view.heading("count SSH connections and remote commands (untimed)")
    counts = {}
    for tool in tools:
        counts[tool.key] = count_tool(tool)
        view.note(f"{tool.label}: {counts[tool.key]}")

    view.heading(f"drift check, {runs} timed runs per tool, interleaved")
    # The fairness check was every tool's warm-up run for this job.
    check = timed_rounds(view, tools, "check", runs, "drift check", warm_up=False)
    # Ansible's shipped defaults are in the drift check only: every other row has the tuned one.
    tools = [tool for tool in tools if tool.key != "ansible"]
    view.heading(f"real rerun of the converged host, {runs} timed runs per tool, interleaved")
    rerun = timed_rounds(view, tools, "apply", runs, "real rerun")

    repaired: dict[str, Stats] = {}
    if repair:
        view.heading(f"repair one drift ({DRIFT_KEY} = {DRIFT_VALUE} by hand), {runs} timed runs per tool")
        want = dict(desired_state(host.vars, DEBIAN12).main_cf.lines)[DRIFT_KEY]

        def repaired_ok(tool: Tool, outcome: Outcome) -> str | None:
            now = _main_cf_value(host, DRIFT_KEY)
            if outcome.code != 0 or now != want or not outcome.changes:
                return f"main.cf now {now!r} (want {want!r})"
            return None

        repaired = timed_rounds(view, tools, "repair", runs, "repair", before=lambda: _drift(host),
                                after=repaired_ok)
        fairness(view, tools)  # converged again for every tool

    view.heading(f"fresh converge of 1 host, {runs} runs per tool, each on its own fresh host")
    fresh, profiles = fresh_rounds(view, lab.inventory_path, [h for h in hosts if h.name != BENCH_HOST], runs)
    return {"tools": all_tools, "counts": counts, "converged": converged, "drift_check": check, "rerun": rerun,
            "repair": repaired, "fresh": fresh, "fresh_profile": median_profile(profiles), "host": host}


def median_profile(profiles: list[dict[str, float]]) -> dict[str, float]:
    """Per step or phase, the median of its seconds over the runs, slowest first."""
    names = {name for profile in profiles for name in profile}
    medians = {name: round(statistics.median(p.get(name, 0.0) for p in profiles), 3) for name in names}
    return dict(sorted(medians.items(), key=lambda item: -item[1]))


# ---------------------------------------------------------------- the run


def _lab(view: BenchView, count: int):
    from tooling.lab import down, up

    view.heading(f"fresh lab: {count} host(s)")
    t0 = time.monotonic()
    down()
    lab = up(hosts=count)
    view.note(f"{count} fresh host(s) up in {time.monotonic() - t0:.1f}s")
    return lab


def scale_sizes(hosts: str | int) -> list[int]:
    """``--hosts``: N or a comma-separated list of sizes; 1 (no scale rows) is dropped. ValueError if not numbers."""
    sizes = sorted({int(part) for part in str(hosts).split(",") if part.strip()})
    if not sizes or sizes[0] < 1:
        raise ValueError(str(hosts))
    return [n for n in sizes if n > 1]


def run_bench(runs: int = 5, repair: bool = True, hosts: str | int = 1, latency: bool = True,
              forks: int | None = None) -> int:
    from provisioner import app, inventory
    from tooling.bench.latency import run_latency
    from tooling.bench.scale import run_scale
    from tooling.lab import LabError, down

    view = BenchView()
    try:
        sizes = scale_sizes(hosts)
    except ValueError:
        view.error(f"--hosts must be a number of hosts of at least 1, or several comma-separated (10,50): {hosts!r}")
        return 1
    if runs < 1:
        view.error("--runs must be at least 1")
        return 1
    try:
        versions = tool_versions()
    except metadata.PackageNotFoundError as exc:
        view.error(f"{exc} is not installed: run `make bench` (installs '.[bench]')")
        return 1
    GENERATED_DIR.mkdir(parents=True, exist_ok=True)
    # Bytecode for the checkout's own modules, as `pip install` writes it for an installed package (and for
    # the peers, installed by pip): where PYTHONDONTWRITEBYTECODE is set, every run would compile them again.
    compileall.compile_dir(str(REPO_ROOT / "provisioner"), quiet=1)
    compileall.compile_dir(str(REPO_ROOT / "tooling"), quiet=1)
    compileall.compile_file(str(REPO_ROOT / "tasks.py"), quiet=1)
    started = time.monotonic()
    results: dict[str, Any] = {"runs": runs, "versions": versions, "command": os.environ.get("BENCH_COMMAND")}
    errors: list[str] = []

    def part(name: str, func) -> None:
        """A later part that fails is reported with the rows measured before it."""
        try:
            results[name] = func()
        except (BenchError, LabError) as exc:
            view.error(f"{name}: {exc}")
            errors.append(f"{name}: {str(exc).splitlines()[0]}")

    def latency_rows(inventory_path: Path, host: Host, prepare: bool) -> dict[str, Any]:
        if prepare:
            prepare_for_peers([host])
            mark_peers_converged(host)
        return run_latency(view, inventory_path, host, GENERATED_DIR, runs, app.verify_ports(host))

    try:
        lab = _lab(view, 1 + len(FRESH_TOOLS) * runs)
        one = one_host_rows(view, lab, runs, repair)
        results.update(build_results(one["tools"], one, versions, runs))
        if latency and not sizes:
            part("latency", lambda: latency_rows(lab.inventory_path, one["host"], prepare=False))
        scale_inventory = None
        for n in sizes:
            part("scale_lab", lambda n=n: _lab(view, n).inventory_path)
            scale_inventory = results.pop("scale_lab", None)
            if scale_inventory is not None:
                part("scale", lambda: run_scale(view, scale_inventory, runs, forks))
                if "scale" in results:
                    results.setdefault("scale_sizes", []).append(results["scale"])
        if scale_inventory is not None and latency:  # on the largest lab, the last one up
            host = inventory.load(str(scale_inventory)).hosts[BENCH_HOST]
            part("latency", lambda: latency_rows(scale_inventory, host, prepare=True))
    except (BenchError, LabError) as exc:
        view.error(str(exc))
        return 1
    finally:
        view.note("taking the lab down")
        down()
        view.note(f"the bench held the lab for {time.monotonic() - started:.0f}s")
    results["errors"] = errors
    results["lab_seconds"] = round(time.monotonic() - started, 1)
    results["targets"] = [t.__dict__ | {"verdict": t.verdict} for t in evaluate(results)]
    RESULTS_PATH.write_text(json.dumps(results, indent=2) + "\n")
    view.heading("results")
    view.results(results, REPAIR_TITLE)
    view.note(f"written: {RESULTS_PATH.relative_to(REPO_ROOT)}")
    for error in errors:
        view.error(f"not measured: {error}")
    return 1 if errors else 0


def build_results(tools: list[Tool], one: dict[str, Any], versions: dict[str, str], runs: int) -> dict[str, Any]:
    def job(stats: dict[str, Stats]) -> dict[str, Any]:
        base = stats["provisioner"].row()["median_s"]
        rows = {}
        for key, st in stats.items():
            row = st.row()
            row["ratio_vs_provisioner"] = round(row["median_s"] / base, 2) if base else None
            rows[key] = row
        return rows

    return {
        "host": f"{BENCH_HOST} (Debian 12 lab host), converged and verified by provisioner before timing; "
                "fresh converges each on a fresh lab host",
        "tools": {tool.key: {"label": tool.label, "what": tool.what, **(one["counts"].get(tool.key) or {})}
                  for tool in tools},
        "converged_check_changes": one["converged"],
        "drift_check": job(one["drift_check"]),
        "rerun": job(one["rerun"]),
        "repair": job(one["repair"]) if one["repair"] else None,
        "fresh": job(one["fresh"]),
        "fresh_profile": one["fresh_profile"],
        "timing": "wall time of the whole CLI process (time.perf_counter around subprocess.run); CPU: user+sys "
                  "of its process tree (getrusage RUSAGE_CHILDREN); one untimed warm-up run per tool for the "
                  "drift check, rerun and repair; runs interleaved; cold SSH connection each run",
    }
