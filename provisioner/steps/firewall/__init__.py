"""The port-25 lockdown: closed to all but the control node until verify passes.

The seed blocks port 25 with iptables before Postfix is configured, because
open relays are found within minutes, and opens it once the configuration is
tested. Here ``FirewallLockdown`` is the first step of a run: inbound TCP 25,
465 and 587 are refused to everyone except the control node (so that verify
can reach them), and ``FirewallLift`` removes that lockdown only after verify
has passed, writing ``VERIFIED_MARKER``. A host that carries the marker is
never locked down again by a rerun: that would bounce live mail.

Mechanisms (only ever our own table, chain or tagged rules; a user's ruleset
is never flushed or replaced, SSH and every other port are never touched):

- firewalld, when it runs (any family, in practice EL7/EL8/EL9): *direct*
  rules tagged with ``-m comment --comment provisioner-lockdown``:
  ``ACCEPT`` from the control address at priority 0 and ``REJECT --reject-with
  tcp-reset`` for everyone at priority 1, for IPv4 and IPv6. Direct rules are
  evaluated before any zone: with the iptables backend (EL7) they sit in
  INPUT_direct, jumped to first; with the nftables backend (EL8+) they are
  iptables-nft rules at priority 0, before firewalld's own chains at +10. So
  the REJECT closes the ports whatever an admin put in a zone (removing the
  smtp service from a zone would not: a port, a rich rule or another zone can
  still open it). Rich rules cannot express "allow one source, reject the
  rest" on EL7: firewalld evaluates every reject rich rule before any accept.
  Rules are added to the runtime and to the permanent configuration, each
  by its own command: no ``--reload``, which would also throw away every
  runtime-only change an admin made. (The direct interface is deprecated
  since firewalld 1.0 but still present in EL9.)
- nftables (``nft``), else iptables: on Debian, and on EL hosts whose firewalld
  is not running. nft: our own table ``inet provisioner_lockdown`` with a
  base chain ``input`` at priority -10 (before the usual filter chains at 0;
  a reject there is final whatever later chains say), loaded atomically with
  ``nft -f -`` (the table is declared, deleted and redefined in one
  transaction, so a drifted lockdown is replaced without an open window).
  iptables: our own chain ``PROVISIONER_LOCKDOWN`` (and the same in
  ip6tables, so IPv6 is closed too), jumped to from INPUT position 1. The
  chain is refilled reject-first, so a drifted lockdown never opens.

Persistence: the lockdown is meant to live from the first run until verify
passes, usually minutes within the same run. On EL6 it is saved with
``service iptables save`` (and ip6tables) when that service is enabled at
boot, because that is where EL6 keeps its firewall. firewalld gets it in the
permanent configuration. nft and plain iptables rules on Debian stay runtime
only: persisting them would mean editing the admin's /etc/nftables.conf (whose
``flush ruleset`` would also wipe our table whenever nftables.service
restarts). A reboot between a failed verify and the next run therefore
reopens the ports on Debian; the next run locks them down again first.

Opening the mail ports: verify connects from the control node, and once the
lockdown is lifted the world must reach Postfix. Where the host's own stock
firewall closes them, the lockdown step also opens the mail ports Postfix
serves (25, plus 587 with ``submission``, 465 with ``smtps``), after the
lockdown is in place so that they are never open to all before verify:
- firewalld: ``--add-port=N/tcp`` in the default zone (runtime and permanent)
  for each port not already open there by a port or by the smtp, smtps or
  smtp-submission service. Its default zone (public) opens only ssh and
  dhcpv6-client, and with the nftables backend an ACCEPT direct rule does
  not get past the zone, so even verify needs this.
- EL6: its stock /etc/sysconfig/iptables rejects every new inbound
  connection but SSH. Our own chain ``PROVISIONER_OPEN`` accepts the mail
  ports; its jump goes right after the lockdown's jump, so it never lets
  anyone past the lockdown.
Debian has no stock firewall; an admin's own ruleset there is theirs to open.

No firewall tool (``firewall_when_missing``): ``install`` installs one and
locks down in the same change (nftables on Debian and EL8, iptables on EL6
and EL7; never firewalld, whose start would apply its default zone and close
every other port of the host). ``skip`` leaves the ports open, and the plan
says so with a change that has no action: an unverified host whose ports
cannot be closed is pending work, and the change disappears once verify has
passed and the marker is written (a verified host needs no lockdown).

The package follows these seams: ``state`` (the state types and the probe
that reads them), ``backends`` (one object per mechanism behind one
interface, so no decision asks which mechanism it is), ``lockdown`` and
``lift`` (the two steps).
"""

from provisioner.steps.firewall.lift import FirewallLift
from provisioner.steps.firewall.lockdown import FirewallLockdown

__all__ = ["FirewallLift", "FirewallLockdown"]
