"""Rules of an admin's own that shut a mail port: read from ``nft -j list ruleset``, never touched.

The firewall probe hands the JSON here; a rule counts only when nothing but
the TCP destination port (and the protocol) decides it, so a rule that
depends on a source, an interface or a jump is never taken for a refusal.
"""

from __future__ import annotations

import json


def _nft_ports(right) -> frozenset[int] | None:
    """The ports of a match's right side: 25, {"set": [25, {"range": [20, 30]}]}, {"range": [20, 30]}."""
    if isinstance(right, int):
        return frozenset({right})
    if isinstance(right, dict) and "range" in right and len(right["range"]) == 2:
        low, high = right["range"]
        return frozenset(range(low, high + 1)) if isinstance(low, int) and isinstance(high, int) and 0 <= low <= high <= 65535 else None
    if isinstance(right, dict) and "set" in right:
        ports: set[int] = set()
        for item in right["set"]:
            found = _nft_ports(item)
            if found is None:
                return None
            ports |= found
        return frozenset(ports)
    return None


def _nft_rejected_ports(expressions: list, ports_wanted: frozenset[int]) -> frozenset[int]:
    """The mail ports one nft rule rejects or drops for a new TCP connection from anywhere.

    Only a rule whose every match is on the TCP destination port (or the protocol) decides; a
    source, an interface, a counter-free jump or anything else makes it conditional: nothing.
    """
    ports: frozenset[int] | None = None
    verdict = None
    for expr in expressions:
        if not isinstance(expr, dict) or len(expr) != 1:
            return frozenset()
        kind, body = next(iter(expr.items()))
        if kind == "match" and isinstance(body, dict) and body.get("op") in ("==", "in"):
            left = body.get("left", {})
            payload = left.get("payload", {}) if isinstance(left, dict) else {}
            meta = left.get("meta", {}) if isinstance(left, dict) else {}
            if payload.get("protocol") == "tcp" and payload.get("field") == "dport":
                ports = _nft_ports(body.get("right"))
                if ports is None:
                    return frozenset()
            elif meta.get("key") == "l4proto" and body.get("right") in ("tcp", 6):
                continue
            else:
                return frozenset()
        elif kind == "counter":
            continue
        elif kind in ("reject", "drop"):
            verdict = kind
        else:
            return frozenset()
    return ports & ports_wanted if verdict and ports else frozenset()


def foreign_rejections(lines: list[str], ports: frozenset[int], ours: frozenset[str]) -> tuple[tuple[int, str], ...]:
    """``nft -j list ruleset``: per port of ``ports``, the first table not in ``ours`` whose input hook rejects it."""
    try:
        items = json.loads("".join(lines) or "{}").get("nftables", [])
    except (ValueError, AttributeError):
        return ()
    hooked: set[tuple[str, str, str]] = set()
    for item in items:
        chain = item.get("chain") if isinstance(item, dict) else None
        if isinstance(chain, dict) and chain.get("hook") == "input" and chain.get("family") in ("inet", "ip", "ip6"):
            hooked.add((chain["family"], chain.get("table", ""), chain.get("name", "")))
    found: dict[int, str] = {}
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        if not isinstance(rule, dict):
            continue
        where = (rule.get("family", ""), rule.get("table", ""), rule.get("chain", ""))
        if where not in hooked or where[1] in ours:
            continue
        for port in _nft_rejected_ports(rule.get("expr", []), ports):
            found.setdefault(port, f"nft table {where[0]} {where[1]}")
    return tuple(sorted(found.items()))
