"""verify(): every session of every port at once, then the local delivery, gathered in one report.

The server sleeps 5 s per connection (``smtpd_client_restrictions = sleep 5``)
and delays each failed AUTH (pam_unix): every port's main session and each of
its refused AUTHs run on their own connections, all concurrently, so verify
costs about one connection's sleep and one failed AUTH's delay.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from provisioner.verify.model import CheckResult, Credentials, VerifyReport, VerifyTarget, scrubber
from provisioner.verify.session import PortSession, deliver_only, refusal_session, refusals
from provisioner.verify.smtp import error_text

SMTPS_PORT = 465
SMTP_PORT = 25
LOCAL_DELIVERY_WAIT = 15.0  # seconds to poll the mailbox for the token
TURNED_AWAY = 421  # the greeting of a server over its connection limit for this client
TURNED_AWAY_TRIES = 3
TURNED_AWAY_PAUSE = 1.0
LOCAL_DELIVERY_POLL = 0.25  # one grep over the open SSH connection; delivery takes about a second


def _session(target: VerifyTarget, port: int, scrub: Callable[[str], str], token: str, do_local: bool) -> PortSession:
    return PortSession(target, port, scrub, token, do_local, implicit_tls=port == SMTPS_PORT, smtp_port=SMTP_PORT)


def _wait_mailbox(target: VerifyTarget, reader: Callable[[str], str], token: str,
                  scrub: Callable[[str], str], wait: float) -> CheckResult:
    """Poll the mailbox (through the caller's reader) until the token shows or ``wait`` is over."""
    deadline = time.monotonic() + wait
    last_err = ""
    while True:
        try:
            text = reader(token) or ""
            if token in text:
                return CheckResult(SMTP_PORT, "local delivery", True,
                                   f"token {token} found in the mailbox of {target.local_delivery_to}")
            last_err = ""
        except Exception as exc:  # noqa: BLE001 - the reader is the caller's code
            last_err = f"; last mailbox read failed: {error_text(exc)}"
        if time.monotonic() >= deadline:
            return CheckResult(SMTP_PORT, "local delivery", False, scrub(
                f"expected token {token} in the mailbox of {target.local_delivery_to} "
                f"within {wait:.0f} s, got no match{last_err}"))
        time.sleep(LOCAL_DELIVERY_POLL)


# ---------------------------------------------------------------- entry point


def verify(target: VerifyTarget,
           mailbox_reader: Callable[[str], str] | None = None) -> VerifyReport:
    """Run every check against ``target``; never raises for network trouble."""
    scrub = scrubber((target.member, target.outsider))
    token = "provisioner-verify-" + secrets.token_hex(8)
    ports = tuple(dict.fromkeys(target.ports))  # keep order, drop duplicates
    local_on = SMTP_PORT if (target.local_delivery_to and SMTP_PORT in ports) else None

    runs: dict[int, PortSession] = {p: _session(target, p, scrub, token, do_local=(p == local_on)) for p in ports}
    extra: list[CheckResult] = []
    lock = threading.Lock()

    def work(port: int) -> None:
        run = runs[port]
        try:
            run.run()
        except Exception as exc:  # noqa: BLE001 - a bug here must not hide the other ports
            run.add("internal error", False, f"verifier failed: {error_text(exc)}")
            return
        if port == local_on and mailbox_reader is not None and run.local_queued:
            res = _wait_mailbox(target, mailbox_reader, token, scrub, LOCAL_DELIVERY_WAIT)
            with lock:
                extra.append(res)

    def local_alone() -> None:
        run = deliver_only(_session(target, SMTP_PORT, scrub, token, do_local=True))
        res = list(run.results)
        if mailbox_reader is not None and run.local_queued:
            res.append(_wait_mailbox(target, mailbox_reader, token, scrub, LOCAL_DELIVERY_WAIT))
        with lock:
            extra.extend(res)

    tries = refusals(target)
    refused = {(p, name): _session(target, p, scrub, token, do_local=False) for p in ports for name, _ in tries}

    def refuse(port: int, name: str, cred: Credentials) -> None:
        run = refused[port, name]
        try:
            refusal_session(run, name, cred)
        except Exception as exc:  # noqa: BLE001 - a bug here must not hide the other sessions
            run.add(name, False, f"verifier failed: {error_text(exc)}")

    jobs: list[Callable[[], None]] = [lambda p=p: work(p) for p in ports]
    jobs += [lambda p=p, n=n, c=c: refuse(p, n, c) for p in ports for n, c in tries]
    if target.local_delivery_to and local_on is None:
        jobs.append(local_alone)
    if jobs:
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="verify") as pool:
            for fut in [pool.submit(j) for j in jobs]:
                fut.result()

    # Sessions turned away at the greeting (421: the server limits simultaneous connections per client,
    # smtpd_client_connection_count_limit) go once more after the others, one at a time per port.
    again = [p for p in ports if runs[p].greeting_code == TURNED_AWAY
             or any(refused[p, name].greeting_code == TURNED_AWAY for name, _ in tries)]

    def retry(port: int) -> None:
        for attempt in range(TURNED_AWAY_TRIES):
            if attempt:
                time.sleep(TURNED_AWAY_PAUSE)  # the server counts a closed session out a moment later
            if runs[port].greeting_code == TURNED_AWAY:
                runs[port] = _session(target, port, scrub, token, do_local=(port == local_on))
                work(port)
            for name, cred in tries:
                if refused[port, name].greeting_code == TURNED_AWAY:
                    refused[port, name] = _session(target, port, scrub, token, do_local=False)
                    refuse(port, name, cred)
            if runs[port].greeting_code != TURNED_AWAY and all(
                    refused[port, name].greeting_code != TURNED_AWAY for name, _ in tries):
                return

    if again:
        with ThreadPoolExecutor(max_workers=len(again), thread_name_prefix="verify") as pool:
            for fut in [pool.submit(retry, p) for p in again]:
                fut.result()

    checks: list[CheckResult] = []
    for p in ports:
        main = runs[p].results
        checks.extend(main)
        main_failed = any(not c.ok for c in main)
        for name, _ in tries:
            run = refused[p, name]
            if run.last_auth_code or not main_failed:
                checks.extend(run.results)
            # else: it could not reach AUTH, and the main session already says why
    checks.extend(extra)
    return VerifyReport(target.host, tuple(checks))
