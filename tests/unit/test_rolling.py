"""Rolling updates, pure: how hosts are cut into batches, the defaults, and when later batches do not start."""

from __future__ import annotations

import pytest

from provisioner.arguments import parse_max_fail, parse_serial
from provisioner.engine.batches import ALL_AT_ONCE, DEFAULT_SERIAL, Serial, batches, halted, rollout
from provisioner.engine.results import EXIT_FAILED, EXIT_HALTED, EXIT_INTERRUPTED, HostReport, RunReport
from provisioner.validation import InputError

HOSTS = [f"mx{i}" for i in range(1, 11)]


@pytest.mark.parametrize("serial,sizes", [
    (Serial(count=1), [1] * 10),
    (Serial(count=3), [3, 3, 3, 1]),
    (Serial(count=50), [10]),
    (Serial(percent=25), [3, 3, 3, 1]),  # 2.5 rounded up
    (Serial(percent=10), [1] * 10),
    (Serial(percent=1), [1] * 10),  # never an empty batch
    (Serial(percent=100), [10]),
])
def test_batches_keep_the_order_and_every_host_once(serial, sizes):
    cut = batches(HOSTS, serial)
    assert [len(b) for b in cut] == sizes
    assert [h for b in cut for h in b] == HOSTS


def test_no_hosts_no_batches():
    assert batches([], Serial(count=2)) == []


@pytest.mark.parametrize("dry_run,hosts,serial,max_fail,expected", [
    (False, 10, None, None, (DEFAULT_SERIAL, 0)),  # a real run on a group: a quarter at a time, stop at a failure
    (True, 10, None, None, (ALL_AT_ONCE, None)),  # a dry run changes nothing: fully parallel
    (False, 1, None, None, (ALL_AT_ONCE, None)),
    (False, 10, Serial(count=2), None, (Serial(count=2), 0)),
    (False, 10, Serial(count=2), 3, (Serial(count=2), 3)),
    (True, 10, Serial(count=2), None, (Serial(count=2), 0)),  # asked for: batches in a dry run too
    (False, 10, ALL_AT_ONCE, None, (ALL_AT_ONCE, None)),  # everything at once, as asked
])
def test_the_rollout_defaults(dry_run, hosts, serial, max_fail, expected):
    assert rollout(dry_run, hosts, serial, max_fail) == expected


@pytest.mark.parametrize("failures,max_fail,stop", [
    (0, 0, False), (1, 0, True), (1, 1, False), (2, 1, True), (5, None, False),
])
def test_later_batches_stop_once_failures_exceed_the_allowance(failures, max_fail, stop):
    assert halted(failures, max_fail) is stop


def report(*statuses, halted_by=None, interrupted=None):
    hosts = {f"h{i}": HostReport(name=f"h{i}", status=s) for i, s in enumerate(statuses)}
    return RunReport(dry_run=False, hosts=hosts, halted=halted_by, interrupted=interrupted)


def test_the_exit_code_says_the_rollout_stopped():
    assert report("failed", "not-run", halted_by="1 host(s) failed").exit_code == EXIT_HALTED
    assert report("failed", "changed").exit_code == EXIT_FAILED
    assert report("failed", "not-run", halted_by="x", interrupted="SIGINT").exit_code == EXIT_INTERRUPTED


@pytest.mark.parametrize("text,serial", [("1", Serial(count=1)), ("25%", Serial(percent=25)), (" 3 ", Serial(count=3)),
                                         ("100%", Serial(percent=100)), (None, None)])
def test_serial_from_the_command_line(text, serial):
    assert parse_serial(text) == serial


@pytest.mark.parametrize("text", ["0", "0%", "101%", "-1", "1.5", "x", "%", "", "25 %"])
def test_bad_serial_is_a_one_line_error(text):
    with pytest.raises(InputError, match="--serial"):
        parse_serial(text)


@pytest.mark.parametrize("text,value", [("0", 0), ("3", 3), (None, None)])
def test_max_fail_from_the_command_line(text, value):
    assert parse_max_fail(text) == value


@pytest.mark.parametrize("text", ["-1", "x", "", "1%"])
def test_bad_max_fail_is_a_one_line_error(text):
    with pytest.raises(InputError, match="--max-fail"):
        parse_max_fail(text)
