"""Data-driven step cases: recorded facts in, changes and commands out.

Each file tests/data/steps/<step>/<case>.json holds:
  platform     debian12 | el6 | el7 | el8 (else detected from facts.os)
  vars         inventory vars (MailVars)
  facts        facts as provisioner.probes.recorded writes them; "extra" holds raw probe output
  options      optional run options seen by the step (e.g. {"verify": true})
  notified     optional handler tags notified by earlier steps
  expected     list of {"summary", "actions": [describe() of each action], "files": {path: content},
               "notify": [...] (optional), "diff": "..." (optional)}; [] means the step must change nothing.
  xfail        optional: the reason a known bug makes this case fail (strict: it must fail).
This is how the RHEL family, which has no lab host here, is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.probes.recorded import facts_from_dict
from provisioner.vars import MailVars
from provisioner.model import WriteFile
from provisioner.platforms import ALL, detect
from provisioner.steps import ALL_STEPS
from provisioner.steps.base import Context, merge_specs

DATA = Path(__file__).resolve().parent.parent / "data" / "steps"
STEPS_BY_NAME = {step.name: step for step in ALL_STEPS}
CASES = sorted(DATA.glob("*/*.json"))


def _param(path: Path):
    reason = json.loads(path.read_text()).get("xfail")
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(path, marks=marks, id=f"{path.parent.name}/{path.stem}")


@pytest.mark.parametrize("case_path", [_param(p) for p in CASES])
def test_step_case(case_path: Path) -> None:
    case = json.loads(case_path.read_text())
    step = STEPS_BY_NAME[case_path.parent.name]
    vars = MailVars.model_validate(case["vars"])
    probes = {p.name: p for p in merge_specs([s.needs(vars) for s in ALL_STEPS]).extra}
    facts = facts_from_dict(case["facts"], probes)
    platform = next((p for p in ALL if p.name == case.get("platform")), None) or detect(facts.os)
    ctx = Context(
        host="case",
        vars=vars,
        platform=platform,
        facts=facts,
        dry_run=case.get("dry_run", False),
        notified=frozenset(case.get("notified", ())),
        options=case.get("options", {"verify": True}),
    )
    changes = step.check(ctx)
    got = []
    for change in changes:
        entry = {
            "summary": change.summary,
            "actions": [action.describe() for action in change.actions],
            "files": {a.path: a.content for a in change.actions if isinstance(a, WriteFile) and not a.secret},
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
