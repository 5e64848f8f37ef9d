"""Install Postfix and Cyrus SASL; remove sendmail.

"sendmail removed" means no package of the sendmail family is installed any
more: on Debian removing sendmail-bin alone leaves sendmail-base and
sendmail-cf behind, so all of them go, purged.
"""

from __future__ import annotations

from provisioner.probes import FactSpec
from provisioner.vars import MailVars
from provisioner.model import Change, Facts, FileState, ServiceState, UserState
from provisioner.platforms import ALL, Platform
from provisioner.steps.base import Context, Step


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
        if ctx.vars.remove_sendmail:
            present = tuple(name for name in platform.sendmail_packages if name in facts.packages)
            if present:
                changes.append(
                    Change(
                        step=self.name,
                        summary="remove " + ", ".join(present),
                        actions=platform.remove(present),
                        effect=lambda f, names=present: predict_remove(f, names),
                    )
                )
        return changes

    def reconcile(self, before: Facts, after: Facts, changes: list[Change], platform: Platform) -> Facts:
        installed = [name for name in platform.mail_packages if name not in before.packages and name in after.packages]
        files = dict(after.files)
        for name in installed:
            for path in platform.package_files.get(name, ()):
                was = before.files.get(path)
                now = files.get(path)
                if now is not None and now.exists and not (was and was.exists):
                    files[path] = FileState(**{**now.__dict__, "from_package": name})
        return after.replace(files=files)
