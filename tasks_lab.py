"""invoke tasks for the throwaway nspawn lab: ``invoke lab.up --hosts 3``, ``invoke lab.down``.

The main tasks.py does ``from tasks_lab import lab`` and adds the collection.
"""

from __future__ import annotations

import logging
import sys

from invoke import Collection, Exit, task


def _logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="lab: %(message)s", stream=sys.stderr)


@task(name="up", help={"hosts": "number of Debian 12 lab hosts, lab1..labN (default 1)"})
def lab_up(c, hosts=1):
    """Boot N Debian 12 lab hosts and write inventories/lab.yaml."""
    from provisioner.lab import LabError, up

    _logging()
    try:
        lab = up(hosts=int(hosts))
    except LabError as e:
        raise Exit(f"lab.up failed: {e}", code=1) from e
    for h in lab.hosts:
        print(f"{h.name}  {h.address}  (control {h.control_address}, outsider {h.outsider_address})")
    print(f"inventory: {lab.inventory_path}")
    print(f"secrets:   {lab.secrets_path}")
    print(f"ssh:       ssh -i {lab.key_path} -o UserKnownHostsFile={lab.known_hosts_path} root@{lab.hosts[0].address}")


@task(name="down")
def lab_down(c):
    """Stop and remove all lab hosts and the lab inventory (image cache stays)."""
    from provisioner.lab import LabError, down

    _logging()
    try:
        down()
    except LabError as e:
        raise Exit(f"lab.down failed: {e}", code=1) from e
    print("lab is down")


lab = Collection("lab")
lab.add_task(lab_up)
lab.add_task(lab_down)
