"""The drift catalogue: SASL's smtpd.conf, saslauthd's settings, /etc/pam.d/smtp and the allow file."""

from __future__ import annotations

from drift.model import (
    attributes_set_back, written_again,
    ALLOW, LISTFILE_FIRST, Mutation, OUTSIDE, PAM_SMTP,
    RELOAD, RESTART_SASLAUTHD, SASLAUTHD, SASL_CONF,
)

MUTATIONS: tuple[Mutation, ...] = (
    # ------------------------------------------------------------ SASL smtpd.conf
    Mutation(
        "sasl_conf.delete", "smtpd.conf", "delete", f"rm {SASL_CONF}", "repair",
        "Written again whole; Postfix reloaded.",
        **written_again("sasl", SASL_CONF, RELOAD),
        touches=("smtpd.conf",)),
    Mutation(
        "sasl_conf.change_value", "smtpd.conf", "change a value",
        f"sed -i 's/^mech_list: PLAIN LOGIN$/mech_list: PLAIN LOGIN CRAM-MD5/' {SASL_CONF}", "repair",
        "Written again whole.",
        **written_again("sasl", SASL_CONF, RELOAD),
        touches=("smtpd.conf",)),
    Mutation(
        "sasl_conf.crlf", "smtpd.conf", "CRLF line endings", f"sed -i 's/$/\\r/' {SASL_CONF}", "repair",
        "Written again whole (Cyrus would read 'saslauthd\\r' as the method).",
        **written_again("sasl", SASL_CONF, RELOAD),
        touches=("smtpd.conf",)),
    Mutation(
        "sasl_conf.owner_mode", "smtpd.conf", "owner and mode",
        f"chown mailuser:mailuser {SASL_CONF} && chmod 666 {SASL_CONF}", "repair",
        "Owner and mode are set back to root:root 0644.",
        mentions=(attributes_set_back("sasl", SASL_CONF),), touches=("smtpd.conf/#attributes",)),
    # ------------------------------------------------------------ saslauthd defaults
    Mutation(
        "saslauthd.delete", "saslauthd defaults", "delete", f"rm {SASLAUTHD}", "repair",
        "Created again and saslauthd restarted.",
        plan=(("sasl", f"create {SASLAUTHD} with START=yes, MECHANISMS=pam, "
                       "OPTIONS=\"-c -m /var/spool/postfix/var/run/saslauthd\""), RESTART_SASLAUTHD),
        mentions=(("sasl", f"create {SASLAUTHD}"),),
        touches=("saslauthd",), destroys=("saslauthd tuning",)),
    Mutation(
        "saslauthd.comment_line", "saslauthd defaults", "comment out a managed line",
        f"sed -i 's/^START=yes$/#START=yes/' {SASLAUTHD}", "repair",
        "START=yes is set where the comment stands; saslauthd restarted.",
        plan=(("sasl", f"update {SASLAUTHD}: set START=yes"), RESTART_SASLAUTHD),
        mentions=(("sasl", "START=yes"),), touches=("saslauthd/START",)),
    Mutation(
        "saslauthd.change_value", "saslauthd defaults", "change a value",
        f"sed -i 's/^MECHANISMS=.*/MECHANISMS=\"shadow\"/' {SASLAUTHD}", "repair",
        "The value is set back (quoting kept); saslauthd restarted.",
        plan=(("sasl", f"update {SASLAUTHD}: set MECHANISMS=pam"), RESTART_SASLAUTHD),
        mentions=(("sasl", "MECHANISMS=pam"),), touches=("saslauthd/MECHANISMS",)),
    Mutation(
        "saslauthd.override_later", "saslauthd defaults", "append a later line that overrides",
        f"echo 'OPTIONS=\"-c -m /var/run/saslauthd\"' >> {SASLAUTHD}", "repair",
        "The later assignment goes; saslauthd restarted.",
        plan=(("sasl", f"update {SASLAUTHD}: set OPTIONS=\"-c -m /var/spool/postfix/var/run/saslauthd\""),
              RESTART_SASLAUTHD),
        mentions=(("sasl", "OPTIONS="),), touches=("saslauthd/OPTIONS",)),
    Mutation(
        "saslauthd.crlf", "saslauthd defaults", "CRLF line endings", f"sed -i 's/$/\\r/' {SASLAUTHD}", "repair",
        "The shell reads START as 'yes\\r' (saslauthd would not start at the next boot): rewritten with LF "
        "endings, saslauthd restarted.",
        mentions=(("sasl", SASLAUTHD),), touches=("saslauthd",)),
    Mutation(
        "saslauthd.owner_mode", "saslauthd defaults", "owner and mode",
        f"chown mailuser:mailuser {SASLAUTHD} && chmod 666 {SASLAUTHD}", "repair",
        "Owner and mode are set back to root:root 0644 (OPTIONS are passed to a root daemon).",
        mentions=(attributes_set_back("sasl", SASLAUTHD),), touches=("saslauthd/#attributes",)),
    # ------------------------------------------------------------ /etc/pam.d/smtp
    Mutation(
        "pam_smtp.delete", "pam.d/smtp", "delete", f"rm {PAM_SMTP}", "repair",
        "Created again with the restriction and the common includes; saslauthd restarted.",
        plan=(("pam", f"create {PAM_SMTP}"), RESTART_SASLAUTHD), mentions=(("pam", f"create {PAM_SMTP}"),),
        touches=("pam_smtp",), destroys=("pam.d/smtp extra line",)),
    Mutation(
        "pam_smtp.delete_line", "pam.d/smtp", "delete a managed line",
        f"sed -i '/pam_listfile/d' {PAM_SMTP}", "repair",
        "The restriction goes back first; saslauthd restarted (it caches logins).",
        plan=(LISTFILE_FIRST, RESTART_SASLAUTHD), mentions=(LISTFILE_FIRST,), touches=("pam_smtp",)),
    Mutation(
        "pam_smtp.comment_line", "pam.d/smtp", "comment out a managed line",
        f"sed -i 's/^auth required pam_listfile/#&/' {PAM_SMTP}", "repair",
        "The restriction goes back first; saslauthd restarted.",
        plan=(LISTFILE_FIRST, RESTART_SASLAUTHD), mentions=(LISTFILE_FIRST,), touches=("pam_smtp",),
        check=f"[ $(grep -c pam_listfile {PAM_SMTP}) -le 2 ]"),
    Mutation(
        "pam_smtp.reorder", "pam.d/smtp", "reorder lines",
        f"sed -i -e '/pam_listfile/{{h;d}}' -e '/^@include common-auth$/G' {PAM_SMTP}", "repair",
        "The restriction moves back to first place.",
        plan=(LISTFILE_FIRST, RESTART_SASLAUTHD), mentions=(LISTFILE_FIRST,), touches=("pam_smtp",)),
    Mutation(
        "pam_smtp.change_value", "pam.d/smtp", "change a value",
        f"sed -i 's/onerr=fail/onerr=succeed/' {PAM_SMTP}", "repair",
        "The weakened restriction line is replaced by the managed one.",
        plan=(LISTFILE_FIRST, RESTART_SASLAUTHD), mentions=(LISTFILE_FIRST,), touches=("pam_smtp",)),
    Mutation(
        "pam_smtp.whitespace", "pam.d/smtp", "whitespace changes",
        f"sed -i 's/^auth required pam_listfile.so /auth\\trequired   pam_listfile.so  /' {PAM_SMTP}", "tolerate",
        "Not drift: PAM splits on blanks.", touches=("pam_smtp",)),
    Mutation(
        "pam_smtp.crlf", "pam.d/smtp", "CRLF line endings", f"sed -i 's/$/\\r/' {PAM_SMTP}", "repair",
        "libpam does not strip the CR: '@include common-auth\\r' cannot be opened ('PAM _pam_init_handlers: "
        "[Critical error - immediate abort]') and every login fails. Rewritten with LF endings; saslauthd restarted.",
        mentions=(("pam", PAM_SMTP),), touches=("pam_smtp",)),
    Mutation(
        "pam_smtp.owner_mode", "pam.d/smtp", "owner and mode",
        f"chown mailuser:mailuser {PAM_SMTP} && chmod 666 {PAM_SMTP}", "repair",
        "Owner and mode are set back to root:root 0644 (a writable PAM file lets anyone log in).",
        mentions=(attributes_set_back("pam", PAM_SMTP),), touches=("pam_smtp/#attributes",)),
    Mutation(
        "pam_smtp.symlink_inside", "pam.d/smtp", "replaced by a symlink inside /etc",
        f"mv {PAM_SMTP} {PAM_SMTP}.site && ln -s smtp.site {PAM_SMTP} && sed -i '/pam_listfile/d' {PAM_SMTP}.site",
        "repair", "The link's target is edited and the link kept.",
        plan=(LISTFILE_FIRST, RESTART_SASLAUTHD), mentions=(LISTFILE_FIRST,), touches=("pam_smtp",),
        check=f"[ \"$(readlink {PAM_SMTP})\" = smtp.site ]",
        cleanup=f"if [ -L {PAM_SMTP} ]; then rm {PAM_SMTP} && mv {PAM_SMTP}.site {PAM_SMTP}; "
                f"else rm -f {PAM_SMTP}.site; fi"),
    Mutation(
        "pam_smtp.symlink_outside", "pam.d/smtp", "replaced by a symlink pointing outside /etc",
        f"mkdir -p {OUTSIDE} && mv {PAM_SMTP} {OUTSIDE}/smtp && ln -s {OUTSIDE}/smtp {PAM_SMTP} && "
        f"sed -i '/pam_listfile/d' {OUTSIDE}/smtp", "refuse",
        "Refused: the host fails with an error naming the link, and nothing is changed.",
        touches=("pam_smtp",), error=r"/etc/pam\.d/smtp.*(link|outside)",
        undo=f"rm -f {PAM_SMTP}; rm -rf {OUTSIDE}", restore=(PAM_SMTP,)),
    # ------------------------------------------------------------ allow file
    Mutation(
        "allow.delete", "allow file", "delete", f"rm {ALLOW}", "repair",
        "Written again; saslauthd restarted.",
        **written_again("pam", ALLOW, RESTART_SASLAUTHD),
        touches=("allow",)),
    Mutation(
        "allow.extra_group", "allow file", "change a value", f"echo users >> {ALLOW}", "repair",
        "Written again with the one group; saslauthd restarted.",
        **written_again("pam", ALLOW, RESTART_SASLAUTHD),
        touches=("allow",)),
    Mutation(
        "allow.crlf", "allow file", "CRLF line endings", f"sed -i 's/$/\\r/' {ALLOW}", "repair",
        "Written again (pam_listfile would look up the group 'mail_login\\r').",
        **written_again("pam", ALLOW, RESTART_SASLAUTHD),
        touches=("allow",)),
    Mutation(
        "allow.owner_mode", "allow file", "owner and mode",
        f"chown mailuser:mailuser {ALLOW} && chmod 666 {ALLOW}", "repair",
        "Owner and mode are set back; saslauthd restarted.",
        plan=(("pam", f"set owner root:root and mode 644 on {ALLOW}"), RESTART_SASLAUTHD),
        mentions=(attributes_set_back("pam", ALLOW),), touches=("allow",)),
    Mutation(
        "allow.symlink_inside", "allow file", "replaced by a symlink inside /etc",
        f"mv {ALLOW} {ALLOW}.site && ln -s mail_auth_group.allow.site {ALLOW}", "tolerate",
        "Not drift: the link stays inside /etc and the file it points to is right.",
        touches=("allow",)),
)
