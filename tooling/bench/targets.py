"""The targets of issue 10, evaluated from one bench run's figures (never in tests: here, printed).

Pure: figures in, (target, figure, PASS/FAIL) out. A figure the run did not
measure (a row skipped, a smaller lab) gives "not measured", never a PASS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOOP_VS_FLOOR = 1.3
CPU_PER_EXTRA_HOST_S = 0.015
RERUN_MAX_S = 1.0
# "about a quarter of pyinfra's": a quarter with a fifth of slack.
RERUN_VS_PYINFRA = 0.30
FRESH_VS_ANSIBLE = 0.75
FRESH_VS_PYINFRA = 0.9
SCALE_TARGET_HOSTS = 50


@dataclass(frozen=True)
class TargetResult:
    target: str
    figure: str
    passed: bool | None  # None: not measured in this run

    @property
    def verdict(self) -> str:
        return "not measured" if self.passed is None else ("PASS" if self.passed else "FAIL")


def cpu_per_extra_host(cpu_one: float, cpu_many: float, hosts: int) -> float:
    """Control-node CPU each host beyond the first adds: (CPU at N hosts - CPU at 1 host) / (N - 1)."""
    if hosts < 2:
        raise ValueError("CPU per extra host needs at least 2 hosts")
    return (cpu_many - cpu_one) / (hosts - 1)


def _median(rows: dict[str, Any] | None, key: str, field: str = "median_s") -> float | None:
    if not rows or key not in rows or rows[key] is None:
        return None
    return rows[key].get(field)


def evaluate(results: dict[str, Any]) -> list[TargetResult]:
    """Every target of the issue from the results dict that run.py writes."""
    out: list[TargetResult] = []
    scale = results.get("scale") or {}
    n = scale.get("hosts")
    at = f"{n} hosts" if n else "N hosts"
    big = bool(n) and n >= SCALE_TARGET_HOSTS
    note = "" if big else f" (target is for {SCALE_TARGET_HOSTS} hosts)"

    noop, floor = scale.get("noop_median_s"), scale.get("floor_median_s")
    if noop is not None and floor:
        ratio = noop / floor
        out.append(TargetResult(f"no-op dry run of {at} <= {NOOP_VS_FLOOR}x the lab's floor{note}",
                                f"{noop:.2f}s / floor {floor:.2f}s = {ratio:.2f}x", ratio <= NOOP_VS_FLOOR and big))
    else:
        out.append(TargetResult(f"no-op dry run <= {NOOP_VS_FLOOR}x the lab's floor", "not measured", None))

    per_host = scale.get("cpu_per_extra_host_s")
    if per_host is not None:
        out.append(TargetResult(f"control-node CPU per extra host (no-op dry run, 1 vs {at}) "
                                f"<= {CPU_PER_EXTRA_HOST_S * 1000:.0f} ms",
                                f"{per_host * 1000:.1f} ms", per_host <= CPU_PER_EXTRA_HOST_S))
    else:
        out.append(TargetResult("control-node CPU per extra host", "not measured", None))

    fresh_n = scale.get("fresh")
    if fresh_n is not None:
        verified, total = fresh_n["verified_hosts"], fresh_n["hosts"]
        out.append(TargetResult(f"fresh converge of {at} ends with every host verified{note}",
                                f"{verified}/{total} verified, exit {fresh_n['exit']}, {fresh_n['seconds']:.1f}s",
                                verified == total and fresh_n["exit"] == 0 and big))
    else:
        out.append(TargetResult("fresh converge of N hosts, every host verified", "not measured", None))

    rerun = results.get("rerun")
    mine, theirs = _median(rerun, "provisioner"), _median(rerun, "pyinfra")
    if mine is not None:
        out.append(TargetResult(f"real rerun of a converged host <= {RERUN_MAX_S:.1f}s", f"{mine:.2f}s",
                                mine <= RERUN_MAX_S))
    if mine is not None and theirs:
        out.append(TargetResult(f"real rerun about a quarter of pyinfra's (<= {RERUN_VS_PYINFRA}x)",
                                f"{mine:.2f}s / {theirs:.2f}s = {mine / theirs:.2f}x", mine / theirs <= RERUN_VS_PYINFRA))
    if mine is None:
        out.append(TargetResult("real rerun of a converged host", "not measured", None))

    fresh = results.get("fresh")
    mine = _median(fresh, "provisioner")
    for key, limit, label in (("ansible-tuned", FRESH_VS_ANSIBLE, "Ansible (tuned)"),
                              ("pyinfra", FRESH_VS_PYINFRA, "pyinfra")):
        theirs = _median(fresh, key)
        if mine is None or not theirs:
            out.append(TargetResult(f"fresh converge <= {limit}x {label}", "not measured", None))
            continue
        out.append(TargetResult(f"fresh converge, 1 host, verify included, <= {limit}x {label}",
                                f"{mine:.2f}s / {theirs:.2f}s = {mine / theirs:.2f}x", mine / theirs <= limit))
    return out
