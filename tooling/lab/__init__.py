"""Throwaway test lab: Debian 12 hosts in systemd-nspawn containers on private veths.

    from tooling.lab import up, down
    lab = up(hosts=3)   # lab1..lab3 at 10.200.N.2, inventory in inventories/lab.yaml
    down()              # removes all of it (keeps the cached image and repo)

Needs root on Linux with systemd-container, mmdebstrap, iproute2, dpkg-dev and
openssh-client (``make bootstrap`` installs them).
"""

from .core import down, up
from .errors import LabError
from .models import Lab, LabHost

__all__ = ["Lab", "LabError", "LabHost", "down", "up"]
