"""The walk a dry run and a real run share: what earlier steps leave for later ones travels typed.

A real run re-reads the host after installing packages, so the facts it
carries on with know nothing of what the run did; the trail does. Here the
"host" is a recorded fresh lab host, and the applier plays a real run whose
distribution enabled every service its packages brought.
"""

from __future__ import annotations

import dataclasses

from provisioner.engine.walk import Trail, Walk, planned_changes
from provisioner.model import Change, Facts, apply_effects
from provisioner.platforms import DEBIAN12
from provisioner.steps import POST_VERIFY_STEPS, STEPS
from provisioner.steps.base import StepOptions

from .conftest import lab_vars, recorded_host

VARS = lab_vars()


def fresh() -> Facts:
    return recorded_host("debian12-fresh.json", VARS)


def real_run_applier(step, changes: list[Change], facts: Facts) -> Facts:
    after = apply_effects(facts, changes)
    if step.refresh_after_apply:
        # As re-read from the host: every service enabled by its package's install-time default.
        services = {name: dataclasses.replace(s, enabled=True) for name, s in after.services.items()}
        after = after.replace(services=services)
    return after


def test_the_trail_collects_handlers_and_installed_packages():
    changes = [Change("a", "x", notify=frozenset({"postfix:reload"}), installs=("postfix",)),
               Change("b", "y", notify=frozenset({"postfix:restart"}))]
    trail = Trail().after(changes)
    assert trail == Trail(frozenset({"postfix:reload", "postfix:restart"}), frozenset({"postfix"}))


def test_a_real_run_enables_what_it_installed_whatever_the_distribution_did():
    made: list[Change] = []
    walk = Walk("lab1", VARS, DEBIAN12, StepOptions(), dry_run=False, apply=real_run_applier, record=made.extend)
    facts, trail = walk.through(STEPS, fresh())
    walk.through(POST_VERIFY_STEPS, facts, trail)
    assert {"postfix", "sasl2-bin", "libsasl2-modules", "nftables"} <= trail.installed
    summaries = [(c.step, c.summary) for c in made]
    assert ("services", "enable postfix at boot") in summaries
    assert ("services", "enable saslauthd at boot") in summaries
    # ...and it makes exactly the changes the dry run planned.
    assert summaries == [(c.step, c.summary) for c in planned_changes("lab1", VARS, fresh())]


def test_the_planning_pass_refuses_before_any_step_applies():
    """A real run walks the plan first: a later step's refusal stops it before an earlier step's change."""
    import pytest

    from provisioner.desired import MAIN_CF, MASTER_CF
    from provisioner.engine.walk import walk_plan
    from provisioner.model import FileState
    from provisioner.steps.base import StepError

    converged = recorded_host("debian12-converged.json", VARS)
    main_cf = converged.file(MAIN_CF)
    drifted = converged.with_file(dataclasses.replace(main_cf, content=main_cf.content + "smtpd_tls_loglevel = 4\n"))
    # master.cf and the package's stock copy both gone: the master_cf step refuses the host.
    broken = drifted.with_file(FileState(MASTER_CF)).with_file(FileState(DEBIAN12.master_cf_stock))
    with pytest.raises(StepError, match="master.cf is missing and the stock copy"):
        walk_plan("lab1", VARS, DEBIAN12, StepOptions(), broken)
    # without the refusal the plan goes through, main.cf first
    assert [c.step for c in walk_plan("lab1", VARS, DEBIAN12, StepOptions(), drifted)][:1] == ["main_cf"]
