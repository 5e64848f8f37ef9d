"""The drift catalogue: /etc/aliases, the virtual alias map, and their .db files."""

from __future__ import annotations

from drift.model import (
    attributes_set_back,
    ALIASES, Mutation, REBUILD_ALIASES, REBUILD_VIRTUAL, VIRTUAL,
)

LATIN1_ALIASES = "# \\344nderung vom Admin"  # "Änderung" in ISO-8859-1

MUTATIONS: tuple[Mutation, ...] = (
    # ------------------------------------------------------------ /etc/aliases
    Mutation(
        "aliases.delete", "aliases", "delete", f"rm {ALIASES}", "repair",
        "Created again with postmaster and the root alias; the .db rebuilt.",
        plan=(("aliases", f"set root: mailuser in {ALIASES}"), REBUILD_ALIASES),
        mentions=(("aliases", f"set root: mailuser in {ALIASES}"),),
        touches=("aliases",), destroys=("aliases entry",)),
    Mutation(
        "aliases.delete_line", "aliases", "delete a managed line", f"sed -i '/^root:/d' {ALIASES} && newaliases",
        "repair", "The root alias is set again; the .db rebuilt.",
        plan=(("aliases", f"set root: mailuser in {ALIASES}"), REBUILD_ALIASES),
        mentions=(("aliases", f"set root: mailuser in {ALIASES}"),), touches=("aliases/root",)),
    Mutation(
        "aliases.comment_line", "aliases", "comment out a managed line",
        f"sed -i 's/^root:/#root:/' {ALIASES} && newaliases", "repair",
        "The root alias is set where the comment stands; the .db rebuilt.",
        plan=(("aliases", f"set root: mailuser in {ALIASES}"), REBUILD_ALIASES),
        mentions=(("aliases", f"set root: mailuser in {ALIASES}"),), touches=("aliases/root",)),
    Mutation(
        "aliases.change_value", "aliases", "change a value",
        f"sed -i 's/^root:.*/root: admin/' {ALIASES} && newaliases", "repair",
        "The root alias is set back; the .db rebuilt.",
        plan=(("aliases", f"set root: mailuser in {ALIASES} (was admin)"), REBUILD_ALIASES),
        mentions=(("aliases", f"set root: mailuser in {ALIASES}"),), touches=("aliases/root",)),
    Mutation(
        "aliases.override_later", "aliases", "duplicate an entry with another value",
        f"printf 'root: admin\\n' >> {ALIASES} && newaliases", "repair",
        "The second root entry goes; the .db rebuilt.",
        mentions=(("aliases", f"re:^set root: mailuser in {ALIASES}"), REBUILD_ALIASES), touches=("aliases/root",)),
    Mutation(
        "aliases.comment_multiline_head", "aliases", "comment out the first line of a multi-line entry",
        f"sed -i 's/^root:.*$/#root:\\t\\tmailuser,\\n\\tadmin/' {ALIASES} && newaliases", "repair",
        "Postfix reads the orphaned continuation line as part of the entry above the comment: the root alias "
        "is set and the orphan goes.",
        plan=(("aliases", f"set root: mailuser in {ALIASES}"), REBUILD_ALIASES),
        mentions=(("aliases", f"set root: mailuser in {ALIASES}"),), touches=("aliases/root", "aliases/postmaster")),
    Mutation(
        "aliases.crlf", "aliases", "CRLF line endings", f"sed -i 's/$/\\r/' {ALIASES} && newaliases", "tolerate",
        "Not drift: postalias strips the CR.", touches=("aliases",)),
    Mutation(
        "aliases.latin1", "aliases", "a byte that is not UTF-8",
        f"printf '{LATIN1_ALIASES}\\n' >> {ALIASES} && sed -i 's/^root:.*/root: admin/' {ALIASES} && newaliases",
        "repair", "The root alias is set back; the admin's ISO-8859-1 comment is kept byte for byte.",
        plan=(("aliases", f"set root: mailuser in {ALIASES} (was admin)"), REBUILD_ALIASES),
        mentions=(("aliases", f"set root: mailuser in {ALIASES}"),), touches=("aliases/root", "aliases/#latin1"),
        check=f"LC_ALL=C grep -qx \"$(printf '{LATIN1_ALIASES}')\" {ALIASES}",
        cleanup=f"LC_ALL=C sed -i '/^# .nderung vom Admin$/d' {ALIASES} && newaliases"),
    Mutation(
        "aliases.owner_mode", "aliases", "owner and mode",
        f"chown mailuser:mailuser {ALIASES} && chmod 666 {ALIASES}", "repair",
        "Owner and mode are set back to root:root 0644 (anyone could add a pipe alias).",
        mentions=(attributes_set_back("aliases", ALIASES),), touches=("aliases/#attributes",)),
    # ------------------------------------------------------------ maps
    Mutation(
        "aliases_db.stale", "aliases.db", "stale .db",
        f"printf 'hostmaster:\\troot\\n' >> {ALIASES} && touch -d '-1 min' {ALIASES}.db", "repair",
        "Rebuilt with newaliases (the admin's new alias gets in).",
        plan=(("aliases", f"rebuild {ALIASES}.db (older than its source)"),),
        mentions=(("aliases", f"rebuild {ALIASES}.db"),), touches=("aliases",),
        check=f"[ \"$(postalias -q hostmaster hash:{ALIASES})\" = root ]",
        cleanup=f"sed -i '/^hostmaster:/d' {ALIASES} && newaliases"),
    Mutation(
        "aliases_db.missing", "aliases.db", "missing .db", f"rm {ALIASES}.db", "repair",
        "Rebuilt with newaliases.",
        plan=(("aliases", f"rebuild {ALIASES}.db (missing)"),), mentions=(("aliases", f"rebuild {ALIASES}.db"),),
        touches=("aliases",)),
    Mutation(
        "aliases_db.corrupt", "aliases.db", "corrupt .db", f"printf 'not a database' > {ALIASES}.db", "repair",
        "Rebuilt with newaliases (postalias -s cannot read it).",
        plan=(("aliases", f"rebuild {ALIASES}.db (unreadable)"),),
        mentions=(("aliases", f"rebuild {ALIASES}.db"),), touches=("aliases",)),
    Mutation(
        "virtual_db.older", "virtual_users.db", "stale .db (older than its source)",
        f"touch -d @$(( $(stat -c %Y {VIRTUAL}) - 60 )) {VIRTUAL}.db", "repair", "Rebuilt with postmap.",
        plan=(("aliases", f"rebuild {VIRTUAL}.db (older than its source)"),),
        mentions=(("aliases", f"rebuild {VIRTUAL}.db"),), touches=("virtual",)),
    Mutation(
        "virtual_db.stale", "virtual_users.db", "stale .db (a key missing, newer than its source)",
        f"postmap -d webmaster@example.test {VIRTUAL}", "repair",
        "Rebuilt with postmap (postmap -s lacks a key of the source).",
        plan=(("aliases", f"rebuild {VIRTUAL}.db (its keys differ from its source)"),),
        mentions=(("aliases", f"rebuild {VIRTUAL}.db"),), touches=("virtual",)),
    Mutation(
        "virtual_db.missing", "virtual_users.db", "missing .db", f"rm {VIRTUAL}.db", "repair",
        "Rebuilt with postmap.",
        plan=(("aliases", f"rebuild {VIRTUAL}.db (missing)"),), mentions=(("aliases", f"rebuild {VIRTUAL}.db"),),
        touches=("virtual",)),
    Mutation(
        "virtual_db.corrupt", "virtual_users.db", "corrupt .db", f"printf 'not a database' > {VIRTUAL}.db",
        "repair", "Rebuilt with postmap (postmap -s cannot read it).",
        plan=(("aliases", f"rebuild {VIRTUAL}.db (unreadable)"),),
        mentions=(("aliases", f"rebuild {VIRTUAL}.db"),), touches=("virtual",)),
    # ------------------------------------------------------------ virtual map
    Mutation(
        "virtual.delete", "virtual map", "delete", f"rm {VIRTUAL}", "repair",
        "Written again whole; the .db rebuilt.",
        plan=(("aliases", f"create {VIRTUAL} with 2 aliases"), REBUILD_VIRTUAL),
        mentions=(("aliases", f"create {VIRTUAL}"),), touches=("virtual",)),
    Mutation(
        "virtual.delete_line", "virtual map", "delete a managed line",
        f"sed -i '/^webmaster@example.test/d' {VIRTUAL}", "repair", "The alias is written again; .db rebuilt.",
        plan=(("aliases", f"update {VIRTUAL}: add webmaster@example.test -> mailuser"), REBUILD_VIRTUAL),
        mentions=(("aliases", "add webmaster@example.test -> mailuser"),), touches=("virtual",)),
    Mutation(
        "virtual.change_value", "virtual map", "change a value",
        f"sed -i 's/^\\(info@example.test  *\\)mailuser$/\\1root/' {VIRTUAL} && postmap {VIRTUAL}", "repair",
        "The alias is set back; .db rebuilt.",
        plan=(("aliases", f"update {VIRTUAL}: change info@example.test -> mailuser (was root)"), REBUILD_VIRTUAL),
        mentions=(("aliases", "info@example.test -> mailuser"),), touches=("virtual",)),
    Mutation(
        "virtual.override_later", "virtual map", "append a later line that overrides",
        f"printf 'info@example.test\\troot\\n' >> {VIRTUAL} && postmap {VIRTUAL}", "repair",
        "Written again in the managed layout; .db rebuilt.",
        plan=(("aliases", f"update {VIRTUAL}: rewrite it in the managed layout"), REBUILD_VIRTUAL),
        mentions=(("aliases", f"update {VIRTUAL}"),), touches=("virtual",)),
    Mutation(
        "virtual.crlf", "virtual map", "CRLF line endings", f"sed -i 's/$/\\r/' {VIRTUAL} && postmap {VIRTUAL}",
        "repair", "Written again in the managed layout; .db rebuilt.",
        plan=(("aliases", f"update {VIRTUAL}: rewrite it in the managed layout"), REBUILD_VIRTUAL),
        mentions=(("aliases", f"update {VIRTUAL}"),), touches=("virtual",)),
    Mutation(
        "virtual.owner_mode", "virtual map", "owner and mode",
        f"chown mailuser:mailuser {VIRTUAL} && chmod 666 {VIRTUAL}", "repair",
        "Owner and mode are set back.",
        plan=(("aliases", f"set owner root:root and mode 644 on {VIRTUAL}"),),
        mentions=(attributes_set_back("aliases", VIRTUAL),), touches=("virtual",)),
    Mutation(
        "virtual.symlink_inside", "virtual map", "replaced by a symlink inside /etc",
        f"mv {VIRTUAL} {VIRTUAL}.site && ln -s virtual_users.site {VIRTUAL} && touch -h {VIRTUAL}.db", "tolerate",
        "Not drift: the link stays inside /etc and its target is right.",
        touches=("virtual",)),
)
