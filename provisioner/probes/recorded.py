"""Facts to and from plain JSON data, for recorded cases (tests/data) and `invoke facts`."""

from __future__ import annotations

from typing import Any

from provisioner.probes import Probe
from provisioner.model import Facts, FileState, OsRelease, ServiceState, UserState


def facts_from_dict(data: dict[str, Any], probes: dict[str, Probe] | None = None) -> Facts:
    """``extra`` holds each step probe's raw output, parsed here by that probe."""
    os_data = data.get("os", {})
    files = {}
    for path, item in data.get("files", {}).items():
        files[path] = FileState(
            path=path,
            exists=item.get("exists", True),
            content=item.get("content"),
            sha256=item.get("sha256"),
            mode=item.get("mode"),
            owner=item.get("owner"),
            group=item.get("group"),
            mtime=item.get("mtime"),
            from_package=item.get("from_package"),
            link_target=item.get("link_target"),
        )
    services = {
        name: ServiceState(name=name, enabled=item.get("enabled", False), active=item.get("active", False),
                           exists=item.get("exists", True), masked=item.get("masked", False))
        for name, item in data.get("services", {}).items()
    }
    probes = probes or {}
    extra = {}
    for name, raw in data.get("extra", {}).items():
        extra[name] = probes[name].parse(raw) if name in probes else raw
    return Facts(
        os=OsRelease(id=os_data.get("id", ""), version_id=os_data.get("version_id", ""),
                     id_like=tuple(os_data.get("id_like", ()))),
        packages=dict(data.get("packages", {})),
        files=files,
        services=services,
        users={name: UserState(name=name, groups=tuple(groups)) for name, groups in data.get("users", {}).items()},
        groups={name: tuple(members) for name, members in data.get("groups", {}).items()},
        commands=frozenset(data.get("commands", ())),
        ssh_client_address=data.get("ssh_client_address"),
        postfix_version=data.get("postfix_version"),
        extra=extra,
    )


def facts_to_dict(facts: Facts, raw_extra: dict[str, str] | None = None) -> dict[str, Any]:
    def file_dict(state: FileState) -> dict[str, Any]:
        item: dict[str, Any] = {"exists": state.exists}
        for key in ("content", "sha256", "mode", "owner", "group", "mtime", "from_package", "link_target"):
            value = getattr(state, key)
            if value is not None:
                item[key] = value
        return item

    return {
        "os": {"id": facts.os.id, "version_id": facts.os.version_id, "id_like": list(facts.os.id_like)},
        "packages": dict(sorted(facts.packages.items())),
        "files": {path: file_dict(state) for path, state in sorted(facts.files.items())},
        "services": {
            name: {"enabled": s.enabled, "active": s.active, "exists": s.exists, **({"masked": True} if s.masked else {})}
            for name, s in sorted(facts.services.items())
        },
        "users": {name: list(u.groups) for name, u in sorted(facts.users.items())},
        "groups": {name: list(members) for name, members in sorted(facts.groups.items())},
        "commands": sorted(facts.commands),
        "ssh_client_address": facts.ssh_client_address,
        "postfix_version": facts.postfix_version,
        "extra": dict(raw_extra or {}),
    }
