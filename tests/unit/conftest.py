"""Builders shared by the product's unit tests: vars, contexts, recorded hosts and cases.

Test modules import them (``from .conftest import context``): tests/unit is a
package, so this module never stands in for tests/lab's conftest.
"""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.model import Facts
from provisioner.platforms import ALL, DEBIAN12, Platform
from provisioner.probes import Probe
from provisioner.probes.recorded import facts_from_dict
from provisioner.steps import ALL_STEPS
from provisioner.steps.base import Context, StepOptions, merge_specs
from provisioner.vars import MailVars
from tooling.lab.inventory import LAB_GROUP_VARS

from .recorded_cases import STEPS as STEP_CASES, case_paths, case_platform, load_case  # noqa: F401

DATA = Path(__file__).resolve().parent.parent / "data"
PLATFORMS = {platform.name: platform for platform in ALL}


def mail_vars(**overrides) -> MailVars:
    """Valid vars for a host mail.example.test, with ``overrides``."""
    return MailVars.model_validate({"myhostname": "mail.example.test", "mydomain": "example.test", **overrides})


def context(facts: Facts, platform: Platform = DEBIAN12, options: StepOptions | dict | None = None, *,
            host: str = "h", notified=(), **vars) -> Context:
    """What a step checks: ``facts`` of host ``host`` on ``platform``, with mail_vars(**vars)."""
    return Context(host, mail_vars(**vars), platform, facts, notified=frozenset(notified),
                   options=options if options is not None else StepOptions())


def lab_vars(host: str = "lab1", index: int = 1) -> MailVars:
    """A lab host's vars, as inventories/lab.yaml gives them (the recorded hosts are lab hosts)."""
    return MailVars.model_validate({**LAB_GROUP_VARS, "verify_credentials_file": "/nonexistent",
                                    "myhostname": f"{host}.example.test", "control_address": f"10.200.{index}.1"})


def step_probes(vars: MailVars) -> dict[str, Probe]:
    """Every step's probes, by name: what parses a recorded case's raw probe output."""
    return {probe.name: probe for probe in merge_specs([step.needs(vars) for step in ALL_STEPS]).extra}


def recorded_host(name: str, vars: MailVars) -> Facts:
    """The facts of a real host, recorded with `invoke facts` (tests/data/hosts/<name>)."""
    return facts_from_dict(json.loads((DATA / "hosts" / name).read_text()), step_probes(vars))


def step_cases(step: str, pattern: str = "*.json") -> list[Path]:
    return case_paths(step, pattern)


def case_context(case: dict, facts: Facts, host: str = "case") -> Context:
    """A recorded case's vars and platform, checked against ``facts``."""
    return Context(host, MailVars.model_validate(case["vars"]), case_platform(case, facts), facts)


def planned_summaries(path: Path) -> list[str]:
    """The summaries a recorded case expects."""
    return [entry["summary"] for entry in load_case(path)["expected"]]
