"""Every remote script stops at its first failing command: checked on everything the product renders.

Every action of every recorded case (tests/data/steps), every step script of
whole plans (fresh and converged recorded hosts, each platform), the code a
rollback runs (service records, undo entries), the journal library, the
holder, and the boot-time lockdown scripts go through the tokenizer of
shell_lint.py. The checker itself is shown to catch what it must.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner import holder, journal
from provisioner.actions import Journaled, KeepService, Undo
from provisioner.engine.walk import planned_changes
from provisioner.model import WriteFile
from provisioner.platforms import ALL
from provisioner.steps.firewall import persist

from .conftest import lab_vars, recorded_host
from .recorded_cases import STEPS, case_paths, load_case
from .shell_lint import hidden_failures
from .test_step_cases import plan_case


def inner_code(action) -> list[str]:
    """Code an action records for a rollback to run later (it is quoted inside the rendering)."""
    if isinstance(action, Journaled):
        return [code for a in (*action.before, action.action) for code in inner_code(a)]
    if isinstance(action, KeepService):
        return [action.back_running, action.stop, action.disable, f"if {action.enabled_test}; then :; fi"]
    if isinstance(action, Undo):
        return [action.code]
    return []


def scripts_of(action) -> list[str]:
    texts = [action.render(), *inner_code(action)]
    if isinstance(action, WriteFile) and action.content.startswith("#!/bin/sh"):
        texts.append(action.content)  # a script the host runs later (the boot-time lockdown)
    return texts


CASES = [p for p in case_paths() if "expected" in load_case(p)]


@pytest.mark.parametrize("path", CASES, ids=lambda p: str(p.relative_to(STEPS)))
def test_every_action_of_every_recorded_case_stops_at_its_first_failure(path: Path):
    case = {**load_case(path), "step": path.parent.name}
    problems = [
        f"{change.summary}: {problem}"
        for change in plan_case(case)
        for action in change.actions
        for text in scripts_of(action)
        for problem in hidden_failures(text)
    ]
    assert problems == []


@pytest.mark.parametrize("recorded", ["debian12-fresh.json", "debian12-converged.json"])
@pytest.mark.parametrize("verify", [True, False])
def test_whole_plans_render_to_step_scripts_that_stop_at_the_first_failure(recorded, verify):
    vars = lab_vars()
    changes = planned_changes("lab1", vars, recorded_host(recorded, vars), verify=verify)
    steps: dict[str, list] = {}
    for change in changes:
        steps.setdefault(change.step, []).append(change)
    assert changes or recorded == "debian12-converged.json"
    for step, step_changes in steps.items():
        body = "\n".join(c.script() for c in step_changes if c.actions)
        script = journal.step_script(journal.new_run_id(), body)
        assert hidden_failures(script) == [], step
        for change in step_changes:
            for action in change.actions:
                for text in inner_code(action):
                    assert hidden_failures(text) == [], (step, text)


@pytest.mark.parametrize("platform", ALL, ids=lambda p: p.name)
def test_the_platforms_service_records_and_installs_stop_at_the_first_failure(platform):
    actions = [*platform.install(platform.mail_packages), *platform.remove(platform.sendmail_packages)]
    for service in ("postfix", "saslauthd"):
        actions += [platform.enable(service), platform.restart(service), platform.reload(service),
                    platform.postfix_check(), platform.is_active_check(service, "x")]
    for action in actions:
        for text in scripts_of(action):
            assert hidden_failures(text) == [], text


def test_the_journal_library_the_holder_and_the_boot_scripts_stop_at_the_first_failure():
    assert hidden_failures(journal.LIBRARY) == []
    assert hidden_failures(holder.holder_script("20260301T120000Z-0a0b0c", "me@here", "now", 20)) == []
    assert hidden_failures(persist.INIT) == []


def test_the_checker_finds_what_set_e_would_miss():
    for bad in ("a && b", "a || b", "{ a; b; } || _rc=$?", "! a", "x=$(a && b)", "if a; then b && c; fi",
                "( a; b ) || exit 1", "f() { a && b; }", "apt-get update -q && apt-get install -y x"):
        assert hidden_failures(bad), bad
    for good in ("a || true", "if a && b; then c; fi", "while ! a || b; do :; done", "a || _rc=$?",
                 "cp x y || return 1", "{ a; b; } || true", "x=$(a || true)", "case $x in a|b) c ;; *) d ;; esac",
                 "f() { a; }\nf", "if ! (umask 077; a); then b; fi"):
        assert hidden_failures(good) == [], good
