"""The step contract: a pure ``check(ctx) -> changes`` and the facts it needs.

``apply`` is generic: the engine runs the actions of a step's changes in one
remote script. A step that changes what later steps see (installing a
package drops files) says so with ``refresh_after_apply``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from provisioner.facts import FactSpec
from provisioner.vars import MailVars
from provisioner.model import Change, Facts
from provisioner.platforms import Platform


@dataclass(frozen=True)
class Context:
    host: str
    vars: MailVars
    platform: Platform
    facts: Facts
    dry_run: bool = False
    # Handler tags notified by the steps before this one.
    notified: frozenset[str] = frozenset()
    # Options of this run that a step may need (e.g. whether verify runs).
    options: dict = field(default_factory=dict)


class StepError(Exception):
    """The desired state cannot be reached on this host (bad input seen on the host, missing user...).

    The message names the host and what is wrong; the host is reported failed.
    """


class Step:
    name: str = "step"
    refresh_after_apply: bool = False

    def facts(self, vars: MailVars) -> FactSpec:
        """What this step looks at, for every OS family (gathered in one round trip)."""
        return FactSpec()

    def check(self, ctx: Context) -> list[Change]:
        raise NotImplementedError

    def recovery(self, initial: Facts, platform: Platform) -> tuple:
        """Actions to run after this step failed and the engine restored the files."""
        return ()

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
