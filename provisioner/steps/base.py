"""The step contract: a pure ``check(ctx) -> changes`` and the facts it needs.

``apply`` is generic: the engine runs the actions of a step's changes in one
remote script. A step that changes what later steps see (installing a
package drops files) says so with ``refresh_after_apply``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Mapping

from provisioner.probes import FactSpec
from provisioner.vars import MailVars
from provisioner.model import Change, Facts
from provisioner.platforms import Platform


@dataclass(frozen=True)
class StepOptions:
    """What a step may need to know about the run, beyond the host."""

    verify: bool = True  # verify runs after the steps (and may lift the lockdown)
    now: datetime | None = None  # the clock for certificate decisions; None: the real one

    @classmethod
    def from_mapping(cls, data: Mapping) -> "StepOptions":
        """From JSON data, as recorded cases give it: ``{"verify": true, "now": "2026-03-01T12:00:00+00:00"}``."""
        now = data.get("now")
        if isinstance(now, str):
            now = datetime.fromisoformat(now)
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        return cls(verify=data.get("verify") is not False, now=now)

    def clock(self) -> datetime:
        return self.now or datetime.now(timezone.utc)


@dataclass(frozen=True)
class Context:
    host: str
    vars: MailVars
    platform: Platform
    facts: Facts
    dry_run: bool = False
    # Handler tags notified by the steps before this one.
    notified: frozenset[str] = frozenset()
    # Given as a mapping (a recorded case's JSON), it is read into StepOptions.
    options: StepOptions = StepOptions()
    # Packages this run installs (or installed), from the steps before this one.
    installed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.options, StepOptions):
            object.__setattr__(self, "options", StepOptions.from_mapping(self.options))


class StepError(Exception):
    """The desired state cannot be reached on this host (bad input seen on the host, missing user...).

    The message names the host and what is wrong; the host is reported failed.
    """


class Step:
    name: str = "step"
    refresh_after_apply: bool = False

    def needs(self, vars: MailVars) -> FactSpec:
        """What this step looks at, for every OS family (gathered in one round trip)."""
        return FactSpec()

    def check(self, ctx: Context) -> list[Change]:
        raise NotImplementedError

    def reconcile(self, before: Facts, after: Facts, changes: list[Change], platform: Platform) -> Facts:
        """Facts after a real apply that refreshed them (see refresh_after_apply)."""
        return after


def merge_specs(specs: list[FactSpec]) -> FactSpec:
    def union(attr: str) -> tuple:
        seen: dict = {}
        for spec in specs:
            for item in getattr(spec, attr):
                seen[item] = None
        return tuple(seen)

    extra: dict = {}
    for spec in specs:
        for probe in spec.extra:
            extra[probe.name] = probe
    secret = union("secret_files")
    files = tuple(f for f in union("files") if f not in secret)
    return FactSpec(
        packages=union("packages"),
        files=files,
        secret_files=secret,
        services=union("services"),
        users=union("users"),
        groups=union("groups"),
        commands=union("commands"),
        extra=tuple(extra.values()),
    )
