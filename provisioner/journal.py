"""The run journal on the host: every change is recorded, before it is made, with how to undo it.

Each real run has an id (``new_run_id``: UTC time and random hex). While it
runs, a *holder* (provisioner/holder.py, a bash process on its own SSH
channel) holds the host's lock and owns the run's directory::

    /var/lib/provisioner/runs/<run-id>/     mode 0700, root only
      info        run id, control node, start time
      status      open | committed | rolling-back | rolled-back | rollback-failed
      lib.sh      LIBRARY: the functions every step script sources
      seq         the last entry number
      undo/N      one entry per recorded change: how to put back what it changes
      files/N     the copy of a file as it was before this run (0600; symlinks as links)
      services/S  how to bring a service back to its state before the run (S.boot; S.run or S.stop)
      kept, kept-attrs, tmps, active, log

Entries are written whole (a temporary name, then ``mv``) and *before* the
change they undo, so whatever stops a script -- a failing command, a kill, a
dropped link -- the journal covers every change already made. Entries are
data, not code, except ``sh`` entries, whose code the product rendered from
quoted arguments:

    file N UID:GID MODE PATH   put back files/N with that owner and mode (and its mtime)
    link N - - PATH            put back the symlink files/N
    absent - - - PATH          the file did not exist: remove it
    dir - - - PATH             the directory did not exist: remove it if empty
    attrs - UID:GID MODE PATH  put back owner and mode
    sh - - - DESCRIPTION       (second line: the code to run)

A rollback (``_pv_rollback``) stops the run's step script if one still runs
(its whole process tree), removes its temporary files, stops the services
that did not run before the run (while their configuration is still there
to stop them with), runs this run's entries, newest first, each in its own
``sh -e``, then puts back the services' boot state and brings back those
that ran, with the restored configuration. Nothing outside this run's directory is ever read
back: a backup left by an earlier run cannot return.

Every script here stops at its first failing command by construction: plain
commands under ``set -e``, conditions only in ``if``/``while``, and ``||``
only in the deliberate forms ``|| true``, ``|| :``, ``|| return N``,
``|| exit N`` or ``|| _name=$?`` (tests/unit/test_rendering.py checks it).
Functions that may be called in a condition (where ``set -e`` is off) check
each command with ``|| return 1``.
"""

from __future__ import annotations

import secrets
import shlex
from datetime import datetime, timezone
from importlib import resources

STATE_DIR = "/var/lib/provisioner"
RUNS_DIR = f"{STATE_DIR}/runs"

PREAMBLE = (
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH\n"
    "LC_ALL=C; export LC_ALL\n"
)


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def run_dir(run_id: str, root: str = "") -> str:
    """The run's directory; ``root`` prefixes every host path (the unit tests run the shell code in a scratch tree)."""
    return f"{root}{RUNS_DIR}/{run_id}"


# The functions a step script sources (and a rollback runs): POSIX sh, shipped beside this module.
LIBRARY = resources.files("provisioner").joinpath("journal.sh").read_text(encoding="utf-8")


def step_script(run_id: str, body: str, root: str = "") -> str:
    """A step's remote script: the journal library, then ``body`` (its rendered actions) under ``set -e``."""
    directory = shlex.quote(run_dir(run_id, root))
    return (
        "set -e\n" + PREAMBLE
        + f"_pv_id={shlex.quote(run_id)}\n_pv_run={directory}\n"
        + '. "$_pv_run/lib.sh"\n'
        + "_pv_step_begin\n"
        + body.rstrip("\n") + "\n"
        + "_pv_step_end\n"
    )
