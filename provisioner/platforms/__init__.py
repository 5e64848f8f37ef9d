"""Platforms: what differs between OS releases, as data. The registry and detect().

One module per family (``debian.py``, ``el.py``) defines its platforms;
adding a release is one Platform there (plus its recorded cases in
tests/data/steps), a new family one module and its line in FAMILIES.
"""

from __future__ import annotations

from provisioner.model import OsRelease
from provisioner.platforms import debian, el
from provisioner.platforms.base import Family, Platform, UnsupportedPlatform
from provisioner.platforms.debian import DEBIAN12, DEBIAN13
from provisioner.platforms.el import EL6, EL7, EL8, EL9

__all__ = ["ALL", "DEBIAN12", "DEBIAN13", "EL6", "EL7", "EL8", "EL9", "FAMILIES", "Platform", "UnsupportedPlatform",
           "detect", "union_paths"]

# In the order detect() tries them.
FAMILIES: tuple[Family, ...] = (debian.FAMILY, el.FAMILY)
ALL: tuple[Platform, ...] = tuple(p for family in FAMILIES for p in family.platforms)


def detect(os: OsRelease) -> Platform:
    ids = {os.id, *os.id_like}
    for family in FAMILIES:
        if ids & family.os_ids:
            return family.platform_for(os)
    raise UnsupportedPlatform(
        f"unsupported operating system {os.id or 'unknown'!r} {os.version_id}: "
        "supported are Debian 12 and 13, Ubuntu 22.04 and the RHEL family (CentOS, Rocky, Alma, RHEL 6 to 9)"
    )


def union_paths(attr: str) -> tuple[str, ...]:
    """A path attribute over every platform, each path once, in registry order (None left out).

    The attribute holds a path, an object with a ``path``, or a tuple of
    either or of (path, note) pairs.
    """
    seen: dict[str, None] = {}
    for platform in ALL:
        value = getattr(platform, attr)
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, tuple):
                item = item[0]
            if item is not None:
                seen[getattr(item, "path", item)] = None
    return tuple(seen)
