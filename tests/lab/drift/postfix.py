"""The drift catalogue: main.cf and master.cf."""

from __future__ import annotations

from drift.model import (
    attributes_set_back,
    DH, ENABLE_SUBMISSION, MAIN_CF, MASTER_CF, Mutation, OUTSIDE, RELOAD, RESTART,
)

MASTER_CF_DIST = "/usr/share/postfix/master.cf.dist"  # the stock copy Debian's postfix ships


def _awk_block(action: str, name: str = "submission") -> str:
    """awk over master.cf's ``name`` entry (its line and its continuation lines)."""
    return (f"awk -v name={name} 'BEGIN{{s=0}} $1==name && /^[^ \\t#]/ {{s=1; {action}; next}} "
            f"s && /^[ \\t]/ {{{action}; next}} {{s=0; print}}' {MASTER_CF} > /root/master.cf.new && "
            f"cat /root/master.cf.new > {MASTER_CF} && rm /root/master.cf.new")


LATIN1_MAIN = "# r\\351glage du site"  # printf escape: "réglage" in ISO-8859-1

MUTATIONS: tuple[Mutation, ...] = (
    # ------------------------------------------------------------ main.cf
    Mutation(
        "main_cf.delete", "main.cf", "delete", f"rm {MAIN_CF}", "repair",
        "Creates main.cf with every managed key and restarts Postfix.",
        plan=(("main_cf", f"create {MAIN_CF} with {{main_cf_count}} managed keys"), RESTART),
        mentions=(("main_cf", f"create {MAIN_CF}"),),
        touches=("main.cf",), destroys=("main.cf comment and key",)),
    Mutation(
        "main_cf.truncate", "main.cf", "truncate", f": > {MAIN_CF}", "repair",
        "Sets every managed key in the empty file and restarts Postfix.",
        plan=(("main_cf", f"update {MAIN_CF}: set {{main_cf_set_all}}"), RESTART),
        mentions=(("main_cf", "set compatibility_level = 3.6, myhostname = "),),
        touches=("main.cf",), destroys=("main.cf comment and key",)),
    Mutation(
        "main_cf.delete_line", "main.cf", "delete a managed line",
        f"sed -i '/^smtpd_tls_auth_only = yes$/d' {MAIN_CF}", "repair",
        "Sets the key again (appended) and reloads Postfix.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_tls_auth_only = yes"), RELOAD),
        mentions=(("main_cf", "smtpd_tls_auth_only = yes"),),
        touches=("main.cf/smtpd_tls_auth_only",)),
    Mutation(
        "main_cf.comment_line", "main.cf", "comment out a managed line",
        f"sed -i 's/^smtpd_tls_security_level = may$/#&/' {MAIN_CF}", "repair",
        "Sets the key where the commented line stands and reloads Postfix.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_tls_security_level = may"), RELOAD),
        mentions=(("main_cf", "smtpd_tls_security_level = may"),),
        touches=("main.cf/smtpd_tls_security_level",)),
    Mutation(
        "main_cf.comment_multiline_head", "main.cf", "comment out the first line of a multi-line entry",
        # Postfix reads the orphaned continuation lines as part of the entry before the comment.
        f"sed -i 's/^smtpd_recipient_restrictions = .*$/#smtpd_recipient_restrictions = permit_sasl_authenticated,"
        f"\\n    permit_mynetworks,\\n    reject_unauth_destination/' {MAIN_CF}", "repair",
        "Postfix reads the orphaned continuation lines as part of the key above the comment: both keys are set "
        "again and the orphans go.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_sasl_authenticated_header = no, smtpd_recipient_restrictions "
                          "= permit_sasl_authenticated, permit_mynetworks, reject_unauth_destination"), RELOAD),
        mentions=(("main_cf", "smtpd_recipient_restrictions = permit_sasl_authenticated"),),
        touches=("main.cf/smtpd_recipient_restrictions", "main.cf/smtpd_sasl_authenticated_header")),
    Mutation(
        "main_cf.duplicate_line", "main.cf", "duplicate a line",
        f"line=$(grep '^smtpd_tls_mandatory_protocols = ' {MAIN_CF}) && printf '%s\\n' \"$line\" >> {MAIN_CF}",
        "repair",
        "A key defined twice is drift: the copy goes, Postfix is reloaded.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_tls_mandatory_protocols = >=TLSv1.2"), RELOAD),
        mentions=(("main_cf", "smtpd_tls_mandatory_protocols = >=TLSv1.2"),),
        touches=("main.cf/smtpd_tls_mandatory_protocols",)),
    Mutation(
        "main_cf.override_later", "main.cf", "append a later line that overrides",
        f"echo 'smtpd_tls_received_header = no' >> {MAIN_CF}", "repair",
        "The later definition goes, the first keeps the managed value.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_tls_received_header = yes"), RELOAD),
        mentions=(("main_cf", "smtpd_tls_received_header = yes"),),
        touches=("main.cf/smtpd_tls_received_header",)),
    Mutation(
        "main_cf.change_value", "main.cf", "change a value",
        f"sed -i 's/^smtpd_tls_mandatory_ciphers = high$/smtpd_tls_mandatory_ciphers = medium/' {MAIN_CF}", "repair",
        "The value is set back where it stands.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_tls_mandatory_ciphers = high"), RELOAD),
        mentions=(("main_cf", "smtpd_tls_mandatory_ciphers = high"),),
        touches=("main.cf/smtpd_tls_mandatory_ciphers",)),
    Mutation(
        "main_cf.case_value", "main.cf", "change the case of a value",
        f"sed -i 's/^smtpd_sasl_auth_enable = yes$/smtpd_sasl_auth_enable = YES/' {MAIN_CF}", "repair",
        "Values compare as written (Postfix reads booleans case-blind, other values not): set back to the "
        "managed spelling.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_sasl_auth_enable = yes"), RELOAD),
        mentions=(("main_cf", "smtpd_sasl_auth_enable = yes"),),
        touches=("main.cf/smtpd_sasl_auth_enable",)),
    Mutation(
        "main_cf.indent_line", "main.cf", "whitespace: indent a managed line",
        # An indented line continues the entry above it (here smtpd_tls_dh1024_param_file).
        f"sed -i 's/^smtpd_tls_loglevel = 0$/  &/' {MAIN_CF}", "repair",
        "Postfix reads the indented line as part of the key above: that key is set back and the indented key "
        "set again.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_tls_dh1024_param_file = {DH}, smtpd_tls_loglevel = 0"),
              RELOAD),
        mentions=(("main_cf", "smtpd_tls_loglevel = 0"),),
        touches=("main.cf/smtpd_tls_loglevel", "main.cf/smtpd_tls_dh1024_param_file")),
    Mutation(
        "main_cf.reorder", "main.cf", "reorder lines",
        f"line=$(grep '^myhostname = ' {MAIN_CF}) && sed -i '/^myhostname = /d' {MAIN_CF} && "
        f"printf '%s\\n' \"$line\" >> {MAIN_CF}", "tolerate",
        "Not drift: Postfix does not care where a key stands.",
        touches=("main.cf/myhostname",)),
    Mutation(
        "main_cf.whitespace", "main.cf", "whitespace changes",
        f"sed -i -e 's/^smtpd_delay_reject = no$/smtpd_delay_reject=no/' "
        f"-e 's|^mynetworks = .*|mynetworks =   127.0.0.0/8    [::1]/128   |' "
        f"-e 's/^smtpd_relay_restrictions = .*/smtpd_relay_restrictions = permit_mynetworks ,permit_sasl_authenticated,"
        f"   reject_unauth_destination/' {MAIN_CF}", "tolerate",
        "Not drift: values compare as Postfix reads them (blanks folded, blanks around commas ignored).",
        touches=("main.cf/smtpd_delay_reject", "main.cf/mynetworks", "main.cf/smtpd_relay_restrictions")),
    Mutation(
        "main_cf.crlf", "main.cf", "CRLF line endings", f"sed -i 's/$/\\r/' {MAIN_CF}", "tolerate",
        "Not drift: Postfix strips the CR (postconf shows the same values).",
        touches=("main.cf",)),
    Mutation(
        "main_cf.latin1", "main.cf", "a byte that is not UTF-8",
        f"printf '{LATIN1_MAIN}\\n' >> {MAIN_CF} && "
        f"sed -i 's/^smtpd_tls_session_cache_timeout = 10800s$/smtpd_tls_session_cache_timeout = 3600s/' {MAIN_CF}",
        "repair",
        "The drifted key is set back; the admin's ISO-8859-1 comment is kept byte for byte.",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_tls_session_cache_timeout = 10800s"), RELOAD),
        mentions=(("main_cf", "smtpd_tls_session_cache_timeout = 10800s"),),
        touches=("main.cf/smtpd_tls_session_cache_timeout", "main.cf/#latin1"),
        check=f"LC_ALL=C grep -qx \"$(printf '{LATIN1_MAIN}')\" {MAIN_CF}",
        cleanup=f"LC_ALL=C sed -i '/^# r.glage du site$/d' {MAIN_CF}"),
    Mutation(
        "main_cf.owner_mode", "main.cf", "owner and mode",
        f"chown mailuser:mailuser {MAIN_CF} && chmod 666 {MAIN_CF}", "repair",
        "Owner and mode are set back to root:root 0644 (a world-writable main.cf lets anyone reroute mail).",
        mentions=(attributes_set_back("main_cf", MAIN_CF),),
        touches=("main.cf/#attributes",)),
    Mutation(
        "main_cf.symlink_inside", "main.cf", "replaced by a symlink inside /etc",
        f"mv {MAIN_CF} {MAIN_CF}.site && ln -s main.cf.site {MAIN_CF} && "
        f"sed -i 's/^smtpd_tls_loglevel = 0$/smtpd_tls_loglevel = 2/' {MAIN_CF}.site", "repair",
        "The file the link points to is edited; the link stays (as /etc/pam.d/smtp's alternatives link on EL).",
        plan=(("main_cf", f"update {MAIN_CF}: set smtpd_tls_loglevel = 0"), RELOAD),
        mentions=(("main_cf", "smtpd_tls_loglevel = 0"),),
        touches=("main.cf",),
        check=f"[ \"$(readlink {MAIN_CF})\" = main.cf.site ] && grep -qx 'smtpd_tls_loglevel = 0' {MAIN_CF}.site",
        cleanup=f"if [ -L {MAIN_CF} ]; then rm {MAIN_CF} && mv {MAIN_CF}.site {MAIN_CF}; else rm -f {MAIN_CF}.site; fi"),
    Mutation(
        "main_cf.symlink_outside", "main.cf", "replaced by a symlink pointing outside /etc",
        f"mkdir -p {OUTSIDE} && mv {MAIN_CF} {OUTSIDE}/main.cf && ln -s {OUTSIDE}/main.cf {MAIN_CF} && "
        f"sed -i 's/^smtpd_tls_loglevel = 0$/smtpd_tls_loglevel = 2/' {OUTSIDE}/main.cf", "refuse",
        "Refused: the host fails with an error naming the link, and nothing is changed.",
        touches=("main.cf",), error=r"/etc/postfix/main\.cf.*(link|outside)",
        undo=f"rm -f {MAIN_CF}; rm -rf {OUTSIDE}", restore=(MAIN_CF,)),
    # ------------------------------------------------------------ master.cf
    Mutation(
        "master_cf.delete", "master.cf", "delete", f"rm {MASTER_CF}", "repair",
        "master.cf is rebuilt from the stock copy Postfix ships (/usr/share/postfix/master.cf.dist) with the "
        "managed entries, and Postfix restarted.",
        plan=(("master_cf", f"rebuild {MASTER_CF} (missing) from the stock {MASTER_CF_DIST} and enable submission "
                            "(port 587)"), RESTART),
        mentions=(("master_cf", MASTER_CF),),
        touches=("master.cf",), destroys=("master.cf service",), solo=True),
    Mutation(
        "master_cf.truncate", "master.cf", "truncate", f": > {MASTER_CF}", "repair",
        "An empty master.cf is rebuilt like a missing one.",
        plan=(("master_cf", f"rebuild {MASTER_CF} (without Postfix's services) from the stock {MASTER_CF_DIST} and "
                            "enable submission (port 587)"), RESTART),
        mentions=(("master_cf", MASTER_CF),),
        touches=("master.cf",), destroys=("master.cf service",), solo=True),
    Mutation(
        "master_cf.delete_entry", "master.cf", "delete a managed entry",
        _awk_block("next"), "repair",
        "The submission entry is added again after the smtp entry.",
        plan=(ENABLE_SUBMISSION, RELOAD), mentions=(ENABLE_SUBMISSION,), touches=("master.cf/587",)),
    Mutation(
        "master_cf.comment_entry", "master.cf", "comment out a managed entry",
        _awk_block("print \"#\" $0"), "repair",
        "The commented-out entry is replaced by the managed one.",
        plan=(ENABLE_SUBMISSION, RELOAD), mentions=(ENABLE_SUBMISSION,), touches=("master.cf/587",)),
    Mutation(
        "master_cf.comment_head", "master.cf", "comment out the first line of a multi-line entry",
        # master(8) then reads the orphaned "-o" lines as options of the smtp entry above: port 25
        # demands TLS (smtpd_tls_security_level=encrypt) and AUTH.
        f"sed -i 's/^submission /#submission /' {MASTER_CF}", "repair",
        "The commented head and its orphaned option lines (which Postfix reads as options of the entry above) "
        "are replaced by the managed entry.",
        plan=(ENABLE_SUBMISSION, RELOAD), mentions=(ENABLE_SUBMISSION,), touches=("master.cf/587",)),
    Mutation(
        "master_cf.duplicate_entry", "master.cf", "duplicate an entry",
        f"awk '$1==\"submission\" && /^[^ \\t#]/ {{s=1; print; next}} "
        f"s && /^[ \\t]/ {{print; next}} {{s=0}}' {MASTER_CF} > /root/sub && "
        f"cat /root/sub >> {MASTER_CF} && rm /root/sub",
        "repair",
        "The second entry for port 587 goes.",
        plan=(("master_cf", f"update submission (port 587) in {MASTER_CF}: remove 1 more entry for port 587"), RELOAD),
        mentions=(("master_cf", "submission"),), touches=("master.cf/587",)),
    Mutation(
        "master_cf.change_option", "master.cf", "change a value",
        f"sed -i 's/^  -o smtpd_tls_security_level=encrypt$/  -o smtpd_tls_security_level=may/' {MASTER_CF}", "repair",
        "The option is set back.",
        plan=(("master_cf", f"update submission (port 587) in {MASTER_CF}: add -o smtpd_tls_security_level=encrypt, "
                            "remove -o smtpd_tls_security_level=may"), RELOAD),
        mentions=(("master_cf", "smtpd_tls_security_level=encrypt"),), touches=("master.cf/587",)),
    Mutation(
        "master_cf.reorder_options", "master.cf", "reorder lines",
        f"sed -i -e '/^  -o syslog_name=postfix\\/submission$/{{h;d}}' "
        f"-e '/^  -o smtpd_tls_security_level=encrypt$/G' {MASTER_CF}", "repair",
        "The entry is rewritten in the managed order (options are applied in order).",
        plan=(("master_cf", f"update submission (port 587) in {MASTER_CF}: reorder its options"), RELOAD),
        mentions=(("master_cf", "submission"),), touches=("master.cf/587",)),
    Mutation(
        "master_cf.whitespace", "master.cf", "whitespace changes",
        f"sed -i -e 's/^submission inet  *n  *-  *y  *-  *-  *smtpd$/submission inet n - y - - smtpd/' "
        f"-e 's/^  -o syslog_name=postfix\\/submission$/\\t-o   syslog_name=postfix\\/submission/' {MASTER_CF}",
        "tolerate", "Not drift: master.cf compares field by field.", touches=("master.cf/587",)),
    Mutation(
        "master_cf.crlf", "master.cf", "CRLF line endings", f"sed -i 's/$/\\r/' {MASTER_CF}", "tolerate",
        "Not drift: Postfix strips the CR (postconf -M shows the same services).", touches=("master.cf",)),
    Mutation(
        "master_cf.enable_disabled", "master.cf", "a disabled service turned on",
        f"printf 'submissions inet n - y - - smtpd\\n  -o smtpd_tls_wrappermode=yes\\n' >> {MASTER_CF}", "repair",
        "With smtps off in the inventory, the port 465 entry is commented out.",
        plan=(("master_cf", f"disable submissions (port 465, commented out) in {MASTER_CF}"), RELOAD),
        mentions=(("master_cf", "disable submissions"),), touches=("master.cf/465",)),
    Mutation(
        "master_cf.owner_mode", "master.cf", "owner and mode",
        f"chown mailuser:mailuser {MASTER_CF} && chmod 666 {MASTER_CF}", "repair",
        "Owner and mode are set back to root:root 0644.",
        mentions=(attributes_set_back("master_cf", MASTER_CF),), touches=("master.cf/#attributes",)),
)
