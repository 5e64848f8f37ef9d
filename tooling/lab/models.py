"""The lab as the rest of the project sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import KEY_PATH, KNOWN_HOSTS_PATH


@dataclass(frozen=True)
class LabHost:
    name: str
    address: str
    control_address: str
    outsider_address: str
    netns: str
    root: Path
    veth: str = ""
    boot_log: Path | None = None
    pid: int | None = None
    suite: str = "bookworm"  # the Debian suite it runs (bookworm: Debian 12, trixie: Debian 13)


@dataclass(frozen=True)
class Lab:
    hosts: list[LabHost]
    inventory_path: Path
    secrets_path: Path
    known_hosts_path: Path = KNOWN_HOSTS_PATH
    key_path: Path = KEY_PATH

    def host(self, name: str) -> LabHost:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(name)

    def ssh_argv(self, host: LabHost | str, command: str, *, user: str = "root") -> list[str]:
        """argv for ``ssh`` to a lab host with strict host key checking and the lab key."""
        from .hosts import ssh_argv

        h = self.host(host) if isinstance(host, str) else host
        return ssh_argv(h.address, command, user=user, key=self.key_path, known_hosts=self.known_hosts_path)
