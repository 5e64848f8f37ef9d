"""The run's holder on the host: the host lock, heartbeats, and the rollback when its control node is gone.

A bash script (``holder_script``) that a real run starts on a channel of its
own (provisioner/hostlock.py is the control node's side). It takes ``flock``
on LOCK_FILE, or answers ``busy`` naming the holder (HOLDER_FILE: run id,
control node, start time); makes the run's journal directory and writes the
journal library there (provisioner/journal.py); rolls back the runs a host
that went down left open; then answers commands until its run ends. When
its channel closes, or it hears nothing for ``stale_after`` seconds (a link
that dropped without closing), it stops the step script that may still run
and rolls the run back, which releases the lock with the process.

On commit it prunes: a run that recorded nothing leaves no directory; the
newest KEEP_COMMITTED committed runs keep their copies; rolled-back runs go;
a run whose rollback failed stays for the admin.
"""

from __future__ import annotations

import shlex

from provisioner.journal import LIBRARY, PREAMBLE, RUNS_DIR, STATE_DIR, run_dir

# /var/run: /run on every systemd host, a directory of its own on EL6.
LOCK_FILE = "/var/run/provisioner.lock"
HOLDER_FILE = "/var/run/provisioner.holder"
# Committed runs whose copies are kept (the newest ones); older ones are removed.
KEEP_COMMITTED = 3

HOLDER = r"""# provisioner run holder: holds the host's lock while a run lasts (reads commands on stdin)
_pv_holder() {
  trap '' PIPE HUP INT
  umask 077
  if ! command -v flock >/dev/null 2>&1; then
    printf 'error\tflock (util-linux) is missing on the host: the run lock needs it\n'
    return 1
  fi
  set -e
  if [ ! -d "$_pv_base" ]; then
    mkdir -p -m 755 "$_pv_base"
  fi
  if [ ! -d "$_pv_runs" ]; then
    mkdir -m 700 "$_pv_runs"
  fi
  chmod 700 "$_pv_runs"
  exec 9>>"$_pv_lockfile"
  if ! flock -n 9; then
    _pv_h=$(tr '\n' '\t' < "$_pv_holderfile" 2>/dev/null || true)
    printf 'busy\t%s\n' "$_pv_h"
    return 3
  fi
  printf 'run_id=%s\ncontrol=%s\nstarted=%s\npid=%s\n' "$_pv_id" "$_pv_control" "$_pv_started" "$$" > "$_pv_holderfile.new"
  mv -f "$_pv_holderfile.new" "$_pv_holderfile"
  mkdir -m 700 "$_pv_run" "$_pv_run/undo" "$_pv_run/files" "$_pv_run/services"
  cat > "$_pv_run/lib.sh" <<'PROVISIONER_LIB'
@LIBRARY@
PROVISIONER_LIB
  . "$_pv_run/lib.sh"
  printf 'run_id=%s\ncontrol=%s\nstarted=%s\n' "$_pv_id" "$_pv_control" "$_pv_started" > "$_pv_run/info"
  printf '0\n' > "$_pv_run/seq"
  : > "$_pv_run/kept"
  : > "$_pv_run/kept-attrs"
  : > "$_pv_run/tmps"
  _pv_set_status open
  set +e
  _pv_mine=$_pv_run
  # A run left open by a host that went down mid-run: its holder never rolled it back. Do it now.
  for _pv_old in $(ls "$_pv_runs" | sort); do
    _pv_run="$_pv_runs/$_pv_old"
    if [ "$_pv_run" = "$_pv_mine" ] || [ ! -s "$_pv_run/status" ] || [ ! -f "$_pv_run/lib.sh" ]; then
      continue
    fi
    _pv_s=$(cat "$_pv_run/status")
    if [ "$_pv_s" = open ] || [ "$_pv_s" = rolling-back ]; then
      printf 'recover\t%s\n' "$_pv_old"
      ( . "$_pv_run/lib.sh"; _pv_rollback ) 9>&- || true
    fi
  done
  _pv_run=$_pv_mine
  printf 'acquired\t%s\n' "$_pv_id"
  _pv_why=
  while :; do
    if IFS= read -r -t "$_pv_stale" _pv_cmd; then
      case $_pv_cmd in
        beat)
          printf 'alive\n' ;;
        commit)
          _pv_set_status committed
          _pv_prune
          printf 'committed\n' ;;
        rollback)
          if _pv_rollback 9>&-; then
            printf 'done\trolled-back\n'
          else
            printf 'done\trollback-failed\n'
          fi ;;
        release)
          _pv_why=released
          break ;;
        *)
          printf 'error\tunknown command\n' ;;
      esac
    else
      if [ $? -gt 128 ]; then
        _pv_why="no heartbeat from $_pv_control for ${_pv_stale}s"
      else
        _pv_why="the connection to $_pv_control closed"
      fi
      break
    fi
  done
  if [ -d "$_pv_run" ]; then
    exec >>"$_pv_run/log" 2>&1
    _pv_s=$(cat "$_pv_run/status")
  else
    exec >/dev/null 2>&1
    _pv_s=gone
  fi
  if [ "$_pv_s" = open ]; then
    if _pv_has_entries; then
      printf 'rolling back: %s\n' "$_pv_why"
      _pv_rollback 9>&- || true
    else
      rm -rf "$_pv_run"
    fi
  fi
  rm -f "$_pv_holderfile"
  return 0
}

# On commit: this run's directory goes if it recorded nothing; of the committed runs with
# backups, the newest _pv_keep stay; rolled-back runs go. A failed rollback stays for the admin.
_pv_prune() {
  if ! _pv_has_entries; then
    rm -rf "$_pv_run"
  fi
  _pv_k=0
  if [ -d "$_pv_run" ]; then
    _pv_k=1
  fi
  for _pv_old in $(ls "$_pv_runs" | sort -r); do
    _pv_d="$_pv_runs/$_pv_old"
    if [ "$_pv_d" = "$_pv_run" ] || [ ! -s "$_pv_d/status" ]; then
      continue
    fi
    _pv_s=$(cat "$_pv_d/status")
    if [ "$_pv_s" = committed ] && [ "$_pv_k" -lt "$_pv_keep" ]; then
      _pv_k=$((_pv_k + 1))
    elif [ "$_pv_s" = committed ] || [ "$_pv_s" = rolled-back ]; then
      rm -rf "$_pv_d"
    fi
  done
}
"""


def holder_script(run_id: str, control: str, started: str, stale_after: int, root: str = "") -> str:
    """The bash script of a run's holder (see the module docstring); the last line runs it and exits.

    It prints ``acquired<TAB>id`` (after ``recover<TAB>old-id`` and the lines
    of each stale run it rolled back), or ``busy<TAB>`` and the holder's
    ``key=value`` fields, or ``error<TAB>message``; then answers ``beat``
    (``alive``), ``commit`` (``committed``), ``rollback`` (its lines, then
    ``done<TAB>status``) and ``release``. Heard nothing for ``stale_after``
    seconds, or the channel closed: it rolls the run back if it is open.
    """
    settings = {
        "_pv_id": run_id,
        "_pv_control": control,
        "_pv_started": started,
        "_pv_stale": str(int(stale_after)),
        "_pv_keep": str(KEEP_COMMITTED),
        "_pv_base": root + STATE_DIR,
        "_pv_runs": root + RUNS_DIR,
        "_pv_run": run_dir(run_id, root),
        "_pv_lockfile": root + LOCK_FILE,
        "_pv_holderfile": root + HOLDER_FILE,
    }
    lines = [f"{name}={shlex.quote(value)}" for name, value in settings.items()]
    return (
        PREAMBLE + "\n".join(lines) + "\n"
        + HOLDER.replace("@LIBRARY@", LIBRARY.strip("\n"))
        + "_pv_holder; exit $?\n"
    )


# Read by the fact script of every run: a run in progress (a dry run reports it; it takes no lock).
IN_PROGRESS_PROBE = (
    f"if [ -s {HOLDER_FILE} ] && command -v flock >/dev/null 2>&1 && ! flock -n {LOCK_FILE} true 2>/dev/null; then "
    f"cat {HOLDER_FILE}; fi; true"
)
