"""The firewall as the steps see it: constants, state types, and the probe that reads it.

The probe is read-only: it lists the firewall tools, whether firewalld runs
(then its default zone and our direct rules, runtime and permanent), our nft
table, the iptables/ip6tables rules that mention our chains, and the whole
INPUT chain of each (``iptables -S INPUT``). Parsers keep only our own objects,
plus what decides whether the host's own rules let the world reach the mail
ports: a zone's open ports, and which mail ports INPUT would reject.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import shlex
from dataclasses import dataclass

from provisioner.desired import VERIFIED_MARKER
from provisioner.steps.firewall.foreign import foreign_rejections
from provisioner.probes import FactSpec, Probe
from provisioner.model import Facts

PORTS: frozenset[int] = frozenset({25, 465, 587})
PORT_LIST = "25,465,587"
PORT_WORDS = "25, 465, 587"
NFT_TABLE = "provisioner_lockdown"
CHAIN = "PROVISIONER_LOCKDOWN"
OPEN_CHAIN = "PROVISIONER_OPEN"
COMMENT = "provisioner-lockdown"
PROBE = "firewall_state"

# firewalld services that open a mail port (firewalld's config/services): smtp-submission
# is deprecated from firewalld 2.1, which adds submission for the same port.
SERVICE_PORTS: dict[str, frozenset[int]] = {
    "smtp": frozenset({25}),
    "smtps": frozenset({465}),
    "smtp-submission": frozenset({587}),
    "submission": frozenset({587}),
}
IPTABLES = ("iptables", "ip6tables")

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
    # Mail ports the host's own INPUT chain rejects for a new connection from
    # anywhere, per binary (iptables, ip6tables); our own chains left out.
    closed_by_host: tuple[tuple[str, frozenset[int]], ...] = ()
    # From the services facts: iptables.service (iptables-services, EL6's
    # init script) loads the rules at boot and runs now; and the binaries whose
    # service is enabled, so that `service X save` keeps what we change.
    iptables_service_running: bool = False
    saved_by_service: frozenset[str] = frozenset()
    # nft rules outside our table (and firewalld's) that reject or drop a mail
    # port for everyone in an input hook: (port, "nft table inet NAME"). Never touched.
    foreign_rejects: tuple[tuple[int, str], ...] = ()

    def closed(self, binary: str) -> frozenset[int]:
        return dict(self.closed_by_host).get(binary, frozenset())

    def replace(self, **changes) -> "FirewallState":
        return dataclasses.replace(self, **changes)

    @property
    def lockdown_present(self) -> bool:
        return bool(self.nft or self.iptables or self.ip6tables or self.direct_runtime or self.direct_permanent)

    def unlocked(self) -> "FirewallState":
        """The state once every lockdown is removed."""
        return self.replace(nft=None, iptables=None, ip6tables=None, direct_runtime=(), direct_permanent=())


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


def _rejects_the_world(words: list[str], port: int) -> bool | None:
    """What one ``-A INPUT`` rule does to a new TCP connection to ``port`` from anywhere.

    True: rejects or drops it; False: accepts it; None: does not decide it (the
    rule matches something else, is conditional, or jumps elsewhere).
    """
    target = _option(words, "-j")
    if target not in ("ACCEPT", "REJECT", "DROP") or "!" in words:
        return None
    protocol = _option(words, "-p", "--protocol")
    if protocol not in (None, "tcp", "all", "6"):
        return None
    ports = _option(words, "--dports", "--dport", "--destination-port")
    if ports is not None and port not in parse_ports(ports):
        return None
    state = _option(words, "--state", "--ctstate")
    if state is not None and "NEW" not in state.split(","):
        return None
    source = _option(words, "-s", "--source")
    if source not in (None, "0.0.0.0/0", "::/0") or _option(words, "-i", "--in-interface") is not None:
        return None
    # Any other match (limits, recent, addrtype...) makes the verdict conditional.
    known = {"-A", "INPUT", "-p", "--protocol", "-m", "tcp", "multiport", "state", "conntrack", "comment",
             "--comment", "--dport", "--dports", "--destination-port", "--state", "--ctstate", "-j", "--reject-with",
             "-s", "--source"}
    for index, word in enumerate(words):
        if word.startswith("-") and word not in known:
            return None
        if word == "-m" and index + 1 < len(words) and words[index + 1] not in known:
            return None
    return target != "ACCEPT"


def parse_input_chain(lines: list[str]) -> frozenset[int]:
    """``iptables -S INPUT`` -> the mail ports the host's rules reject for a new connection from anywhere.

    Rules are read in order, our own jumps left out; the first rule that
    decides a port decides it, else the chain's policy does. A rule whose
    verdict depends on more than the port (a source, an interface, a jump to
    another chain) decides nothing, so an admin's own restriction of a mail
    port is never overridden by reading it as "closed to all".
    """
    verdicts: dict[int, bool] = {}
    policy_rejects = False
    for raw in lines:
        words = raw.split()
        if len(words) >= 3 and words[0] == "-P" and words[1] == "INPUT":
            policy_rejects = words[2] in ("DROP", "REJECT")
            continue
        if len(words) < 2 or words[0] != "-A" or words[1] != "INPUT":
            continue
        if (_option(words, "-j") or "").startswith("PROVISIONER_"):
            continue
        for port in PORTS:
            if port not in verdicts:
                verdict = _rejects_the_world(words, port)
                if verdict is not None:
                    verdicts[port] = verdict
    return frozenset(p for p in PORTS if verdicts.get(p, policy_rejects))


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


# Tables whose rules are not an admin's own: ours, and firewalld's (its zones decide, see lockdown).
NOT_FOREIGN_TABLES = frozenset({NFT_TABLE, "firewalld"})


def parse_nft_ruleset(lines: list[str]) -> tuple[tuple[int, str], ...]:
    """``nft -j list ruleset``: per mail port, the first foreign table whose input hook rejects it."""
    return foreign_rejections(lines, PORTS, NOT_FOREIGN_TABLES)


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
        foreign_rejects=parse_nft_ruleset(sections.get("nft-ruleset", [])) if "nft" in tools else (),
        closed_by_host=tuple(
            (binary, parse_input_chain(sections[f"{binary}-input"]))
            for binary in IPTABLES if binary in tools and f"{binary}-input" in sections
        ),
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
    f"if command -v nft >/dev/null 2>&1; then nft list table inet {NFT_TABLE} | sed 's/^/nft /'; "
    "nft -j list ruleset | sed 's/^/nft-ruleset /'; fi\n"
    "for _c in iptables ip6tables; do if command -v \"$_c\" >/dev/null 2>&1; then "
    "{ \"$_c\" -w -S 2>/dev/null || \"$_c\" -S; } | grep -e PROVISIONER_ | sed \"s/^/$_c /\"; "
    "{ \"$_c\" -w -S INPUT 2>/dev/null || \"$_c\" -S INPUT; } | sed \"s/^/$_c-input /\"; fi; done\n"
    "true"
)

FIREWALL_PROBE = Probe(PROBE, PROBE_SCRIPT, parse_firewall_state)


def firewall_state(facts: Facts) -> FirewallState:
    """The probe's state, with what the services facts say about iptables.service."""
    state = facts.extra.get(PROBE)
    state = state if isinstance(state, FirewallState) else FirewallState()
    services = {name: facts.services.get(name) for name in IPTABLES}
    return state.replace(
        iptables_service_running=bool(services["iptables"] and services["iptables"].exists
                                      and services["iptables"].enabled and services["iptables"].active),
        saved_by_service=frozenset(name for name, service in services.items()
                                   if service is not None and service.exists and service.enabled),
    )


def with_state(facts: Facts, state: FirewallState) -> Facts:
    return facts.replace(extra={**facts.extra, PROBE: state})


def firewall_facts() -> FactSpec:
    return FactSpec(files=(VERIFIED_MARKER,), services=("iptables", "ip6tables"), extra=(FIREWALL_PROBE,))
