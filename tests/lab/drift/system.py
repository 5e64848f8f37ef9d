"""The drift catalogue: packages, services, accounts and the firewall."""

from __future__ import annotations

from drift.model import (
    MARKER, Mutation, RELOAD, RESTART_SASLAUTHD, SASLAUTHD,
)


def _gone(daemon: str) -> str:
    """Waits (up to 5 s) for the daemon to exit: `systemctl stop` can return while it is still going."""
    return (f"for _i in $(seq 50); do pgrep -x {daemon} >/dev/null || break; sleep 0.1; done; "
            f"! pgrep -x {daemon} >/dev/null")


MUTATIONS: tuple[Mutation, ...] = (
    # ------------------------------------------------------------ packages
    Mutation(
        "pkg.remove", "packages", "remove one", "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q sasl2-bin "
        ">/dev/null 2>&1", "repair",
        "Installed again, saslauthd enabled and started.",
        plan=(("packages", "install sasl2-bin"), ("services", "enable saslauthd at boot"),
              ("services", "start saslauthd")),
        mentions=(("packages", "install sasl2-bin"),), touches=("pkg/sasl2-bin", "saslauthd/#service")),
    Mutation(
        "pkg.purge", "packages", "remove one (purged, with its configuration)",
        "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q sasl2-bin >/dev/null 2>&1", "repair",
        "Installed again; the shipped settings file edited; saslauthd enabled and started.",
        plan=(("packages", "install sasl2-bin"),
              ("sasl", f"set START, MECHANISMS, OPTIONS in {SASLAUTHD} (file as shipped by sasl2-bin)"),
              ("services", "enable saslauthd at boot"), ("services", "start saslauthd")),
        mentions=(("packages", "install sasl2-bin"), ("sasl", f"in {SASLAUTHD} (file as shipped by sasl2-bin)")),
        touches=("pkg/sasl2-bin", "saslauthd", "saslauthd/#service"), destroys=("saslauthd tuning",)),
    Mutation(
        "pkg.remove_postfix", "packages", "remove one (the MTA)",
        "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q postfix >/dev/null 2>&1", "repair",
        "Postfix installed again with its configuration kept, enabled and started.",
        plan=(("packages", "install postfix"), ("services", "enable postfix at boot"), ("services", "start postfix")),
        mentions=(("packages", "install postfix"),), touches=("pkg/postfix", "postfix/#service")),
    Mutation(
        "pkg.sendmail", "packages", "install a conflicting MTA",
        # sendmail-base ships /etc/pam.d/smtp as a conffile: the admin keeps ours (dpkg's default answer).
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold sendmail-bin "
        ">/dev/null 2>&1", "repair",
        "sendmail (which replaced Postfix) is purged and Postfix installed again and started; /etc/pam.d/smtp, "
        "which sendmail-base took as its conffile, is kept across the purge.",
        mentions=(("packages", "install postfix"), ("packages", "remove sendmail-bin"),
                  ("packages", "(keeping /etc/pam.d/smtp)")),
        touches=("pkg/postfix", "pkg/sendmail", "postfix/#service", "pam_smtp"), solo=True),
    Mutation(
        "pkg.half_configured", "packages", "leave a package half-configured",
        "dpkg --unpack /srv/repo/sasl2-bin_*.deb >/dev/null 2>&1", "repair",
        "The unpacked package is configured (the plan says 'install': dpkg reports it not installed) and "
        "saslauthd enabled at boot again.",
        plan=(("packages", "install sasl2-bin"), ("services", "enable saslauthd at boot")),
        mentions=(("packages", "install sasl2-bin"),), touches=("pkg/sasl2-bin", "saslauthd/#service")),
    # ------------------------------------------------------------ services
    Mutation(
        "svc.stop_postfix", "services", "stop", f"systemctl stop postfix && {_gone('master')}", "repair", "Started.",
        plan=(("services", "start postfix"),), mentions=(("services", "start postfix"),),
        touches=("postfix/#service",)),
    Mutation(
        "svc.kill_master", "services", "stop (the daemon dies, the unit stays active)",
        f"kill -9 $(pgrep -x master) && {_gone('master')}", "repair", "Started (the process table is the truth).",
        plan=(("services", "start postfix"),), mentions=(("services", "start postfix"),),
        touches=("postfix/#service",)),
    Mutation(
        "svc.stop_saslauthd", "services", "stop", f"systemctl stop saslauthd && {_gone('saslauthd')}", "repair",
        "Started.",
        plan=(("services", "start saslauthd"),), mentions=(("services", "start saslauthd"),),
        touches=("saslauthd/#service",)),
    Mutation(
        "svc.disable_postfix", "services", "disable", "systemctl disable --quiet postfix", "repair",
        "Enabled at boot.",
        plan=(("services", "enable postfix at boot"),), mentions=(("services", "enable postfix at boot"),),
        touches=("postfix/#service",)),
    Mutation(
        "svc.disable_saslauthd", "services", "disable", "update-rc.d saslauthd disable >/dev/null 2>&1", "repair",
        "Enabled at boot.",
        plan=(("services", "enable saslauthd at boot"),), mentions=(("services", "enable saslauthd at boot"),),
        touches=("saslauthd/#service",)),
    Mutation(
        "svc.mask_postfix", "services", "mask",
        f"systemctl mask --quiet postfix && systemctl stop postfix && {_gone('master')}", "repair",
        "Unmasked, enabled at boot and started.",
        plan=(("services", "unmask and enable postfix at boot"), ("services", "start postfix")),
        mentions=(("services", "postfix at boot"), ("services", "start postfix")),
        touches=("postfix/#service",), undo="systemctl unmask --quiet postfix", solo=True),
    Mutation(
        "svc.mask_saslauthd", "services", "mask", "systemctl mask --quiet saslauthd", "repair",
        "Unmasked and enabled at boot.",
        plan=(("services", "unmask and enable saslauthd at boot"),),
        mentions=(("services", "saslauthd at boot"),),
        touches=("saslauthd/#service",), undo="systemctl unmask --quiet saslauthd", solo=True),
    # ------------------------------------------------------------ accounts
    Mutation(
        "acct.user_out_of_group", "accounts", "remove the user from the group", "gpasswd -d mailuser mail_login "
        ">/dev/null", "repair", "The user is added back.",
        plan=(("pam", "add mailuser to group mail_login"),), mentions=(("pam", "add mailuser to group mail_login"),),
        touches=("group/mail_login",)),
    Mutation(
        "acct.group_deleted", "accounts", "delete the group", "groupdel mail_login", "repair",
        "The group is created and the user added.",
        plan=(("pam", "create group mail_login"), ("pam", "add mailuser to group mail_login")),
        mentions=(("pam", "create group mail_login"),), touches=("group/mail_login",)),
    Mutation(
        "acct.extra_member", "accounts", "an extra member while exclusive_membership is on",
        "usermod -a -G mail_login outsider", "repair",
        "The extra member is removed and saslauthd restarted (it caches logins).",
        plan=(("pam", "remove outsider from group mail_login (exclusive membership)"), RESTART_SASLAUTHD),
        mentions=(("pam", "remove outsider from group mail_login"),), touches=("group/mail_login",)),
    Mutation(
        "acct.postfix_out_of_sasl", "accounts", "remove the user from the group (postfix from sasl)",
        "gpasswd -d postfix sasl >/dev/null", "repair",
        "postfix is added back to group sasl and Postfix reloaded (new smtpd processes get the group).",
        plan=(("sasl", "add postfix to group sasl"), RELOAD), mentions=(("sasl", "add postfix to group sasl"),),
        touches=("group/sasl",)),
    # ------------------------------------------------------------ firewall
    Mutation(
        "fw.leftover_lockdown", "firewall", "a leftover lockdown rule on a verified host",
        "nft -f - <<'EOF'\ntable inet provisioner_lockdown {\n  chain input {\n"
        "    type filter hook input priority -10; policy accept;\n"
        "    ip saddr {control} tcp dport { 25, 465, 587 } accept\n"
        "    tcp dport { 25, 465, 587 } reject with tcp reset\n  }\n}\nEOF", "repair",
        "Lifted after verify passed (the host is verified: it serves live mail).",
        plan=(("firewall_lift", "lift the port 25/465/587 lockdown (verify passed)"),),
        mentions=(("firewall_lift", "lift the port 25/465/587 lockdown"),), touches=("firewall",)),
    Mutation(
        "fw.foreign_reject", "firewall", "an extra rule that shuts port 25",
        "nft -f - <<'EOF'\ntable inet drift_block {\n  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n    tcp dport 25 reject with tcp reset\n  }\n}\nEOF",
        "refuse",
        "Refused: another table's rule is the admin's, never touched; the host fails naming it, before any change.",
        touches=("firewall",), error=r"(?i)port 25.*(drift_block|rule|firewall)",
        undo="nft delete table inet drift_block", solo=True),
    Mutation(
        "fw.marker_deleted", "firewall", "the verified marker deleted",
        f"rm {MARKER}", "repair",
        "The host counts as never verified: locked down first (also across reboots until verify passes), lifted "
        "after verify passed, marker written again.",
        plan=(("firewall_lockdown", "lock down inbound 25, 465, 587 except from {control} (nftables)"),
              ("firewall_lockdown", "keep the lockdown across reboots (provisioner-lockdown.service, loaded before "
                                    "the network and Postfix)"),
              ("firewall_lift", "lift the port 25/465/587 lockdown (verify passed)")),
        mentions=(("firewall_lockdown", "lock down inbound"),), touches=("firewall",)),
)
