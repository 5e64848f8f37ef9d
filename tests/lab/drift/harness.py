"""Runs drift cases on one converged lab host: mutate, plan, repair, check, restore.

A case is one mutation, or several that do not conflict (a group in `make test`,
a random combination in `make drift-fuzz`). `DriftHost.run_case` applies them,
then checks what the issue asks, in this order (the first problem found is the
case's *kind* of failure, see KINDS):

repair    dry run exits 2 and lists each mutation (the exact plan when one
          mutation with a known plan runs alone); the real run exits 0, makes
          exactly the planned changes and verify passes; a dry run right after
          exits 0; the planted unmanaged content survives; each mutation's own
          check passes; the host's fingerprint equals the converged host's.
tolerate  dry run exits 0, and the fingerprint is the converged host's.
refuse    dry run and real run: host failed, error naming the problem; the real
          run changes nothing at all (file digests, mtimes, daemons' pids).

The tool itself restores the host after a repair. Only a tolerated or refused
mutation, or a case that failed, is undone by hand: the mutations' `undo`, then
the managed files from the snapshot taken on the converged host, then the tool
(a real run) for what files do not cover, until the fingerprint is back.
Everything runs through the real CLI (conftest.invoke) and real ssh.
"""

from __future__ import annotations

import difflib
import re
import shlex
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import Outcome, invoke, ssh
from drift import PLANTS, Mutation
from drift.model import MAIN_CF, MANAGED_FILES, OUTSIDE
from drift.plans import expected_plan, mentioned, outcome_of, render
from drift.probes import FINGERPRINT, RAW, SNAPSHOT_PATHS, content, without_links

KINDS = {
    "mutation-no-op": "the mutation changed nothing on the host (a broken test, not a finding)",
    "mutation-failed": "the mutation's shell failed on the host (a broken test, not a finding)",
    "not-detected": "the dry run exits 0: the drift is not seen",
    "false-drift": "the dry run plans changes for something that is not drift",
    "not-refused": "a drift the tool must refuse is planned (dry run exit 2) or applied",
    "wrong-error": "the refusal's error does not name the problem",
    "half-done": "a refused run changed the host",
    "wrong-plan": "the dry run lists other changes than the right plan",
    "crash": "the run died with an internal error (a bug, not a refusal)",
    "run-failed": "the real run failed (exit 1) on a drift it should repair",
    "plan-differs": "the real run made other changes than the dry run listed",
    "verify-failed": "verify failed after the repair",
    "two-runs": "a dry run right after the repair exits 2; a second run converges",
    "never-converges": "still drift after a second real run",
    "unmanaged-lost": "unmanaged content planted on the host did not survive",
    "check-failed": "the mutation's own post-condition failed (e.g. a symlink the tool should keep)",
    "host-differs": "after the repair the host is not the converged host (fingerprint differs)",
}

class HostLost(Exception):
    """The harness could not bring the host back to the converged state: later cases cannot run."""


@dataclass
class Problem:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass
class CaseReport:
    ids: tuple[str, ...]
    outcome: str
    problems: list[Problem] = field(default_factory=list)
    planned: list[tuple[str, str]] = field(default_factory=list)
    applied: list[tuple[str, str]] | None = None
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    restored_by: str = "the tool"
    runs: list[tuple[str, int, str]] = field(default_factory=list)  # (what, exit code, host error or output tail)

    @property
    def kind(self) -> str | None:
        return self.problems[0].kind if self.problems else None

    @property
    def seconds(self) -> float:
        return round(sum(self.timings.values()), 1)

    def describe(self) -> str:
        lines = [f"case {' + '.join(self.ids)} ({self.outcome}), {self.seconds} s"]
        lines += [f"  {p}" for p in self.problems]
        lines.append(f"  dry-run plan: {self.planned}")
        if self.applied is not None:
            lines.append(f"  real run made: {self.applied}")
        if self.error:
            lines.append(f"  host error: {self.error}")
        lines.append(f"  restored by {self.restored_by}; timings {self.timings}")
        return "\n".join(lines)


class DriftFailure(AssertionError):
    """A case failed in a way the catalogue does not expect."""


class KnownDriftFailure(AssertionError):
    """A case failed exactly as the catalogue's diagnosis says (strict xfail)."""


class DriftHost:
    """The catalogue's lab host: a converged baseline, and cases run against it."""

    def __init__(self, lab, name: str, inventory: Path, work: Path):
        self.lab, self.name, self.inventory, self.work = lab, name, inventory, work
        self.entry = next(h for h in lab.hosts if h.name == name)
        self.values = {"myhostname": f"{name}.example.test", "control": self.entry.control_address}
        self.baseline_fingerprint = ""
        self.main_cf_order: list[str] = []

    # ------------------------------------------------------------ plumbing

    def sh(self, script: str, check: bool = True) -> str:
        result = ssh(self.lab, self.name, script, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"on {self.name}: {script[:200]!r} exited {result.returncode}: {result.stderr.strip()}")
        return result.stdout

    def cli(self, *args: str, report: CaseReport | None = None, what: str = "") -> Outcome:
        outcome = invoke("provision", "--inventory", str(self.inventory), "--host", self.name, *args, tmp=self.work)
        if report is not None:
            error = self.host_report(outcome).get("error")
            report.runs.append((what or " ".join(args) or "real run", outcome.code, error or outcome.out[-400:]))
        return outcome

    def host_report(self, outcome: Outcome) -> dict:
        return (outcome.report or {}).get("hosts", {}).get(self.name, {})

    def _listed(self, outcome: Outcome) -> str:
        """What a run listed, for a problem's detail."""
        return str(outcome.summaries(self.name)) if outcome.report else outcome.out[-300:]

    def _holds(self, check: str) -> bool:
        return self.sh(f"if {render(check, self.values)}; then echo ok; fi").strip() == "ok"

    def fingerprint(self) -> str:
        return self.sh(FINGERPRINT.format(files=" ".join(MANAGED_FILES)))

    def raw(self) -> str:
        return self.sh(RAW.format(files=" ".join(MANAGED_FILES)))

    def plants(self, skip: set[str] = frozenset()) -> list[str]:
        """Names of the planted items that are gone."""
        script = "\n".join(f"if {p.check}; then :; else echo {shlex.quote(p.name)}; fi"
                           for p in PLANTS if p.name not in skip)
        return [line for line in self.sh(script + "\ntrue").splitlines() if line]

    def outsider_reaches_port_25(self) -> bool:
        try:
            with socket.create_connection((self.entry.address, 25), timeout=3,
                                          source_address=(self.entry.outsider_address, 0)):
                return True
        except OSError:
            return False

    # ------------------------------------------------------------ baseline

    def converge(self) -> None:
        """Provision the host, plant the unmanaged content, take the converged snapshot."""
        outcome = self.cli()
        assert outcome.code == 0, outcome.out
        # Every key of the main.cf the tool made is managed: the expected plans of main.cf's
        # delete and truncate name them all, in file order.
        managed = [line for line in self.sh(f"cat {MAIN_CF}").splitlines() if re.match(r"^[A-Za-z0-9_]+ =", line)]
        self.main_cf_order = [line.split(" =", 1)[0] for line in managed]
        self.values["main_cf_count"] = str(len(managed))
        self.values["main_cf_set_all"] = ", ".join(managed)
        self.sh("\n".join(p.shell for p in PLANTS))
        dry = self.cli("--dry-run")
        assert dry.code == 0, f"planted content must not be drift:\n{dry.out}"
        self.sh("mkdir -p /root/drift && touch -d '-1 day' /root/drift/epoch && "
                f"tar --numeric-owner -C / -cpf /root/drift/converged.tar {' '.join(SNAPSHOT_PATHS)}")
        self.baseline_fingerprint = self.fingerprint()

    def replant(self, names: set[str]) -> None:
        script = "\n".join(f"if {p.check}; then :; else {p.shell}\nfi" for p in PLANTS if p.name in names)
        if script:
            self.sh(script)

    def fingerprint_diff(self, links: bool = True) -> str:
        """How the host now differs from the converged host ("" when it does not);
        without ``links``, a managed path that became a link does not count (its target's state still does)."""
        before, now = self.baseline_fingerprint, self.fingerprint()
        if not links:
            before, now = without_links(before), without_links(now)
        if now == before:
            return ""
        diff = difflib.unified_diff(before.splitlines(), now.splitlines(), "converged", "now", lineterm="", n=1)
        return "\n".join(list(diff)[2:40])

    # ------------------------------------------------------------ one case

    def run_case(self, mutations: list[Mutation], thorough: bool = False) -> CaseReport:
        """Apply the mutations, check the tool's answer, and leave the host converged again.

        ``thorough`` goes on after the first problem (to describe a failure fully);
        otherwise the case stops there and the host is restored.
        """
        report = CaseReport(tuple(m.id for m in mutations), outcome_of(mutations))
        clock = time.monotonic()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.monotonic()
            report.timings[name] = round(report.timings.get(name, 0) + now - clock, 2)
            clock = now

        try:
            self._mutate(mutations, report)
            lap("mutate")
            if not report.problems or thorough:
                {"repair": self._repair, "tolerate": self._tolerate, "refuse": self._refuse}[report.outcome](
                    mutations, report, thorough, lap)
        finally:
            self._restore(mutations, report)
            lap("restore")
        return report

    def _mutate(self, mutations: list[Mutation], report: CaseReport) -> None:
        raw = RAW.format(files=" ".join(MANAGED_FILES))
        before = self.raw()
        # Packages go last: removing Postfix takes newaliases and postmap, which other mutations use.
        for mutation in sorted(mutations, key=lambda m: m.area == "packages"):
            # The mutation in a subshell of its own (set -e), then the state after it, in one round trip.
            script = "(\nset -e\n" + render(mutation.shell, self.values) + "\n) || exit 97\n" + raw
            result = ssh(self.lab, self.name, script, check=False)
            if result.returncode != 0:
                report.problems.append(Problem("mutation-failed", f"{mutation.id}: {result.stderr.strip()[-300:]}"))
                return
            if content(result.stdout) == content(before):
                report.problems.append(Problem("mutation-no-op", f"{mutation.id}: the host did not change"))
            before = result.stdout

    def _plan_problems(self, mutations: list[Mutation], planned: list[tuple[str, str]]) -> list[Problem]:
        problems = []
        wanted = expected_plan(mutations, self.values, self.main_cf_order)
        if wanted is not None:
            # Alone, the order is exact; in a group, the order within a step is the tool's.
            same = planned == wanted if len(mutations) == 1 else sorted(planned) == sorted(wanted)
            if not same:
                problems.append(Problem("wrong-plan", f"expected {wanted}"))
        for mutation in mutations:
            for step, pattern in mutation.mentions:
                pattern = render(pattern, self.values)
                if not any(s == step and mentioned(pattern, summary) for s, summary in planned):
                    problems.append(Problem("wrong-plan", f"{mutation.id}: nothing in step {step} matches {pattern!r}"))
        return problems

    def _failure_kind(self, outcome: Outcome) -> tuple[str, str]:
        error = self.host_report(outcome).get("error") or outcome.out[-600:]
        if "internal error" in error:
            return "crash", error
        if error.startswith("verify failed"):
            return "verify-failed", error
        return "run-failed", error

    def _repair(self, mutations, report: CaseReport, thorough: bool, lap) -> None:
        def problem(kind: str, detail: str) -> bool:
            report.problems.append(Problem(kind, detail))
            return not thorough  # stop here?

        dry = self.cli("--dry-run", report=report, what="dry run")
        lap("dry run")
        report.planned = dry.summaries(self.name) if dry.report else []
        if dry.code == 0:
            if problem("not-detected", "the dry run exits 0"):
                return
        elif dry.code != 2:
            kind, error = self._failure_kind(dry)
            report.error = error
            if problem(kind if kind == "crash" else "run-failed", f"the dry run exits {dry.code}: {error}"):
                return
        else:
            for found in self._plan_problems(mutations, report.planned):
                if problem(found.kind, found.detail):
                    return

        # --verify always: every case proves mail still works, also when --verify auto would find nothing new.
        real = self.cli("--verify", "always", report=report, what="real run")
        lap("real run")
        report.applied = real.summaries(self.name) if real.report else None
        if real.code != 0:
            kind, error = self._failure_kind(real)
            report.error = error
            if problem(kind, f"the real run exits {real.code}: {error}"):
                return
        elif report.applied != report.planned and dry.code == 2:
            if problem("plan-differs", f"the real run made {report.applied}"):
                return
        if real.code == 0:
            verify = self.host_report(real).get("verify") or {}
            if not verify.get("ok"):
                failed = [c for c in verify.get("checks", []) if not c.get("ok")]
                if problem("verify-failed", f"verify: {failed[:3] or 'did not run'}"):
                    return

        after = self.cli("--dry-run", report=report, what="dry run after")
        lap("dry run after")
        if after.code != 0:
            again = self.cli(report=report, what="second real run")
            lap("second real run")
            final = self.cli("--dry-run", report=report, what="dry run after the second run")
            lap("dry run after")
            kind = "two-runs" if again.code == 0 and final.code == 0 else "never-converges"
            detail = f"after the repair the dry run exits {after.code} with {self._listed(after)}"
            if kind == "never-converges":
                detail += f"; after a second run it exits {final.code} with {self._listed(final)}"
            if problem(kind, detail):
                return

        destroyed = {name for m in mutations for name in m.destroys}
        lost = self.plants(skip=destroyed)
        if lost and problem("unmanaged-lost", ", ".join(lost)):
            return
        for mutation in mutations:
            if mutation.check and not self._holds(mutation.check):
                if problem("check-failed", f"{mutation.id}: {mutation.check}"):
                    return
        self.replant(destroyed)
        self._cleanup(mutations)
        diff = self.fingerprint_diff()
        if diff and problem("host-differs", "\n" + diff):
            return
        if not self.outsider_reaches_port_25():
            problem("host-differs", "port 25 is shut to the outsider address")
        lap("checks")

    def _tolerate(self, mutations, report: CaseReport, thorough: bool, lap) -> None:
        dry = self.cli("--dry-run", report=report, what="dry run")
        lap("dry run")
        report.planned = dry.summaries(self.name) if dry.report else []
        if dry.code != 0:
            report.problems.append(Problem("false-drift", f"the dry run exits {dry.code} with {report.planned}"))
            if not thorough:
                return
        diff = self.fingerprint_diff(links=False)  # a link the admin made is not drift if what it points to is right
        if diff:
            report.problems.append(Problem("host-differs", "Postfix/PAM/the shell read it differently:\n" + diff))
        lap("checks")

    def _refuse(self, mutations, report: CaseReport, thorough: bool, lap) -> None:
        patterns = [m.error for m in mutations if m.outcome == "refuse"]

        def refused(outcome: Outcome, what: str) -> bool:
            host = self.host_report(outcome)
            error = host.get("error") or ""
            report.error = error or report.error
            if outcome.code == 0:
                kind = "not-detected" if what == "dry run" else "not-refused"
                report.problems.append(Problem(kind, f"the {what} exits 0"))
                return False
            if outcome.code == 2 or host.get("status") != "failed":
                report.problems.append(Problem("not-refused", f"the {what} exits {outcome.code} with "
                                                              f"{self._listed(outcome)}"))
                return False
            if "internal error" in error:
                report.problems.append(Problem("crash", error))
                return False
            missing = [p for p in patterns if not re.search(p, error)]
            if missing:
                report.problems.append(Problem("wrong-error", f"the {what}'s error {error!r} does not match {missing}"))
                return False
            return True

        dry = self.cli("--dry-run", report=report, what="dry run")
        lap("dry run")
        report.planned = dry.summaries(self.name) if dry.report else []
        if not refused(dry, "dry run") and not thorough:
            return
        before = self.raw()
        real = self.cli(report=report, what="real run")
        lap("real run")
        report.applied = real.summaries(self.name) if real.report else None
        refused(real, "real run")
        after = self.raw()
        if after != before:
            diff = difflib.unified_diff(before.splitlines(), after.splitlines(), "before", "after", lineterm="", n=0)
            report.problems.append(Problem("half-done", "the real run changed:\n" + "\n".join(list(diff)[2:30])))
        lap("checks")

    # ------------------------------------------------------------ restore

    def _cleanup(self, mutations: list[Mutation]) -> None:
        for mutation in mutations:
            if mutation.cleanup:
                self.sh(render(mutation.cleanup, self.values))

    def _restore(self, mutations: list[Mutation], report: CaseReport) -> None:
        """Bring the host back to the converged state (the tool already did, unless the case was not a repair)."""
        if report.outcome == "repair" and not report.problems:
            if any(m.outcome == "tolerate" for m in mutations):
                # A tolerated change is not drift, so the tool left it: put its file back for the next case.
                self._put_back_files()
                report.restored_by = "the tool (tolerated changes by hand)"
            return
        report.restored_by = "hand"
        for mutation in mutations:
            if mutation.undo:
                self.sh(render(mutation.undo, self.values), check=False)
        self.sh("systemctl unmask --quiet postfix saslauthd 2>/dev/null; "
                "nft delete table inet drift_block 2>/dev/null; "
                "nft delete table inet provisioner_lockdown 2>/dev/null; "
                f"rm -rf {OUTSIDE}; true")
        self._put_back_files()
        if self.fingerprint_diff() == "" and self.cli("--dry-run").code == 0:
            return
        report.restored_by = "hand, then the tool"
        for _ in range(2):
            if self.cli().code == 0 and self.cli("--dry-run").code == 0:
                break
            self._put_back_files()
        self.sh("systemctl restart saslauthd postfix", check=False)
        diff = self.fingerprint_diff()
        if diff or self.cli("--dry-run").code != 0:
            raise HostLost(f"{self.name} could not be brought back after {report.ids}:\n{diff}")

    def _put_back_files(self) -> None:
        paths = " ".join("/" + p for p in SNAPSHOT_PATHS)
        self.sh(f"rm -rf {paths} && tar --numeric-owner -C / -xpf /root/drift/converged.tar && "
                "systemctl reload postfix 2>/dev/null; true")


def open_drift_host(lab, name: str, work: Path, **host_vars) -> DriftHost:
    """The catalogue's host, provisioned from the lab inventory plus ``host_vars``, converged and planted."""
    import yaml

    data = yaml.safe_load(lab.inventory_path.read_text())
    data["hosts"][name]["vars"].update(host_vars)
    inventory = work / "inventory.yaml"
    inventory.write_text(yaml.safe_dump(data))
    host = DriftHost(lab, name, inventory, work)
    host.converge()
    return host
