"""The bench's pure parts: CPU per extra host, target evaluation, provisioner's report as the bench reads it."""

from __future__ import annotations

import json

import pytest

from tooling.bench.peers import provisioner_changes, provisioner_report
from tooling.bench.targets import cpu_per_extra_host, evaluate


def test_cpu_per_extra_host_is_the_slope_between_one_and_n_hosts():
    assert cpu_per_extra_host(0.33, 1.06, 50) == pytest.approx(0.0149, abs=1e-4)
    assert cpu_per_extra_host(0.30, 0.30, 10) == 0
    with pytest.raises(ValueError):
        cpu_per_extra_host(0.3, 0.3, 1)


def _results(**over):
    base = {
        "scale": {"hosts": 50, "noop_median_s": 2.5, "floor_median_s": 2.0, "cpu_per_extra_host_s": 0.012,
                  "fresh": {"hosts": 50, "verified_hosts": 50, "exit": 0, "seconds": 140.0}},
        "rerun": {"provisioner": {"median_s": 0.8}, "pyinfra": {"median_s": 4.0}},
        "fresh": {"provisioner": {"median_s": 15.0}, "ansible-tuned": {"median_s": 21.0},
                  "pyinfra": {"median_s": 19.0}},
    }
    for key, value in over.items():
        base[key] = value
    return base


def test_every_target_passes_on_good_figures():
    verdicts = [t.verdict for t in evaluate(_results())]
    assert verdicts == ["PASS"] * 7


def test_each_target_fails_on_its_own_figure():
    by_name = lambda results: {t.target: t for t in evaluate(results)}  # noqa: E731
    slow_noop = by_name(_results(scale={**_results()["scale"], "noop_median_s": 2.7}))
    assert [t.verdict for t in slow_noop.values()].count("FAIL") == 1
    assert next(t for n, t in slow_noop.items() if n.startswith("no-op")).figure == "2.70s / floor 2.00s = 1.35x"

    cpu = by_name(_results(scale={**_results()["scale"], "cpu_per_extra_host_s": 0.0251}))
    assert next(t for n, t in cpu.items() if "CPU" in n).verdict == "FAIL"

    unverified = {**_results()["scale"], "fresh": {"hosts": 50, "verified_hosts": 49, "exit": 1, "seconds": 1.0}}
    assert next(t for n, t in by_name(_results(scale=unverified)).items() if "verified" in n).verdict == "FAIL"

    slow_rerun = by_name(_results(rerun={"provisioner": {"median_s": 1.2}, "pyinfra": {"median_s": 4.3}}))
    assert [t.verdict for n, t in slow_rerun.items() if "rerun" in n] == ["FAIL", "PASS"]

    fresh = by_name(_results(fresh={"provisioner": {"median_s": 18.4}, "ansible-tuned": {"median_s": 21.8},
                                    "pyinfra": {"median_s": 19.2}}))
    assert [t.verdict for n, t in fresh.items() if n.startswith("fresh converge, 1 host")] == ["FAIL", "FAIL"]


def test_a_smaller_lab_never_passes_the_50_host_targets():
    small = {**_results()["scale"], "hosts": 10,
             "fresh": {"hosts": 10, "verified_hosts": 10, "exit": 0, "seconds": 35.0}}
    targets = {t.target: t for t in evaluate(_results(scale=small))}
    assert next(t for n, t in targets.items() if n.startswith("no-op")).verdict == "FAIL"
    assert next(t for n, t in targets.items() if "every host verified" in n).verdict == "FAIL"
    assert next(t for n, t in targets.items() if "CPU" in n).verdict == "PASS"


def test_rows_not_measured_are_not_passed():
    verdicts = [t.verdict for t in evaluate({})]
    assert set(verdicts) == {"not measured"}


def test_provisioner_report_read_per_host(tmp_path):
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"hosts": {
        "lab1": {"status": "changed", "changes": [{"step": "a"}, {"step": "b"}], "round_trips": 9,
                 "verify": {"ok": True, "checks": []}},
        "lab2": {"status": "ok", "changes": [], "round_trips": 3},
        "lab3": {"status": "failed", "changes": [], "round_trips": 2, "verify": {"ok": False}},
    }}))
    hosts = provisioner_report(report)
    assert (hosts["lab1"].changes, hosts["lab1"].verified) == (2, True)
    assert hosts["lab2"].verified is None and hosts["lab3"].verified is False
    assert provisioner_changes(report, ["lab1", "lab2"]) == (2, 12)
    assert provisioner_changes(report, ["lab1", "lab3"]) == (None, None)
    assert provisioner_changes(report, ["lab9"]) == (None, None)
    assert provisioner_report(tmp_path / "missing.json") is None


def test_median_profile_of_the_fresh_runs_slowest_first():
    from tooling.bench.run import median_profile

    profile = median_profile([{"step packages": 6.0, "phase verify": 10.2},
                              {"step packages": 7.0, "phase verify": 10.0, "step tls": 0.4},
                              {"step packages": 8.0, "phase verify": 10.1}])
    assert profile == {"phase verify": 10.1, "step packages": 7.0, "step tls": 0.0}
    assert list(profile) == ["phase verify", "step packages", "step tls"]


def test_provisioner_report_profile_from_steps_and_phases(tmp_path):
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"hosts": {"lab2": {
        "status": "changed", "changes": [{"step": "packages"}], "round_trips": 15,
        "steps": [{"step": "packages", "duration_s": 5.99}, {"step": "tls", "duration_s": None}],
        "phases": {"verify": 9.51, "connect": 0.12},
        "verify": {"ran": True, "reason": "changed", "ok": True}}}}))
    host = provisioner_report(report)["lab2"]
    assert host.profile == {"step packages": 5.99, "phase verify": 9.51, "phase connect": 0.12}
    assert host.verified is True


def test_a_skipped_verify_is_not_a_passed_one(tmp_path):
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"hosts": {"lab1": {
        "status": "ok", "changes": [], "round_trips": 3,
        "verify": {"ran": False, "reason": "unchanged", "verified_at": "2026-12-01T15:00:00Z"}}}}))
    assert provisioner_report(report)["lab1"].verified is None


def test_scale_sizes_from_the_hosts_option():
    from tooling.bench.run import scale_sizes

    assert scale_sizes(1) == [] and scale_sizes("1") == []
    assert scale_sizes("50") == [50]
    assert scale_sizes("50,10") == [10, 50] and scale_sizes("10, 50,10") == [10, 50]
    for bad in ("0", "x", "", "10,-1"):
        with pytest.raises(ValueError):
            scale_sizes(bad)
