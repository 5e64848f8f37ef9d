"""The drift catalogue: every kind of drift the tool must take back in one run, as data.

The entries live by area in postfix.py, auth.py, maps.py, tls.py and system.py
(vocabulary in model.py); ``MUTATIONS`` is all of them in the fixed order of
`make test`. probes.py, plans.py and harness.py run them on a lab host.

Each `Mutation` is something an admin, a package or an accident does to a
converged host, and what the tool must make of it:

* ``repair``: a dry run exits 2 and lists it (``plan``: the exact (step,
  summary) list when the right plan is clear; ``mentions``: (step, text)
  pairs, text a substring of a summary or a regex after ``re:``, that any plan
  holding this mutation must show, also in combinations);
  the real run makes exactly the planned changes and verify passes; a dry run
  right after exits 0; the host is the converged host again.
* ``tolerate``: not drift (Postfix, PAM or the shell read it the same way): a
  dry run exits 0 and the host behaves as before. The harness then puts the
  file back by hand.
* ``refuse``: the tool must not touch it: dry run and real run report the host
  ``failed`` with an error matching ``error``, and the real run changes nothing
  at all. The harness then undoes it by hand (``undo``, then the files of
  ``restore`` from the converged snapshot).

``touches`` names what a mutation changes, for combinations: two mutations
conflict when they share a name, or when one names a whole resource
(``main.cf``) and the other a part of it (``main.cf/myhostname``). A map's
.db counts as its whole source file: any edit of the source rebuilds it, so
the two plans would merge into one rebuild.

``known`` is today's failure: ``(kind, diagnosis)``. The catalogue test marks
the case as a strict xfail that expects exactly that kind of failure, so the
suite turns red the moment a fix lands (or the failure changes) while the mark
is still there. The kinds are listed in drift.harness.KINDS.

Everything here is Debian 12 (the lab); paths are Debian's.
"""

from __future__ import annotations

from drift import auth, maps, postfix, system, tls
from drift.model import ALIASES, MAIN_CF, MASTER_CF, PAM_SMTP, SASLAUTHD, TLS_DIR, Mutation, Plant

PLANTS = (
    Plant("main.cf comment and key", MAIN_CF,
          "printf '\\n# admin: the scanner needs bigger mails (ticket 4711)\\nmessage_size_limit = 20480000\\n' "
          f">> {MAIN_CF}",
          # CR-blind, like Postfix: main_cf.crlf is not drift, and may be combined with others.
          f"tr -d '\\r' < {MAIN_CF} | grep -qx '# admin: the scanner needs bigger mails (ticket 4711)' && "
          "[ \"$(postconf -h message_size_limit)\" = 20480000 ]"),
    Plant("master.cf service", MASTER_CF,
          "printf 'scanner   unix  -       -       y       -       2       smtp\\n"
          f"  -o syslog_name=postfix/scanner\\n' >> {MASTER_CF}",
          "postconf -M scanner/unix | grep -q 'syslog_name=postfix/scanner'"),
    Plant("saslauthd tuning", SASLAUTHD,
          f"if grep -q '^THREADS=' {SASLAUTHD}; then sed -i 's/^THREADS=.*/THREADS=4/' {SASLAUTHD}; "
          f"else echo THREADS=4 >> {SASLAUTHD}; fi && printf '# admin: fewer workers on this box\\n' >> {SASLAUTHD} "
          "&& systemctl restart saslauthd",
          f"grep -qx 'THREADS=4' {SASLAUTHD} && grep -qx '# admin: fewer workers on this box' {SASLAUTHD}"),
    Plant("pam.d/smtp extra line", PAM_SMTP,
          f"printf '# admin: log refused logins\\nauth optional pam_warn.so\\n' >> {PAM_SMTP}",
          f"[ \"$(grep -v '^#' {PAM_SMTP} | grep . | tail -n 1)\" = 'auth optional pam_warn.so' ]"),
    Plant("aliases entry", ALIASES,
          f"printf 'abuse:\\t\\troot\\n' >> {ALIASES} && newaliases",
          f"[ \"$(postalias -q abuse hash:{ALIASES})\" = root ]"),
    Plant("tls directory file", TLS_DIR,
          f"printf 'certificates here are made by provisioner\\n' > {TLS_DIR}/README.admin",
          f"[ -f {TLS_DIR}/README.admin ]"),
    Plant("admin's own nft table", "nftables",
          "nft -f - <<'EOF'\ntable inet admin_keep {\n  chain input {\n"
          "    type filter hook input priority 0; policy accept;\n    tcp dport 2222 reject with tcp reset\n  }\n}\nEOF",
          "nft list table inet admin_keep >/dev/null"),
)


MUTATIONS: tuple[Mutation, ...] = (
    *postfix.MUTATIONS, *auth.MUTATIONS, *maps.MUTATIONS, *tls.MUTATIONS, *system.MUTATIONS,
)


def by_id(ident: str) -> Mutation:
    return next(m for m in MUTATIONS if m.id == ident)
