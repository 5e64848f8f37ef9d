"""The operations behind the CLI: validate input, run, report, and return an exit code."""

from __future__ import annotations

import json
import signal
from contextlib import contextmanager
from pathlib import Path

from provisioner import credentials, inventory, report
from provisioner.arguments import check_output_path, parse_forks, parse_max_fail, parse_serial, parse_verify_mode
from provisioner.probes.recorded import facts_to_dict
from provisioner.inventory import Host
from provisioner.redaction import Redactor
from provisioner.validation import InputError
from provisioner.model import Facts, Shell
from provisioner.platforms import Platform
from provisioner.probes import FactError, gather_with_raw
from provisioner.steps.base import StepError
from provisioner.engine.control import RunControl
from provisioner.engine.runner import EXIT_FAILED, EXIT_OK, Event, RunOptions, run
from provisioner.progress import progress_for
from provisioner.engine.walk import fact_spec
from provisioner.steps import ALL_STEPS
from provisioner.transport import HostConnection, RemoteCommandError, TransportError
from provisioner.verify import Credentials, VerifyTarget
from provisioner.verify import verify as verify_smtp


def _load(inventory_path: str) -> inventory.Inventory:
    if not inventory_path:
        raise InputError("--inventory: the path is empty")
    return inventory.load(inventory_path)


def _select(inventory_path: str, hosts: list[str], group: str | None, all_hosts: bool) -> list[Host]:
    inv = _load(inventory_path)
    return inv.select(hosts, group, all_hosts)


def verify_ports(host: Host) -> tuple[int, ...]:
    ports = [25]
    if host.vars.submission:
        ports.append(587)
    if host.vars.smtps:
        ports.append(465)
    return tuple(ports)


def mailbox_reader(conn: HostConnection, host: Host):
    """Read a local mailbox over the existing SSH session (for the local-delivery check)."""
    user = host.vars.local_mailbox or ""  # an account name: the inventory checked it

    def read(token: str) -> str:
        result = conn.run_script(
            Shell("grep -F -e {0} /var/mail/{1} 2>/dev/null; true", (token, user)).render(),
            what="mailbox read",
        )
        return result.stdout

    return read


def verify_target(host: Host, conn: HostConnection | None):
    creds = credentials.load(host.name, host.vars.verify_credentials_file)
    member = Credentials(creds.user, creds.password) if creds.user and creds.password else None
    outsider = (
        Credentials(creds.outsider_user, creds.outsider_password)
        if creds.outsider_user and creds.outsider_password
        else None
    )
    if member is None or outsider is None:
        env = ", ".join(credentials.ENV.values())
        file = host.vars.verify_credentials_file
        missing = ", ".join(key for key in credentials.KEYS if not getattr(creds, key))
        hint = f"{file} gives no {missing} for this host (or set {env})" if file else \
            f"set verify_credentials_file in the inventory, or {env}"
        raise credentials.CredentialsError(
            f"{host.name}: verify needs a mail user in {host.vars.mail_group} and a real account outside it "
            f"(to prove the group restriction): {hint}"
        )
    target = VerifyTarget(
        host=host.name,
        address=host.address,
        myhostname=host.vars.myhostname,
        ports=verify_ports(host),
        member=member,
        outsider=outsider,
        foreign_recipient=host.vars.verify_foreign_recipient,
        local_delivery_to=host.vars.verify_local_delivery if conn is not None else None,
    )
    return target


def verify_host(host: Host, conn: HostConnection | None):
    target = verify_target(host, conn)
    reader = mailbox_reader(conn, host) if conn is not None and host.vars.verify_local_delivery else None
    return verify_smtp(target, mailbox_reader=reader)


def _verifier(host: Host, conn: HostConnection, facts: Facts, platform: Platform):
    try:
        return verify_host(host, conn)
    except credentials.CredentialsError as exc:
        raise StepError(str(exc)) from exc


def verify_scope(targets: dict[str, VerifyTarget]):
    """What verify checks on a host, for the digest of --verify auto: never a password."""

    def scope(host: Host) -> dict:
        target = targets.get(host.name)
        return {
            "address": host.address,
            "ports": list(verify_ports(host)),
            "myhostname": host.vars.myhostname,
            "foreign_recipient": host.vars.verify_foreign_recipient,
            "local_delivery": host.vars.verify_local_delivery,
            "user": target.member.user if target and target.member else None,
            "outsider_user": target.outsider.user if target and target.outsider else None,
        }

    return scope


def _passwords(targets) -> list[str | None]:
    return [c.password for t in targets for c in (t.member, t.outsider) if c is not None]


def provision(
    inventory_path: str,
    hosts: list[str],
    group: str | None = None,
    all_hosts: bool = False,
    dry_run: bool = False,
    json_path: str | None = None,
    verify: str | bool = "auto",
    forks: int | str = 5,
    show_diff: bool = True,
    no_verify: bool = False,
    serial: str | None = None,
    max_fail: str | None = None,
    live: bool = True,
) -> int:
    console = report.make_console()
    try:
        mode = parse_verify_mode(verify, no_verify)
        forks = parse_forks(forks)
        batch = parse_serial(serial)
        allowance = parse_max_fail(max_fail)
        check_output_path(json_path, "--json")
        selected = _select(inventory_path, hosts, group, all_hosts)
        targets = []
        if mode != "never" and not dry_run:
            # Before any host is touched: a run that cannot verify cannot lift the lockdown.
            targets = [verify_target(host, None) for host in selected if host.vars.verify]
    except InputError as exc:
        report.print_error(console, str(exc))
        return EXIT_FAILED
    redactor = Redactor.for_vars((host.vars for host in selected), _passwords(targets))
    control = RunControl()
    options = RunOptions(dry_run=dry_run, verify=mode, forks=forks, serial=batch, max_fail=allowance)
    with progress_for(console, live) as progress:
        with interrupts(control, lambda message: progress(Event("provisioner", "message", message))):
            result = run(selected, options, verifier=_verifier, events=progress, control=control,
                         verify_scope=verify_scope({t.host: t for t in targets}))
    report.print_report(console, result, show_diff=show_diff, redactor=redactor)
    if json_path:
        try:
            report.write_json(result, json_path, redactor)
        except OSError as exc:
            # The changes are made and reported above: keep the run's exit code.
            report.print_error(console, f"{json_path}: cannot write the JSON report: {exc.strerror or exc}")
    return result.exit_code


@contextmanager
def interrupts(control: RunControl, say):
    """SIGINT and SIGTERM while hosts run: the first stops the run cleanly, the second aborts it.

    First: no new host or step starts; a running step finishes, then each
    host's run is rolled back; the report and the JSON are still written
    (status ``interrupted``, exit code 130). Second: stop waiting on the
    hosts (their holders roll back on their own); a third one kills.
    """
    signals = (signal.SIGINT, signal.SIGTERM)

    def handle(signum, frame):
        name = signal.Signals(signum).name
        if control.stopping:
            control.abort(name)
            for sig in signals:
                signal.signal(sig, signal.SIG_DFL)
            say(f"{name} again: aborting; hosts that were changing roll back on their own")
            return
        control.request_stop(name)
        say(f"{name}: finishing the running steps, then rolling back what this run changed "
            f"(send it again to stop waiting)")

    previous = {sig: signal.signal(sig, handle) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def verify_hosts(inventory_path: str, hosts: list[str], group: str | None = None, all_hosts: bool = False) -> int:
    """Run the seed's SMTP tests against hosts; changes nothing."""
    console = report.make_console()
    try:
        selected = _select(inventory_path, hosts, group, all_hosts)
        # Every host's credentials before the first connection.
        targets = [verify_target(host, None) for host in selected]
    except InputError as exc:
        report.print_error(console, str(exc))
        return EXIT_FAILED
    redactor = Redactor.for_vars((host.vars for host in selected), _passwords(targets))
    code = EXIT_OK
    for host in selected:
        conn = None
        try:
            if host.vars.verify_local_delivery:
                conn = HostConnection(host).open()
            outcome = verify_host(host, conn)
        except (credentials.CredentialsError, TransportError, RemoteCommandError) as exc:
            report.print_error(console, str(exc), redactor)
            code = EXIT_FAILED
            continue
        finally:
            if conn is not None:
                conn.close()
        report.print_verify(console, outcome, redactor=redactor)
        if not outcome.ok:
            code = EXIT_FAILED
    return code


def dump_facts(inventory_path: str, host_name: str, out: str | None = None) -> int:
    """Gather a host's facts and print them as JSON: the format of recorded test cases.

    Secret main.cf values are replaced by [redacted] (see provisioner/redaction.py).
    """
    console = report.make_console()
    try:
        check_output_path(out, "--out")
        (host,) = _select(inventory_path, [host_name], None, False)
    except InputError as exc:
        report.print_error(console, str(exc))
        return EXIT_FAILED
    redactor = Redactor.for_vars([host.vars])
    try:
        spec = fact_spec(host, ALL_STEPS)
        with HostConnection(host) as conn:
            facts, sections = gather_with_raw(lambda script: conn.run_script(script, what="fact gathering").stdout, spec)
        raw = {probe.name: sections.get(probe.name, "") for probe in spec.extra}
    except (TransportError, RemoteCommandError, FactError) as exc:
        report.print_error(console, str(exc), redactor)
        return EXIT_FAILED
    text = json.dumps(redactor.tree(facts_to_dict(facts, raw)), indent=2) + "\n"
    if out:
        try:
            Path(out).write_text(text)
        except OSError as exc:
            report.print_error(console, f"{out}: cannot write the facts: {exc.strerror or exc}")
            return EXIT_FAILED
    else:
        console.out(text, highlight=False)
    return EXIT_OK


def check_inventory(inventory_path: str) -> int:
    console = report.make_console()
    try:
        inv = _load(inventory_path)
    except InputError as exc:
        report.print_error(console, str(exc))
        return EXIT_FAILED
    console.print(f"{inventory_path}: {len(inv.hosts)} host(s), {len(inv.groups)} group(s): valid")
    return EXIT_OK
