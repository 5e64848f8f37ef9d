"""A rollback puts the files back and then runs what makes that take effect (daemon-reload after a unit drop-in).

The connection is a stand-in that records the scripts and fails the one named:
the scripts themselves are what the engine sends to the host.
"""

from __future__ import annotations

import pytest

from provisioner.engine.runner import HostRun, RunOptions, StepFailed
from provisioner.inventory import Host
from provisioner.model import Facts, FileState, OsRelease
from provisioner.platforms import DEBIAN13
from provisioner.steps.sasl import Sasl
from provisioner.transport import RemoteCommandError

from .conftest import context

DROPIN = DEBIAN13.saslauthd_unit_dropin.path


class Connection:
    def __init__(self, fail: str):
        self.fail, self.scripts = fail, []

    def run_script(self, script: str, what: str = ""):
        self.scripts.append((what, script))
        if what == self.fail:
            raise RemoteCommandError(what, 1, "boom")


def test_a_failed_step_puts_the_drop_in_back_then_reloads_systemd():
    facts = Facts(os=OsRelease("debian", "13"), files={DROPIN: FileState(DROPIN)})
    changes = [c for c in Sasl().check(context(facts, DEBIAN13)) if DROPIN in c.writes]
    assert [a.describe() for a in changes[0].actions][-1] == "systemctl daemon-reload"
    run = HostRun(Host("h", "192.0.2.1"), RunOptions(), None, lambda host, message: None)
    run.initial_facts, run.platform = facts, DEBIAN13
    conn = Connection(fail="step sasl")
    with pytest.raises(StepFailed, match=f"restored {DROPIN}"):
        run._apply(conn, Sasl(), changes, facts)
    what, rollback = conn.scripts[-1]
    assert what == "rollback"
    assert rollback.splitlines() == [f"rm -f {DROPIN}", "systemctl daemon-reload"]
