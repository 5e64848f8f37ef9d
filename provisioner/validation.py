"""What a valid name, address or account looks like, checked the same way everywhere.

Every pattern is a full match: ``re.match`` with ``$`` would accept a value
ending in a newline. Shown values are cut short and escaped, so that an
error message stays one line whatever the input holds.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata


class InputError(Exception):
    """Bad input: one line that names the file, the host or the key, and the problem."""


SHOWN_MAX = 60

# Inventory host and group names.
INVENTORY_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DNS_NAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# Local accounts and groups the steps create or read (useradd's default rule).
ACCOUNT_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
# SSH login names: a little wider (upper case, leading digit), never a leading '-'.
SSH_USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}")
# The local part of an address, as far as a mail server setup needs it: a dot-atom
# without the characters that mean something to a map file, a shell or SMTP.
LOCAL_PART_RE = re.compile(r"[A-Za-z0-9_%+=-]+(?:\.[A-Za-z0-9_%+=-]+)*")
POSTFIX_PARAMETER_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")


def shown(value: object) -> str:
    """``repr`` of a value for an error message: one line, at most SHOWN_MAX characters."""
    text = repr(value)
    if len(text) > SHOWN_MAX:
        text = text[: SHOWN_MAX - 5] + "...'" if text[:1] in "'\"" else text[: SHOWN_MAX - 3] + "..."
    return text


def unprintable(text: str) -> str | None:
    """The first character of ``text`` that has no place in a setting, as ``U+XXXX``, or None.

    Control characters (tab aside), line and paragraph separators, and format
    characters (bidirectional overrides among them): Python's ``splitlines``
    breaks lines on several of them where Postfix does not, and a terminal
    obeys them.
    """
    for char in text:
        if char == "\t":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs"):
            return f"U+{ord(char):04X}"
    return None


def is_dns_name(value: str) -> bool:
    """A DNS host name (letters, digits, hyphens; labels of 1-63 characters).

    A name whose last label is all digits is refused: resolvers read
    ``10.1`` or ``1.2.3`` as an IPv4 address.
    """
    return (
        len(value) <= 253
        and DNS_NAME_RE.fullmatch(value) is not None
        and not value.rsplit(".", 1)[-1].isdigit()
    )


def is_ip_address(value: str) -> bool:
    """An IPv4 or IPv6 address, without a zone index (``%eth0``)."""
    if "%" in value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def host_address_problem(value: str) -> str | None:
    """Why ``value`` is not an IP address or a DNS host name, or None when it is one."""
    if is_ip_address(value) or is_dns_name(value):
        return None
    return f"{shown(value)} is not an IP address or a DNS host name"


def is_account(value: str) -> bool:
    return ACCOUNT_RE.fullmatch(value) is not None


def is_ssh_user(value: str) -> bool:
    return SSH_USER_RE.fullmatch(value) is not None and not value.isdigit()


def is_mail_address(value: str) -> bool:
    """``local@domain``: a plain dot-atom local part and a DNS domain, at most 254 characters."""
    local, at, domain = value.rpartition("@")
    return bool(at) and len(value) <= 254 and len(local) <= 64 and LOCAL_PART_RE.fullmatch(local) is not None and is_dns_name(domain)


def is_local_part(value: str) -> bool:
    return len(value) <= 64 and LOCAL_PART_RE.fullmatch(value) is not None


def is_postfix_parameter(value: str) -> bool:
    return POSTFIX_PARAMETER_RE.fullmatch(value) is not None


def parse_destination(value: str) -> tuple[str | None, str, int | None]:
    """Split ``[user@]host[:port]`` (IPv6 in brackets: ``[2001:db8::1]:2222``) into its parts.

    Raises ValueError with a one-line reason. A bare IPv6 address is a host
    without a port. The host is checked (IP address or DNS name), the user
    (SSH login name) and the port (1-65535) too.
    """
    rest = value
    user = None
    if "@" in rest:
        user, _, rest = rest.rpartition("@")
        if not is_ssh_user(user):
            raise ValueError(f"{shown(user)} is not a valid SSH user name")
    port = None
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not is_ip_address(host) or ":" not in host:
            raise ValueError(f"{shown(value)}: only an IPv6 address goes in brackets")
        if tail:
            if not tail.startswith(":"):
                raise ValueError(f"{shown(value)} is not [user@]host[:port]")
            port = _port(tail[1:], value)
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
        port = _port(port_text, value)
    else:
        host = rest
    problem = host_address_problem(host) if host else f"{shown(value)} has no host"
    if problem:
        raise ValueError(problem)
    return user, host, port


def _port(text: str, whole: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{shown(whole)}: the port must be a number from 1 to 65535")
    return int(text)
