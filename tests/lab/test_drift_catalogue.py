"""The drift catalogue (tests/lab/drift/), every mutation once, in a fixed order, on lab6.

lab6 is provisioned once (with exclusive_membership on, from a derived
inventory), gets unmanaged content planted, and then every case runs against
it: mutate, dry run lists it, the real run makes exactly the plan and verify
passes, a dry run right after exits 0, the unmanaged content survives and
the host is the converged host again (see drift/harness.py). The tool itself
restores the host between cases; only tolerated and refused mutations, and
failed cases, are undone by hand.

Mutations that fail today run alone, as strict xfails that expect exactly the
diagnosed kind of failure: a fix turns them red until the mark goes. The
others are packed ``DRIFT_GROUP`` at a time (default 8) into cases of
mutations of different files, to keep the catalogue within its time budget
(each real run verifies for about 10 s); ``DRIFT_GROUP=1`` runs each alone.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from drift import MUTATIONS
from drift.harness import KINDS, DriftFailure, HostLost, KnownDriftFailure, open_drift_host
from drift.plans import make_test_cases

HOST = "lab6"
GROUP = int(os.environ.get("DRIFT_GROUP", "8"))
CASES = make_test_cases(group=GROUP)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "drift.md"


@pytest.fixture(scope="module")
def drift_host(lab, tmp_path_factory):
    work = tmp_path_factory.mktemp("drift")
    # exclusive_membership is off in the lab inventory; acct.extra_member needs it on.
    host = open_drift_host(lab, HOST, work, exclusive_membership=True)
    host.lost = None
    host.timings = []
    yield host
    timings = Path(os.environ.get("DRIFT_TIMINGS", work / "timings.json"))
    timings.write_text(json.dumps(host.timings, indent=1))


def _param(case):
    marks = []
    if len(case) == 1 and case[0].known:
        kind, diagnosis = case[0].known
        marks.append(pytest.mark.xfail(strict=True, raises=KnownDriftFailure, reason=f"{kind}: {diagnosis}"))
    return pytest.param(case, id="+".join(m.id for m in case), marks=marks)


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_drift_converges_in_one_run(drift_host, case):
    if drift_host.lost:
        pytest.fail(f"not run: {drift_host.lost}")
    try:
        report = drift_host.run_case(case)
    except HostLost as exc:
        drift_host.lost = f"{HOST} was lost after an earlier case"
        raise DriftFailure(str(exc)) from None
    drift_host.timings.append({"case": report.ids, "kind": report.kind, "seconds": report.seconds,
                               "timings": report.timings})
    expected = case[0].known[0] if len(case) == 1 and case[0].known else None
    if report.kind is None:
        return
    if report.kind == expected:
        raise KnownDriftFailure(report.describe())
    raise DriftFailure(report.describe())


def test_every_case_of_the_fixed_order_runs_each_mutation_once():
    ran = [m.id for case in CASES for m in case]
    assert sorted(ran) == sorted(m.id for m in MUTATIONS) and len(ran) == len(set(ran))


def test_every_diagnosis_names_a_known_kind():
    assert {m.known[0] for m in MUTATIONS if m.known} <= set(KINDS)


def test_docs_list_every_mutation_with_its_state_today():
    listed = dict(re.findall(r"^\| `([a-z_0-9.]+)` \|.*\| ([a-z-]+) \|$", DOCS.read_text(), re.MULTILINE))
    assert listed == {m.id: m.known[0] if m.known else "passes" for m in MUTATIONS}
