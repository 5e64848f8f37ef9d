"""Everything the bench prints: progress, the fairness table and the results."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tooling.bench.peers import Tool

DRIFT_JOB_TITLE = "drift check of a converged host (check mode, 0 changes)"


class BenchView:
    """The bench's terminal: headings, notes, errors (with a tool's output) and tables."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False)

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

    def results(self, results: dict[str, Any], drift_title: str) -> None:
        for job, title in (("drift_check", DRIFT_JOB_TITLE), ("repair", drift_title)):
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
            self.console.print(table)
        self.console.print("conns: SSH connections; cmds: remote commands (each a round trip or more), "
                           "counted in an untimed check run; ratio: median / provisioner's median")
        for key, value in results["versions"].items():
            self.console.print(f"  {key}: {escape(str(value))}")
