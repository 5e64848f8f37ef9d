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


# The functions a step script sources (and a rollback runs). POSIX sh.
LIBRARY = r"""# provisioner run journal: sourced by step scripts, run by rollbacks. _pv_run is the run directory.
_pv_fail() {
  printf 'provisioner: %s\n' "$*" >&2
  exit 1
}

_pv_set_status() {
  printf '%s\n' "$1" > "$_pv_run/status.new"
  mv -f "$_pv_run/status.new" "$_pv_run/status"
}

_pv_next() {
  read -r _pv_n < "$_pv_run/seq"
  _pv_n=$((_pv_n + 1))
  printf '%s\n' "$_pv_n" > "$_pv_run/seq.new"
  mv -f "$_pv_run/seq.new" "$_pv_run/seq"
  _pv_n=$(printf '%06d' "$_pv_n")
}

_pv_entry() {
  _pv_next
  printf '%s\n' "$1" > "$_pv_run/undo/.$_pv_n"
  mv -f "$_pv_run/undo/.$_pv_n" "$_pv_run/undo/$_pv_n"
}

# --- what a step script calls before it changes something

_pv_keep() {
  if grep -Fxq -e "$1" "$_pv_run/kept"; then
    return 0
  fi
  if [ -L "$1" ]; then
    _pv_next
    cp -P "$1" "$_pv_run/files/$_pv_n"
    _pv_entry "link $_pv_n - - $1"
  elif [ -e "$1" ]; then
    _pv_next
    _pv_b=$_pv_n
    _pv_a=$(stat -c '%u:%g %a' "$1")
    cp -p "$1" "$_pv_run/files/$_pv_b"
    chmod 600 "$_pv_run/files/$_pv_b"
    _pv_entry "file $_pv_b $_pv_a $1"
  else
    _pv_entry "absent - - - $1"
  fi
  printf '%s\n' "$1" >> "$_pv_run/kept"
}

_pv_keep_attrs() {
  if grep -Fxq -e "$1" "$_pv_run/kept"; then
    return 0
  fi
  if grep -Fxq -e "$1" "$_pv_run/kept-attrs"; then
    return 0
  fi
  _pv_a=$(stat -c '%u:%g %a' "$1")
  _pv_entry "attrs - $_pv_a $1"
  printf '%s\n' "$1" >> "$_pv_run/kept-attrs"
}

_pv_keep_dir() {
  if [ -d "$1" ]; then
    _pv_keep_attrs "$1"
    return 0
  fi
  if grep -Fxq -e "$1" "$_pv_run/kept"; then
    return 0
  fi
  _pv_entry "dir - - - $1"
  printf '%s\n' "$1" >> "$_pv_run/kept"
}

_pv_undo() {
  _pv_entry "sh - - - $1
$2"
}

_pv_service() {
  printf '%s\n%s\n' "$2" "$3" > "$_pv_run/services/.$1"
  mv -f "$_pv_run/services/.$1" "$_pv_run/services/$1"
}

_pv_tmp() {
  _pv_t=$(mktemp "$(dirname "$1")/.$(basename "$1").provisioner.XXXXXX")
  printf '%s\n' "$_pv_t" >> "$_pv_run/tmps"
}

_pv_tmpdir() {
  _pv_t=$(mktemp -d "$1/.provisioner.XXXXXX")
  printf '%s\n' "$_pv_t" >> "$_pv_run/tmps"
}

_pv_drop_tmps() {
  if [ -s "$_pv_run/tmps" ]; then
    while IFS= read -r _pv_x; do
      rm -rf "$_pv_x"
    done < "$_pv_run/tmps"
  fi
  : > "$_pv_run/tmps"
}

# --- a step script's life: registered as the run's active script, its temporary files removed on failure

_pv_starttime() {
  sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f20
}

_pv_step_begin() {
  printf '%s %s\n' "$$" "$(_pv_starttime $$)" > "$_pv_run/active.new"
  mv -f "$_pv_run/active.new" "$_pv_run/active"
  read -r _pv_s < "$_pv_run/status"
  if [ "$_pv_s" != open ]; then
    rm -f "$_pv_run/active"
    _pv_fail "run $_pv_id is $_pv_s on the host: nothing more is applied"
  fi
  trap _pv_on_exit EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

_pv_on_exit() {
  _pv_rc=$?
  trap - EXIT
  if [ "$_pv_rc" != 0 ]; then
    _pv_drop_tmps
  fi
  rm -f "$_pv_run/active"
  exit "$_pv_rc"
}

_pv_step_end() {
  : > "$_pv_run/tmps"
  rm -f "$_pv_run/active"
  trap - EXIT
}

# --- the process tree of a step script that still runs (a timeout, a vanished control node)

_pv_tree() {
  cat /proc/[0-9]*/stat 2>/dev/null | sed -n 's/^\([0-9]*\) (.*) [A-Za-z] \([0-9]*\) .*$/\1 \2/p' \
    | awk -v root="$1" -v self="$$" '{ parent[$1] = $2 }
      END { for (p in parent) { q = p; n = 0
              while (q != root && (q in parent) && n < 4096) { q = parent[q]; n++ }
              if (q == root && p != self) print p } }' | sort -n | tr '\n' ' '
}

_pv_alive() {
  for _pv_y in $1; do
    if [ -r "/proc/$_pv_y/stat" ]; then
      _pv_z=$(sed 's/^.*) //' "/proc/$_pv_y/stat" | cut -d' ' -f1)
      if [ "$_pv_z" != Z ]; then
        return 0
      fi
    fi
  done
  return 1
}

_pv_gone() {
  _pv_i=0
  while [ "$_pv_i" -lt "$2" ]; do
    if ! _pv_alive "$1"; then
      return 0
    fi
    sleep 0.1
    _pv_i=$((_pv_i + 1))
  done
  return 1
}

_pv_kill_tree() {
  _pv_all=
  _pv_i=0
  while [ "$_pv_i" -lt 20 ]; do
    _pv_now=$(_pv_tree "$1")
    if [ -z "$_pv_now" ] || [ "$_pv_now" = "$_pv_all" ]; then
      break
    fi
    kill -STOP $_pv_now 2>/dev/null || true
    _pv_all=$_pv_now
    _pv_i=$((_pv_i + 1))
  done
  if [ -z "$_pv_all" ]; then
    return 0
  fi
  printf 'note\tstopped the step script still running (pid %s) and every process it started: %s\n' "$1" "$_pv_all"
  kill -TERM $_pv_all 2>/dev/null || true
  kill -CONT $_pv_all 2>/dev/null || true
  if _pv_gone "$_pv_all" 30; then
    return 0
  fi
  _pv_left=$(_pv_tree "$1")
  kill -KILL $_pv_all $_pv_left 2>/dev/null || true
  if _pv_gone "$_pv_all $_pv_left" 50; then
    return 0
  fi
  printf 'failed\tprocesses of the step script survived SIGKILL: %s\n' "$_pv_all"
  return 1
}

_pv_stop_active() {
  if [ ! -s "$_pv_run/active" ]; then
    return 0
  fi
  read -r _pv_p _pv_st < "$_pv_run/active"
  if [ -r "/proc/$_pv_p/stat" ] && [ "$(_pv_starttime "$_pv_p")" = "$_pv_st" ]; then
    _pv_kill_tree "$_pv_p" || return 1
  fi
  rm -f "$_pv_run/active"
}

# --- undoing one entry (each runs in its own sh -e: any failing command fails the entry)

_pv_put_back() {
  _pv_d=$(dirname "$4")
  _pv_t=
  if _pv_t=$(mktemp "$_pv_d/.restore.provisioner.XXXXXX" 2>/dev/null); then
    if cp -p "$_pv_run/files/$1" "$_pv_t" 2>/dev/null; then
      chown "$2" "$_pv_t"
      chmod "$3" "$_pv_t"
      mv -f "$_pv_t" "$4"
      return 0
    fi
    rm -f "$_pv_t"
  fi
  # No room for a copy beside it (a full file system): overwrite in place.
  cp "$_pv_run/files/$1" "$4"
  chown "$2" "$4"
  chmod "$3" "$4"
  touch -r "$_pv_run/files/$1" "$4"
}

_pv_put_link() {
  _pv_t="$(dirname "$2")/.restore.provisioner.$$"
  rm -f "$_pv_t"
  cp -P "$_pv_run/files/$1" "$_pv_t"
  mv -f "$_pv_t" "$2"
}

_pv_undo_one() {
  { read -r _pv_k _pv_b _pv_o _pv_m _pv_f; read -r _pv_c || true; } < "$_pv_run/undo/$1"
  case $_pv_k in
    file)
      _pv_put_back "$_pv_b" "$_pv_o" "$_pv_m" "$_pv_f"
      printf 'ok\trestore %s\n' "$_pv_f" ;;
    link)
      _pv_put_link "$_pv_b" "$_pv_f"
      printf 'ok\trestore the link %s\n' "$_pv_f" ;;
    absent)
      if [ -d "$_pv_f" ] && [ ! -L "$_pv_f" ]; then
        _pv_fail "$_pv_f is a directory now"
      fi
      rm -f "$_pv_f"
      printf 'ok\tremove %s (new in this run)\n' "$_pv_f" ;;
    dir)
      if rmdir "$_pv_f" 2>/dev/null; then
        printf 'ok\tremove the directory %s (new in this run)\n' "$_pv_f"
      else
        printf 'ok\tkeep the directory %s (new in this run, not empty)\n' "$_pv_f"
      fi ;;
    attrs)
      chown "$_pv_o" "$_pv_f"
      chmod "$_pv_m" "$_pv_f"
      printf 'ok\tput back owner %s and mode %s of %s\n' "$_pv_o" "$_pv_m" "$_pv_f" ;;
    sh)
      eval "$_pv_c"
      printf 'ok\t%s\n' "$_pv_f" ;;
    *)
      _pv_fail "unknown journal entry $1: $_pv_k" ;;
  esac
}

_pv_revert() {
  for _pv_e in $(ls "$_pv_run/undo" | grep -x '[0-9][0-9]*' | sort -r); do
    read -r _pv_k _pv_b _pv_o _pv_m _pv_f < "$_pv_run/undo/$_pv_e"
    if [ "$_pv_f" = "$1" ]; then
      case $_pv_k in
        file|link|absent)
          _pv_undo_one "$_pv_e" >/dev/null
          return 0 ;;
      esac
    fi
  done
  _pv_fail "this run holds no copy of $1"
}

_pv_what() {
  read -r _pv_k _pv_b _pv_o _pv_m _pv_f < "$1"
  case $_pv_k in
    file|link) printf 'restore %s' "$_pv_f" ;;
    absent) printf 'remove %s (new in this run)' "$_pv_f" ;;
    dir) printf 'remove the directory %s (new in this run)' "$_pv_f" ;;
    attrs) printf 'put back owner %s and mode %s of %s' "$_pv_o" "$_pv_m" "$_pv_f" ;;
    *) printf '%s' "$_pv_f" ;;
  esac
}

_pv_service_one() {
  { read -r _pv_f; read -r _pv_c; } < "$_pv_run/services/$1"
  eval "$_pv_c"
  printf 'ok\t%s\n' "$_pv_f"
}

# --- the rollback: services that did not run stopped, this run's entries newest first, then the
# services' boot state, then those that ran brought back; one line per entry on stdout

# $1: a subdirectory of the run, $2: the function that replays one of its entries, $3: the one that
# names an entry that failed; then the entries, in order. Each runs in its own sh -e.
_pv_replay() {
  _pv_rd=$1
  _pv_rf=$2
  _pv_rw=$3
  shift 3
  for _pv_re in "$@"; do
    if sh -ec '_pv_run=$1; . "$_pv_run/lib.sh"; "$2" "$3"' _ "$_pv_run" "$_pv_rf" "$_pv_re" 7>&- 9>&-; then
      rm -f "$_pv_run/$_pv_rd/$_pv_re"
    else
      mv -f "$_pv_run/$_pv_rd/$_pv_re" "$_pv_run/$_pv_rd/$_pv_re.failed"
      printf 'failed\t%s\n' "$("$_pv_rw" "$_pv_run/$_pv_rd/$_pv_re.failed")"
      _pv_bad=1
    fi
  done
}

_pv_first_line() {
  head -n 1 "$1"
}

_pv_services() {
  _pv_replay services _pv_service_one _pv_first_line $(ls "$_pv_run/services" | grep -e "\.$1\$" | sort)
}

_pv_rollback() {
  exec 7>>"$_pv_run/rollback.lock"
  flock 7
  _pv_set_status rolling-back
  _pv_bad=0
  if ! _pv_stop_active; then
    _pv_bad=1
  fi
  _pv_drop_tmps
  _pv_services stop
  _pv_replay undo _pv_undo_one _pv_what $(ls "$_pv_run/undo" | grep -x '[0-9][0-9]*' | sort -r)
  _pv_services boot
  _pv_services run
  if [ "$_pv_bad" = 0 ]; then
    _pv_set_status rolled-back
    rm -rf "$_pv_run/files"
  else
    _pv_set_status rollback-failed
  fi
  flock -u 7
  exec 7>&-
  return "$_pv_bad"
}

_pv_has_entries() {
  if [ -n "$(ls "$_pv_run/undo" "$_pv_run/services" 2>/dev/null | grep -e '^[0-9]' -e '\.boot$' -e '\.run$' -e '\.stop$')" ]; then
    return 0
  fi
  return 1
}
"""


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
