"""The scale rows: N fresh lab hosts converged at once, then no-op dry runs of all N beside the floor.

provisioner only (the peers are compared on one host; a fresh converge of N
hosts per peer would hold the lab for a long time). Per round, interleaved:
the floor (the fact script over plain OpenSSH to all N at once), the no-op dry
run of all N hosts, the no-op dry run of one host (for the CPU per extra host),
and a real rerun of all N hosts.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import Any

from provisioner import inventory
from tooling.bench.cpu_profile import profile_cli
from tooling.bench.hostside import measure_floor
from tooling.bench.measure import Stats, run_tool
from tooling.bench.peers import BENCH_DIR, BenchError, provisioner_tool
from tooling.bench.show import BenchView
from tooling.bench.targets import cpu_per_extra_host

GENERATED_DIR = BENCH_DIR / "generated"


def run_scale(view: BenchView, inventory_path: Path, runs: int, forks: int | None) -> dict[str, Any]:
    inv = inventory.load(str(inventory_path))
    hosts = list(inv.hosts.values())
    names = [h.name for h in hosts]
    n = len(hosts)
    every = provisioner_tool(inventory_path, names, forks)
    first = provisioner_tool(inventory_path, names[:1], forks)

    view.heading(f"scale: fresh converge of {n} hosts with provisioner (verify included), timed once")
    fresh = run_tool(every, "apply")
    hosts_report = fresh.verified_hosts
    view.note(f"{n} hosts: exit {fresh.code}, {fresh.seconds:.1f}s wall, {fresh.cpu_seconds:.2f}s CPU, "
              f"{hosts_report} verified")
    result: dict[str, Any] = {
        "hosts": n,
        "forks": forks,
        "fresh": {"hosts": n, "seconds": round(fresh.seconds, 3), "cpu_s": round(fresh.cpu_seconds, 3),
                  "exit": fresh.code, "verified_hosts": hosts_report},
    }
    if fresh.code != 0:
        # Reported as it is (the targets show it); the no-op rows need converged hosts.
        view.error(f"the fresh converge of {n} hosts failed (exit {fresh.code}); no no-op rows",
                   fresh.output[-3000:])
        return result

    view.heading(f"scale: floor, no-op dry run of {n} hosts and of 1 host, real rerun of {n}; {runs} rounds")
    floor, noop_n, noop_1, rerun_n = Stats(), Stats(), Stats(), Stats()
    failures: list[str] = []
    for round_ in range(runs + 1):  # round 0: untimed warm-up
        seconds, cpu = measure_floor(hosts)
        checks = [(noop_n, run_tool(every, "check")), (noop_1, run_tool(first, "check"))]
        rerun = run_tool(every, "apply")
        for stats, outcome in checks:
            if outcome.code != 0 or outcome.changes != 0:
                raise BenchError(f"a no-op dry run exited {outcome.code} with {outcome.changes} changes:\n"
                                 + outcome.output[-3000:])
        rerun_ok = rerun.code == 0 and rerun.changes == 0
        if not rerun_ok:
            # Kept whole for diagnosis; the dry-run rows of this round still count.
            log = GENERATED_DIR / f"scale-rerun-round{round_}.log"
            log.write_text(rerun.output)
            failures.append(f"round {round_}: exit {rerun.code}, changes {rerun.changes} (output: {log})")
            view.error(f"the rerun of {n} hosts exited {rerun.code} with {rerun.changes} changes; "
                       f"its whole output: {log}")
        if not round_:
            continue
        floor.times.append(seconds)
        floor.cpu.append(cpu)
        for stats, outcome in [*checks, *([(rerun_n, rerun)] if rerun_ok else [])]:
            stats.add(outcome)
        view.note(f"round {round_}: floor {seconds:.2f}s, dry run {n} hosts {noop_n.times[-1]:.2f}s "
                  f"(CPU {noop_n.cpu[-1]:.2f}s), dry run 1 host {noop_1.times[-1]:.2f}s (CPU {noop_1.cpu[-1]:.2f}s), "
                  f"rerun {n} hosts {rerun.seconds:.2f}s" + ("" if rerun_ok else " (FAILED)"))

    cpu_1, cpu_n = statistics.median(noop_1.cpu), statistics.median(noop_n.cpu)
    view.heading(f"scale: where the CPU of a no-op dry run of {n} hosts goes (one profiled, untimed run)")
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as tmp:
        argv = [a.replace("{tmp}", tmp) for a in every.argv["check"][1:]]
        profile = profile_cli(argv, GENERATED_DIR / f"dry-run-{n}-hosts.prof")
    view.note(profile)
    result.update({
        "floor": floor.row(),
        "noop": noop_n.row(),
        "noop_one_host": noop_1.row(),
        "rerun": rerun_n.row() if rerun_n.times else None,
        "rerun_failures": failures,
        "floor_median_s": round(statistics.median(floor.times), 3),
        "noop_median_s": round(statistics.median(noop_n.times), 3),
        "cpu_per_extra_host_s": round(cpu_per_extra_host(cpu_1, cpu_n, n), 4) if n > 1 else None,
        "cpu_profile": profile,
    })
    return result
