"""The services step: enablement, starts and handlers from the process table; recovery after a failed run."""

from __future__ import annotations

import pytest

from provisioner.model import Facts, OsRelease, ServiceState, apply_effects
from provisioner.platforms import ALL, DEBIAN12, EL6, EL7, EL8
from provisioner.steps.services import PROCESS_PROBE, Services, running

from .conftest import context, mail_vars

STEP = Services()


def probe_parse(raw: str):
    return next(p for p in STEP.needs(mail_vars()).extra if p.name == PROCESS_PROBE).parse(raw)


def host(processes: str, postfix=(True, True), saslauthd=(True, True), platform=DEBIAN12) -> Facts:
    services = {
        "postfix": ServiceState("postfix", enabled=postfix[0], active=postfix[1]),
        "saslauthd": ServiceState("saslauthd", enabled=saslauthd[0], active=saslauthd[1]),
    }
    if platform is DEBIAN12:
        services["postfix@-"] = ServiceState("postfix@-", enabled=True, active=postfix[1])
    return Facts(os=OsRelease(id="x"), services=services, extra={PROCESS_PROBE: probe_parse(processes)})


def check(facts: Facts, platform=DEBIAN12, notified=()):
    return STEP.check(context(facts, platform, notified=notified))


# ---------------------------------------------------------------- the process probe


def test_process_probe_parses_pgrep_output():
    assert probe_parse("master\nsaslauthd\n") == {"master", "saslauthd"}
    assert probe_parse("") == frozenset()


def test_running_trusts_the_process_table_over_the_service_manager():
    # saslauthd's SysV script says active with no daemon when START=yes is missing (Debian pitfall 3)
    facts = host("master\n", saslauthd=(True, True))
    assert running(facts, "postfix") and not running(facts, "saslauthd")
    # without the probe (old recorded facts), the service manager is all there is
    assert running(facts.replace(extra={}), "saslauthd")


# ---------------------------------------------------------------- check


@pytest.mark.parametrize("platform", ALL, ids=lambda p: p.name)
def test_nothing_notified_and_everything_running_is_a_no_op(platform):
    assert check(host("master\nsaslauthd\n", platform=platform), platform) == []


@pytest.mark.parametrize("platform", ALL, ids=lambda p: p.name)
def test_a_fresh_plan_is_converged_once_applied(platform):
    facts = host("", postfix=(True, False), saslauthd=(False, False), platform=platform)
    changes = check(facts, platform, notified={"postfix:restart", "saslauthd:restart"})
    assert [c.summary for c in changes] == ["enable saslauthd at boot", "start saslauthd", "start postfix"]
    after = apply_effects(facts, changes)
    assert running(after, "postfix") and running(after, "saslauthd")
    assert check(after, platform) == []


def test_postfix_is_checked_before_any_restart_or_reload_and_verified_after():
    for notified, verb in (({"postfix:reload"}, "reload"), ({"postfix:restart", "postfix:reload"}, "restart")):
        (change,) = check(host("master\nsaslauthd\n"), DEBIAN12, notified)
        first, action, last = change.actions
        assert "postfix check" in first.render()
        assert action.describe() == f"systemctl {verb} postfix"
        assert last.render().startswith("_i=0; while ! pgrep -x master")
        # The journal records postfix's running state after the check passed, right before the reload/restart.
        assert action.render().splitlines()[-1] == f"systemctl {verb} postfix"
        assert 'services/postfix.run' in action.render().splitlines()[0]
        assert change.notify == frozenset()


def test_a_stopped_service_is_started_with_restart_even_when_only_reload_was_notified():
    (change,) = check(host("saslauthd\n"), EL7, {"postfix:reload"})
    assert change.summary == "start postfix"
    assert change.actions[1].describe() == "systemctl restart postfix"


def test_saslauthd_is_handled_before_postfix():
    changes = check(host("master\nsaslauthd\n"), EL8, {"postfix:restart", "saslauthd:restart"})
    assert [c.summary for c in changes] == [
        "restart saslauthd (its configuration changed)",
        "restart postfix (its configuration changed)",
    ]


def test_enable_commands_per_family():
    rendered = {}
    for platform in ALL:
        facts = host("master\nsaslauthd\n", postfix=(False, True), saslauthd=(False, True), platform=platform)
        rendered[platform.name] = [a.describe() for c in check(facts, platform) for a in c.actions]
    # Debian's saslauthd is a SysV script behind systemd's generator: update-rc.d
    assert rendered["debian12"] == ["update-rc.d saslauthd enable", "systemctl enable --quiet postfix"]
    assert rendered["el6"] == ["chkconfig saslauthd on", "chkconfig postfix on"]
    assert rendered["el7"] == rendered["el8"] == ["systemctl enable --quiet saslauthd", "systemctl enable --quiet postfix"]


# ---------------------------------------------------------------- what a rollback brings back


def test_each_service_action_records_the_state_a_rollback_returns_to():
    facts = host("master\n", postfix=(False, True), saslauthd=(False, False), platform=EL6)
    records = {}
    for change in check(facts, EL6, notified={"postfix:reload"}):
        for action in change.actions:
            for before in getattr(action, "before", ()):
                records[(before.service, before.what)] = before
    assert set(records) == {("saslauthd", "boot"), ("postfix", "boot"), ("saslauthd", "run"), ("postfix", "run")}
    postfix = records[("postfix", "run")]
    # A reloaded postfix is reloaded again with the restored files (started if it died meanwhile) ...
    assert postfix.back_running.startswith(
        "if pgrep -x master >/dev/null 2>&1; then /etc/init.d/postfix reload; else /etc/init.d/postfix restart; fi; ")
    assert postfix.stop == "/etc/init.d/postfix stop" and postfix.disable == "chkconfig postfix off"
    assert records[("saslauthd", "boot")].enabled_test == "chkconfig --list saslauthd 2>/dev/null | grep -q '3:on'"
    # ... and a restarted one restarted.
    restart = DEBIAN12.keep_service("saslauthd", "run")
    assert restart.back_running.startswith("systemctl restart saslauthd; ")
    assert DEBIAN12.keep_service("saslauthd", "boot").disable == "update-rc.d saslauthd disable"


# ---------------------------------------------------------------- masked units


def test_a_masked_unit_is_read_as_masked_and_not_enabled():
    from provisioner.probes import parse_services
    services = parse_services("postfix\tmasked\tinactive\t-\nsaslauthd\tmasked\tactive\tS\nx\tmasked-runtime\tactive\t-\n")
    assert all(s.masked and not s.enabled and s.exists for s in services.values())
    assert not parse_services("postfix\tenabled\tactive\t-\n")["postfix"].masked


@pytest.mark.parametrize("platform", [DEBIAN12, EL7, EL8], ids=lambda p: p.name)
def test_a_masked_service_is_unmasked_before_it_is_enabled_and_a_rollback_masks_it_again(platform):
    facts = host("saslauthd\n", postfix=(False, False), platform=platform)
    facts = facts.replace(services={**facts.services, "postfix": ServiceState("postfix", masked=True)})
    changes = check(facts, platform)
    enable = changes[0]
    assert enable.summary == "unmask and enable postfix at boot"
    assert [a.describe() for a in enable.actions] == ["systemctl unmask --quiet postfix", "systemctl enable --quiet postfix"]
    undo = [u for u in enable.actions[0].before]
    assert [(u.description, u.code) for u in undo] == [("mask postfix again", "systemctl mask --quiet postfix")]
    assert [c.summary for c in changes[1:]] == ["start postfix"]
    assert check(apply_effects(facts, changes).replace(extra={PROCESS_PROBE: frozenset({"master", "saslauthd"})}),
                 platform) == []


def test_sysv_has_no_mask():
    assert EL6.unmask("postfix") == ()
