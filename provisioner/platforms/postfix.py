"""The Postfix a platform ships, as data: its version and what that build can read.

The desired state (provisioner.desired) decides from these which keys and
which syntax main.cf and master.cf may use; tests/unit/test_postfix_params.py
checks every platform's builds against the parameter names of their versions.
"""

from __future__ import annotations

from dataclasses import dataclass


def version_tuple(version: str) -> tuple[int, ...]:
    """``3.10.13`` -> (3, 10, 13): upstream Postfix versions compare by number, not as text."""
    return tuple(int(part) for part in version.split(".") if part.isdigit())


# TLS protocol names each Postfix's tls_protocol_mask() knows (protocol_table in
# src/tls/tls_misc.c): up to 2.8 SSLv2, SSLv3 and TLSv1; TLSv1.1 and TLSv1.2
# from 2.10 (Red Hat backported both to 2.6.6-8.el6); TLSv1.3 from 3.1.
TLS_NAMES_OLD = frozenset({"SSLv2", "SSLv3", "TLSv1"})
TLS_NAMES_1_2 = TLS_NAMES_OLD | {"TLSv1.1", "TLSv1.2"}
TLS_NAMES_1_3 = TLS_NAMES_1_2 | {"TLSv1.3"}
# Lookup table types backed by Berkeley DB (postconf -m).
BERKELEY_DB = frozenset({"hash", "btree"})


@dataclass(frozen=True)
class PostfixBuild:
    """One Postfix a platform ships: its upstream version and what that build can read.

    ``version`` names the upstream release whose parameters the build knows
    (tests/data/postfix-params/<version>.txt holds them); the desired state
    compares it with the release that introduced a key or a syntax before it
    writes one.
    """

    version: str
    tls_protocols: frozenset[str]  # protocol names its tls_protocol_mask() knows
    map_types: frozenset[str]  # lookup table types built in (postconf -m)
    origin: str = ""  # where the facts come from: a package, a reference file

    @property
    def number(self) -> tuple[int, ...]:
        return version_tuple(self.version)


