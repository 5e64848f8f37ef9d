"""The port-25 lockdown: closed to all but the control node until verify passes.

The seed blocks port 25 with iptables before Postfix is configured, because
open relays are found within minutes, and opens it once the configuration is
tested. Here ``FirewallLockdown`` is the first step of a run: inbound TCP 25,
465 and 587 are refused to everyone except the control node (so that verify
can reach them), and ``FirewallLift`` removes that lockdown only after verify
has passed, writing ``VERIFIED_MARKER``. A host that carries the marker is
never locked down again by a rerun: that would bounce live mail.

Mechanisms (only ever our own table, chain or tagged rules; a user's ruleset
is never flushed or replaced, SSH and every other port are never touched):

- firewalld, when it runs (any family, in practice EL7/EL8/EL9): *direct*
  rules tagged with ``-m comment --comment provisioner-lockdown``:
  ``ACCEPT`` from the control address at priority 0 and ``REJECT --reject-with
  tcp-reset`` for everyone at priority 1, for IPv4 and IPv6. Direct rules are
  evaluated before any zone: with the iptables backend (EL7) they sit in
  INPUT_direct, jumped to first; with the nftables backend (EL8+) they are
  iptables-nft rules at priority 0, before firewalld's own chains at +10. So
  the REJECT closes the ports whatever an admin put in a zone (removing the
  smtp service from a zone would not: a port, a rich rule or another zone can
  still open it). Rich rules cannot express "allow one source, reject the
  rest" on EL7: firewalld evaluates every reject rich rule before any accept.
  Rules are added to the runtime and to the permanent configuration, each
  by its own command: no ``--reload``, which would also throw away every
  runtime-only change an admin made. (The direct interface is deprecated
  since firewalld 1.0 but still present in EL9.)
- nftables (``nft``), else iptables: on Debian, and on EL hosts whose firewalld
  is not running. nft: our own table ``inet provisioner_lockdown`` with a
  base chain ``input`` at priority -10 (before the usual filter chains at 0;
  a reject there is final whatever later chains say), loaded atomically with
  ``nft -f -`` (the table is declared, deleted and redefined in one
  transaction, so a drifted lockdown is replaced without an open window).
  iptables: our own chain ``PROVISIONER_LOCKDOWN`` (and the same in
  ip6tables, so IPv6 is closed too), jumped to from INPUT position 1. The
  chain is refilled reject-first, so a drifted lockdown never opens.

Persistence: the lockdown is meant to live from the first run until verify
passes, usually minutes within the same run. On EL6 it is saved with
``service iptables save`` (and ip6tables) when that service is enabled at
boot, because that is where EL6 keeps its firewall. firewalld gets it in the
permanent configuration. nft and plain iptables rules on Debian stay runtime
only: persisting them would mean editing the admin's /etc/nftables.conf (whose
``flush ruleset`` would also wipe our table whenever nftables.service
restarts). A reboot between a failed verify and the next run therefore
reopens the ports on Debian; the next run locks them down again first.

Opening the mail ports: verify connects from the control node, and once the
lockdown is lifted the world must reach Postfix. Where the host's own stock
firewall closes them, the lockdown step also opens the mail ports Postfix
serves (25, plus 587 with ``submission``, 465 with ``smtps``), after the
lockdown is in place so that they are never open to all before verify:
- firewalld: ``--add-port=N/tcp`` in the default zone (runtime and permanent)
  for each port not already open there by a port or by the smtp, smtps or
  smtp-submission service. Its default zone (public) opens only ssh and
  dhcpv6-client, and with the nftables backend an ACCEPT direct rule does
  not get past the zone, so even verify needs this.
- EL6: its stock /etc/sysconfig/iptables rejects every new inbound
  connection but SSH. Our own chain ``PROVISIONER_OPEN`` accepts the mail
  ports; its jump goes right after the lockdown's jump, so it never lets
  anyone past the lockdown.
Debian has no stock firewall; an admin's own ruleset there is theirs to open.

No firewall tool (``firewall_when_missing``): ``install`` installs one and
locks down in the same change (nftables on Debian and EL8, iptables on EL6
and EL7; never firewalld, whose start would apply its default zone and close
every other port of the host). ``skip`` leaves the ports open, and the plan
says so with a change that has no action: an unverified host whose ports
cannot be closed is pending work, and the change disappears once verify has
passed and the marker is written (a verified host needs no lockdown).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import shlex
from dataclasses import dataclass

from provisioner.desired import STATE_DIR, VERIFIED_MARKER
from provisioner.facts import FactSpec, Probe
from provisioner.vars import MailVars
from provisioner.model import Action, Change, Command, Facts, FileState, Shell, WriteFile
from provisioner.platforms import Platform
from provisioner.steps.base import Context, Step, StepError

PORTS: frozenset[int] = frozenset({25, 465, 587})
PORT_LIST = "25,465,587"
PORT_WORDS = "25, 465, 587"
NFT_TABLE = "provisioner_lockdown"
CHAIN = "PROVISIONER_LOCKDOWN"
OPEN_CHAIN = "PROVISIONER_OPEN"
COMMENT = "provisioner-lockdown"
PROBE = "firewall_state"
MARKER_CONTENT = "verified by provisioner\n"

# firewalld services that open a mail port.
SERVICE_PORTS: dict[str, frozenset[int]] = {
    "smtp": frozenset({25}),
    "smtps": frozenset({465}),
    "smtp-submission": frozenset({587}),
}
LABELS = {"firewalld": "firewalld direct rules", "nftables": "nftables", "iptables": "iptables"}


def label(state: "FirewallState", mech: str) -> str:
    if mech == "iptables" and "ip6tables" in state.tools:
        return "iptables and ip6tables"
    return LABELS[mech]


class FirewallError(StepError):
    """The lockdown cannot be planned (e.g. the control node's address is unknown)."""


# ------------------------------------------------------------------ state


@dataclass(frozen=True)
class Lockdown:
    """One mechanism's lockdown as found on the host (or as predicted)."""

    allowed: tuple[str, ...] = ()  # source addresses let through, normalized, sorted
    allowed_ports: frozenset[int] = frozenset()
    rejected_ports: frozenset[int] = frozenset()
    hooked: bool = False  # nft: input hook, policy accept; iptables: INPUT jumps to it

    def closes_all_but(self, allowed: tuple[str, ...]) -> bool:
        return (
            self.hooked
            and self.allowed == allowed
            and self.rejected_ports >= PORTS
            and (not allowed or self.allowed_ports >= PORTS)
        )


@dataclass(frozen=True, order=True)
class DirectRule:
    """One firewalld direct rule (only ours, tagged with COMMENT, are kept)."""

    ipv: str
    table: str
    chain: str
    priority: int
    args: tuple[str, ...]

    def argv(self) -> tuple[str, ...]:
        return (self.ipv, self.table, self.chain, str(self.priority), *self.args)

    @property
    def source(self) -> str | None:
        args = list(self.args)
        if "-s" in args and args.index("-s") + 1 < len(args):
            return normalize_source(args[args.index("-s") + 1])
        return None


@dataclass(frozen=True)
class Zone:
    name: str
    open_ports: frozenset[int] = frozenset()  # mail ports open through ports or services


@dataclass(frozen=True)
class FirewallState:
    tools: frozenset[str] = frozenset()  # nft, iptables, ip6tables, firewall-cmd
    firewalld_running: bool = False
    nft: Lockdown | None = None
    iptables: Lockdown | None = None
    ip6tables: Lockdown | None = None
    iptables_open: frozenset[int] | None = None  # ports of a hooked PROVISIONER_OPEN
    ip6tables_open: frozenset[int] | None = None
    direct_runtime: tuple[DirectRule, ...] = ()
    direct_permanent: tuple[DirectRule, ...] = ()
    zone_runtime: Zone | None = None
    zone_permanent: Zone | None = None

    def replace(self, **changes) -> "FirewallState":
        return dataclasses.replace(self, **changes)

    @property
    def lockdown_present(self) -> bool:
        return bool(self.nft or self.iptables or self.ip6tables or self.direct_runtime or self.direct_permanent)


# ------------------------------------------------------------------ parsing


def normalize_source(text: str) -> str:
    """``192.0.2.10/32`` -> ``192.0.2.10``; a real network stays a network."""
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return text
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def parse_ports(text: str) -> frozenset[int]:
    """``25,465,587`` (iptables), ``{ 25, 465, 587 }`` or ``25`` (nft), ``20:30`` / ``20-30`` ranges."""
    ports: set[int] = set()
    for part in text.strip().strip("{}").replace(" ", "").split(","):
        lo, sep, hi = part.replace("-", ":").partition(":")
        if lo.isdigit() and (not sep or hi.isdigit()):
            start, end = int(lo), int(hi) if sep else int(lo)
            ports.update(p for p in PORTS if start <= p <= end)
    return frozenset(ports)


def parse_nft_table(lines: list[str]) -> Lockdown | None:
    """``nft list table inet provisioner_lockdown`` as text; None when the table is absent."""
    if not any(line.strip().startswith(f"table inet {NFT_TABLE}") for line in lines):
        return None
    allowed: set[str] = set()
    allowed_ports: set[int] = set()
    rejected: set[int] = set()
    hooked = False
    for raw in lines:
        line = raw.strip()
        if line.startswith("type filter hook input"):
            hooked = "policy accept" in line
            continue
        words = line.replace("{ ", "{").replace(" }", "}").replace(", ", ",").split()
        if "dport" not in words:
            continue
        ports = parse_ports(words[words.index("dport") + 1]) if words.index("dport") + 1 < len(words) else frozenset()
        if words[-1] == "accept" and "saddr" in words:
            sources = words[words.index("saddr") + 1].strip("{}").split(",")
            allowed.update(normalize_source(s) for s in sources if s)
            allowed_ports.update(ports)
        elif "reject" in words or words[-1] == "drop":
            rejected.update(ports)
    return Lockdown(tuple(sorted(allowed)), frozenset(allowed_ports), frozenset(rejected), hooked)


def _option(words: list[str], *names: str) -> str | None:
    for name in names:
        if name in words and words.index(name) + 1 < len(words):
            return words[words.index(name) + 1]
    return None


def parse_iptables(lines: list[str]) -> tuple[Lockdown | None, frozenset[int] | None]:
    """``iptables -S`` lines mentioning our chains -> (lockdown, ports opened by PROVISIONER_OPEN)."""
    has_lockdown = f"-N {CHAIN}" in (line.strip() for line in lines)
    has_open = f"-N {OPEN_CHAIN}" in (line.strip() for line in lines)
    allowed: set[str] = set()
    allowed_ports: set[int] = set()
    rejected: set[int] = set()
    open_ports: set[int] = set()
    jumps: list[str] = []
    for raw in lines:
        words = raw.split()
        if len(words) < 2 or words[0] != "-A":
            continue
        target = _option(words, "-j")
        ports = parse_ports(_option(words, "--dports", "--dport") or "")
        if words[1] == "INPUT" and target in (CHAIN, OPEN_CHAIN) and len(words) == 4:
            jumps.append(target)
        elif words[1] == CHAIN:
            source = _option(words, "-s")
            if target == "ACCEPT" and source:
                allowed.add(normalize_source(source))
                allowed_ports.update(ports)
            elif target in ("REJECT", "DROP") and not source:
                rejected.update(ports)
        elif words[1] == OPEN_CHAIN and target == "ACCEPT" and not _option(words, "-s"):
            open_ports.update(ports)
    lockdown = None
    if has_lockdown:
        lockdown = Lockdown(tuple(sorted(allowed)), frozenset(allowed_ports), frozenset(rejected), CHAIN in jumps)
    opened = None
    if has_open and OPEN_CHAIN in jumps:
        # Behind the lockdown's jump, or it would let everyone past the lockdown.
        if CHAIN not in jumps or jumps.index(CHAIN) < jumps.index(OPEN_CHAIN):
            opened = frozenset(open_ports)
        elif lockdown is not None:
            lockdown = dataclasses.replace(lockdown, hooked=False)
    return lockdown, opened


def parse_direct_rules(lines: list[str]) -> tuple[DirectRule, ...]:
    """``firewall-cmd --direct --get-all-rules``: ``ipv4 filter INPUT 0 <args>``; ours only."""
    rules = []
    for line in lines:
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        if len(words) < 5 or not words[3].lstrip("-").isdigit():
            continue
        if COMMENT not in words[4:]:
            continue
        rules.append(DirectRule(words[0], words[1], words[2], int(words[3]), tuple(words[4:])))
    return tuple(sorted(rules))


def parse_zone(lines: list[str]) -> Zone | None:
    """``firewall-cmd --zone=Z --list-all``: first line names the zone, then ``  key: values``."""
    if not lines or not lines[0].strip():
        return None
    name = lines[0].split()[0]
    open_ports: set[int] = set()
    for raw in lines[1:]:
        key, sep, value = raw.strip().partition(":")
        if not sep:
            continue
        if key == "services":
            for service in value.split():
                open_ports.update(SERVICE_PORTS.get(service, ()))
        elif key == "ports":
            for item in value.split():
                port, _, proto = item.partition("/")
                if proto == "tcp":
                    open_ports.update(parse_ports(port))
    return Zone(name, frozenset(open_ports))


def parse_firewall_state(text: str) -> FirewallState:
    """The firewall_state probe: ``<key> <rest>`` lines (see PROBE_SCRIPT)."""
    sections: dict[str, list[str]] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(" ")
        sections.setdefault(key, []).append(rest)
    tools = frozenset(t.strip() for t in sections.get("tool", ()) if t.strip())
    running = any(line.strip() == "running" for line in sections.get("firewalld", ()))
    ipt, ipt_open = parse_iptables(sections.get("iptables", [])) if "iptables" in tools else (None, None)
    ip6t, ip6t_open = parse_iptables(sections.get("ip6tables", [])) if "ip6tables" in tools else (None, None)
    return FirewallState(
        tools=tools,
        firewalld_running=running,
        nft=parse_nft_table(sections.get("nft", [])) if "nft" in tools else None,
        iptables=ipt,
        ip6tables=ip6t,
        iptables_open=ipt_open,
        ip6tables_open=ip6t_open,
        direct_runtime=parse_direct_rules(sections.get("direct-runtime", [])) if running else (),
        direct_permanent=parse_direct_rules(sections.get("direct-permanent", [])) if running else (),
        zone_runtime=parse_zone(sections.get("zone-runtime", [])) if running else None,
        zone_permanent=parse_zone(sections.get("zone-permanent", [])) if running else None,
    )


# Read-only. `iptables -w` waits for the xtables lock; EL6's iptables lacks -w.
PROBE_SCRIPT = (
    "for _c in nft iptables ip6tables firewall-cmd; do "
    "command -v \"$_c\" >/dev/null 2>&1 && echo \"tool $_c\"; done\n"
    "if command -v firewall-cmd >/dev/null 2>&1 && firewall-cmd --state >/dev/null 2>&1; then "
    "echo 'firewalld running'; _z=$(firewall-cmd --get-default-zone); "
    "firewall-cmd --zone=\"$_z\" --list-all | sed 's/^/zone-runtime /'; "
    "firewall-cmd --permanent --zone=\"$_z\" --list-all | sed 's/^/zone-permanent /'; "
    "firewall-cmd --direct --get-all-rules | sed 's/^/direct-runtime /'; "
    "firewall-cmd --permanent --direct --get-all-rules | sed 's/^/direct-permanent /'; fi\n"
    f"if command -v nft >/dev/null 2>&1; then nft list table inet {NFT_TABLE} | sed 's/^/nft /'; fi\n"
    "for _c in iptables ip6tables; do if command -v \"$_c\" >/dev/null 2>&1; then "
    "{ \"$_c\" -w -S 2>/dev/null || \"$_c\" -S; } | grep -e PROVISIONER_ | sed \"s/^/$_c /\"; fi; done\n"
    "true"
)

FIREWALL_PROBE = Probe(PROBE, PROBE_SCRIPT, parse_firewall_state)


def firewall_state(facts: Facts) -> FirewallState:
    state = facts.extra.get(PROBE)
    return state if isinstance(state, FirewallState) else FirewallState()


def with_state(facts: Facts, state: FirewallState) -> Facts:
    return facts.replace(extra={**facts.extra, PROBE: state})


def firewall_facts() -> FactSpec:
    return FactSpec(files=(VERIFIED_MARKER,), services=("iptables", "ip6tables"), extra=(FIREWALL_PROBE,))


# ------------------------------------------------------------------ decisions


def mechanism(state: FirewallState) -> str | None:
    if state.firewalld_running and "firewall-cmd" in state.tools:
        return "firewalld"
    if "nft" in state.tools:
        return "nftables"
    if "iptables" in state.tools:
        return "iptables"
    return None


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


def is_v6(address: str) -> bool:
    return ipaddress.ip_address(address).version == 6


def open_ports(vars: MailVars) -> frozenset[int]:
    """The mail ports Postfix serves: 25, 587 with submission, 465 with smtps."""
    ports = {25}
    if vars.submission:
        ports.add(587)
    if vars.smtps:
        ports.add(465)
    return frozenset(ports)


def words(ports) -> str:
    return ", ".join(str(p) for p in sorted(ports))


def _iptables_family(state: FirewallState) -> tuple[str, ...]:
    return ("iptables", "ip6tables") if "ip6tables" in state.tools else ("iptables",)


def _saves(platform: Platform, facts: Facts, binary: str) -> bool:
    """Rules persist through `service iptables save` (EL6's /etc/sysconfig/ip(6)tables) when the service is enabled."""
    if not platform.iptables_saved_by_service:
        return False
    service = facts.services.get(binary)
    return bool(service and service.exists and service.enabled)


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


def lockdown_in_place(state: FirewallState, mech: str, ctrl: str) -> bool:
    if mech == "nftables":
        return state.nft is not None and state.nft.closes_all_but((ctrl,))
    if mech == "iptables":
        v4 = state.iptables is not None and state.iptables.closes_all_but(() if is_v6(ctrl) else (ctrl,))
        v6 = "ip6tables" not in state.tools or (
            state.ip6tables is not None and state.ip6tables.closes_all_but((ctrl,) if is_v6(ctrl) else ())
        )
        return v4 and v6
    wanted = set(desired_direct(ctrl))
    return set(state.direct_runtime) == wanted and set(state.direct_permanent) == wanted


def current_allowed(state: FirewallState, mech: str) -> tuple[set[str], bool]:
    """(addresses the mechanism's current lockdown lets through, whether any part of it exists)."""
    if mech == "nftables":
        return set(state.nft.allowed if state.nft else ()), state.nft is not None
    if mech == "iptables":
        found = [lock for lock in (state.iptables, state.ip6tables) if lock is not None]
        return {a for lock in found for a in lock.allowed}, bool(found)
    rules = (*state.direct_runtime, *state.direct_permanent)
    return {r.source for r in rules if r.source}, bool(rules)


def lockdown_summary(state: FirewallState, mech: str, ctrl: str) -> str:
    summary = f"lock down inbound {PORT_WORDS} except from {ctrl} ({label(state, mech)}"
    allowed, exists = current_allowed(state, mech)
    if exists and allowed != {ctrl}:
        summary += f", replacing a lockdown that allowed {', '.join(sorted(allowed)) or 'no address'}"
    elif exists:
        summary += ", repairing an incomplete lockdown"
    return summary + ")"


# ------------------------------------------------------------------ actions

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
IPT_REJECT = ("-p", "tcp", "-m", "multiport", "--dports", PORT_LIST, "-j", "REJECT", "--reject-with", "tcp-reset")


def nft_lockdown(ctrl: str) -> tuple[Action, ...]:
    # The address reaches nft through printf's %s from a quoted argument,
    # and it was checked to be a plain IP address (control_address).
    return (Shell(NFT_LOAD, ("ip6" if is_v6(ctrl) else "ip", ctrl)),)


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
    actions.append(Shell(f"{binary} -S INPUT | grep -qx -e '-A INPUT -j {CHAIN}' || {binary} -I INPUT 1 -j {CHAIN}"))
    return tuple(actions)


def iptables_unlock(binary: str) -> Action:
    return Shell(
        f"while {binary} -D INPUT -j {CHAIN} 2>/dev/null; do :; done; "
        f"if {binary} -S {CHAIN} >/dev/null 2>&1; then {binary} -F {CHAIN}; {binary} -X {CHAIN}; fi"
    )


def iptables_open(binary: str, ports: frozenset[int]) -> tuple[Action, ...]:
    """Our PROVISIONER_OPEN chain, jumped to right after the lockdown's jump (or first)."""
    return (
        Shell(f"{binary} -N {OPEN_CHAIN} 2>/dev/null || true"),
        Command((binary, "-F", OPEN_CHAIN)),
        Command((binary, "-A", OPEN_CHAIN, "-p", "tcp", "-m", "multiport", "--dports",
                 ",".join(str(p) for p in sorted(ports)), "-j", "ACCEPT")),
        # `-S INPUT` starts with the policy line, so the lockdown jump's line
        # number is the rule position right after it.
        Shell(
            f"{binary} -S INPUT | grep -qx -e '-A INPUT -j {OPEN_CHAIN}' || {binary} -I INPUT "
            f"\"$({binary} -S INPUT | grep -n -x -e '-A INPUT -j {CHAIN}' | head -n 1 | cut -d: -f1 | grep . || echo 1)\" "
            f"-j {OPEN_CHAIN}"
        ),
    )


def firewalld_lockdown(state: FirewallState, ctrl: str) -> tuple[Action, ...]:
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


def firewalld_unlock(state: FirewallState) -> tuple[Action, ...]:
    actions: list[Action] = []
    for flags, current in (((), state.direct_runtime), (("--permanent",), state.direct_permanent)):
        for rule in sorted(current):
            actions.append(Command(("firewall-cmd", *flags, "--direct", "--remove-rule", *rule.argv())))
    return tuple(actions)


def lockdown_actions(state: FirewallState, mech: str, ctrl: str, platform: Platform, facts: Facts) -> tuple[Action, ...]:
    if mech == "nftables":
        return nft_lockdown(ctrl)
    if mech == "firewalld":
        return firewalld_lockdown(state, ctrl)
    actions: list[Action] = []
    for binary in _iptables_family(state):
        allowed = ctrl if is_v6(ctrl) == (binary == "ip6tables") else None
        actions.extend(iptables_lockdown(binary, allowed))
    for binary in _iptables_family(state):
        if _saves(platform, facts, binary):
            actions.append(Command(("service", binary, "save")))
    return tuple(actions)


def predict_lockdown(state: FirewallState, mech: str, ctrl: str) -> FirewallState:
    def lock(allowed: tuple[str, ...]) -> Lockdown:
        return Lockdown(allowed, PORTS if allowed else frozenset(), PORTS, True)

    if mech == "nftables":
        return state.replace(nft=lock((ctrl,)))
    if mech == "firewalld":
        wanted = desired_direct(ctrl)
        return state.replace(direct_runtime=wanted, direct_permanent=wanted)
    v6 = is_v6(ctrl)
    state = state.replace(iptables=lock(() if v6 else (ctrl,)))
    if "ip6tables" in state.tools:
        state = state.replace(ip6tables=lock((ctrl,) if v6 else ()))
    return state


# ------------------------------------------------------------------ steps


class FirewallLockdown(Step):
    """First step: close 25/465/587 to all but the control node until verify has passed."""

    name = "firewall_lockdown"

    def facts(self, vars: MailVars) -> FactSpec:
        return firewall_facts()

    def check(self, ctx: Context) -> list[Change]:
        facts, platform = ctx.facts, ctx.platform
        state = firewall_state(facts)
        verified = facts.file(VERIFIED_MARKER).exists
        changes: list[Change] = []
        mech = mechanism(state)
        if not verified:
            if mech is None:
                if ctx.vars.firewall_when_missing == "skip":
                    return [
                        Change(
                            step=self.name,
                            summary="no firewall tool on host: lockdown skipped (firewall_when_missing: skip)",
                        )
                    ]
                packages, tools = platform.firewall_install, platform.firewall_install_tools
                state = state.replace(tools=state.tools | tools)
                mech = mechanism(state)
                if mech is None:
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
                        f"except from {ctrl} ({label(installed, mech)})",
                        actions=(*platform.install(packages),
                                 *lockdown_actions(installed, mech, ctrl, platform, facts)),
                        effect=lambda f, s=installed, m=mech, c=ctrl, p=packages: with_state(
                            f.replace(packages={**f.packages, **{n: "(to be installed)" for n in p}}),
                            predict_lockdown(s, m, c),
                        ),
                    )
                )
                state = predict_lockdown(installed, mech, ctrl)
            else:
                ctrl = control_address(ctx)
                if not lockdown_in_place(state, mech, ctrl):
                    changes.append(
                        Change(
                            step=self.name,
                            summary=lockdown_summary(state, mech, ctrl),
                            actions=lockdown_actions(state, mech, ctrl, platform, facts),
                            effect=lambda f, m=mech, c=ctrl: with_state(f, predict_lockdown(firewall_state(f), m, c)),
                        )
                    )
                    state = predict_lockdown(state, mech, ctrl)
        if mech is not None:
            changes.extend(self._open(ctx, state, mech))
        return changes

    def _open(self, ctx: Context, state: FirewallState, mech: str) -> list[Change]:
        """Open the mail ports where the host's stock firewall closes them (see the module docstring)."""
        wanted = open_ports(ctx.vars)
        if mech == "firewalld":
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
                    Command(("firewall-cmd", "--permanent", f"--zone={zone}",
                             *(f"--add-port={p}/tcp" for p in missing_perm)))
                )

            def effect(f: Facts, rt=tuple(missing_rt), perm=tuple(missing_perm)) -> Facts:
                s = firewall_state(f)
                if s.zone_runtime is not None:
                    s = s.replace(zone_runtime=Zone(s.zone_runtime.name, s.zone_runtime.open_ports | set(rt)))
                base = s.zone_permanent or Zone(zone)
                s = s.replace(zone_permanent=Zone(base.name, base.open_ports | set(perm)))
                return with_state(f, s)

            return [
                Change(
                    step=self.name,
                    summary=f"open tcp {words(set(missing_rt) | set(missing_perm))} in firewalld zone {zone}",
                    actions=tuple(actions),
                    effect=effect,
                )
            ]
        if mech == "iptables" and ctx.platform.iptables_stock_rejects:
            binaries = _iptables_family(state)
            current = {"iptables": state.iptables_open, "ip6tables": state.ip6tables_open}
            stale = [b for b in binaries if current[b] != wanted]
            if not stale:
                return []
            actions = []
            for binary in stale:
                actions.extend(iptables_open(binary, wanted))
            for binary in stale:
                if _saves(ctx.platform, ctx.facts, binary):
                    actions.append(Command(("service", binary, "save")))

            def effect_ipt(f: Facts, stale=tuple(stale)) -> Facts:
                s = firewall_state(f)
                if "iptables" in stale:
                    s = s.replace(iptables_open=wanted)
                if "ip6tables" in stale:
                    s = s.replace(ip6tables_open=wanted)
                return with_state(f, s)

            return [
                Change(
                    step=self.name,
                    summary=f"open tcp {words(wanted)} in {' and '.join(stale)} (chain {OPEN_CHAIN})",
                    actions=tuple(actions),
                    effect=effect_ipt,
                )
            ]
        return []


class FirewallLift(Step):
    """After verify has passed: remove every lockdown found and write the verified marker."""

    name = "firewall_lift"

    def facts(self, vars: MailVars) -> FactSpec:
        return firewall_facts()

    def check(self, ctx: Context) -> list[Change]:
        facts, platform = ctx.facts, ctx.platform
        state = firewall_state(facts)
        present = state.lockdown_present
        verified = facts.file(VERIFIED_MARKER).exists
        if ctx.options.get("verify") is False or not ctx.vars.verify:
            if present:
                return [Change(step=self.name, summary="keep the port 25/465/587 lockdown: verify was skipped")]
            return []
        if not present and verified:
            return []
        actions: list[Action] = []
        if state.direct_runtime or state.direct_permanent:
            actions.extend(firewalld_unlock(state))
        if state.nft is not None:
            actions.append(Shell(NFT_DELETE))
        lifted = [b for b, lock in (("iptables", state.iptables), ("ip6tables", state.ip6tables)) if lock is not None]
        for binary in lifted:
            actions.append(iptables_unlock(binary))
        for binary in lifted:
            if _saves(platform, facts, binary):
                actions.append(Command(("service", binary, "save")))
        if not verified:
            actions.append(Command(("install", "-d", "-m", "755", STATE_DIR)))
            actions.append(WriteFile(VERIFIED_MARKER, MARKER_CONTENT, mode="644"))
        summary = "lift the port 25/465/587 lockdown (verify passed)" if present else "record that verify passed"

        def effect(f: Facts) -> Facts:
            s = firewall_state(f).replace(nft=None, iptables=None, ip6tables=None, direct_runtime=(),
                                         direct_permanent=())
            f = with_state(f, s)
            return f.with_file(FileState(VERIFIED_MARKER, exists=True, content=MARKER_CONTENT, mode="644",
                                         owner="root", group="root"))

        return [Change(step=self.name, summary=summary, actions=tuple(actions), effect=effect)]
