"""Plans and case lists of the drift catalogue, computed from its data alone.

expected_plan() adds up the plans of mutations applied together; make_test_cases()
is `make test`'s fixed order; combination() draws `make drift-fuzz`'s cases from a seed.
"""

from __future__ import annotations

import random
import re

from drift import MUTATIONS
from drift.model import Mutation, conflict


def render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


SERVICE_ORDER = ("saslauthd", "postfix")
ACTION_STRENGTH = ("reload", "restart", "start")  # a stopped daemon is started, whatever was notified


MAIN_CF_SET = "update /etc/postfix/main.cf: set "


def main_cf_key(mutation: Mutation) -> str | None:
    """The one main.cf key a mutation changes, when it changes exactly one (its plan sets only that key)."""
    keys = [t.split("/", 1)[1] for t in mutation.touches if t.startswith("main.cf/")]
    plan = [summary for step, summary in mutation.plan or () if step == "main_cf"]
    one_key = len(keys) == 1 and not keys[0].startswith("#")
    if one_key and len(plan) == 1 and plan[0].startswith(f"{MAIN_CF_SET}{keys[0]} = "):
        return keys[0]
    return None


def expected_plan(mutations: list[Mutation], values: dict[str, str],
                  main_cf_order: list[str] = ()) -> list[tuple[str, str]] | None:
    """The exact plan of mutations applied together, when each has an exact plan.

    Their own changes add up, except that one-key main.cf edits make one
    change that sets the keys in file order (``main_cf_order``, the converged
    file's). The services step acts once per service: enabled at boot if any
    asks, then the strongest of start > restart > reload.
    """
    if any(m.plan is None for m in mutations):
        return None
    if len(mutations) == 1:
        return [(step, render(summary, values)) for step, summary in mutations[0].plan]
    changes: list[tuple[str, str]] = []
    enable: set[str] = set()
    action: dict[str, str] = {}
    main_cf_sets: list[tuple[int, str]] = []
    for mutation in mutations:
        for step, summary in mutation.plan:
            summary = render(summary, values)
            key = main_cf_key(mutation)
            if step == "main_cf" and key and len([m for m in mutations if main_cf_key(m)]) > 1:
                main_cf_sets.append((list(main_cf_order).index(key), summary[len(MAIN_CF_SET):]))
            elif step != "services":
                changes.append((step, summary))
            elif summary.startswith("enable "):
                enable.add(summary.split()[1])
            else:
                verb, service = summary.split()[:2]
                if ACTION_STRENGTH.index(verb) >= ACTION_STRENGTH.index(action.get(service, "reload")):
                    action[service] = verb
    if main_cf_sets:
        changes.append(("main_cf", MAIN_CF_SET + ", ".join(part for _, part in sorted(main_cf_sets))))
    services = [("services", f"enable {s} at boot") for s in SERVICE_ORDER if s in enable]
    for service in SERVICE_ORDER:
        verb = action.get(service)
        if verb:
            services.append(("services", f"start {service}" if verb == "start" else
                             f"{verb} {service} (its configuration changed)"))
    return changes + services


def mentioned(pattern: str, summary: str) -> bool:
    """A mention is a plain substring of the summary, or a regex when it starts with ``re:``."""
    if pattern.startswith("re:"):
        return re.search(pattern[3:], summary) is not None
    return pattern in summary


def outcome_of(mutations: list[Mutation]) -> str:
    outcomes = {m.outcome for m in mutations}
    return "refuse" if "refuse" in outcomes else "repair" if "repair" in outcomes else "tolerate"



def make_test_cases(mutations: tuple[Mutation, ...] = MUTATIONS, group: int = 1) -> list[list[Mutation]]:
    """The fixed order of `make test`.

    Each mutation that fails today (``known``), is ``solo``, or is not a repair
    runs alone. The others are packed, in catalogue order, up to ``group`` at a
    time into cases whose mutations do not conflict and touch different files
    (areas), except main.cf edits of one key each, whose plans merge into one
    known summary; a mutation that fits no open case opens a new one.
    """

    def fits(case: list[Mutation], mutation: Mutation) -> bool:
        if len(case) >= group or any(conflict(m, mutation) for m in case):
            return False
        same = [m for m in case if m.area == mutation.area]
        return not same or all(main_cf_key(m) for m in (*same, mutation))

    cases: list[list[Mutation]] = []
    open_cases: list[list[Mutation]] = []
    for mutation in mutations:
        if mutation.known or mutation.solo or mutation.outcome != "repair" or group <= 1:
            cases.append([mutation])
            continue
        room = [case for case in open_cases if fits(case, mutation)]
        if room:
            room[0].append(mutation)
        else:
            open_cases.append([mutation])
            cases.append(open_cases[-1])
    return cases


def combination(seed: int, size: int = 3, include_known: bool = False) -> list[Mutation]:
    """``size`` mutations that do not conflict, drawn from ``seed`` alone (at most one ``solo`` one).

    Mutations that fail today are left out unless ``include_known``: they would only find
    the known failure again.
    """
    rng = random.Random(seed)
    pool = [m for m in MUTATIONS if include_known or not m.known]
    chosen: list[Mutation] = []
    for mutation in rng.sample(pool, len(pool)):
        if any(conflict(mutation, other) for other in chosen):
            continue
        if mutation.solo and any(other.solo for other in chosen):
            continue
        chosen.append(mutation)
        if len(chosen) == size:
            break
    return chosen


def fuzz_seeds(seed: int, count: int) -> list[int]:
    """Combination k of a run has the seed ``seed + k``: `make drift-fuzz SEED=<that> N=1` runs it again."""
    return [seed + k for k in range(count)]
