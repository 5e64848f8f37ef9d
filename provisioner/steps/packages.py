"""Install Postfix and Cyrus SASL, update what is too old; remove sendmail, or make postfix the MTA beside it.

"sendmail removed" means no package of the sendmail family is installed any
more: on Debian removing sendmail-bin alone leaves sendmail-base and
sendmail-cf behind, so all of them go, purged.

Purging sendmail must not take our files along: sendmail-base ships
/etc/pam.d/smtp as a conffile, so once installed over ours dpkg counts that
file as sendmail-base's and the purge deletes it (until the pam step wrote it
again, PAM's smtp service would fall back to /etc/pam.d/other, and the admin's
own lines in it would be lost). Such files (``Platform.purge_takes``) are
copied aside before the removal and put back when it deleted them, so the
real run leaves them as the plan predicts: unchanged. (Predicting their
deletion instead would make the plan honest but still lose the admin's lines
and open that window.)

A package older than the platform's floor (EL6's postfix before 2.6.6-8.el6,
which does not know TLSv1.1 and TLSv1.2) is updated within its distribution's
stream, and the plan says why; if the repositories cannot bring it, the main_cf
step refuses to write a protocol list that would switch TLS off.

With ``remove_sendmail: false`` on a platform whose MTA is an alternatives
group (EL), sendmail's higher priority keeps /usr/sbin/sendmail and the PAM
service file /etc/pam.d/smtp sendmail's: the group is set to postfix
(``alternatives --set``: manual mode, which sendmail's updates leave alone).
"""

from __future__ import annotations

import dataclasses

from provisioner.probes import FactSpec, Probe, parse_first_line
from provisioner.vars import MailVars
from provisioner.model import Change, Command, Facts, FileState, Journaled, ServiceState, Shell, Undo, UserState
from provisioner.platforms import ALL, Platform
from provisioner.steps.base import Context, Step

MTA_PROBE = "mta_alternative"


def _all_names() -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for platform in ALL:
        seen.update(dict.fromkeys(platform.all_package_names))
    return tuple(seen)


def predict_install(facts: Facts, platform: Platform, names: tuple[str, ...]) -> Facts:
    """The facts after installing ``names``: files, accounts and services they bring."""
    packages = {**facts.packages, **{name: "(to be installed)" for name in names}}
    files = dict(facts.files)
    users = dict(facts.users)
    groups = dict(facts.groups)
    services = dict(facts.services)
    commands = set(facts.commands)
    for name in names:
        for path in platform.package_files.get(name, ()):
            if not files.get(path, FileState(path)).exists:
                files[path] = FileState(path=path, exists=True, from_package=name)
        for kind, account in platform.package_accounts.get(name, ()):
            if kind == "user" and account not in users:
                users[account] = UserState(name=account, groups=(account,))
            if kind == "group" and account not in groups:
                groups[account] = ()
        if name in platform.package_services:
            service, enabled, active = platform.package_services[name]
            current = services.get(service)
            if current is None or not current.exists:
                services[service] = ServiceState(name=service, enabled=enabled, active=active)
                if service == "postfix" and platform.postfix_health_unit != "postfix":
                    services[platform.postfix_health_unit] = ServiceState(
                        name=platform.postfix_health_unit, enabled=enabled, active=active
                    )
        commands |= set(platform.package_commands.get(name, ()))
    return facts.replace(packages=packages, files=files, users=users, groups=groups,
                         services=services, commands=frozenset(commands))


def predict_remove(facts: Facts, names: tuple[str, ...]) -> Facts:
    return facts.replace(packages={k: v for k, v in facts.packages.items() if k not in names})


KEEP_DIR = "/var/lib/provisioner/keep"


def keeping(paths: tuple[str, ...], actions: tuple) -> tuple:
    """``actions`` with each of ``paths`` copied aside first and put back if they deleted it."""
    if not paths:
        return actions
    before = [Shell("mkdir -p -m 700 {0}", (KEEP_DIR,))]
    after = []
    for index, path in enumerate(paths):
        copy = f"{KEEP_DIR}/{index}"
        before.append(Shell("cp -p {0} {1}", (path, copy)))
        after.append(Shell("if [ -e {0} ]; then rm -f {1}; else mv {1} {0}; fi", (path, copy)))
    return (*before, *actions, *after)


def predict_update(facts: Facts, names: tuple[str, ...]) -> Facts:
    return facts.replace(packages={**facts.packages, **{name: "(to be updated)" for name in names}})


def predict_mta(facts: Facts, platform: Platform) -> Facts:
    """The facts after ``alternatives --set``: postfix's binary, and its PAM file behind /etc/pam.d/smtp."""
    alternative = platform.mta_alternative
    facts = facts.replace(extra={**facts.extra, MTA_PROBE: alternative.postfix})
    target = platform.pam_smtp_link_target
    if target is None:
        return facts
    shipped = facts.file(target)
    pam = "/etc/pam.d/smtp"
    if shipped.exists and shipped.content is not None:
        return facts.with_file(dataclasses.replace(shipped, path=pam, link_target=target))
    # postfix is installed by this run: its file's text is known once it is
    return facts.with_file(FileState(pam, exists=True, from_package="postfix", link_target=target))


def _mta_probe() -> Probe:
    links = sorted({p.mta_alternative.link for p in ALL if p.mta_alternative is not None})
    script = "; ".join(f"readlink {link} 2>/dev/null" for link in links) + "; true"
    return Probe(MTA_PROBE, script, parse_first_line)


class Packages(Step):
    name = "packages"
    refresh_after_apply = True

    def needs(self, vars: MailVars) -> FactSpec:
        files: dict[str, None] = {}
        for platform in ALL:
            for paths in platform.package_files.values():
                files.update(dict.fromkeys(paths))
        return FactSpec(
            packages=_all_names(),
            files=tuple(files),
            users=("postfix",),
            groups=("sasl", "saslauth", "postdrop"),
            services=("postfix", "postfix@-", "saslauthd"),
            extra=(_mta_probe(),),
        )

    def check(self, ctx: Context) -> list[Change]:
        platform, facts = ctx.platform, ctx.facts
        changes: list[Change] = []
        # Postfix first: it takes over as the MTA, so purging sendmail afterwards
        # does not take with it the packages that need one (bsd-mailx, cron...).
        missing = tuple(name for name in platform.mail_packages if name not in facts.packages)
        if missing:
            changes.append(
                Change(
                    step=self.name,
                    summary="install " + ", ".join(missing),
                    actions=platform.install(missing),
                    notify=frozenset({"postfix:restart"}) if "postfix" in missing else frozenset(),
                    effect=lambda f, names=missing, p=platform: predict_install(f, p, names),
                    installs=missing,
                )
            )
        old = [(name, floor) for name in platform.mail_packages
               if (floor := platform.below_floor(name, facts.packages.get(name))) is not None]
        if old:
            names = tuple(name for name, _ in old)
            changes.append(
                Change(
                    step=self.name,
                    summary="update " + "; ".join(
                        f"{name} {facts.packages[name]} ({floor.lacks} need {floor.release} or later)"
                        for name, floor in old),
                    actions=platform.update(names),
                    notify=frozenset({"postfix:restart"}) if "postfix" in names else frozenset(),
                    effect=lambda f, names=names: predict_update(f, names),
                )
            )
        present = tuple(name for name in platform.sendmail_packages if name in facts.packages)
        if ctx.vars.remove_sendmail and present:
            kept = tuple(path for name in present for path in platform.purge_takes.get(name, ())
                         if facts.file(path).exists)
            changes.append(
                Change(
                    step=self.name,
                    summary="remove " + ", ".join(present) + (f" (keeping {', '.join(kept)})" if kept else ""),
                    actions=keeping(kept, platform.remove(present)),
                    effect=lambda f, names=present: predict_remove(f, names),
                )
            )
        mta = self._mta(ctx, removing_sendmail=ctx.vars.remove_sendmail and bool(present))
        if mta:
            changes.append(mta)
        return changes

    def _mta(self, ctx: Context, removing_sendmail: bool) -> Change | None:
        alternative = ctx.platform.mta_alternative
        current = ctx.facts.extra.get(MTA_PROBE)
        if alternative is None or not current or current == alternative.postfix:
            return None
        if current == alternative.sendmail:
            if removing_sendmail:
                return None  # sendmail's package takes its entry along; postfix's is the one left
            why = "sendmail stays installed, and its priority would keep /usr/sbin/sendmail and /etc/pam.d/smtp"
        else:
            why = f"it was {current}"
        return Change(
            step=self.name,
            summary=f"make postfix the {alternative.name} alternative ({why})",
            # The journal records the alternative it was, for a rollback.
            actions=(Journaled(Command(("alternatives", "--set", alternative.name, alternative.postfix)),
                               (Undo(f"make {current} the {alternative.name} alternative again",
                                     Command(("alternatives", "--set", alternative.name, current)).render()),)),),
            effect=lambda f, p=ctx.platform: predict_mta(f, p),
        )

    def reconcile(self, before: Facts, after: Facts, changes: list[Change], platform: Platform) -> Facts:
        """Files the packages this run installed dropped or replaced are marked as shipped by them."""
        installed = [name for name in platform.mail_packages if name not in before.packages and name in after.packages]
        files = dict(after.files)
        for name in installed:
            for path in platform.package_files.get(name, ()):
                was = before.files.get(path)
                now = files.get(path)
                # New, or changed by the install (/etc/pam.d/smtp once the mta alternative is postfix's).
                if now is not None and now.exists and not (was and was.exists and was.content == now.content):
                    files[path] = FileState(**{**now.__dict__, "from_package": name})
        return after.replace(files=files)
