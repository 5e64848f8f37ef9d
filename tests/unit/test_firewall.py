"""The firewall steps: probe parsers on recorded output, and the decision matrix.

The nft and iptables outputs below were recorded on Debian 12 (nft 1.0.6,
iptables 1.8.9, both the nf_tables and the legacy backend print the same
``-S`` lines) in a scratch network namespace, after running the very actions
these steps emit. The firewalld outputs follow firewall-cmd's own printing
code (``--list-all``: print_zone_info; ``--get-all-rules``: "%s %s %s %d %s").
"""

from __future__ import annotations

import subprocess

import pytest

from provisioner.desired import VERIFIED_MARKER
from provisioner.model import Facts, FileState, OsRelease, ServiceState, apply_effects
from provisioner.platforms import DEBIAN12, EL6, EL7, EL8
from provisioner.steps.firewall import FirewallLift, FirewallLockdown, persist
from provisioner.steps.firewall.backends import desired_direct, mechanism
from provisioner.steps.firewall.lockdown import FirewallError, control_address
from provisioner.steps.firewall.state import (
    PORTS,
    PROBE,
    PROBE_SCRIPT,
    DirectRule,
    FirewallState,
    Lockdown,
    normalize_source,
    parse_direct_rules,
    parse_firewall_state,
    firewall_state,
    parse_input_chain,
    parse_iptables,
    parse_nft_table,
    parse_ports,
    parse_zone,
)

from .conftest import context

CTRL = "10.77.1.1"

# Probe output after `nft_lockdown("10.77.1.1")` (recorded).
NFT_LOCKED = (
    "tool nft\ntool iptables\ntool ip6tables\n"
    "nft table inet provisioner_lockdown {\n"
    "nft \tchain input {\n"
    "nft \t\ttype filter hook input priority filter - 10; policy accept;\n"
    "nft \t\tip saddr 10.77.1.1 tcp dport { 25, 465, 587 } accept\n"
    "nft \t\ttcp dport { 25, 465, 587 } reject with tcp reset\n"
    "nft \t}\n"
    "nft }\n"
)
# The same table loaded for an IPv6 control address given as 2001:DB8::0:10 (recorded).
NFT_V6_TABLE = [
    "table inet provisioner_lockdown {",
    "\tchain input {",
    "\t\ttype filter hook input priority filter - 10; policy accept;",
    "\t\tip6 saddr 2001:db8::10 tcp dport { 25, 465, 587 } accept",
    "\t\ttcp dport { 25, 465, 587 } reject with tcp reset",
    "\t}",
    "}",
]
# Probe output after the EL6 lockdown (iptables + ip6tables) and the open chains,
# on top of an EL6-like stock ruleset (recorded).
IPT_LOCKED_OPEN = (
    "tool nft\ntool iptables\ntool ip6tables\n"
    "iptables -N PROVISIONER_LOCKDOWN\n"
    "iptables -N PROVISIONER_OPEN\n"
    "iptables -A INPUT -j PROVISIONER_LOCKDOWN\n"
    "iptables -A INPUT -j PROVISIONER_OPEN\n"
    "iptables -A PROVISIONER_LOCKDOWN -s 10.77.1.1/32 -p tcp -m multiport --dports 25,465,587 -j ACCEPT\n"
    "iptables -A PROVISIONER_LOCKDOWN -p tcp -m multiport --dports 25,465,587 -j REJECT --reject-with tcp-reset\n"
    "iptables -A PROVISIONER_OPEN -p tcp -m multiport --dports 25,587 -j ACCEPT\n"
    "ip6tables -N PROVISIONER_LOCKDOWN\n"
    "ip6tables -N PROVISIONER_OPEN\n"
    "ip6tables -A INPUT -j PROVISIONER_LOCKDOWN\n"
    "ip6tables -A INPUT -j PROVISIONER_OPEN\n"
    "ip6tables -A PROVISIONER_LOCKDOWN -p tcp -m multiport --dports 25,465,587 -j REJECT --reject-with tcp-reset\n"
    "ip6tables -A PROVISIONER_OPEN -p tcp -m multiport --dports 25,587 -j ACCEPT\n"
)
# ip6tables -S after a lockdown for 2001:DB8::10 (recorded, legacy backend).
IP6T_V6 = [
    "-P INPUT ACCEPT",
    "-N PROVISIONER_LOCKDOWN",
    "-A INPUT -j PROVISIONER_LOCKDOWN",
    "-A PROVISIONER_LOCKDOWN -s 2001:db8::10/128 -p tcp -m multiport --dports 25,465,587 -j ACCEPT",
    "-A PROVISIONER_LOCKDOWN -p tcp -m multiport --dports 25,465,587 -j REJECT --reject-with tcp-reset",
]
NOTHING = "tool nft\ntool iptables\ntool ip6tables\n"


def stock_input(*hooked: str) -> str:
    """`iptables -S INPUT` and `ip6tables -S INPUT` of the stock EL ruleset (EL6's system-config-firewall,
    iptables-services' sample: established, ICMP, lo and new SSH accepted, the rest rejected), as the
    probe prints them, with jumps to ``hooked`` chains first."""
    text = ""
    for binary, icmp, reject in (("iptables", "icmp", "icmp-host-prohibited"),
                                 ("ip6tables", "ipv6-icmp", "icmp6-adm-prohibited")):
        rules = ["-P INPUT ACCEPT", *(f"-A INPUT -j {chain}" for chain in hooked),
                 "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT", f"-A INPUT -p {icmp} -j ACCEPT",
                 "-A INPUT -i lo -j ACCEPT", "-A INPUT -p tcp -m state --state NEW -m tcp --dport 22 -j ACCEPT",
                 f"-A INPUT -j REJECT --reject-with {reject}"]
        text += "".join(f"{binary}-input {rule}\n" for rule in rules)
    return text


EL8_LIST_ALL = [
    "public (active)",
    "  target: default",
    "  icmp-block-inversion: no",
    "  interfaces: eth0",
    "  sources: ",
    "  services: cockpit dhcpv6-client smtp ssh",
    "  ports: 8080/tcp 587/tcp 460-470/tcp 25/udp",
    "  protocols: ",
    "  masquerade: no",
    "  forward-ports: ",
    "  source-ports: 25/tcp",
    "  icmp-blocks: ",
    "  rich rules: ",
    '\trule family="ipv4" source address="192.0.2.0/24" port port="25" protocol="tcp" reject',
]
COMMENT_ARGS = "-m multiport --dports 25,465,587 -m comment --comment provisioner-lockdown"
DIRECT = [
    f"ipv4 filter INPUT 0 -s 10.77.1.1 -p tcp {COMMENT_ARGS} -j ACCEPT",
    f"ipv4 filter INPUT 1 -p tcp {COMMENT_ARGS} -j REJECT --reject-with tcp-reset",
    f"ipv6 filter INPUT 1 -p tcp {COMMENT_ARGS} -j REJECT --reject-with tcp-reset",
    "ipv4 filter INPUT 0 -p tcp --dport 8443 -j ACCEPT",  # the admin's own rule: not ours
]


# ------------------------------------------------------------------ parsers


def test_parse_ports_forms() -> None:
    assert parse_ports("25,465,587") == PORTS
    assert parse_ports("{ 25, 465, 587 }") == PORTS
    assert parse_ports("25") == {25}
    assert parse_ports("460:470") == {465}
    assert parse_ports("20-30") == {25}
    assert parse_ports("80,443") == frozenset()
    assert parse_ports("") == frozenset()


def test_normalize_source() -> None:
    assert normalize_source("10.77.1.1/32") == "10.77.1.1"
    assert normalize_source("2001:DB8::0:10/128") == "2001:db8::10"
    assert normalize_source("10.77.1.0/24") == "10.77.1.0/24"
    assert normalize_source("not-an-address") == "not-an-address"


def test_parse_nft_recorded() -> None:
    state = parse_firewall_state(NFT_LOCKED)
    assert state.tools == {"nft", "iptables", "ip6tables"}
    assert state.nft == Lockdown((CTRL,), PORTS, PORTS, True)
    assert state.nft.closes_all_but((CTRL,))
    assert not state.nft.closes_all_but(("10.77.1.99",))
    assert state.iptables is None and not state.firewalld_running


def test_parse_nft_v6_and_absent() -> None:
    lock = parse_nft_table(NFT_V6_TABLE)
    assert lock is not None and lock.allowed == ("2001:db8::10",)
    assert parse_nft_table([]) is None


def test_parse_nft_drifts() -> None:
    policy_drop = [line.replace("policy accept", "policy drop") for line in NFT_V6_TABLE]
    assert not parse_nft_table(policy_drop).hooked
    only_25 = [line.replace("tcp dport { 25, 465, 587 } reject", "tcp dport 25 reject") for line in NFT_V6_TABLE]
    assert parse_nft_table(only_25).rejected_ports == {25}
    two = [line.replace("saddr 2001:db8::10", "saddr { 2001:db8::10, 2001:db8::11 }") for line in NFT_V6_TABLE]
    assert parse_nft_table(two).allowed == ("2001:db8::10", "2001:db8::11")


def test_parse_iptables_recorded() -> None:
    state = parse_firewall_state(IPT_LOCKED_OPEN)
    assert state.iptables == Lockdown((CTRL,), PORTS, PORTS, True)
    assert state.ip6tables == Lockdown((), frozenset(), PORTS, True)
    assert state.iptables_open == {25, 587} and state.ip6tables_open == {25, 587}
    assert state.nft is None


def test_parse_ip6tables_v6_source() -> None:
    lock, opened = parse_iptables(IP6T_V6)
    assert lock == Lockdown(("2001:db8::10",), PORTS, PORTS, True)
    assert opened is None


def test_parse_iptables_unhooked_and_misordered() -> None:
    unhooked = [line for line in IP6T_V6 if line != "-A INPUT -j PROVISIONER_LOCKDOWN"]
    lock, _ = parse_iptables(unhooked)
    assert lock is not None and not lock.hooked
    # The open chain jumped to before the lockdown lets everyone past it.
    misordered = [
        "-N PROVISIONER_LOCKDOWN", "-N PROVISIONER_OPEN",
        "-A INPUT -j PROVISIONER_OPEN", "-A INPUT -j PROVISIONER_LOCKDOWN",
        "-A PROVISIONER_LOCKDOWN -p tcp -m multiport --dports 25,465,587 -j REJECT --reject-with tcp-reset",
        "-A PROVISIONER_OPEN -p tcp -m multiport --dports 25,587 -j ACCEPT",
    ]
    lock, opened = parse_iptables(misordered)
    assert lock is not None and not lock.hooked and opened is None


def test_parse_nothing_found() -> None:
    assert parse_firewall_state(NOTHING) == FirewallState(tools=frozenset({"nft", "iptables", "ip6tables"}))
    assert parse_firewall_state("") == FirewallState()


def test_parse_zone_ports_and_services() -> None:
    zone = parse_zone(EL8_LIST_ALL)
    # smtp service -> 25; 587/tcp; 465 within 460-470/tcp; 25/udp and the source port do not count.
    assert zone is not None and zone.name == "public" and zone.open_ports == PORTS
    assert parse_zone([]) is None


def test_parse_direct_rules_keeps_only_ours() -> None:
    rules = parse_direct_rules(DIRECT)
    assert len(rules) == 3
    assert set(rules) == set(desired_direct(CTRL))
    assert [r.source for r in rules if r.priority == 0] == [CTRL]


def test_parse_firewalld_state() -> None:
    text = (
        "tool nft\ntool iptables\ntool ip6tables\ntool firewall-cmd\nfirewalld running\n"
        + "".join(f"zone-runtime {line}\n" for line in EL8_LIST_ALL)
        + "zone-permanent public\nzone-permanent   services: ssh\nzone-permanent   ports: \n"
        + "".join(f"direct-runtime {line}\n" for line in DIRECT)
    )
    state = parse_firewall_state(text)
    assert state.firewalld_running and mechanism(state).name == "firewalld"
    assert state.zone_runtime.open_ports == PORTS
    assert state.zone_permanent.open_ports == frozenset()
    assert len(state.direct_runtime) == 3 and state.direct_permanent == ()
    assert state.lockdown_present


def test_probe_script_is_valid_sh() -> None:
    result = subprocess.run(["sh", "-n"], input=PROBE_SCRIPT, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ decisions


def facts_(raw: str, *, verified: bool = False, ssh: str | None = CTRL, services=None) -> Facts:
    marker = FileState(VERIFIED_MARKER, exists=verified, content="verified by provisioner\n" if verified else None)
    return Facts(
        os=OsRelease("debian", "12"),
        files={VERIFIED_MARKER: marker},
        services=services or {},
        ssh_client_address=ssh,
        extra={PROBE: parse_firewall_state(raw)},
    )


@pytest.mark.parametrize(
    "raw, running, expected",
    [
        ("", False, None),
        ("tool iptables\n", False, "iptables"),
        ("tool iptables\ntool nft\n", False, "nftables"),
        ("tool nft\ntool firewall-cmd\n", False, "nftables"),  # firewalld installed, stopped
        ("tool nft\ntool firewall-cmd\nfirewalld running\n", True, "firewalld"),
    ],
)
def test_mechanism(raw: str, running: bool, expected: str | None) -> None:
    state = parse_firewall_state(raw)
    assert state.firewalld_running == running
    assert getattr(mechanism(state), "name", None) == expected


def test_control_address_sources() -> None:
    assert control_address(context(facts_(NOTHING))) == CTRL
    assert control_address(context(facts_(NOTHING), control_address="192.0.2.7")) == "192.0.2.7"
    assert control_address(context(facts_(NOTHING, ssh="::ffff:10.77.1.1"))) == CTRL
    assert control_address(context(facts_(NOTHING, ssh="2001:DB8::0:1"))) == "2001:db8::1"
    with pytest.raises(FirewallError, match="control_address"):
        control_address(context(facts_(NOTHING, ssh=None)))
    with pytest.raises(FirewallError, match="not an IP address"):
        control_address(context(facts_(NOTHING, ssh="evil; rm -rf /")))
    with pytest.raises(FirewallError, match="link-local"):
        control_address(context(facts_(NOTHING, ssh="fe80::1%eth0")))


def test_unknown_address_only_matters_when_locking_down() -> None:
    with pytest.raises(FirewallError):
        FirewallLockdown().check(context(facts_(NOTHING, ssh=None)))
    assert FirewallLockdown().check(context(facts_(NOTHING, ssh=None, verified=True))) == []
    skipped = FirewallLockdown().check(context(facts_("", ssh=None), firewall_when_missing="skip"))
    assert [c.actions for c in skipped] == [()]


def test_verified_host_is_never_locked_down() -> None:
    for raw in (NOTHING, "", NFT_LOCKED):
        assert FirewallLockdown().check(context(facts_(raw, verified=True))) == []


def booting_locked(facts, platform=DEBIAN12):
    """``facts`` with the boot-time lockdown as the lockdown step leaves it (where the rules do not persist)."""
    boot = [c for c in FirewallLockdown().check(context(facts, platform)) if "across reboots" in c.summary]
    return apply_effects(facts, boot)


def test_lockdown_effect_matches_the_recorded_result() -> None:
    """What a dry run predicts is what the probe reads after the real actions."""
    enabled = {"iptables": ServiceState("iptables", True, True), "ip6tables": ServiceState("ip6tables", True, True)}
    for raw, recorded, platform, services in (
        (NOTHING, NFT_LOCKED, DEBIAN12, {}),
        (
            "tool iptables\ntool ip6tables\n" + stock_input(),
            IPT_LOCKED_OPEN.replace("tool nft\n", "") + stock_input("PROVISIONER_LOCKDOWN", "PROVISIONER_OPEN"),
            EL6,
            enabled,
        ),
    ):
        before = facts_(raw, services=services)
        changes = FirewallLockdown().check(context(before, platform))
        assert changes
        predicted = apply_effects(before, changes)
        assert firewall_state(predicted) == firewall_state(facts_(recorded, services=services))
        assert FirewallLockdown().check(context(booting_locked(facts_(recorded, services=services), platform),
                                                platform)) == []


def test_dry_run_chain_lockdown_then_lift() -> None:
    """Fresh host: the lift sees the lockdown the first step will add; after both, nothing is left."""
    before = facts_("")
    lockdown = FirewallLockdown().check(context(before))
    assert [c.summary for c in lockdown] == [
        f"install nftables, then lock down inbound 25, 465, 587 except from {CTRL} (nftables)",
        "keep the lockdown across reboots (provisioner-lockdown.service, loaded before the network and Postfix)",
    ]
    after_lockdown = apply_effects(before, lockdown)
    lift = FirewallLift().check(context(after_lockdown))
    assert [c.summary for c in lift] == ["lift the port 25/465/587 lockdown (verify passed)"]
    done = apply_effects(after_lockdown, lift)
    assert done.file(VERIFIED_MARKER).exists
    assert not any(done.file(path).exists for path in (persist.LOCKDOWN_SCRIPT, persist.UNIT_FILE))
    assert FirewallLockdown().check(context(done)) == []
    assert FirewallLift().check(context(done)) == []


def test_lift_keeps_lockdown_when_verify_is_skipped() -> None:
    locked = facts_(NFT_LOCKED)
    for changes in (
        FirewallLift().check(context(locked, options={"verify": False})),
        FirewallLift().check(context(locked, verify=False)),
    ):
        assert [(c.summary, c.actions) for c in changes] == [
            ("keep the port 25/465/587 lockdown: verify was skipped", ())
        ]
    assert FirewallLift().check(context(facts_(NOTHING), options={"verify": False})) == []


def test_lift_marker_is_fixed_content() -> None:
    changes = FirewallLift().check(context(facts_(NOTHING)))
    assert [c.summary for c in changes] == ["record that verify passed"]
    writes = [a for a in changes[0].actions if getattr(a, "path", None) == VERIFIED_MARKER]
    assert [w.content for w in writes] == ["verified by provisioner\n"]


def test_firewalld_drift_adds_before_it_removes() -> None:
    old = [line.replace("-s 10.77.1.1", "-s 10.77.1.99") for line in DIRECT[:3]]
    text = (
        "tool firewall-cmd\nfirewalld running\n"
        "zone-runtime public\nzone-runtime   ports: 25/tcp 587/tcp\n"
        "zone-permanent public\nzone-permanent   ports: 25/tcp 587/tcp\n"
        + "".join(f"direct-runtime {line}\n" for line in old)
        + "".join(f"direct-permanent {line}\n" for line in DIRECT[:3])
    )
    changes = FirewallLockdown().check(context(facts_(text), EL8))
    assert [c.summary for c in changes] == [
        f"lock down inbound 25, 465, 587 except from {CTRL} (firewalld direct rules, "
        "replacing a lockdown that allowed 10.77.1.1, 10.77.1.99)"
    ]
    verbs = [a.argv[2] for a in changes[0].actions]
    assert verbs == ["--add-rule", "--remove-rule"]  # runtime only: the permanent copy is right


def test_firewalld_opens_only_missing_ports_and_never_closes() -> None:
    text = (
        "tool firewall-cmd\nfirewalld running\n"
        "zone-runtime internal (active)\nzone-runtime   services: smtp smtps\n"
        "zone-permanent internal\nzone-permanent   services: smtp smtps\n"
        + "".join(f"direct-runtime {line}\n" for line in DIRECT[:3])
        + "".join(f"direct-permanent {line}\n" for line in DIRECT[:3])
    )
    changes = FirewallLockdown().check(context(facts_(text), EL7))
    assert [c.summary for c in changes] == ["open tcp 587 in firewalld zone internal"]
    assert FirewallLockdown().check(context(facts_(text), EL7, submission=False)) == []


def test_el6_open_chain_follows_the_vars() -> None:
    services = {"iptables": ServiceState("iptables", True, True), "ip6tables": ServiceState("ip6tables", True, True)}
    raw = IPT_LOCKED_OPEN.replace("tool nft\n", "") + stock_input("PROVISIONER_LOCKDOWN", "PROVISIONER_OPEN")
    locked = facts_(raw, services=services)
    assert FirewallLockdown().check(context(locked, EL6)) == []
    changes = FirewallLockdown().check(context(locked, EL6, submission=False, smtps=True))
    assert [c.summary for c in changes] == ["open tcp 25, 465 in iptables and ip6tables (chain PROVISIONER_OPEN)"]


def test_the_host_s_ruleset_decides_what_is_opened_not_the_platform() -> None:
    """The same ruleset gives the same plan on every platform; no rejecting rule, nothing opened."""
    fresh = "tool iptables\ntool ip6tables\n"

    def plan(raw, platform):  # the lockdown's boot-time copy aside (no iptables service saves it here)
        return [c.summary for c in FirewallLockdown().check(context(facts_(raw), platform))
                if "across reboots" not in c.summary]

    for platform in (DEBIAN12, EL6, EL7):
        assert plan(fresh + stock_input(), platform)[1:] == [
            "open tcp 25, 587 in iptables and ip6tables (chain PROVISIONER_OPEN)"]
        assert len(plan(fresh + "iptables-input -P INPUT ACCEPT\n", platform)) == 1


def test_saved_where_the_iptables_service_is_enabled() -> None:
    fresh = facts_("tool iptables\ntool ip6tables\n" + stock_input(),
                   services={"iptables": ServiceState("iptables", True, True),
                             "ip6tables": ServiceState("ip6tables", False, True)})
    changes = FirewallLockdown().check(context(fresh, EL7))
    saves = [a.describe() for c in changes for a in c.actions if a.describe().startswith("service ")]
    assert saves == ["service iptables save", "service iptables save"]


@pytest.mark.parametrize(
    "rules, closed",
    [
        (["-P INPUT ACCEPT"], set()),
        (["-P INPUT DROP"], {25, 465, 587}),
        (["-P INPUT DROP", "-A INPUT -p tcp -m tcp --dport 25 -j ACCEPT"], {465, 587}),
        (["-P INPUT ACCEPT", "-A INPUT -p tcp -m multiport --dports 25,587 -j ACCEPT", "-A INPUT -j DROP"], {465}),
        (["-P INPUT ACCEPT", "-A INPUT -p udp -j DROP", "-A INPUT -p tcp -m tcp --dport 22 -j REJECT"], set()),
        # Conditional rules decide nothing: a source, an interface, a negation, a jump, an unknown match.
        (["-P INPUT ACCEPT", "-A INPUT -s 192.0.2.0/24 -p tcp -m tcp --dport 25 -j REJECT"], set()),
        (["-P INPUT DROP", "-A INPUT -s 192.0.2.0/24 -p tcp -m tcp --dport 25 -j ACCEPT"], {25, 465, 587}),
        (["-P INPUT ACCEPT", "-A INPUT -i eth1 -j DROP", "-A INPUT ! -p tcp -j DROP"], set()),
        (["-P INPUT ACCEPT", "-A INPUT -j f2b-postfix", "-A INPUT -p tcp -m limit --limit 5/s -j DROP"], set()),
        # Our own chains are left out, and only NEW connections count.
        (["-P INPUT ACCEPT", "-A INPUT -j PROVISIONER_OPEN", "-A INPUT -m state --state ESTABLISHED -j ACCEPT",
          "-A INPUT -j REJECT --reject-with icmp-host-prohibited"], {25, 465, 587}),
    ],
)
def test_parse_input_chain(rules: list[str], closed: set[int]) -> None:
    assert parse_input_chain(rules) == closed


def test_iptables_service_wins_over_nft() -> None:
    raw = "tool nft\ntool iptables\ntool ip6tables\n"
    running = {"iptables": ServiceState("iptables", True, True)}
    assert mechanism(firewall_state(facts_(raw))).name == "nftables"
    assert mechanism(firewall_state(facts_(raw, services=running))).name == "iptables"
    stopped = {"iptables": ServiceState("iptables", True, False)}
    assert mechanism(firewall_state(facts_(raw, services=stopped))).name == "nftables"


def test_direct_rule_argv_round_trip() -> None:
    for rule in desired_direct("2001:db8::1"):
        assert parse_direct_rules([" ".join(rule.argv())]) == (rule,)
    assert {r.ipv for r in desired_direct("2001:db8::1") if r.priority == 0} == {"ipv6"}
    assert DirectRule("ipv4", "filter", "INPUT", 0, ("-j", "ACCEPT")).source is None


# ---------------------------------------------------------------- an admin's own rule that shuts a mail port

from provisioner.steps.firewall.state import parse_nft_ruleset  # noqa: E402


def _ruleset(*rules: list, table: str = "drift_block", family: str = "inet", hook: str | None = "input") -> list[str]:
    """``nft -j list ruleset`` as libnftables-json(5) prints it: one line, the probe's prefix taken off."""
    chain = {"family": family, "table": table, "name": "input", "handle": 1}
    if hook:
        chain.update(type="filter", hook=hook, prio=0, policy="accept")
    items = [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
             {"table": {"family": family, "name": table, "handle": 3}}, {"chain": chain}]
    items += [{"rule": {"family": family, "table": table, "chain": "input", "handle": 2 + i, "expr": expr}}
              for i, expr in enumerate(rules)]
    import json
    return [json.dumps({"nftables": items})]


def _dport(right) -> dict:
    return {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": right}}


REJECT_25 = [_dport(25), {"reject": {"type": "tcp reset"}}]


def test_a_foreign_table_rejecting_port_25_is_found():
    assert parse_nft_ruleset(_ruleset(REJECT_25)) == ((25, "nft table inet drift_block"),)
    # drop, a set, a range, a counter and "meta l4proto tcp" decide the same
    assert parse_nft_ruleset(_ruleset([_dport({"set": [25, 587]}), {"counter": {"packets": 0, "bytes": 0}},
                                       {"drop": None}], family="ip")) == (
        (25, "nft table ip drift_block"), (587, "nft table ip drift_block"))
    l4 = {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}
    assert parse_nft_ruleset(_ruleset([l4, _dport({"range": [20, 30]}), {"reject": None}])) == (
        (25, "nft table inet drift_block"),)


def test_what_is_not_an_unconditional_foreign_reject_of_a_mail_port():
    saddr = {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "192.0.2.1"}}
    for ruleset in (
        _ruleset([_dport(25), {"accept": None}]),  # accepts
        _ruleset([saddr, *REJECT_25]),  # one source only: the admin's restriction, not "shut"
        _ruleset([_dport(22), {"reject": None}]),  # another port
        _ruleset([{"reject": None}]),  # a catch-all: the host's stock firewall, opened by the lockdown step
        _ruleset(REJECT_25, table="provisioner_lockdown"),  # ours
        _ruleset(REJECT_25, table="firewalld"),  # firewalld's: its zones decide
        _ruleset(REJECT_25, hook=None),  # a regular chain: reached only by a jump
        _ruleset(REJECT_25, hook="output"),
        [""], ["not json"],
    ):
        assert parse_nft_ruleset(ruleset) == ()


def test_a_foreign_reject_fails_the_host_in_planning_and_is_never_touched():
    text = NOTHING + "".join(f"nft-ruleset {line}\n" for line in _ruleset(REJECT_25))
    state = parse_firewall_state(text)
    assert state.foreign_rejects == ((25, "nft table inet drift_block"),)
    for verified in (True, False):
        files = {VERIFIED_MARKER: FileState(VERIFIED_MARKER, exists=verified)}
        facts = Facts(os=OsRelease(id="debian", version_id="12"), files=files, extra={PROBE: state},
                      ssh_client_address=CTRL)
        with pytest.raises(FirewallError, match="^h: port 25 is rejected by nft table inet drift_block "
                                                "\\(not ours\\): not touched"):
            FirewallLockdown().check(context(facts))
    # a port Postfix does not serve is the admin's business
    only_465 = parse_firewall_state(NOTHING + "".join(
        f"nft-ruleset {line}\n" for line in _ruleset([_dport(465), {"reject": None}])))
    facts = Facts(os=OsRelease(id="debian", version_id="12"), extra={PROBE: only_465}, ssh_client_address=CTRL,
                  files={VERIFIED_MARKER: FileState(VERIFIED_MARKER, exists=True)})
    assert FirewallLockdown().check(context(facts)) == []


def test_the_probe_reads_the_whole_ruleset_read_only():
    assert "nft -j list ruleset | sed 's/^/nft-ruleset /'" in PROBE_SCRIPT


def test_the_admins_own_table_on_the_lab_host_is_not_a_reject_of_a_mail_port():
    # `nft -j list ruleset` on lab6 (Debian 12, nft 1.0.6): the drift catalogue's planted table rejecting 2222.
    recorded = ('{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", '
                '"json_schema_version": 1}}, {"table": {"family": "inet", "name": "admin_keep", "handle": 4}}, '
                '{"chain": {"family": "inet", "table": "admin_keep", "name": "input", "handle": 1, "type": "filter", '
                '"hook": "input", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "admin_keep", '
                '"chain": "input", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": '
                '"tcp", "field": "dport"}}, "right": 2222}}, {"reject": {"type": "tcp reset"}}]}}]}')
    assert parse_nft_ruleset([recorded]) == ()
    assert parse_nft_ruleset([recorded.replace('"right": 2222', '"right": 25')]) == ((25, "nft table inet admin_keep"),)
