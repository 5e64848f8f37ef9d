"""One backend per firewall mechanism, behind one interface: firewalld, nftables, iptables.

Each backend knows how its lockdown looks on the host, whether it is in
place, the actions that put it there (or take it away), the state they
leave, and how to open the mail ports where the host's stock firewall closes
them. The steps pick a backend (``mechanism``) and never ask which one it is.
"""

from __future__ import annotations

import ipaddress

from provisioner.model import Action, Change, Command, Facts, Shell
from provisioner.platforms import Platform
from provisioner.steps.firewall.state import (
    CHAIN,
    COMMENT,
    NFT_TABLE,
    OPEN_CHAIN,
    PORT_LIST,
    PORT_WORDS,
    PORTS,
    DirectRule,
    FirewallState,
    Lockdown,
    Zone,
    firewall_state,
    with_state,
)


def is_v6(address: str) -> bool:
    return ipaddress.ip_address(address).version == 6


def words(ports) -> str:
    return ", ".join(str(p) for p in sorted(ports))


def _locked(allowed: tuple[str, ...]) -> Lockdown:
    """A lockdown as our actions leave it."""
    return Lockdown(allowed, PORTS if allowed else frozenset(), PORTS, True)


class Backend:
    name: str

    def applies(self, state: FirewallState) -> bool:
        """Whether this mechanism is the one to use on a host in this state."""
        raise NotImplementedError

    def label(self, state: FirewallState) -> str:
        return self.name

    def in_place(self, state: FirewallState, ctrl: str) -> bool:
        raise NotImplementedError

    def found(self, state: FirewallState) -> tuple[set[str], bool]:
        """(addresses the current lockdown lets through, whether any part of it exists)."""
        raise NotImplementedError

    def lockdown(self, state: FirewallState, ctrl: str, platform: Platform, facts: Facts) -> tuple[Action, ...]:
        raise NotImplementedError

    def predict(self, state: FirewallState, ctrl: str) -> FirewallState:
        """The state after ``lockdown``."""
        raise NotImplementedError

    def persists(self, state: FirewallState, platform: Platform, facts: Facts) -> bool:
        """Whether the lockdown's rules come back at boot on their own (else persist.py loads them)."""
        return False

    def unlock(self, state: FirewallState, platform: Platform, facts: Facts) -> tuple[Action, ...]:
        """Remove this mechanism's lockdown, if the host has one."""
        raise NotImplementedError

    def open_mail_ports(self, step: str, state: FirewallState, wanted: frozenset[int], platform: Platform,
                        facts: Facts) -> list[Change]:
        """Open ``wanted`` where the host's stock firewall closes them (nothing by default)."""
        return []

    def summary(self, state: FirewallState, ctrl: str) -> str:
        summary = f"lock down inbound {PORT_WORDS} except from {ctrl} ({self.label(state)}"
        allowed, exists = self.found(state)
        if exists and allowed != {ctrl}:
            summary += f", replacing a lockdown that allowed {', '.join(sorted(allowed)) or 'no address'}"
        elif exists:
            summary += ", repairing an incomplete lockdown"
        return summary + ")"


# ------------------------------------------------------------------ firewalld


def desired_direct(ctrl: str) -> tuple[DirectRule, ...]:
    reject = ("-p", "tcp", "-m", "multiport", "--dports", PORT_LIST, "-m", "comment", "--comment", COMMENT,
              "-j", "REJECT", "--reject-with", "tcp-reset")
    accept = ("-s", ctrl, "-p", "tcp", "-m", "multiport", "--dports", PORT_LIST, "-m", "comment", "--comment",
              COMMENT, "-j", "ACCEPT")
    family = "ipv6" if is_v6(ctrl) else "ipv4"
    rules = [
        DirectRule("ipv4", "filter", "INPUT", 1, reject),
        DirectRule("ipv6", "filter", "INPUT", 1, reject),
        DirectRule(family, "filter", "INPUT", 0, accept),
    ]
    return tuple(sorted(rules))


class Firewalld(Backend):
    name = "firewalld"

    def applies(self, state: FirewallState) -> bool:
        return state.firewalld_running and "firewall-cmd" in state.tools

    def label(self, state: FirewallState) -> str:
        return "firewalld direct rules"

    def in_place(self, state: FirewallState, ctrl: str) -> bool:
        wanted = set(desired_direct(ctrl))
        return set(state.direct_runtime) == wanted and set(state.direct_permanent) == wanted

    def found(self, state: FirewallState) -> tuple[set[str], bool]:
        rules = (*state.direct_runtime, *state.direct_permanent)
        return {r.source for r in rules if r.source}, bool(rules)

    def lockdown(self, state: FirewallState, ctrl: str, platform: Platform, facts: Facts) -> tuple[Action, ...]:
        """Add what is missing (rejects before accepts), then remove stale rules; runtime, then permanent."""
        wanted = desired_direct(ctrl)
        actions: list[Action] = []
        for flags, current in (((), state.direct_runtime), (("--permanent",), state.direct_permanent)):
            missing = [r for r in wanted if r not in current]
            missing.sort(key=lambda r: (-r.priority, r))
            for rule in missing:
                actions.append(Command(("firewall-cmd", *flags, "--direct", "--add-rule", *rule.argv())))
            for rule in sorted(set(current) - set(wanted)):
                actions.append(Command(("firewall-cmd", *flags, "--direct", "--remove-rule", *rule.argv())))
        return tuple(actions)

    def predict(self, state: FirewallState, ctrl: str) -> FirewallState:
        wanted = desired_direct(ctrl)
        return state.replace(direct_runtime=wanted, direct_permanent=wanted)

    def persists(self, state: FirewallState, platform: Platform, facts: Facts) -> bool:
        return True  # the permanent configuration

    def unlock(self, state: FirewallState, platform: Platform, facts: Facts) -> tuple[Action, ...]:
        actions: list[Action] = []
        for flags, current in (((), state.direct_runtime), (("--permanent",), state.direct_permanent)):
            for rule in sorted(current):
                actions.append(Command(("firewall-cmd", *flags, "--direct", "--remove-rule", *rule.argv())))
        return tuple(actions)

    def open_mail_ports(self, step: str, state: FirewallState, wanted: frozenset[int], platform: Platform,
                        facts: Facts) -> list[Change]:
        """``--add-port`` in the default zone, runtime and permanent, for each mail port it does not open."""
        runtime, permanent = state.zone_runtime, state.zone_permanent
        if runtime is None:
            return []
        missing_rt = sorted(wanted - runtime.open_ports)
        missing_perm = sorted(wanted - (permanent.open_ports if permanent else frozenset()))
        if not missing_rt and not missing_perm:
            return []
        zone = runtime.name
        actions: list[Action] = []
        if missing_rt:
            actions.append(Command(("firewall-cmd", f"--zone={zone}", *(f"--add-port={p}/tcp" for p in missing_rt))))
        if missing_perm:
            actions.append(
                Command(("firewall-cmd", "--permanent", f"--zone={zone}", *(f"--add-port={p}/tcp" for p in missing_perm)))
            )

        def effect(f: Facts, rt=tuple(missing_rt), perm=tuple(missing_perm)) -> Facts:
            s = firewall_state(f)
            if s.zone_runtime is not None:
                s = s.replace(zone_runtime=Zone(s.zone_runtime.name, s.zone_runtime.open_ports | set(rt)))
            base = s.zone_permanent or Zone(zone)
            s = s.replace(zone_permanent=Zone(base.name, base.open_ports | set(perm)))
            return with_state(f, s)

        return [Change(
            step=step,
            summary=f"open tcp {words(set(missing_rt) | set(missing_perm))} in firewalld zone {zone}",
            actions=tuple(actions),
            effect=effect,
        )]


# ------------------------------------------------------------------ nftables

NFT_LOAD = (
    "printf '"
    f"table inet {NFT_TABLE}\\ndelete table inet {NFT_TABLE}\\n"
    f"table inet {NFT_TABLE} {{{{\\n"
    "\\tchain input {{\\n"
    "\\t\\ttype filter hook input priority -10; policy accept;\\n"
    f"\\t\\t%s saddr %s tcp dport {{{{ {PORT_WORDS} }}}} accept\\n"
    f"\\t\\ttcp dport {{{{ {PORT_WORDS} }}}} reject with tcp reset\\n"
    "\\t}}\\n}}\\n' {0} {1} | nft -f -"
)
NFT_DELETE = f"printf 'table inet {NFT_TABLE}\\ndelete table inet {NFT_TABLE}\\n' | nft -f -"


class Nftables(Backend):
    name = "nftables"

    def applies(self, state: FirewallState) -> bool:
        return "nft" in state.tools

    def in_place(self, state: FirewallState, ctrl: str) -> bool:
        return state.nft is not None and state.nft.closes_all_but((ctrl,))

    def found(self, state: FirewallState) -> tuple[set[str], bool]:
        return set(state.nft.allowed if state.nft else ()), state.nft is not None

    def lockdown(self, state: FirewallState, ctrl: str, platform: Platform, facts: Facts) -> tuple[Action, ...]:
        # The address reaches nft through printf's %s from a quoted argument,
        # and it was checked to be a plain IP address (control_address).
        return (Shell(NFT_LOAD, ("ip6" if is_v6(ctrl) else "ip", ctrl)),)

    def predict(self, state: FirewallState, ctrl: str) -> FirewallState:
        return state.replace(nft=_locked((ctrl,)))

    def unlock(self, state: FirewallState, platform: Platform, facts: Facts) -> tuple[Action, ...]:
        return (Shell(NFT_DELETE),) if state.nft is not None else ()


# ------------------------------------------------------------------ iptables

IPT_REJECT = ("-p", "tcp", "-m", "multiport", "--dports", PORT_LIST, "-j", "REJECT", "--reject-with", "tcp-reset")


def iptables_lockdown(binary: str, allowed: str | None) -> tuple[Action, ...]:
    """Refill our chain reject-first (never open, even for a moment), then hook it into INPUT."""
    actions: list[Action] = [
        Shell(f"{binary} -N {CHAIN} 2>/dev/null || true"),
        Command((binary, "-I", CHAIN, "1", *IPT_REJECT)),
        Shell(f"while {binary} -D {CHAIN} 2 2>/dev/null; do :; done"),
    ]
    if allowed:
        actions.append(
            Command((binary, "-I", CHAIN, "1", "-s", allowed, "-p", "tcp", "-m", "multiport", "--dports", PORT_LIST,
                     "-j", "ACCEPT"))
        )
    actions.append(Shell(f"if ! {binary} -S INPUT | grep -qx -e '-A INPUT -j {CHAIN}'; then {binary} -I INPUT 1 -j {CHAIN}; fi"))
    return tuple(actions)


def iptables_unlock(binary: str) -> Action:
    return Shell(
        f"while {binary} -D INPUT -j {CHAIN} 2>/dev/null; do :; done; "
        f"if {binary} -S {CHAIN} >/dev/null 2>&1; then {binary} -F {CHAIN}; {binary} -X {CHAIN}; fi"
    )


def open_chain_actions(binary: str, ports: frozenset[int]) -> tuple[Action, ...]:
    """Our PROVISIONER_OPEN chain, jumped to right after the lockdown's jump (or first)."""
    return (
        Shell(f"{binary} -N {OPEN_CHAIN} 2>/dev/null || true"),
        Command((binary, "-F", OPEN_CHAIN)),
        Command((binary, "-A", OPEN_CHAIN, "-p", "tcp", "-m", "multiport", "--dports",
                 ",".join(str(p) for p in sorted(ports)), "-j", "ACCEPT")),
        # `-S INPUT` starts with the policy line, so the lockdown jump's line
        # number is the rule position right after it.
        Shell(
            f"if ! {binary} -S INPUT | grep -qx -e '-A INPUT -j {OPEN_CHAIN}'; then "
            f"_at=$({binary} -S INPUT | grep -n -x -e '-A INPUT -j {CHAIN}' | head -n 1 | cut -d: -f1); "
            f"if [ -z \"$_at\" ]; then _at=1; fi; {binary} -I INPUT \"$_at\" -j {OPEN_CHAIN}; fi"
        ),
    )


class Iptables(Backend):
    """iptables, and ip6tables beside it when the host has it."""

    name = "iptables"

    def applies(self, state: FirewallState) -> bool:
        return "iptables" in state.tools

    @staticmethod
    def binaries(state: FirewallState) -> tuple[str, ...]:
        return ("iptables", "ip6tables") if "ip6tables" in state.tools else ("iptables",)

    @staticmethod
    def _save(binaries, state: FirewallState) -> list[Action]:
        """`service X save` where X's service is enabled: the rules it loads at boot are then ours too."""
        return [Command(("service", b, "save")) for b in binaries if b in state.saved_by_service]

    def persists(self, state: FirewallState, platform: Platform, facts: Facts) -> bool:
        return all(binary in state.saved_by_service for binary in self.binaries(state))

    def label(self, state: FirewallState) -> str:
        return "iptables and ip6tables" if "ip6tables" in state.tools else "iptables"

    def in_place(self, state: FirewallState, ctrl: str) -> bool:
        v4 = state.iptables is not None and state.iptables.closes_all_but(() if is_v6(ctrl) else (ctrl,))
        v6 = "ip6tables" not in state.tools or (
            state.ip6tables is not None and state.ip6tables.closes_all_but((ctrl,) if is_v6(ctrl) else ())
        )
        return v4 and v6

    def found(self, state: FirewallState) -> tuple[set[str], bool]:
        found = [lock for lock in (state.iptables, state.ip6tables) if lock is not None]
        return {a for lock in found for a in lock.allowed}, bool(found)

    def lockdown(self, state: FirewallState, ctrl: str, platform: Platform, facts: Facts) -> tuple[Action, ...]:
        actions: list[Action] = []
        for binary in self.binaries(state):
            allowed = ctrl if is_v6(ctrl) == (binary == "ip6tables") else None
            actions.extend(iptables_lockdown(binary, allowed))
        return (*actions, *self._save(self.binaries(state), state))

    def predict(self, state: FirewallState, ctrl: str) -> FirewallState:
        v6 = is_v6(ctrl)
        state = state.replace(iptables=_locked(() if v6 else (ctrl,)))
        if "ip6tables" in state.tools:
            state = state.replace(ip6tables=_locked((ctrl,) if v6 else ()))
        return state

    def unlock(self, state: FirewallState, platform: Platform, facts: Facts) -> tuple[Action, ...]:
        lifted = [b for b, lock in (("iptables", state.iptables), ("ip6tables", state.ip6tables)) if lock is not None]
        return (*(iptables_unlock(b) for b in lifted), *self._save(lifted, state))

    def open_mail_ports(self, step: str, state: FirewallState, wanted: frozenset[int], platform: Platform,
                        facts: Facts) -> list[Change]:
        """Our PROVISIONER_OPEN chain, where the host's own INPUT rules reject a mail port Postfix serves."""
        current = {"iptables": state.iptables_open, "ip6tables": state.ip6tables_open}
        stale = [b for b in self.binaries(state) if state.closed(b) & wanted and current[b] != wanted]
        if not stale:
            return []
        actions = [a for binary in stale for a in open_chain_actions(binary, wanted)]

        def effect(f: Facts, stale=tuple(stale)) -> Facts:
            s = firewall_state(f)
            if "iptables" in stale:
                s = s.replace(iptables_open=wanted)
            if "ip6tables" in stale:
                s = s.replace(ip6tables_open=wanted)
            return with_state(f, s)

        return [Change(
            step=step,
            summary=f"open tcp {words(wanted)} in {' and '.join(stale)} (chain {OPEN_CHAIN})",
            actions=(*actions, *self._save(stale, state)),
            effect=effect,
        )]


BACKENDS: tuple[Backend, ...] = (Firewalld(), Nftables(), Iptables())


def mechanism(state: FirewallState) -> Backend | None:
    """The host's firewall: firewalld when it runs, iptables when iptables.service manages the rules, else nft, else iptables.

    iptables.service (iptables-services on EL7+, the init script on EL6) loads
    and saves the iptables ruleset: on EL8, where nft is on PATH as well, a
    table of our own would sit beside iptables-nft's INPUT, whose REJECT would
    still refuse what our table accepts, and would not survive a reboot.
    """
    firewalld, nftables, iptables = BACKENDS
    if firewalld.applies(state):
        return firewalld
    if state.iptables_service_running and iptables.applies(state):
        return iptables
    return next((backend for backend in (nftables, iptables) if backend.applies(state)), None)
