"""The bench's final print: every table renders from a results dict shaped as run.py writes it."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from tooling.bench.measure import Stats
from tooling.bench.show import BenchView
from tooling.bench.targets import evaluate


def _row(*times):
    stats = Stats(times=list(times), cpu=[t / 10 for t in times], changes=[0] * len(times))
    row = stats.row()
    row["ratio_vs_provisioner"] = 1.0
    return row


def _results(scale_complete=True):
    tools = {"provisioner": {"label": "provisioner", "ssh_connections": 1, "remote_commands": 1},
             "ansible": {"label": "ansible (defaults)", "ssh_connections": 1, "remote_commands": 406},
             "ansible-tuned": {"label": "ansible (tuned)", "ssh_connections": 1, "remote_commands": 86},
             "pyinfra": {"label": "pyinfra", "ssh_connections": 1, "remote_commands": 79}}
    three = {"provisioner": _row(0.8), "ansible-tuned": _row(20.0), "pyinfra": _row(4.8)}
    scale = {"hosts": 50, "forks": None,
             "fresh": {"hosts": 50, "seconds": 150.0, "cpu_s": 20.0, "exit": 0, "verified_hosts": 50}}
    if scale_complete:
        scale.update({"floor": _row(2.0), "noop": _row(2.4), "noop_one_host": _row(0.6), "rerun": _row(3.0),
                      "floor_median_s": 2.0, "noop_median_s": 2.4, "cpu_per_extra_host_s": 0.012})
    results = {
        "runs": 1, "tools": tools,
        "drift_check": {**three, "ansible": _row(28.0)}, "rerun": three, "repair": None, "fresh": three,
        "latency": {"one_way_delay_s": 0.025, "labels": {k: v["label"] for k, v in tools.items()},
                    "drift_check": three, "rerun": three},
        "scale": scale,
        "versions": {"provisioner": "0.1.0"}, "lab_seconds": 1234.0,
    }
    results["targets"] = [t.__dict__ | {"verdict": t.verdict} for t in evaluate(results)]
    return results


def _render(results) -> str:
    out = StringIO()
    BenchView(Console(file=out, width=200, color_system=None)).results(results, "repair one drift")
    return out.getvalue()


def test_every_row_and_target_is_printed():
    text = _render(_results())
    for expected in ("drift check of a converged host", "real rerun of a converged host", "fresh converge, 1 host",
                     "drift check at 50 ms RTT", "real rerun at 50 ms RTT", "no-op dry run, 50 hosts",
                     "floor: fact script over OpenSSH to 50 hosts at once", "CPU per extra host (no-op dry run, 50 hosts): 12.0 ms",
                     "targets (issue 10)", "PASS", "held the lab for 1234s"):
        assert expected in text, expected


def test_a_failed_scale_converge_prints_without_its_no_op_rows():
    results = _results(scale_complete=False)
    results["scale"]["fresh"].update(exit=1, verified_hosts=48)
    results["targets"] = [t.__dict__ | {"verdict": t.verdict} for t in evaluate(results)]
    text = _render(results)
    assert "48/50 verified" in text and "no-op dry run, 50 hosts" not in text
    assert "FAIL" in text and "not measured" in text


def test_every_scale_size_gets_its_table():
    results = _results()
    small = {**results["scale"], "hosts": 10, "cpu_per_extra_host_s": 0.02,
             "fresh": {"hosts": 10, "seconds": 40.0, "cpu_s": 4.0, "exit": 0, "verified_hosts": 10}}
    results["scale_sizes"] = [small, results["scale"]]
    text = _render(results)
    assert "provisioner with 10 lab hosts at once" in text and "provisioner with 50 lab hosts at once" in text
    assert "10/10 verified" in text and "50/50 verified" in text
    assert "(no-op dry run, 10 hosts): 20.0 ms" in text and "(no-op dry run, 50 hosts): 12.0 ms" in text
