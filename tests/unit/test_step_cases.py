"""Data-driven step cases: recorded facts in, changes and commands out.

Each file tests/data/steps/<step>/<case>.json holds:
  description  where the facts come from (for EL: the reference files they were rebuilt from)
  platform     the real platform (debian12, el6, el7, el8, el9...); when the product has no
               platform of that name it is detected from facts.os, as on a real host
  vars         inventory vars (MailVars)
  facts        facts as provisioner.probes.recorded writes them; "extra" holds raw probe output
  options      optional run options seen by the step (e.g. {"verify": true})
  notified     optional handler tags notified by earlier steps
  expected     list of {"summary", "actions": [describe() of each action], "files": {path: content},
               "notify": [...] (optional), "diff": "..." (optional)}; [] means the step must change nothing.
  expected_error  instead of "expected": a regular expression the host's one-line error must match
               (the platform is refused, or the step raises a StepError).
  xfail        optional: the reason a known bug makes this case fail (strict: it must fail).
File contents (facts, expected files and diffs, raw probe output) may be fixture references
resolved by recorded_cases.py against tests/data/fixtures/ (see its README.md).
This is how the RHEL family, which has no lab host here, is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.probes.recorded import facts_from_dict
from provisioner.model import Journaled, WriteFile
from provisioner.platforms import UnsupportedPlatform
from provisioner.steps import ALL_STEPS
from provisioner.steps.base import Context, StepError, merge_specs
from provisioner.vars import MailVars
from .recorded_cases import STEPS, case_paths, case_platform, load_case

STEPS_BY_NAME = {step.name: step for step in ALL_STEPS}
CASES = case_paths()


def _param(path: Path):
    reason = json.loads(path.read_text()).get("xfail")
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(path, marks=marks, id=f"{path.parent.name}/{path.stem}")


def unwrapped(action):
    """The action itself, without the journal bookkeeping before it."""
    return action.action if isinstance(action, Journaled) else action


def plan_case(case: dict):
    """The changes the case's step plans from the case's facts."""
    step = STEPS_BY_NAME[case["step"]]
    vars = MailVars.model_validate(case["vars"])
    probes = {p.name: p for p in merge_specs([s.needs(vars) for s in ALL_STEPS]).extra}
    facts = facts_from_dict(case["facts"], probes)
    ctx = Context(
        host="case",
        vars=vars,
        platform=case_platform(case, facts),
        facts=facts,
        dry_run=case.get("dry_run", False),
        notified=frozenset(case.get("notified", ())),
        options=case.get("options", {"verify": True}),
    )
    return step.check(ctx)


@pytest.mark.parametrize("case_path", [_param(p) for p in CASES])
def test_step_case(case_path: Path) -> None:
    case = {**load_case(case_path), "step": case_path.parent.name}
    assert ("expected" in case) != ("expected_error" in case), "a case has either expected or expected_error"
    if "expected_error" in case:
        with pytest.raises((UnsupportedPlatform, StepError), match=case["expected_error"]):
            plan_case(case)
        return
    changes = plan_case(case)
    got = []
    for change in changes:
        entry = {
            "summary": change.summary,
            "actions": [action.describe() for action in change.actions],
            "files": {a.path: a.content for a in map(unwrapped, change.actions)
                      if isinstance(a, WriteFile) and not a.secret},
        }
        got.append(entry)
    expected = case["expected"]
    assert [g["summary"] for g in got] == [e["summary"] for e in expected]
    for g, e in zip(got, expected):
        assert g["actions"] == e["actions"], g["summary"]
        if "files" in e:
            assert g["files"] == e["files"], g["summary"]
    for change, e in zip(changes, expected):
        if "notify" in e:
            assert sorted(change.notify) == sorted(e["notify"]), change.summary
        if "diff" in e:
            assert change.diff == e["diff"], change.summary


def test_every_case_says_where_its_facts_come_from():
    missing = [str(p.relative_to(STEPS)) for p in CASES if not json.loads(p.read_text()).get("description")]
    assert missing == []
