"""What counts as a secret in the output, and how it is taken out.

The report applies one ``Redactor`` to everything it shows or writes: change
summaries, diffs, errors, verify details, the JSON report, and the facts dump.
It removes:

* every value the inventory gives to a secret main.cf key: a key it marks
  (``main_cf: {key: {secret: VALUE}}``) or a key whose name says it carries a
  credential (``*password*``, ``*passwd*``, ``*secret*``, ``*_pw``, ``*token*``,
  ``*credential*``, ``*private_key*``: smtp_sasl_password_maps, or the
  ``<name>_bind_pw`` of a main.cf-style LDAP table), and the verify passwords;
* whatever follows ``KEY =`` or ``KEY:`` for such a key, in any line, and the
  continuation lines of a main.cf setting: this catches values that are not in
  the inventory (the old value in a diff, a line quoted by ``postfix check``);
* the password of a URL (``scheme://user:password@host``) and PEM private-key
  blocks.

A credential-named key whose value is only references to table files
(``hash:/etc/postfix/sasl_passwd``) carries no secret and stays shown, unless
the inventory marked it secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from provisioner.vars import MailVars

REDACTED = "[redacted]"
CREDENTIAL_KEY_RE = re.compile(r"pass|secret|credential|token|private[_ ]?key|(?:^|_)pw$", re.IGNORECASE)
FILE_TABLES_RE = re.compile(r"(?:[a-z0-9]+:)+/[^\s,{}]*(?:[\s,]+(?:[a-z0-9]+:)+/[^\s,{}]*)*", re.IGNORECASE)
PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL)
URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^/\s@]+(@)")
# "KEY = " / "KEY: " anywhere in a line (a diff line, a quoted log line); the value follows.
# A dotted name ("mail1.password: ...") is a place in an input file, not a setting: left alone.
KEY_SEP = re.compile(r"(?<![\w.])(\w[\w-]*)\s*[=:]\s*(?=\S)")
MIN_SECRET = 4  # shorter values are not replaced wherever they appear (only as KEY = value)


def is_credential_key(key: str) -> bool:
    return CREDENTIAL_KEY_RE.search(key) is not None


def is_file_reference(value: str) -> bool:
    """Only ``type:/path`` table references (``hash:/etc/postfix/sasl_passwd``): no secret in the value."""
    return FILE_TABLES_RE.fullmatch(value.strip()) is not None


def secret_settings(vars: MailVars) -> dict[str, str]:
    """The main.cf keys of these vars whose values must never be shown, with those values."""
    found = {}
    for key, value in vars.main_cf.items():
        if key in vars.secret_main_cf or (is_credential_key(key) and value is not None and not is_file_reference(value)):
            found[key] = value or ""
    return found


class Redactor:
    def __init__(self, keys: Iterable[str] = (), values: Iterable[str] = ()):
        self.keys = frozenset(keys)
        self.values = sorted({v for v in values if v and len(v) >= MIN_SECRET}, key=len, reverse=True)

    @classmethod
    def for_vars(cls, all_vars: Iterable[MailVars], passwords: Iterable[str | None] = ()) -> "Redactor":
        keys: set[str] = set()
        values: list[str] = [p for p in passwords if p]
        for vars in all_vars:
            keys |= vars.secret_main_cf
            values += [v for v in secret_settings(vars).values() if v]
        return cls(keys, values)

    def _secret_key(self, key: str, value: str) -> bool:
        if key in self.keys:
            return True
        return is_credential_key(key) and not is_file_reference(value)

    def text(self, text: str | None) -> str | None:
        """Redact a summary, an error, a detail or a diff."""
        if text is None:
            return None
        text = PEM_BLOCK.sub("[private key redacted]", text)
        for value in self.values:
            text = text.replace(value, REDACTED)
        text = URL_PASSWORD.sub(rf"\1{REDACTED}\2", text)
        lines = []
        in_secret = False  # inside a secret main.cf setting: its continuation lines are secret too
        for line in text.split("\n"):
            body = line[1:] if line[:1] in ("+", "-", " ") else line
            if in_secret and body[:1] in (" ", "\t") and body.strip():
                indent = len(body) - len(body.lstrip())
                lines.append(line[: len(line) - len(body) + indent] + REDACTED)
                continue
            line, in_secret = self._line(line)
            lines.append(line)
        return "\n".join(lines)

    def _line(self, line: str) -> tuple[str, bool]:
        """The line with the values of secret settings redacted, and whether it held one.

        A log line quoted in an error joins several lines with " | ": each part is one line.
        """
        found = False
        parts = re.split(r"(\s\|\s)", line)
        for index in range(0, len(parts), 2):
            part = parts[index]
            for match in KEY_SEP.finditer(part):
                value = part[match.end():]
                if not self._secret_key(match.group(1), value):
                    continue
                found = True
                if not value.startswith(REDACTED):
                    parts[index] = part[: match.end()] + REDACTED
                    break
        return "".join(parts), found

    def tree(self, data: Any) -> Any:
        """Redact every string in a JSON-like structure."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {key: self.tree(value) for key, value in data.items()}
        if isinstance(data, list):
            return [self.tree(value) for value in data]
        return data


DEFAULT = Redactor()
