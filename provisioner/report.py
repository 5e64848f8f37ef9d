"""Rendering: the only module that knows the terminal (rich) and the JSON report."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.table import Table

from provisioner.engine.runner import HostReport, RunReport
from provisioner.progress import STATUS_STYLE
from provisioner.redaction import DEFAULT, Redactor

SLOWEST = 5  # rows of the "slowest steps" tables, per host and across hosts
ROLLBACK_WORDS = {"rolled-back": "done", "rollback-failed": "FAILED", "by-host": "by the host", "unknown": "unknown"}


def redact(text: str | None, redactor: Redactor = DEFAULT) -> str | None:
    """Secrets out of a summary, diff or error (see provisioner/redaction.py)."""
    return redactor.text(text)


MAX_ERROR = 2000


def one_line(text: str) -> str:
    """An error message as one terminal line of bounded length: control characters escaped, never obeyed."""
    text = "".join(ch if ch.isprintable() or ch == "\t" else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."


def make_console(stderr: bool = False) -> Console:
    # No emoji codes: ":name:" in a host name or a path is printed as written.
    return Console(stderr=stderr, highlight=False, emoji=False)


def print_error(console: Console, message: str, redactor: Redactor = DEFAULT) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(one_line(redact(message, redactor) or ''))}", soft_wrap=True)


def print_report(console: Console, report: RunReport, show_diff: bool = True, redactor: Redactor = DEFAULT) -> None:
    verb = "would" if report.dry_run else "did"
    for name, host in report.hosts.items():
        style = STATUS_STYLE.get(host.status, "")
        title = f"[bold]{escape(name)}[/bold] [{style}]{host.status}[/{style}]"
        if host.platform:
            title += f" [dim]({host.platform})[/dim]"
        if host.run_id:
            title += f" [dim]run {host.run_id}[/dim]"
        console.rule(title, align="left")
        for record in host.recovered:
            console.print(f"  [yellow]![/yellow] before this run, {escape(redact(record.summary(), redactor) or '')}")
        for note in host.notes:
            console.print(f"  [yellow]![/yellow] {escape(redact(note, redactor) or '')}")
        if host.changes:
            undone = " (rolled back since)" if host.rollback and host.rollback.status == "rolled-back" else ""
            console.print(f"[dim]changes this run {verb} make{undone}:[/dim]")
        for change in host.changes:
            summary = redact(change.summary, redactor) or ""
            console.print(f"  [yellow]~[/yellow] [bold]{escape(change.step)}[/bold]: {escape(summary)}")
            if show_diff and change.diff:
                console.print(Syntax(redact(change.diff, redactor) or "", "diff", theme="ansi_dark", background_color="default"))
        if not host.changes and host.status == "ok":
            console.print("  [green]no change: the host is as desired[/green]")
        if host.verify is not None:
            print_verify(console, host.verify, failures_only=True, redactor=redactor)
        elif host.verify_decision is not None and host.verify_decision.verified_at:
            console.print(f"  [green]verify: {escape(host.verify_decision.reason)}[/green] [dim](--verify always "
                          "checks again)[/dim]")
        if host.error:
            console.print(f"  [bold red]error:[/bold red] {escape(redact(host.error, redactor) or '')}")
    print_recap(console, report)


def print_verify(console: Console, verify, failures_only: bool = False, redactor: Redactor = DEFAULT) -> None:
    passed = sum(1 for check in verify.checks if check.ok)
    ports = ", ".join(str(p) for p in sorted({check.port for check in verify.checks}))
    if failures_only and verify.ok:
        console.print(f"  [green]verify: all {passed} checks passed[/green] on ports {ports} "
                      "(relay refused without AUTH, STARTTLS with TLS >= 1.2, AUTH limited to the group)")
        return
    table = Table(title=f"verify {verify.host}", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("port", justify="right")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in verify.checks:
        if failures_only and check.ok:
            continue
        mark = "[green]pass[/green]" if check.ok else "[bold red]FAIL[/bold red]"
        table.add_row(str(check.port), escape(check.name), mark, escape(redact(check.detail, redactor) or ""))
    console.print(table)


def rollback_word(host: HostReport) -> str:
    return ROLLBACK_WORDS.get(host.rollback.status, host.rollback.status) if host.rollback else "-"


def print_recap(console: Console, report: RunReport) -> None:
    title = "recap" + (" (dry run)" if report.dry_run else "")
    if report.interrupted:
        title += f" [bold yellow](interrupted by {report.interrupted})[/bold yellow]"
    table = Table(title=title, title_justify="left")
    table.add_column("host")
    table.add_column("status")
    table.add_column("ok", justify="right")
    # Every change made counts, also on a host that failed after making it (and was rolled back).
    table.add_column("changed" if not report.dry_run else "pending", justify="right")
    table.add_column("failed", justify="right")
    table.add_column("unreachable", justify="right")
    not_run = any(host.status == "not-run" for host in report.hosts.values())
    if not_run:
        table.add_column("not run", justify="right")
    if not report.dry_run:
        table.add_column("rollback")
    table.add_column("round trips", justify="right")
    table.add_column("time", justify="right")
    for name, host in report.hosts.items():
        style = STATUS_STYLE.get(host.status, "")
        row = [
            escape(name),
            f"[{style}]{host.status}[/{style}]",
            "1" if host.status == "ok" else "0",
            str(len(host.changes)),
            "1" if host.status in ("failed", "interrupted") else "0",
            "1" if host.status == "unreachable" else "0",
        ]
        if not_run:
            row.append("1" if host.status == "not-run" else "0")
        if not report.dry_run:
            row.append(rollback_word(host))
        table.add_row(*row, str(host.round_trips), f"{host.duration_s:.1f}s")
    console.print(table)
    print_slowest(console, report)
    if report.halted:
        console.print(f"[bold red]rolling update stopped:[/bold red] {escape(report.halted)}")


def timings(host: HostReport) -> list[tuple[str, float]]:
    """Where a host's time went: each step (check and apply) and each phase outside the steps."""
    return [*((s.name, s.duration_s) for s in host.steps), *host.phases.items()]


def slowest(report: RunReport, limit: int = SLOWEST) -> list[tuple[str, str, float]]:
    """The slowest (host, step or phase, seconds) across hosts, as Ansible's profile_tasks lists tasks."""
    rows = [(name, what, seconds) for name, host in report.hosts.items() for what, seconds in timings(host)]
    return sorted(rows, key=lambda row: -row[2])[:limit]


def print_slowest(console: Console, report: RunReport) -> None:
    rows = slowest(report)
    if not rows or rows[0][2] <= 0:
        return
    several = len(report.hosts) > 1
    table = Table(title="slowest steps", title_justify="left",
                  show_edge=False, pad_edge=False)
    if several:
        table.add_column("host")
    table.add_column("step")
    table.add_column("time", justify="right")
    for name, what, seconds in rows:
        table.add_row(*([escape(name)] if several else []), escape(what), f"{seconds:.2f}s")
    console.print(table)
    if several:
        # Per host: its slowest step, and how much of its time it took.
        per_host = []
        for name, host in report.hosts.items():
            spent = timings(host)
            if spent and host.duration_s > 0:
                what, seconds = max(spent, key=lambda item: item[1])
                per_host.append(f"{escape(name)} {escape(what)} {seconds:.1f}s of {host.duration_s:.1f}s")
        if per_host:
            console.print("[dim]slowest per host: " + "; ".join(per_host) + "[/dim]", soft_wrap=True)


def to_json(report: RunReport, redactor: Redactor = DEFAULT) -> dict:
    hosts = {}
    for name, host in report.hosts.items():
        entry = {
            "status": host.status,
            "run_id": host.run_id,
            "platform": host.platform,
            "changes": [
                {"step": c.step, "summary": redact(c.summary, redactor), "diff": redact(c.diff, redactor)}
                for c in host.changes
            ],
            "error": redact(host.error, redactor),
            "duration_s": round(host.duration_s, 3),
            "round_trips": host.round_trips,
            "steps": [
                {"step": s.name, "duration_s": s.duration_s, "changes": s.changes, "outcome": s.outcome}
                for s in host.steps
            ],
            "phases": dict(host.phases),
            "rollback": _rollback_json(host.rollback, redactor),
            "notes": [redact(note, redactor) for note in host.notes],
        }
        if host.batch:
            entry["batch"] = host.batch
        if host.recovered:
            entry["recovered"] = [_rollback_json(record, redactor) for record in host.recovered]
        decision = host.verify_decision
        if decision is not None:
            entry["verify"] = {"ran": decision.ran, "reason": decision.reason, "verified_at": decision.verified_at}
        if host.verify is not None:
            entry["verify"] = {
                **entry.get("verify", {"ran": True}),
                "ok": host.verify.ok,
                "duration_s": host.verify_duration_s,
                "checks": [
                    {"port": c.port, "name": c.name, "ok": c.ok, "detail": redact(c.detail, redactor)}
                    for c in host.verify.checks
                ],
            }
        hosts[name] = entry
    return {"dry_run": report.dry_run, "exit_code": report.exit_code, "interrupted": report.interrupted,
            "rolling": {"serial": report.serial, "max_fail": report.max_fail, "halted": report.halted}
            if report.serial else None,
            "slowest": [{"host": name, "step": what, "duration_s": seconds} for name, what, seconds in slowest(report)],
            "hosts": hosts}


def _rollback_json(record, redactor: Redactor = DEFAULT) -> dict | None:
    if record is None:
        return None
    return {"status": record.status, "undone": [redact(x, redactor) for x in record.done],
            "failed": [redact(x, redactor) for x in record.failed], "notes": [redact(x, redactor) for x in record.notes]}


def write_json(report: RunReport, path: str | Path, redactor: Redactor = DEFAULT) -> None:
    Path(path).write_text(json.dumps(to_json(report, redactor), indent=2) + "\n")
