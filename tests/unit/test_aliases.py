"""The aliases step: the virtual map, the root alias, and rebuilding their databases only when needed."""

from __future__ import annotations

from provisioner.desired import ALIASES, VIRTUAL_HEADER, VIRTUAL_MAP, render_virtual
from provisioner.model import Facts, FileState
from provisioner.platforms import DEBIAN12, EL7
from provisioner.steps.aliases import (
    ALIASES_DB,
    VIRTUAL_DB,
    Aliases,
    describe_map_change,
    edit_aliases,
    new_aliases_file,
    parse_map,
    rebuild_reason,
)
from provisioner.steps.base import Context

from .conftest import mail_vars

EL_TAIL = "# trap decode to catch security attacks\ndecode:\t\troot\n\n# Person who should get root's mail\n#root:\t\tmarc\n"


def test_virtual_map_keeps_order_and_aligns():
    text = render_virtual({"webmaster@example.test": "user2", "info@example.test": "user1"})
    lines = text.splitlines()
    assert text.startswith(VIRTUAL_HEADER)
    assert lines[-2:] == ["webmaster@example.test    user2", "info@example.test         user1"]
    assert lines[-3].startswith("# alias address") and lines[-3].index("destination") == lines[-1].index("user1")
    assert parse_map(text) == {"webmaster@example.test": "user2", "info@example.test": "user1"}


def test_empty_virtual_map_is_only_the_header():
    text = render_virtual({})
    assert all(line.startswith("#") for line in text.splitlines()) and parse_map(text) == {}


def test_parse_map_and_describe():
    text = "# c\n\na@x   u1\nb@x\tu2,\n  u3\na@x dup\n"
    assert parse_map(text) == {"a@x": "u1", "b@x": "u2, u3"}
    assert describe_map_change({"a@x": "u1", "b@x": "u2"}, {"a@x": "u9", "c@x": "u3"}) == (
        "add c@x -> u3; change a@x -> u9 (was u1); remove b@x"
    )
    assert describe_map_change({"a@x": "u1"}, {"a@x": "u1"}) == "rewrite it in the managed layout"


def test_root_alias_replaces_the_commented_example_in_place():
    text = "postmaster:\troot\n\n" + EL_TAIL
    new, old = edit_aliases(text, "admin")
    assert old == ""
    assert new == text.replace("#root:\t\tmarc\n", "root:\t\tadmin\n")
    assert edit_aliases(new, "admin") == (new, None)


def test_root_alias_replaces_an_active_entry_and_its_continuations_and_duplicates():
    text = "postmaster: root\nroot: marc,\n  bob\n# note\nroot: eve\nother: root\n"
    new, old = edit_aliases(text, "admin")
    assert old == "marc, bob"
    assert new == "postmaster: root\nroot:\t\tadmin\n# note\nother: root\n"


def test_root_alias_appended_when_absent():
    new, old = edit_aliases("postmaster:    root", "admin")
    assert new == "postmaster:    root\nroot:\t\tadmin\n" and old == ""
    assert edit_aliases("root:   admin  \n", "admin") == ("root:   admin  \n", None)


def test_rebuild_reasons():
    src = FileState("/m", exists=True, content="x", mtime=100)
    assert rebuild_reason(src, FileState("/m.db"), False) == "missing"
    assert rebuild_reason(src, FileState("/m.db"), True) == "missing"
    assert rebuild_reason(src, FileState("/m.db", exists=True, mtime=200), True) == "its source changed"
    assert rebuild_reason(src, FileState("/m.db", exists=True, mtime=99), False) == "older than its source"
    assert rebuild_reason(src, FileState("/m.db", exists=True, mtime=100), False) is None  # same second: not older
    assert rebuild_reason(src, FileState("/m.db", exists=True, mtime=None), False) is None


def test_databases_are_gathered_without_content():
    spec = Aliases().needs(mail_vars())
    assert set(spec.secret_files) == {VIRTUAL_DB, ALIASES_DB}
    assert set(spec.files) == {VIRTUAL_MAP, ALIASES}


def test_debian_dry_run_and_real_run_agree_although_postinst_creates_aliases():
    vars = mail_vars(root_alias="admin", virtual_aliases={"info@example.test": "user1"})
    dry = Facts(files={})  # bare host: no /etc/aliases yet
    postinst = "# See man 5 aliases for format\npostmaster:    root\n"
    real = Facts(files={ALIASES: FileState(ALIASES, exists=True, content=postinst, mtime=5, from_package="postfix")})
    shown_package = Facts(files={ALIASES: FileState(ALIASES, exists=True, from_package="postfix")})
    plans = [[c.summary for c in Aliases().check(Context("h", vars, DEBIAN12, facts))] for facts in (dry, real, shown_package)]
    assert plans[0] == plans[1] == plans[2] == [
        f"create {VIRTUAL_MAP} with 1 alias",
        f"rebuild {VIRTUAL_DB} (missing)",
        f"set root: admin in {ALIASES}",
        f"rebuild {ALIASES_DB} (missing)",
    ]
    changes = Aliases().check(Context("h", vars, DEBIAN12, real))
    assert changes[2].actions[0].content == postinst + "root:\t\tadmin\n"
    assert [a.describe() for a in changes[1].actions] == [f"postmap {VIRTUAL_MAP}"]
    assert [a.describe() for a in changes[3].actions] == ["newaliases"]
    assert all(not c.notify for c in changes)


def test_missing_aliases_file_without_root_alias_gets_postmaster_only():
    changes = Aliases().check(Context("h", mail_vars(), EL7, Facts(files={})))
    create = next(c for c in changes if c.summary.startswith(f"create {ALIASES}"))
    assert create.actions[0].content == new_aliases_file(None) == "# See man 5 aliases for format\npostmaster:    root\n"


def test_effects_converge():
    vars = mail_vars(root_alias="admin", virtual_aliases={"info@example.test": "user1"})
    facts = Facts(files={ALIASES: FileState(ALIASES, exists=True, content=EL_TAIL, mtime=10),
                         ALIASES_DB: FileState(ALIASES_DB, exists=True, mtime=20)})
    for change in Aliases().check(Context("h", vars, EL7, facts)):
        facts = change.effect(facts)
    assert Aliases().check(Context("h", vars, EL7, facts)) == []


def test_commented_root_with_an_orphaned_continuation_line():
    # postalias reads "\tadmin" as part of "postmaster: root" (comment lines inside a logical line are skipped)
    text = "# See man 5 aliases for format\npostmaster:    root\n#root:\t\tmailuser,\n\tadmin\n"
    new, old = edit_aliases(text, "mailuser")
    assert new == "# See man 5 aliases for format\npostmaster:    root\nroot:\t\tmailuser\n"
    assert old == ""  # no active root entry before: the summary has no "(was ...)"
    assert edit_aliases(new, "mailuser") == (new, None)


def test_aliases_continuation_across_a_comment_counts_for_the_entry():
    text = "postmaster: root\nroot: mailuser,\n# the admin too\n\tadmin\n"
    new, old = edit_aliases(text, "mailuser")
    assert old == "mailuser, admin"
    assert new == "postmaster: root\nroot:\t\tmailuser\n# the admin too\n"


# ------------------------------------------------------------------ maps judged by what Postfix reads from them

from provisioner.steps.aliases import MAP_PROBE, MapRead, parse_map_reads, source_keys  # noqa: E402


def test_the_map_probe_output_is_parsed_per_source():
    raw = ("M\t/etc/postfix/virtual_users\t0\nK\t/etc/postfix/virtual_users\tinfo@example.test\n"
           "K\t/etc/postfix/virtual_users\twebmaster@example.test\nM\t/etc/aliases\t1\n"
           "K\t/etc/aliases\tjunk\n")
    assert parse_map_reads(raw) == {
        "/etc/postfix/virtual_users": MapRead(0, frozenset({"info@example.test", "webmaster@example.test"})),
        "/etc/aliases": MapRead(1),  # unreadable: whatever it printed is no key
    }
    assert parse_map_reads("") == {}


def _map_facts(content: str, read: MapRead | None, path: str = VIRTUAL_MAP) -> tuple[FileState, FileState]:
    source = FileState(path, exists=True, content=content, mode="644", owner="root", group="root", mtime=100)
    return source, FileState(path + ".db", exists=True, mode="644", owner="root", group="root", mtime=200)


def test_a_db_newer_than_its_source_is_still_judged_by_its_keys():
    content = "# header\ninfo@example.test user1\nWebmaster@example.test user2\n"
    source, db = _map_facts(content, None)
    both = frozenset({"info@example.test", "webmaster@example.test"})  # postmap folds keys to lower case
    assert source_keys(VIRTUAL_MAP, content) == both
    assert rebuild_reason(source, db, False, MapRead(0, both)) is None
    assert rebuild_reason(source, db, False, MapRead(0, frozenset({"info@example.test"}))) == \
        "its keys differ from its source"
    assert rebuild_reason(source, db, False, MapRead(1)) == "unreadable"
    assert rebuild_reason(source, db, False, None) is None  # not probed (an older recorded case): mtimes only
    # the cheap tests first
    assert rebuild_reason(source, FileState(db.path), False, MapRead(1)) == "missing"


# `postalias -s hash:/etc/aliases` on a lab host (Debian 12, Postfix 3.7.11), through the probe's awk.
POSTALIAS_S = ("@:\t@\nYP_LAST_MODIFIED:\t1796135726\nYP_MASTER_NAME:\tlab6.example.test\nabuse:\troot\n"
               "postmaster:\troot\nroot:\tmailuser\n")


def test_aliases_keys_ignore_postalias_own_keys_and_continuations():
    import subprocess
    from provisioner.steps.aliases import map_probe_script
    awk = map_probe_script().split("awk ", 1)[1].split("; }")[0]
    keys = subprocess.run(["sh", "-c", f"printf '%s' \"$0\" | awk {awk}", POSTALIAS_S.replace("%", "%%")],
                          capture_output=True, text=True, check=True, env={"1": ALIASES}).stdout
    read = parse_map_reads(f"M\t{ALIASES}\t0\n" + keys.replace("K\t\t", f"K\t{ALIASES}\t"))[ALIASES]
    assert read.keys == {"@", "YP_LAST_MODIFIED", "YP_MASTER_NAME", "abuse", "postmaster", "root"}
    lab = "# See man 5 aliases for format\npostmaster:    root\nroot:\t\tmailuser\nabuse:\t\troot\n"
    source, db = _map_facts(lab, None, ALIASES)
    assert rebuild_reason(source, db, False, read) is None
    content = "postmaster: root\n#root: x,\n\tadmin\nRoot: mailuser\n"
    source, db = _map_facts(content, None, ALIASES)
    assert source_keys(ALIASES, content) == frozenset({"postmaster", "root"})
    assert rebuild_reason(source, db, False, MapRead(0, frozenset({"postmaster", "root", "@"}))) is None
    assert rebuild_reason(source, db, False, MapRead(0, frozenset({"postmaster", "@"}))) == \
        "its keys differ from its source"


def test_a_corrupt_virtual_db_is_rebuilt_and_the_plan_after_it_is_empty():
    vars = mail_vars(virtual_aliases={"info@example.test": "user1"})
    content = render_virtual(vars.virtual_aliases)
    source, db = _map_facts(content, None)
    facts = Facts(files={VIRTUAL_MAP: source, VIRTUAL_DB: db,
                         ALIASES: FileState(ALIASES, exists=True, content="postmaster: root\n", mode="644",
                                            owner="root", group="root", mtime=100),
                         ALIASES_DB: FileState(ALIASES_DB, exists=True, mtime=200)},
                  extra={MAP_PROBE: {VIRTUAL_MAP: MapRead(1), ALIASES: MapRead(0, frozenset({"postmaster", "@"}))}})
    ctx = Context("h", vars, DEBIAN12, facts)
    changes = Aliases().check(ctx)
    assert [c.summary for c in changes] == [f"rebuild {VIRTUAL_DB} (unreadable)"]
    assert [a.describe() for a in changes[0].actions] == [f"postmap {VIRTUAL_MAP}"]
    after = changes[0].effect(facts)
    assert Aliases().check(Context("h", vars, DEBIAN12, after)) == []
