"""Everything the bench prints: progress, the fairness table and the results."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tooling.bench.peers import Tool

DRIFT_JOB_TITLE = "drift check of a converged host (check mode, 0 changes)"


class BenchView:
    """The bench's terminal: headings, notes, errors (with a tool's output) and tables."""

    def __init__(self, console: Console | None = None):
        # Piped into a log (the usual way to keep a bench run), rich would wrap every table at 80 columns.
        self.console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 140)

    def heading(self, text: str) -> None:
        self.console.rule(f"[bold]{escape(text)}")

    def note(self, text: str) -> None:
        self.console.print(escape(text))

    def error(self, text: str, output: str = "") -> None:
        """A failure in red, then the tail of the output that explains it, as plain text."""
        self.console.print(f"[red]{escape(text)}[/red]" + (f"\n{escape(output)}" if output else ""))

    def fairness(self, rows: list[tuple[Tool, int, int | None, bool]]) -> None:
        """Each tool's check run on the converged host: (tool, exit code, changes, converged)."""
        table = Table(title="converged-host check (untimed; also each tool's warm-up run)")
        for column in ("tool", "exit", "changes reported", "verdict"):
            table.add_column(column)
        for tool, code, changes, ok in rows:
            table.add_row(tool.label, str(code), "?" if changes is None else str(changes),
                          "[green]0 changes[/green]" if ok else "[red]NOT converged for this tool[/red]")
        self.console.print(table)

    def _job_table(self, title: str, rows: dict[str, Any], labels: dict[str, str], counts: dict[str, Any] | None,
                   base: str = "provisioner") -> None:
        table = Table(title=title)
        for column in ("tool", "median", "min", "CPU", *(("conns", "cmds") if counts else ()), "ratio"):
            table.add_column(column, justify="left" if column == "tool" else "right", no_wrap=True)
        base_median = rows.get(base, {}).get("median_s")
        for key, row in rows.items():
            cells = [labels.get(key, key), f"{row['median_s']:.2f}s", f"{row['min_s']:.2f}s",
                     f"{row['cpu_median_s']:.2f}s"]
            if counts:
                cells += [str(counts.get(key, {}).get("ssh_connections", "")),
                          str(counts.get(key, {}).get("remote_commands", ""))]
            cells.append(f"{row['median_s'] / base_median:.2f}×" if base_median else "")
            table.add_row(*cells)
        self.console.print(table)

    def _scale_table(self, scale: dict[str, Any], runs: int) -> None:
        n = scale["hosts"]
        table = Table(title=f"provisioner with {n} lab hosts at once "
                            f"(forks: {scale['forks'] or 'default'}), {runs} runs")
        for column in ("job", "median", "min", "control-node CPU"):
            table.add_column(column, justify="left" if column == "job" else "right", no_wrap=True)
        fresh = scale["fresh"]
        table.add_row(f"fresh converge, {n} hosts ({fresh['verified_hosts']}/{n} verified; 1 run)",
                      f"{fresh['seconds']:.2f}s", "", f"{fresh['cpu_s']:.2f}s")
        for key, title in (("floor", f"floor: fact script over OpenSSH to {n} hosts at once"),
                           ("noop", f"no-op dry run, {n} hosts"), ("noop_one_host", "no-op dry run, 1 host"),
                           ("rerun", f"real rerun, {n} hosts")):
            row = scale.get(key)
            if row is None:
                continue
            table.add_row(title, f"{row['median_s']:.2f}s", f"{row['min_s']:.2f}s", f"{row['cpu_median_s']:.2f}s")
        self.console.print(table)
        if scale.get("cpu_per_extra_host_s") is not None:
            self.console.print(f"control-node CPU per extra host (no-op dry run, {n} hosts): "
                               f"{scale['cpu_per_extra_host_s'] * 1000:.1f} ms")

    def results(self, results: dict[str, Any], repair_title: str) -> None:
        labels = {key: tool["label"] for key, tool in results.get("tools", {}).items()}
        runs = results["runs"]
        for job, title in (("drift_check", DRIFT_JOB_TITLE),
                           ("rerun", "real rerun of a converged host (apply; provisioner with its default verify)"),
                           ("repair", repair_title),
                           ("fresh", "fresh converge, 1 host, each run on its own fresh host "
                                     "(provisioner: verify included)")):
            rows = results.get(job)
            if rows:
                self._job_table(f"{title}, {runs} runs", rows, labels,
                                results["tools"] if job == "drift_check" else None)
        profile = results.get("fresh_profile")
        if profile:
            table = Table(title="where provisioner's fresh converge spends its time (median per step and "
                                "phase, from its JSON report; phases overlap the steps)")
            table.add_column("step or phase")
            table.add_column("seconds", justify="right")
            for name, seconds in list(profile.items())[:12]:
                table.add_row(escape(name), f"{seconds:.2f}")
            self.console.print(table)
        latency = results.get("latency")
        if latency:
            for job, title in (("drift_check", "drift check"), ("rerun", "real rerun")):
                self._job_table(f"{title} at {latency['one_way_delay_s'] * 2000:.0f} ms RTT (relay), {runs} runs",
                                latency[job], latency["labels"], None)
        for scale in results.get("scale_sizes") or ([results["scale"]] if results.get("scale") else []):
            self._scale_table(scale, runs)
        targets = results.get("targets")
        if targets:
            table = Table(title="targets (issue 10)")
            for column in ("target", "figure", "verdict"):
                table.add_column(column)
            colour = {"PASS": "green", "FAIL": "red"}
            for t in targets:
                verdict = t["verdict"]
                table.add_row(escape(t["target"]), escape(t["figure"]),
                              f"[{colour.get(verdict, 'yellow')}]{verdict}[/]")
            self.console.print(table)
        self.console.print("CPU: user+sys of the tool's process tree on the control node; conns: SSH connections; "
                           "cmds: remote commands (each a round trip or more), counted in an untimed check run; "
                           "ratio: median / provisioner's median")
        for key, value in results["versions"].items():
            self.console.print(f"  {key}: {escape(str(value))}")
        if results.get("lab_seconds") is not None:
            self.console.print(f"  the bench held the lab for {results['lab_seconds']:.0f}s")
