"""The first step: close 25/465/587 to all but the control node until verify has passed."""

from __future__ import annotations

import ipaddress

from provisioner.desired import VERIFIED_MARKER
from provisioner.probes import FactSpec
from provisioner.model import Change
from provisioner.steps.base import Context, Step, StepError, merge_specs
from provisioner.steps.firewall.backends import mechanism
from provisioner.steps.firewall.persist import keep_across_reboots, persistence_facts
from provisioner.steps.firewall.state import PORT_WORDS, FirewallState, firewall_facts, firewall_state, with_state
from provisioner.vars import MailVars


class FirewallError(StepError):
    """The lockdown cannot be planned (e.g. the control node's address is unknown)."""


def control_address(ctx: Context) -> str:
    """The control node's address as the host sees it, normalized."""
    raw = ctx.vars.control_address or ctx.facts.ssh_client_address
    where = "vars.control_address" if ctx.vars.control_address else "SSH_CONNECTION on the host"
    if not raw:
        raise FirewallError(
            "cannot lock down ports 25/465/587: the control node's address is unknown "
            "(no SSH_CONNECTION on the host); set vars.control_address"
        )
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        raise FirewallError(
            f"cannot lock down ports 25/465/587: {raw!r} from {where} is not an IP address; set vars.control_address"
        ) from None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            address = address.ipv4_mapped
        elif address.scope_id:
            raise FirewallError(
                f"cannot lock down ports 25/465/587: {raw!r} is a link-local address with a zone; "
                "set vars.control_address"
            )
    return str(address)


def refuse_foreign_rejects(ctx: Context, state) -> None:
    """An admin's own rule that shuts a port Postfix serves: the host fails, the rule is never touched."""
    served = open_ports(ctx.vars)
    for port, where in state.foreign_rejects:
        if port in served:
            raise FirewallError(f"{ctx.host}: port {port} is rejected by {where} (not ours): not touched; "
                                "Postfix cannot serve it until that rule goes")


def open_ports(vars: MailVars) -> frozenset[int]:
    """The mail ports Postfix serves: 25, 587 with submission, 465 with smtps."""
    ports = {25}
    if vars.submission:
        ports.add(587)
    if vars.smtps:
        ports.add(465)
    return frozenset(ports)


class FirewallLockdown(Step):
    name = "firewall_lockdown"

    def needs(self, vars: MailVars) -> FactSpec:
        return merge_specs([firewall_facts(), persistence_facts()])

    def check(self, ctx: Context) -> list[Change]:
        facts, platform = ctx.facts, ctx.platform
        state = firewall_state(facts)
        refuse_foreign_rejects(ctx, state)
        verified = facts.file(VERIFIED_MARKER).exists
        changes: list[Change] = []
        backend = mechanism(state)
        if not verified:
            if backend is None:
                if ctx.vars.firewall_when_missing == "skip":
                    return [
                        Change(
                            step=self.name,
                            summary="no firewall tool on host: lockdown skipped (firewall_when_missing: skip)",
                        )
                    ]
                packages = platform.firewall_install
                state = state.replace(tools=state.tools | platform.firewall_install_tools)
                backend = mechanism(state)
                if backend is None:
                    raise FirewallError(
                        f"cannot lock down ports 25/465/587: no nft, iptables or running firewalld, and "
                        f"installing {', '.join(packages)} brings none"
                    )
                ctrl = control_address(ctx)
                installed = state
                changes.append(
                    Change(
                        step=self.name,
                        summary=f"install {', '.join(packages)}, then lock down inbound {PORT_WORDS} "
                        f"except from {ctrl} ({backend.label(installed)})",
                        actions=(*platform.install(packages), *backend.lockdown(installed, ctrl, platform, facts)),
                        effect=lambda f, s=installed, b=backend, c=ctrl, p=packages: with_state(
                            f.replace(packages={**f.packages, **{n: "(to be installed)" for n in p}}),
                            b.predict(s, c),
                        ),
                        installs=packages,
                    )
                )
                state = backend.predict(installed, ctrl)
            else:
                ctrl = control_address(ctx)
                if not backend.in_place(state, ctrl):
                    changes.append(
                        Change(
                            step=self.name,
                            summary=backend.summary(state, ctrl),
                            actions=backend.lockdown(state, ctrl, platform, facts),
                            effect=lambda f, b=backend, c=ctrl: with_state(f, b.predict(firewall_state(f), c)),
                        )
                    )
                    state = backend.predict(state, ctrl)
            if not backend.persists(state, platform, facts):
                rules = backend.lockdown(FirewallState(tools=state.tools), ctrl, platform, facts)
                change = keep_across_reboots(self.name, facts, platform, rules)
                if change:
                    changes.append(change)
        if backend is not None:
            # Where the host's own stock firewall closes the mail ports, open
            # them, behind the lockdown (see the package's docstring).
            changes.extend(backend.open_mail_ports(self.name, state, open_ports(ctx.vars), platform, facts))
        return changes
