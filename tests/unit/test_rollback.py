"""A rollback puts the files back and then runs what makes that take effect (daemon-reload after a unit drop-in).

The sasl step's real rendering goes through the real journal (a holder and a
step script in a scratch tree, tests/unit/journal_harness.py); only the
paths are moved into the scratch tree and systemctl into a recording stand-in.
"""

from __future__ import annotations

import os

from provisioner.model import Facts, FileState, OsRelease
from provisioner.platforms import DEBIAN13
from provisioner.steps.sasl import Sasl

from .conftest import context
from .journal_harness import Run

DROPIN = DEBIAN13.saslauthd_unit_dropin.path


def test_a_failed_step_puts_the_drop_in_back_then_reloads_systemd(tmp_path):
    facts = Facts(os=OsRelease("debian", "13"), files={DROPIN: FileState(DROPIN)})
    changes = [c for c in Sasl().check(context(facts, DEBIAN13)) if DROPIN in c.writes]
    assert [a.describe() for a in changes[0].actions][-1] == "systemctl daemon-reload"
    bin_dir, log = tmp_path / "bin", tmp_path / "systemctl.log"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(f"#!/bin/sh\necho \"$*\" >> {log}\n")
    (bin_dir / "systemctl").chmod(0o755)
    dropin = tmp_path / DROPIN.lstrip("/")
    body = "\n".join(c.script() for c in changes).replace(os.path.dirname(DROPIN), str(dropin.parent))
    body = body.replace("root:root", f"{os.getuid()}:{os.getgid()}")
    # The stand-in by its full path, also inside the code the journal keeps for the rollback.
    body = body.replace("systemctl daemon-reload", f"{bin_dir}/systemctl daemon-reload")
    run = Run(tmp_path / "host")
    result = run.step(body + "\nfalse")  # the step fails after the write
    assert result.returncode != 0 and dropin.exists()
    lines = run.rollback()
    assert lines == [f"ok\tremove {dropin} (new in this run)",
                     f"ok\tmake the restored {dropin} take effect", "done\trolled-back"]
    assert not dropin.exists()
    # daemon-reload after the write, then again after the rollback removed it.
    assert log.read_text().splitlines() == ["daemon-reload", "daemon-reload"]
    run.close()
