"""The drift catalogue: the TLS directory, certificate, key and DH parameters."""

from __future__ import annotations

from drift.model import (
    CERT, DH, KEY, Mutation, OUTSIDE, RELOAD, SELF_SIGNED, TLS_DIR,
)

MUTATIONS: tuple[Mutation, ...] = (
    # ------------------------------------------------------------ TLS
    Mutation(
        "tls_cert.delete", "TLS certificate", "delete", f"rm {CERT}", "repair",
        "A new self-signed certificate is made on the host; Postfix reloaded.",
        plan=(("tls", "generate a self-signed certificate for {myhostname} (valid 825 days)"), RELOAD),
        mentions=(("tls", "self-signed certificate"),), touches=("tls/pair",)),
    Mutation(
        "tls_cert.truncate", "TLS certificate", "truncate", f": > {CERT}", "repair",
        "Renewed: the certificate cannot be read.",
        plan=(("tls", f"renew {SELF_SIGNED}: {CERT} cannot be read"), RELOAD),
        mentions=(("tls", "renew the self-signed certificate"),), touches=("tls/pair",)),
    Mutation(
        "tls_cert.other_name", "TLS certificate", "change a value (another host's name)",
        f"openssl req -x509 -key {KEY} -subj /CN=other.example.test -days 30 -out {CERT} 2>/dev/null", "repair",
        "Renewed: it names another host.",
        plan=(("tls", f"renew {SELF_SIGNED}: it names other.example.test, not {{myhostname}}"), RELOAD),
        mentions=(("tls", "renew the self-signed certificate"),), touches=("tls/pair",)),
    Mutation(
        "tls_cert.expiring", "TLS certificate", "change a value (expires within renew_before_days)",
        f"openssl req -x509 -key {KEY} -subj /CN={{myhostname}} -addext subjectAltName=DNS:{{myhostname}} -days 5 "
        f"-out {CERT} 2>/dev/null", "repair",
        "Renewed: it expires within renew_before_days.",
        mentions=(("tls", r"re:^renew the self-signed certificate for \S+ \(valid 825 days\): it expires on "),),
        touches=("tls/pair",)),
    Mutation(
        "tls_key.delete", "TLS key", "delete", f"rm {KEY}", "repair",
        "Renewed: a new key and certificate, made on the host.",
        plan=(("tls", f"renew {SELF_SIGNED}: its key {KEY} is missing"), RELOAD),
        mentions=(("tls", "renew the self-signed certificate"),), touches=("tls/pair",)),
    Mutation(
        "tls_key.mismatch", "TLS key", "change a value (another key)",
        f"(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {KEY} 2>/dev/null)",
        "repair", "Renewed: the key does not match the certificate.",
        plan=(("tls", f"renew {SELF_SIGNED}: its key {KEY} does not match it"), RELOAD),
        mentions=(("tls", "renew the self-signed certificate"),), touches=("tls/pair",)),
    Mutation(
        "tls_key.corrupt", "TLS key", "truncate", f"printf 'garbage\\n' > {KEY}", "repair",
        "Renewed: the key cannot be read.",
        plan=(("tls", f"renew {SELF_SIGNED}: its key {KEY} cannot be read"), RELOAD),
        mentions=(("tls", "renew the self-signed certificate"),), touches=("tls/pair",)),
    Mutation(
        "tls_key.owner_mode", "TLS key", "owner and mode", f"chown mailuser:mailuser {KEY} && chmod 644 {KEY}",
        "repair", "Owner and mode are set back to root:root 0600.",
        plan=(("tls", f"set owner root:root and mode 600 on {KEY}"),),
        mentions=(("tls", f"mode 600 on {KEY}"),), touches=("tls/pair/#attributes",)),
    Mutation(
        "tls_key.symlink_inside", "TLS key", "replaced by a symlink inside /etc",
        f"mv {KEY} /etc/postfix/key.site.pem && ln -s /etc/postfix/key.site.pem {KEY}", "tolerate",
        "Not drift: the link stays inside /etc and points to the right key, root-only.",
        touches=("tls/pair",)),
    Mutation(
        "tls_key.symlink_outside", "TLS key", "replaced by a symlink pointing outside /etc",
        f"mkdir -p {OUTSIDE} && mv {KEY} {OUTSIDE}/key.pem && ln -s {OUTSIDE}/key.pem {KEY}", "refuse",
        "Refused: the host fails with an error naming the link, and nothing is changed.",
        touches=("tls/pair",), error=r"/etc/postfix/tls/key\.pem.*(link|outside)",
        undo=f"rm -f {KEY}; rm -rf {OUTSIDE}", restore=(KEY,)),
    Mutation(
        "dh.delete", "DH parameters", "delete", f"rm {DH}", "repair", "Written again; Postfix reloaded.",
        plan=(("tls", f"write {DH} (RFC 7919 ffdhe2048 DH parameters)"), RELOAD),
        mentions=(("tls", f"write {DH}"),), touches=("dh",)),
    Mutation(
        "dh.truncate", "DH parameters", "truncate", f": > {DH}", "repair", "Replaced; Postfix reloaded.",
        plan=(("tls", f"replace {DH} (RFC 7919 ffdhe2048 DH parameters)"), RELOAD),
        mentions=(("tls", f"replace {DH}"),), touches=("dh",)),
    Mutation(
        "dh.crlf", "DH parameters", "CRLF line endings", f"sed -i 's/$/\\r/' {DH}", "repair",
        "Replaced; Postfix reloaded.",
        plan=(("tls", f"replace {DH} (RFC 7919 ffdhe2048 DH parameters)"), RELOAD),
        mentions=(("tls", f"replace {DH}"),), touches=("dh",)),
    Mutation(
        "dh.owner_mode", "DH parameters", "owner and mode", f"chown mailuser:mailuser {DH} && chmod 666 {DH}",
        "repair", "Owner and mode are set back.",
        plan=(("tls", f"set owner root:root and mode 644 on {DH}"),),
        mentions=(("tls", f"mode 644 on {DH}"),), touches=("dh",)),
    Mutation(
        "tls_dir.mode", "TLS directory", "owner and mode", f"chmod 777 {TLS_DIR}", "repair",
        "The directory's mode is set back.",
        plan=(("tls", f"set mode 755 on {TLS_DIR}"),), mentions=(("tls", f"mode 755 on {TLS_DIR}"),),
        touches=("tls/dir",)),
    Mutation(
        "tls_dir.delete", "TLS directory", "delete", f"rm -rf {TLS_DIR}", "repair",
        "Directory, certificate, key and DH file made again; Postfix reloaded.",
        plan=(("tls", f"create directory {TLS_DIR} (mode 755, root:root)"),
              ("tls", "generate a self-signed certificate for {myhostname} (valid 825 days)"),
              ("tls", f"write {DH} (RFC 7919 ffdhe2048 DH parameters)"), RELOAD),
        mentions=(("tls", f"create directory {TLS_DIR}"),),
        touches=("tls",), destroys=("tls directory file",)),
)
