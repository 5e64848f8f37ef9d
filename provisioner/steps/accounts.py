"""Group membership: whether a user is in a group, the changes that put one in, and the facts after them."""

from __future__ import annotations

from provisioner.model import Change, Facts, JoinGroup, LeaveGroup, UserState


def in_group(facts: Facts, user: str, group: str) -> bool:
    """By the user's groups (``id -nG``, primary group included) or the group's member list."""
    state = facts.users.get(user)
    return (state is not None and group in state.groups) or user in facts.groups.get(group, ())


def add_to_group(facts: Facts, user: str, group: str) -> Facts:
    """Facts after ``usermod -a -G group user``."""
    users = dict(facts.users)
    state = users.get(user, UserState(name=user))
    if group not in state.groups:
        users[user] = UserState(name=user, groups=(*state.groups, group))
    groups = dict(facts.groups)
    members = groups.get(group, ())
    if user not in members:
        groups[group] = (*members, user)
    return facts.replace(users=users, groups=groups)


def remove_from_group(facts: Facts, user: str, group: str) -> Facts:
    """Facts after ``gpasswd -d user group``."""
    groups = dict(facts.groups)
    groups[group] = tuple(m for m in groups.get(group, ()) if m != user)
    users = dict(facts.users)
    if user in users:
        users[user] = UserState(name=user, groups=tuple(g for g in users[user].groups if g != group))
    return facts.replace(users=users, groups=groups)


def create_group(facts: Facts, group: str) -> Facts:
    return facts.replace(groups={**facts.groups, group: facts.groups.get(group, ())})


def join_group(step: str, user: str, group: str, notify: frozenset[str] = frozenset()) -> Change:
    return Change(
        step=step,
        summary=f"add {user} to group {group}",
        actions=(JoinGroup(user, group),),
        notify=notify,
        effect=lambda f: add_to_group(f, user, group),
    )


def leave_group(step: str, user: str, group: str, why: str, notify: frozenset[str] = frozenset()) -> Change:
    return Change(
        step=step,
        summary=f"remove {user} from group {group} ({why})",
        actions=(LeaveGroup(user, group),),
        notify=notify,
        effect=lambda f: remove_from_group(f, user, group),
    )
