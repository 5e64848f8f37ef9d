"""The command line: parse arguments, call provisioner.app, exit with its code.

Installed, it is the ``provisioner`` command (``provisioner provision --host
mail1 --dry-run``); in a checkout the repository's tasks.py offers the same
tasks to ``invoke``. Both read the inventory path relative to the current
directory, never to where the code lives.
"""

from __future__ import annotations

from importlib import metadata

from invoke import Collection, Exit, Program, task

from provisioner import app
from provisioner.inventory import DEFAULT_INVENTORY


def _exit(code: int) -> None:
    if code:
        raise Exit(code=code)


@task(
    iterable=["host"],
    help={
        "inventory": f"inventory YAML (default {DEFAULT_INVENTORY})",
        "host": "host to provision (repeatable)",
        "group": "provision every host of this inventory group",
        "all": "provision every host of the inventory",
        "dry_run": "plan only: show every change with diffs, change nothing (exit 2 if anything is pending)",
        "json": "also write the report as JSON to this path",
        "verify": "auto (default): verify when the run changed the host or it has no passed verify for its state; "
                  "always; never (keeps the port-25 lockdown on a host never verified)",
        "no_verify": "the same as --verify never",
        "forks": "hosts handled in parallel (default 64)",
        "serial": "rolling update: N hosts, or N% of them, per batch (a real run on several hosts: 25% by default)",
        "max_fail": "hosts that may fail before later batches are not started (default 0 with batches)",
        "live": "the live view of every host on a terminal (default on; --no-live prints plain lines)",
        "diff": "show file diffs (default on)",
    },
)
def provision(c, inventory=DEFAULT_INVENTORY, host=None, group=None, all=False, dry_run=False, json=None,
              verify="auto", forks="64", diff=True, no_verify=False, serial=None, max_fail=None, live=True):
    """Provision hosts into a Postfix server with SMTP-AUTH and STARTTLS (or plan it with --dry-run)."""
    # forks stays text here: app checks it and prints one error line (invoke's int() would raise).
    _exit(app.provision(inventory, host or [], group, all, dry_run, json, verify, forks, diff, no_verify=no_verify,
                        serial=serial, max_fail=max_fail, live=live))


@task(name="verify", iterable=["host"], help={"inventory": "inventory YAML", "host": "host to verify (repeatable)",
                                              "group": "verify a group", "all": "verify every host"})
def verify_(c, inventory=DEFAULT_INVENTORY, host=None, group=None, all=False):
    """Repeat the seed's SMTP tests against hosts with a real SMTP client; changes nothing."""
    _exit(app.verify_hosts(inventory, host or [], group, all))


@task(help={"inventory": "inventory YAML", "host": "host to read", "out": "write the JSON here instead of stdout"})
def facts(c, host, inventory=DEFAULT_INVENTORY, out=None):
    """Print a host's gathered facts as JSON (the format of recorded test cases)."""
    _exit(app.dump_facts(inventory, host, out))


@task(name="check-inventory", help={"inventory": "inventory YAML"})
def check_inventory(c, inventory=DEFAULT_INVENTORY):
    """Validate an inventory file without contacting any host."""
    _exit(app.check_inventory(inventory))


TASKS = (provision, verify_, facts, check_inventory)
namespace = Collection(*TASKS)


def main() -> None:
    """The ``provisioner`` console script."""
    Program(
        name="provisioner",
        binary="provisioner",
        version=metadata.version("provisioner"),
        namespace=namespace,
    ).run()
