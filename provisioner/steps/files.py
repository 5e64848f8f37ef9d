"""Changes that manage a file: write it whole (with its diff and the state it leaves), or fix its attributes.

Every step that writes a file builds its change here, so that the write, the
diff the plan shows, the files a failed run restores (``writes``) and the
state later steps plan from (``effect``) always agree.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib

from provisioner.model import Action, Change, FileState, Journaled, SetAttributes, Undo, WriteFile, one_line


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
    return text


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
) -> Change:
    """Write ``content`` to ``before.path``, the file as the facts have it.

    ``secret``: no diff, and the predicted state holds no content.
    ``show_diff=False``: no diff (a file whose current text is not known yet).
    ``digest``: the predicted state carries the content's sha256 (for steps
    that compare digests). ``origin``: the package the file stays marked as
    shipped by. ``prelude``, ``then``: actions that run before and after the
    write. ``after_restore``: what makes a rollback of the file take effect
    (recorded in the journal before the write, so a rollback runs it after
    the file is back).
    """
    path = before.path
    written = FileState(
        path,
        exists=True,
        content=None if secret else content,
        sha256=hashlib.sha256(content.encode()).hexdigest() if digest else None,
        mode=mode,
        owner=owner,
        group=group,
        from_package=origin,
    )
    return Change(
        step=step,
        summary=summary,
        actions=(*prelude, _restorable(WriteFile(path, content, mode=mode, owner=owner, group=group, secret=secret),
                                       after_restore), *then),
        diff=unified_diff(path, before.content if before.exists else None, content)
        if show_diff and not secret else None,
        notify=notify,
        writes=(path,),
        effect=lambda facts: facts.with_file(written),
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


def attributes_change(step: str, state: FileState, mode: str, owner: str = "root", group: str = "root") -> Change | None:
    """A SetAttributes change when a file's mode or owner drifted, else None."""
    if not state.exists:
        return None
    owner_ok = (state.owner in (None, owner)) and (state.group in (None, group))
    mode_ok = state.mode is None or _same_mode(state.mode, mode)
    if owner_ok and mode_ok:
        return None
    parts = []
    if not owner_ok:
        parts.append(f"owner {owner}:{group}")
    if not mode_ok:
        parts.append(f"mode {mode}")
    return Change(
        step=step,
        summary=f"set {' and '.join(parts)} on {state.path}",
        actions=(SetAttributes(state.path, mode=None if mode_ok else mode,
                               owner=None if owner_ok else owner, group=None if owner_ok else group),),
        effect=lambda f: f.with_file(dataclasses.replace(f.file(state.path), mode=mode, owner=owner, group=group)),
    )
