"""The firewall step's idea of firewalld's mail services matches firewalld's own service definitions.

The lockdown step decides whether a zone already opens a mail port by the services it lists
(``firewall-cmd --list-all``). The definitions are copies of firewalld's config/services files
(tests/data/fixtures/firewalld, see its README): smtp (25), smtps (465), smtp-submission (587,
deprecated since firewalld 2.1 and then an include of the new 'submission' service).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from provisioner.steps.firewall.state import SERVICE_PORTS
from .recorded_cases import FIXTURES

DEFINITIONS = {
    "smtp": "firewalld/smtp.xml",
    "smtps": "firewalld/smtps.xml",
    "smtp-submission": "firewalld/smtp-submission.xml",
    "submission": "firewalld/submission.xml",
}
SERVICES = tuple(DEFINITIONS)


def tcp_ports(service: str) -> frozenset[int]:
    """The TCP ports a firewalld service opens, following <include service=...>."""
    root = ET.parse(FIXTURES / DEFINITIONS[service]).getroot()
    ports = {int(p.get("port")) for p in root.iter("port") if p.get("protocol") == "tcp"}
    for include in root.iter("include"):
        ports |= tcp_ports(include.get("service"))
    return frozenset(ports)


def test_definitions_are_the_mail_ports():
    assert {s: tcp_ports(s) for s in SERVICES} == {
        "smtp": {25}, "smtps": {465}, "smtp-submission": {587}, "submission": {587},
    }


@pytest.mark.parametrize("service", SERVICES)
def test_firewall_step_knows_the_service(service):
    assert SERVICE_PORTS.get(service) == tcp_ports(service)
