"""Changes that manage a file: write it whole (with its diff and the state it leaves), or fix its attributes.

Every step that writes a file builds its change here, so that the write, the
diff the plan shows, the files a failed run restores (``writes``) and the
state later steps plan from (``effect``) always agree.

The policy every managed file shares:

* its owner and mode are part of its state: a file whose text is right but
  whose attributes drifted gets ``set owner root:root and mode 644 on X``, and
  a rewrite writes the wanted attributes, never the drifted ones;
* a symlink that ends inside /etc is followed: the file it ends at is written
  (or chmod'ed) and the link stays, as an admin (or EL's alternatives) made
  it; a symlink that leaves /etc is refused for the whole host before any step
  applies (``refuse_outside_links``): the tool writes nothing outside /etc;
* text is bytes decoded with surrogateescape (a byte that is not UTF-8 comes
  back as written); diffs show such a byte as an escape (``\\xe9``) and a CR
  as ``\\r`` (a terminal would hide it).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re

from provisioner.model import (
    Action, Change, Facts, FileState, Journaled, SetAttributes, Undo, WriteFile, file_bytes, one_line,
)
from provisioner.steps.base import StepError

INSIDE = "/etc/"
_CR_AT_EOL = re.compile(r"\r+$", re.MULTILINE)


def shown(text: str) -> str:
    """``text`` safe to print: a byte that was not UTF-8 as an escape (``\\xe9``), a CR as ``\\r``, never raw."""
    return file_bytes(text).decode("utf-8", errors="backslashreplace").replace("\r", "\\r")


def text_sha256(text: str) -> str:
    return hashlib.sha256(file_bytes(text)).hexdigest()


def has_cr(text: str) -> bool:
    """A line ends in CR (CRLF endings): drift in files whose readers keep the CR (sh, libpam)."""
    return _CR_AT_EOL.search(text) is not None


def with_lf(text: str) -> str:
    """``text`` with every line's trailing CRs dropped."""
    return _CR_AT_EOL.sub("", text)


def outside_link(state: FileState) -> bool:
    return (state.path.startswith(INSIDE) and state.link_target is not None
            and not state.link_target.startswith(INSIDE))


def refuse_outside_links(host: str, facts: Facts) -> None:
    """Fail the host, before any step applies, when a managed file under /etc is a symlink that leaves /etc.

    Writing through it would change a file outside /etc (where the tool never
    writes); replacing it would undo the admin's link. Either is the admin's
    call, so nothing is touched.
    """
    refused = [state for _, state in sorted(facts.files.items()) if outside_link(state)]
    if refused:
        raise StepError(f"{host}: " + "; ".join(
            f"{state.path} is a symlink to {state.link_target}, outside /etc: not touched" for state in refused))


def unified_diff(path: str, old: str | None, new: str | None) -> str:
    old_lines = (old or "").splitlines(keepends=True)
    new_lines = (new or "").splitlines(keepends=True)
    diff = difflib.unified_diff(
        old_lines,
        new_lines,
        fromfile=path if old is not None else "/dev/null",
        tofile=path if new is not None else "/dev/null",
    )
    text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff)
    return shown(text)


def write_change(
    step: str,
    summary: str,
    before: FileState,
    content: str,
    *,
    mode: str = "644",
    owner: str = "root",
    group: str = "root",
    notify: frozenset[str] = frozenset(),
    secret: bool = False,
    show_diff: bool = True,
    digest: bool = False,
    origin: str | None = None,
    prelude: tuple[Action, ...] = (),
    then: tuple[Action, ...] = (),
    after_restore: tuple[Action, ...] = (),
    settled: bool = False,
) -> Change:
    """Write ``content`` to ``before.path``, the file as the facts have it.

    ``secret``: no diff, and the predicted state holds no content.
    ``show_diff=False``: no diff (a file whose current text is not known yet).
    ``digest``: the predicted state carries the content's sha256 (for steps
    that compare digests). ``origin``: the package the file stays marked as
    shipped by. ``prelude``, ``then``: actions that run before and after the
    write. ``after_restore``: what makes a rollback of the file take effect
    (recorded in the journal before the write, so a rollback runs it after
    the file is back). ``settled``: see WriteFile.
    """
    path = before.path
    drifted = attributes_drift(before, mode, owner, group)
    if drifted:
        # The write sets them: say so, a plan must name every drift it repairs.
        summary = f"{summary}; set {drifted} on {path}"
    # A link inside /etc (the only kind left once refuse_outside_links passed) is written through.
    target = before.link_target or path
    written = FileState(
        path,
        exists=True,
        content=None if secret else content,
        sha256=text_sha256(content) if digest else None,
        mode=mode,
        owner=owner,
        group=group,
        from_package=origin,
        link_target=before.link_target,
    )

    def effect(facts: Facts) -> Facts:
        facts = facts.with_file(written)
        if target != path:
            facts = facts.with_file(dataclasses.replace(written, path=target, link_target=None, from_package=None))
        return facts

    return Change(
        step=step,
        summary=summary,
        actions=(*prelude, _restorable(WriteFile(target, content, mode=mode, owner=owner, group=group, secret=secret,
                                                 settled=settled),
                                       after_restore), *then),
        diff=unified_diff(path, before.content if before.exists else None, content)
        if show_diff and not secret else None,
        notify=notify,
        writes=(target,),
        effect=effect,
        after_restore=after_restore,
    )


def _restorable(write: WriteFile, after_restore: tuple[Action, ...]) -> Action:
    if not after_restore:
        return write
    return Journaled(write, (Undo(f"make the restored {write.path} take effect", one_line(after_restore)),))


def _same_mode(actual: str | None, wanted: str) -> bool:
    try:
        return actual is not None and int(actual, 8) == int(wanted, 8)
    except ValueError:
        return False


def _attributes_ok(state: FileState, mode: str, owner: str, group: str) -> tuple[bool, bool]:
    owner_ok = (state.owner in (None, owner)) and (state.group in (None, group))
    return owner_ok, state.mode is None or _same_mode(state.mode, mode)


def attributes_drift(state: FileState, mode: str, owner: str = "root", group: str = "root") -> str | None:
    """What a file's attributes must become, in the one wording (``owner root:root and mode 644``), or None."""
    if not state.exists:
        return None
    owner_ok, mode_ok = _attributes_ok(state, mode, owner, group)
    parts = ([] if owner_ok else [f"owner {owner}:{group}"]) + ([] if mode_ok else [f"mode {mode}"])
    return " and ".join(parts) or None


def attributes_change(step: str, state: FileState, mode: str, owner: str = "root", group: str = "root",
                      notify: frozenset[str] = frozenset()) -> Change | None:
    """A SetAttributes change when a file's mode or owner drifted, else None (a link: its target's)."""
    drifted = attributes_drift(state, mode, owner, group)
    if drifted is None:
        return None
    owner_ok, mode_ok = _attributes_ok(state, mode, owner, group)
    return Change(
        step=step,
        summary=f"set {drifted} on {state.path}",
        actions=(SetAttributes(state.link_target or state.path, mode=None if mode_ok else mode,
                               owner=None if owner_ok else owner, group=None if owner_ok else group),),
        notify=notify,
        effect=lambda f: f.with_file(dataclasses.replace(f.file(state.path), mode=mode, owner=owner, group=group)),
    )
