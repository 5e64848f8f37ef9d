"""The run journal and its holder, run for real (bash, dash, coreutils, flock) in a scratch tree.

What a failed write leaves, what a rollback puts back (bytes, owner, mode,
mtime, links, absence), that it never reads anything but this run's own
copies, the host lock, the holder's own rollback when its control node
goes silent or away, the process tree of a step that still runs, stale
runs of a host that went down, and how many backups a commit keeps.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from provisioner import holder, journal
from provisioner.actions import KeepService, MakeDirectory, RemoveFile, SetAttributes, Undo, WriteFile

from .journal_harness import Run, state

pytestmark = pytest.mark.skipif(shutil.which("flock") is None or shutil.which("bash") is None,
                                reason="needs bash and flock (util-linux)")


def running(name: str) -> bool:
    """A live (not zombie) process of that name."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, rest = text[text.index("(") + 1: text.rindex(")")], text[text.rindex(")") + 2:]
        if comm == name and not rest.startswith("Z"):
            return True
    return False


def body(*actions) -> str:
    return "\n".join(a.render() for a in actions)


@pytest.fixture
def etc(tmp_path) -> Path:
    """A few files as a host would have them: odd modes, an old mtime, a symlink."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "main.cf").write_text("old main\n")
    (etc / "main.cf").chmod(0o640)
    os.utime(etc / "main.cf", (1_600_000_000, 1_600_000_000))
    (etc / "key.pem").write_text("old key\n")
    (etc / "key.pem").chmod(0o644)  # a key that drifted
    (etc / "smtp").symlink_to("smtp.postfix")
    (etc / "smtp.postfix").write_text("auth include password-auth\n")
    return etc


def snapshot(etc: Path) -> dict:
    return {p.name: state(p) for p in sorted(etc.iterdir())}


def test_a_rollback_puts_back_exactly_what_the_run_changed(tmp_path, etc):
    before = snapshot(etc)
    run = Run(tmp_path / "host")
    me = f"{os.getuid()}"
    step = body(
        WriteFile(str(etc / "main.cf"), "new main\n", owner=me, group=me),
        WriteFile(str(etc / "new.cf"), "brand new\n", owner=me, group=me),
        SetAttributes(str(etc / "key.pem"), mode="600"),
        WriteFile(str(etc / "key.pem"), "new key\n", mode="600", owner=me, group=me),
        MakeDirectory(str(etc / "tls"), owner=me, group=me),
        RemoveFile(str(etc / "smtp")),
        WriteFile(str(etc / "smtp"), "auth required pam_listfile.so\n", owner=me, group=me),
    )
    assert run.step(step).returncode == 0
    assert (etc / "main.cf").read_text() == "new main\n" and not (etc / "smtp").is_symlink()
    # The copies live in the run's own directory, 0600 (a key's too), never beside the live files.
    assert not list(etc.glob("*.provisioner.bak")) and not list(etc.glob(".*provisioner*"))
    copies = list((run.dir / "files").iterdir())
    assert {oct(c.stat().st_mode & 0o777) for c in copies if not c.is_symlink()} == {"0o600"}
    assert oct(run.dir.stat().st_mode & 0o777) == "0o700"
    lines = run.rollback()
    assert lines[-1] == "done\trolled-back", lines
    assert snapshot(etc) == before
    assert set(lines[:-1]) == {
        f"ok\trestore the link {etc}/smtp",
        f"ok\tremove the directory {etc}/tls (new in this run)",
        f"ok\trestore {etc}/key.pem",
        f"ok\tput back owner {os.getuid()}:{os.getgid()} and mode 644 of {etc}/key.pem",
        f"ok\tremove {etc}/new.cf (new in this run)",
        f"ok\trestore {etc}/main.cf",
    }
    # Newest first: the link came back before the key, the key's attributes after its content.
    assert lines.index(f"ok\trestore {etc}/key.pem") < lines.index(
        f"ok\tput back owner {os.getuid()}:{os.getgid()} and mode 644 of {etc}/key.pem")
    assert not (run.dir / "files").exists()  # the copies go once put back
    run.close()


def test_an_entry_that_cannot_be_undone_is_reported_kept_and_the_others_still_run(tmp_path, etc):
    run = Run(tmp_path / "host")
    me = dict(owner=str(os.getuid()), group=str(os.getgid()))
    sub = etc / "sub"
    sub.mkdir()
    (sub / "a.conf").write_text("old a\n")
    assert run.step(body(WriteFile(str(etc / "main.cf"), "new\n", **me),
                         WriteFile(str(sub / "a.conf"), "new a\n", **me))).returncode == 0
    shutil.rmtree(sub)  # an admin removed the directory meanwhile: a.conf cannot go back
    lines = run.rollback()
    assert lines == [f"failed\trestore {sub}/a.conf", f"ok\trestore {etc}/main.cf", "done\trollback-failed"]
    assert (etc / "main.cf").read_text() == "old main\n"
    assert (run.dir / "status").read_text() == "rollback-failed\n"
    assert [p.name.endswith(".failed") for p in (run.dir / "undo").iterdir()] == [True]
    assert list((run.dir / "files").iterdir())  # the copies stay for the admin
    run.close()


def test_a_failing_write_leaves_the_old_file_and_no_temporary_file(tmp_path, etc):
    before = snapshot(etc)
    run = Run(tmp_path / "host")
    result = run.step(body(WriteFile(str(etc / "main.cf"), "new main\n", owner="no-such-user-here")))
    assert result.returncode != 0 and "no-such-user-here" in result.stderr
    assert snapshot(etc) == before  # byte for byte, owner, mode, mtime; no temporary file
    run.close()


def test_a_failing_command_stops_the_script_there(tmp_path, etc):
    run = Run(tmp_path / "host")
    result = run.step(body(WriteFile(str(etc / "a"), "a\n", owner=str(os.getuid()), group=str(os.getgid())),
                           Undo("say it", "true"), Undo("x", "true")) + "\nfalse\ntouch " + str(etc / "after"))
    assert result.returncode != 0
    assert not (etc / "after").exists()
    run.close()


def test_a_rollback_never_reads_a_backup_from_beside_the_files(tmp_path, etc):
    # An older version's leftover beside the live file: the stock PAM file without the restriction.
    (etc / "smtp.postfix.provisioner.bak").write_text("auth include password-auth\n# stale\n")
    run = Run(tmp_path / "host")
    # This run fails before it writes the PAM file: its rollback must leave the PAM file alone.
    result = run.step(body(Undo("nothing much", "true")) + "\nfalse")
    assert result.returncode != 0
    (etc / "smtp.postfix").write_text("auth required pam_listfile.so\nauth include password-auth\n")
    run.rollback()
    assert (etc / "smtp.postfix").read_text().startswith("auth required pam_listfile.so")
    run.close()


def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    first = Run(tmp_path / "host")
    assert first.greeting[-1].startswith("acquired\t")
    second = Run(tmp_path / "host", run_id="20260301T120001Z-0d0e0f")
    (busy,) = second.greeting
    kind, *fields = busy.split("\t")
    assert kind == "busy"
    assert {"run_id=20260301T120000Z-0a0b0c", "control=tester@here (pid 1)", "started=2026-03-01T12:00:00Z"} <= set(fields)
    assert second.holder.wait(timeout=10) == 3
    first.close()
    third = Run(tmp_path / "host", run_id="20260301T120002Z-0d0e0f")
    assert third.greeting[-1].startswith("acquired\t")  # released when the first holder ended
    third.close()


def test_after_a_rollback_no_further_step_of_the_run_applies(tmp_path, etc):
    run = Run(tmp_path / "host")
    run.step(body(Undo("a", "true")))
    run.rollback()
    result = run.step(body(WriteFile(str(etc / "late"), "x\n", owner=str(os.getuid()), group=str(os.getgid()))))
    assert result.returncode != 0 and "is rolled-back on the host" in result.stderr
    assert not (etc / "late").exists()
    run.close()


def test_the_holder_rolls_back_when_its_control_node_goes_away(tmp_path, etc):
    before = snapshot(etc)
    run = Run(tmp_path / "host")
    assert run.step(body(WriteFile(str(etc / "main.cf"), "new\n", owner=str(os.getuid()),
                                   group=str(os.getgid())))).returncode == 0
    assert run.close() == 0  # stdin closed: the connection went away
    assert snapshot(etc) == before
    assert (run.dir / "status").read_text() == "rolled-back\n"
    assert "the connection to tester@here (pid 1) closed" in (run.dir / "log").read_text()


def test_the_holder_rolls_back_when_the_heartbeat_stops(tmp_path, etc):
    before = snapshot(etc)
    run = Run(tmp_path / "host", stale_after=2)
    assert run.step(body(WriteFile(str(etc / "main.cf"), "new\n", owner=str(os.getuid()),
                                   group=str(os.getgid())))).returncode == 0
    run.holder.wait(timeout=15)  # no beat for 2 s: a link that dropped without closing
    assert snapshot(etc) == before
    assert "no heartbeat from tester@here (pid 1) for 2s" in (run.dir / "log").read_text()


def test_a_run_that_recorded_nothing_leaves_nothing(tmp_path):
    run = Run(tmp_path / "host")
    run.close()
    assert list((tmp_path / "host" / journal.RUNS_DIR.lstrip("/")).iterdir()) == []


def test_a_rollback_first_stops_a_step_that_still_runs_and_all_it_started(tmp_path, etc):
    run = Run(tmp_path / "host")
    marker = tmp_path / "late-write"
    slow = body(WriteFile(str(etc / "main.cf"), "new\n", owner=str(os.getuid()), group=str(os.getgid())))
    slow += f"\n_pv_tmp {etc}/x\nsh -c 'sleep 30; echo late > {marker}' &\nsleep 30\n"
    script = journal.step_script(run.run_id, slow, root=str(run.root))
    step = subprocess.Popen(["sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    step.stdin.write(script)
    step.stdin.close()
    deadline = time.monotonic() + 10
    while not (run.dir / "active").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    lines = run.rollback()
    assert lines[-1] == "done\trolled-back", lines
    assert any(line.startswith("note\tstopped the step script still running") for line in lines), lines
    assert step.wait(timeout=5) != 0
    assert (etc / "main.cf").read_text() == "old main\n"
    assert not list(etc.glob(".x.provisioner.*"))  # its temporary file is gone too
    time.sleep(0.5)
    assert subprocess.run(["pgrep", "-f", f"echo late > {marker}"], capture_output=True).returncode != 0
    run.close()


def test_a_run_left_open_by_a_host_that_went_down_is_rolled_back_by_the_next_run(tmp_path, etc):
    before = snapshot(etc)
    crashed = Run(tmp_path / "host")
    crashed.step(body(WriteFile(str(etc / "main.cf"), "half-made\n", owner=str(os.getuid()), group=str(os.getgid()))))
    crashed.holder.send_signal(signal.SIGKILL)  # no rollback: as if the host lost power
    crashed.holder.wait(timeout=10)
    assert (etc / "main.cf").read_text() == "half-made\n"
    following = Run(tmp_path / "host", run_id="20260301T130000Z-0d0e0f")
    assert following.greeting[0] == f"recover\t{crashed.run_id}"
    assert f"ok\trestore {etc}/main.cf" in following.greeting
    assert following.greeting[-1].startswith("acquired\t")
    assert snapshot(etc) == before
    following.close()


def test_a_commit_keeps_the_backups_of_the_last_runs_only(tmp_path, etc):
    ids = [f"20260301T12000{n}Z-0a0b0c" for n in range(5)]
    for number, run_id in enumerate(ids):
        run = Run(tmp_path / "host", run_id=run_id)
        run.step(body(WriteFile(str(etc / "main.cf"), f"version {number}\n", owner=str(os.getuid()),
                                group=str(os.getgid()))))
        assert run.commit()[-1] == "committed"
        run.close()
    runs = tmp_path / "host" / journal.RUNS_DIR.lstrip("/")
    assert sorted(p.name for p in runs.iterdir()) == ids[-holder.KEEP_COMMITTED:]
    assert (etc / "main.cf").read_text() == "version 4\n"


def test_a_service_comes_back_to_its_state_before_the_run(tmp_path):
    name = "pvd" + os.urandom(4).hex()  # a process name of this test's own (comm: 15 characters at most)
    daemon = tmp_path / name
    shutil.copy(shutil.which("sleep"), daemon)
    flag, log = tmp_path / "enabled", tmp_path / "log"
    record = dict(service="pvd", daemon=name, enabled_test=f"[ -e {flag} ]", enable=f"touch {flag}",
                  disable=f"rm -f {flag}", stop=f"pkill -x {name}", back_running=f"echo back >> {log}")
    run = Run(tmp_path / "host")
    # Not running and not enabled before the run; the run enables and starts it.
    step = body(KeepService(what="boot", **record)) + f"\ntouch {flag}\n" + body(KeepService(what="run", **record))
    step += f"\n{daemon} 60 >/dev/null 2>&1 &\n"
    step += body(WriteFile(str(tmp_path / "its.conf"), "x\n", owner=str(os.getuid()), group=str(os.getgid())))
    assert run.step(step).returncode == 0
    time.sleep(0.2)
    assert running(name)
    lines = run.rollback()
    # Stopped first (while the run's configuration is there to stop it with), its boot state after the files.
    assert lines == ["ok\tstop pvd (it was not running before this run)",
                     f"ok\tremove {tmp_path}/its.conf (new in this run)",
                     "ok\tdisable pvd at boot (it was not enabled before this run)", "done\trolled-back"]
    assert not flag.exists()
    time.sleep(0.2)
    assert not running(name)
    run.close()
    # Running before the run: brought back (with the restored configuration), not stopped.
    proc = subprocess.Popen([str(daemon), "60"])
    try:
        run = Run(tmp_path / "host2")
        assert run.step(body(KeepService(what="run", **record))).returncode == 0
        assert run.rollback()[-2:] == ["ok\tbring pvd back with the restored configuration", "done\trolled-back"]
        assert log.read_text() == "back\n" and proc.poll() is None
        run.close()
    finally:
        proc.kill()


def test_a_settled_write_is_old_enough_for_postfix_to_read_at_once(tmp_path, etc):
    # Postfix rereads a main.cf changed in the last 2 s until it is not; the settled write sets it 2 s back.
    run = Run(tmp_path / "host")
    me = dict(owner=str(os.getuid()), group=str(os.getgid()))
    started = int(time.time())
    assert run.step(body(WriteFile(str(etc / "main.cf"), "new main\n", settled=True, **me),
                         WriteFile(str(etc / "new.cf"), "brand new\n", **me))).returncode == 0
    assert (etc / "main.cf").read_text() == "new main\n"
    assert (etc / "main.cf").stat().st_mtime < started - 1  # 2 whole seconds old already
    assert (etc / "new.cf").stat().st_mtime >= started  # only when asked
    assert run.rollback()[-1] == "done\trolled-back"
    assert (etc / "main.cf").read_text() == "old main\n"
    run.close()
