"""invoke tasks: parse arguments, call provisioner, exit with its code."""

from invoke import Collection, Exit, task

from provisioner import app
from provisioner.inventory import DEFAULT_INVENTORY

try:
    from tasks_lab import lab
except ImportError:  # the lab is optional outside this repository
    lab = None


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
        "verify": "run the SMTP verification at the end (default on; --no-verify keeps the port-25 lockdown)",
        "forks": "hosts handled in parallel (default 5)",
        "diff": "show file diffs (default on)",
    },
)
def provision(c, inventory=DEFAULT_INVENTORY, host=None, group=None, all=False, dry_run=False, json=None,
              verify=True, forks="5", diff=True):
    """Provision hosts into a Postfix server with SMTP-AUTH and STARTTLS (or plan it with --dry-run)."""
    # forks stays text here: app checks it and prints one error line (invoke's int() would raise).
    _exit(app.provision(inventory, host or [], group, all, dry_run, json, verify, forks, diff))


@task(name="verify", iterable=["host"], help={"inventory": "inventory YAML", "host": "host to verify (repeatable)",
                                              "group": "verify a group", "all": "verify every host"})
def verify_(c, inventory=DEFAULT_INVENTORY, host=None, group=None, all=False):
    """Repeat the seed's SMTP tests against hosts with a real SMTP client; changes nothing."""
    _exit(app.verify(inventory, host or [], group, all))


@task(help={"inventory": "inventory YAML", "host": "host to read", "out": "write the JSON here instead of stdout"})
def facts(c, host, inventory=DEFAULT_INVENTORY, out=None):
    """Print a host's gathered facts as JSON (the format of recorded test cases)."""
    _exit(app.dump_facts(inventory, host, out))


@task(name="check-inventory", help={"inventory": "inventory YAML"})
def check_inventory(c, inventory=DEFAULT_INVENTORY):
    """Validate an inventory file without contacting any host."""
    _exit(app.check_inventory(inventory))


@task
def demo(c):
    """Boot a lab host, provision it, verify it and print the recap."""
    from provisioner.demo import run_demo

    _exit(run_demo())


@task(help={"runs": "timed runs per tool and job (default 5)",
            "repair": "also time the repair of one main.cf drift (default on; --no-repair skips it)"})
def bench(c, runs=5, repair=True):
    """Drift check (and repair) of a lab host: provisioner vs ansible-core vs pyinfra, side by side."""
    from provisioner.bench import run_bench

    _exit(run_bench(runs=int(runs), repair=repair))


ns = Collection(provision, verify_, facts, check_inventory, demo, bench)
if lab is not None:
    ns.add_collection(lab)
