"""Throwaway test lab: Debian 12 and 13 hosts in systemd-nspawn containers on private veths.

    from tooling.lab import up, down
    lab = up(hosts=3)   # lab1..lab3 (Debian 12) at 10.200.N.2, inventory in inventories/lab.yaml
    lab = up(hosts=["bookworm", "trixie"])   # lab1 Debian 12, lab2 Debian 13
    down()              # removes all of it (keeps the cached images and repos)

Needs root on Linux with systemd-container, mmdebstrap, iproute2, dpkg-dev and
openssh-client (``make bootstrap`` installs them).
"""

from .core import down, up
from .errors import LabError
from .models import Lab, LabHost

__all__ = ["Lab", "LabError", "LabHost", "down", "up"]
