"""`make demo`: boot a lab host, plan, provision and verify it, then show the converged rerun."""

from __future__ import annotations

from provisioner import app, report
from tooling.lab import up


def run_demo() -> int:
    console = report.make_console()
    console.rule("[bold]1. boot a fresh Debian 12 lab host")
    lab = up(hosts=1)
    inventory = str(lab.inventory_path)
    host = lab.hosts[0].name
    console.rule(f"[bold]2. dry run: the exact plan for {host} (exit code 2 = changes pending)")
    code = app.provision(inventory, [host], dry_run=True, show_diff=False)
    console.print(f"[dim]exit code {code}[/dim]")
    console.rule(f"[bold]3. provision {host}: lock down, configure, verify, open port 25")
    code = app.provision(inventory, [host], show_diff=False)
    if code != 0:
        return code
    console.rule("[bold]4. run again: converged, nothing to change")
    code = app.provision(inventory, [host])
    console.print(f"\n[bold]lab host {host} is still up[/bold]: `invoke provision --inventory {inventory} --host {host} --dry-run`,"
                  " `invoke verify ...`, and `invoke lab.down` to remove it.")
    return code
