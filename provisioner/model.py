"""The data that flows between facts, steps, the engine and the report.

Everything here is plain, immutable data so that every decision made from it
can be tested without a host.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from provisioner.actions import (  # noqa: F401 - the actions are part of the model
    Action,
    Command,
    CreateGroup,
    JoinGroup,
    Journaled,
    Keep,
    KeepService,
    LeaveGroup,
    MakeDirectory,
    RemoveFile,
    RevertFile,
    SelfSignedCertificate,
    SetAttributes,
    Shell,
    Undo,
    WriteFile,
    file_bytes,
    one_line,
)


@dataclass(frozen=True)
class OsRelease:
    id: str = ""
    version_id: str = ""
    id_like: tuple[str, ...] = ()

    @property
    def major(self) -> int:
        head = self.version_id.split(".", 1)[0]
        return int(head) if head.isdigit() else 0


@dataclass(frozen=True)
class FileState:
    """What a host holds at one path.

    ``content`` is None when the file is absent, when it is secret (only its
    digest is gathered) or when it will be dropped by a package that the plan
    installs first (``from_package``): its exact text is then unknown until
    the package is really installed.
    """

    path: str
    exists: bool = False
    content: str | None = None
    sha256: str | None = None
    mode: str | None = None  # octal, e.g. "644"
    owner: str | None = None
    group: str | None = None
    mtime: int | None = None
    from_package: str | None = None
    # ``path`` is a symlink to this file (fully resolved); the other fields describe that file.
    link_target: str | None = None

    @property
    def known(self) -> bool:
        return self.exists and self.content is not None


@dataclass(frozen=True)
class ServiceState:
    name: str
    enabled: bool = False
    active: bool = False
    exists: bool = True
    # systemd's mask (the unit linked to /dev/null): neither enable nor start works until it is lifted.
    masked: bool = False


@dataclass(frozen=True)
class UserState:
    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Facts:
    os: OsRelease = OsRelease()
    packages: Mapping[str, str] = field(default_factory=dict)  # installed name -> version
    files: Mapping[str, FileState] = field(default_factory=dict)
    services: Mapping[str, ServiceState] = field(default_factory=dict)
    users: Mapping[str, UserState] = field(default_factory=dict)  # absent users are missing keys
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> explicit members
    commands: frozenset[str] = frozenset()  # executables found on PATH
    ssh_client_address: str | None = None
    postfix_version: str | None = None
    # Step-specific probes (see FactSpec.extra), by probe name.
    extra: Mapping[str, Any] = field(default_factory=dict)

    def file(self, path: str) -> FileState:
        return self.files.get(path) or FileState(path=path)

    def replace(self, **changes) -> "Facts":
        return dataclasses.replace(self, **changes)

    def with_file(self, state: FileState) -> "Facts":
        return self.replace(files={**self.files, state.path: state})


# ---------------------------------------------------------------- actions
# What a change does on the host, and how it renders: provisioner/actions.py.

# ---------------------------------------------------------------- changes


@dataclass(frozen=True)
class Change:
    """One difference between the host and the desired state, and how to close it.

    ``summary`` is what the plan and the report show; a dry run and the real
    run that follows it must produce the same (step, summary) pairs.
    ``effect`` predicts the facts after the change, so that later steps plan
    from the state the host will really be in.
    """

    step: str
    summary: str
    actions: tuple[Action, ...] = ()
    diff: str | None = None
    notify: frozenset[str] = frozenset()
    effect: Callable[[Facts], Facts] | None = field(default=None, compare=False, repr=False)
    writes: tuple[str, ...] = ()  # files this change rewrites (the journal restores them on rollback)
    # Packages this change installs: later steps of the run set up what they
    # bring (enabled at boot...) rather than trusting install-time defaults.
    installs: tuple[str, ...] = ()
    # Actions that make a rollback of ``writes`` take effect (`systemctl
    # daemon-reload` after a unit drop-in is put back), run after the files.
    after_restore: tuple[Action, ...] = ()

    def script(self) -> str:
        return "\n".join(a.render() for a in self.actions)


def apply_effects(facts: Facts, changes: Iterable[Change]) -> Facts:
    for change in changes:
        if change.effect is not None:
            facts = change.effect(facts)
    return facts


@dataclass(frozen=True)
class StepResult:
    step: str
    changes: tuple[Change, ...]
