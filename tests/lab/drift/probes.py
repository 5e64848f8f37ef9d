"""Shell probes of the drift catalogue's host: what it reads as converged, and what a run touched.

FINGERPRINT is what Postfix, PAM, the shell and the system read (not bytes):
after a repair it must equal the converged host's. RAW is every byte, mode,
mtime, pid and rule a run could touch: for "a refused run changes nothing"
and "the mutation did something".
"""

from __future__ import annotations

import re

FINGERPRINT = r"""
LC_ALL=C; export LC_ALL
# Blanks, and blanks around commas, are not significant in Postfix values.
norm() {{ sed -e 's/[[:space:]][[:space:]]*/ /g' -e 's/ *, */, /g'; }}
echo '## postconf -n'; postconf -n 2>&1 | norm
echo '## postconf -M'; postconf -M 2>&1 | norm
echo '## postconf -P'; postconf -P 2>&1 | norm
echo '## files (what is read: through links)'
for f in {files}; do if [ -e "$f" ]; then stat -L -c '%n %F %a %U:%G' "$f"; else echo "$f absent"; fi; done
echo '## links'
for f in {files}; do if [ -L "$f" ]; then printf '%s -> %s\n' "$f" "$(readlink "$f")"; fi; done
echo '## smtpd.conf'; cat -A /etc/postfix/sasl/smtpd.conf 2>&1
echo '## saslauthd as sourced'
sh -c '. /etc/default/saslauthd; printf "START=%s MECHANISMS=%s OPTIONS=%s\n" "$START" "$MECHANISMS" "$OPTIONS"' 2>&1 \
  | cat -A
echo '## pam.d/smtp directives'
grep -v '^[[:space:]]*#' /etc/pam.d/smtp 2>&1 | grep -v '^[[:space:]]*$' | sed 's/[ \t][ \t]*/ /g' | cat -A
echo '## allow'; cat -A /etc/pam.d/mail_auth_group.allow 2>&1
# Leaving out the bookkeeping entries sendmail-style alias maps carry (YP_LAST_MODIFIED changes on every build).
echo '## aliases'; postalias -s hash:/etc/aliases 2>&1 | grep -v -e '^YP_' -e '^@:' | sort | cat -A
echo '## virtual'; postmap -s hash:/etc/postfix/virtual_users 2>&1 | sort | cat -A
echo '## tls'
openssl x509 -in /etc/postfix/tls/cert.pem -noout -subject -ext subjectAltName 2>&1
openssl x509 -in /etc/postfix/tls/cert.pem -noout -checkend 2592000 >/dev/null 2>&1 && echo 'valid > 30 days'
[ "$(openssl x509 -in /etc/postfix/tls/cert.pem -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)" = \
  "$(openssl pkey -in /etc/postfix/tls/key.pem -pubout -outform DER 2>/dev/null | sha256sum)" ] && echo 'key matches'
sha256sum < /etc/postfix/tls/ffdhe2048.pem 2>&1
echo '## services'
printf 'postfix %s, saslauthd %s\n' "$(systemctl is-enabled postfix 2>/dev/null)" "$(systemctl is-enabled saslauthd 2>/dev/null)"
ls /etc/rc2.d 2>/dev/null | grep saslauthd | sed 's/^\([SK]\)[0-9]*/\1/'
pgrep -x master >/dev/null && echo 'master runs'
ps -o args= -C saslauthd | sort -u
echo '## listening'; ss -Htln | awk '{{print $4}}' | sort -u
echo '## packages'
dpkg-query -W -f '${{db:Status-Abbrev}} ${{Package}}\n' postfix sasl2-bin libsasl2-modules sendmail-bin sendmail-base \
  sendmail-cf nftables 2>/dev/null | awk 'substr($1, 2, 1) !~ /[nc]/' | sort
echo '## accounts'; getent group mail_login sasl; id -nG mailuser; id -nG outsider; id -nG postfix
echo '## firewall'; nft list tables; [ -e /var/lib/provisioner/verified ] && echo verified
true
"""

# Everything a run could touch, to the byte and the second: for "nothing half-done" and
# "the mutation did something".
RAW = r"""
LC_ALL=C; export LC_ALL
for f in {files}; do
  if [ -L "$f" ]; then printf '%s link -> %s %s\n' "$f" "$(readlink "$f")" "$(sha256sum < "$f" 2>/dev/null)";
  elif [ -d "$f" ]; then stat -c '%n %F %a %U:%G' "$f";
  elif [ -e "$f" ]; then printf '%s %s\n' "$(stat -c '%n %F %a %U:%G mtime=%Y' "$f")" "$(sha256sum < "$f")";
  else echo "$f absent"; fi
done
find /etc/postfix /etc/pam.d /etc/default /srv/drift -maxdepth 2 \( -type f -o -type l \) -newer /root/drift/epoch \
  -printf '%p %y %m mtime=%T@\n' 2>/dev/null | sort
echo "master $(pgrep -x master)"; echo "saslauthd $(pgrep -o -x saslauthd)"
systemctl is-enabled postfix saslauthd 2>/dev/null; ls /etc/rc2.d /etc/systemd/system 2>/dev/null | grep -e postfix -e saslauthd
dpkg-query -W -f '${{db:Status-Abbrev}} ${{Package}} ${{Version}}\n' postfix sasl2-bin libsasl2-modules sendmail-bin \
  sendmail-base sendmail-cf nftables 2>/dev/null
getent group mail_login sasl
nft list ruleset 2>&1 | grep -v '^\s*$'
true
"""

SNAPSHOT_PATHS = ("etc/postfix", "etc/pam.d/smtp", "etc/pam.d/mail_auth_group.allow", "etc/aliases",
                  "etc/aliases.db", "etc/default/saslauthd")


def without_links(fingerprint: str) -> str:
    """The fingerprint without its list of symlinks (what they point to still counts)."""
    return re.sub(r"## links\n(?:[^#].*\n)*", "", fingerprint)


def content(raw: str) -> str:
    """A raw state without mtimes, but for the maps' (a stale .db differs only there):
    what a mutation must change. (sed -i rewrites a file even when its pattern matched nothing.)"""
    return "\n".join(line if ".db " in line else re.sub(r" mtime=\S+", "", line) for line in raw.splitlines())
