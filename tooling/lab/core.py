"""``up()`` and ``down()``: the lab's whole life cycle."""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import cgroups, config, hosts, network, state
from .errors import LabError
from .image import Image, ensure_image
from .inventory import lab_domain, write_inventory, write_secrets
from .models import Lab, LabHost
from .naming import HostPlan, index_of_name, plan_host, plan_hosts
from .system import (
    RUN_COMMANDS,
    children,
    ensure_inotify_instances,
    cmdline,
    find_nspawn,
    netns_inode,
    nspawn_root,
    pids_in_netns,
    require_commands,
    require_root,
    start_time,
    write_file,
)

log = logging.getLogger("tooling.lab")

NSPAWN_RUN_DIR = Path("/run/systemd/nspawn")

#: Run once per freshly booted host over ssh (proves key + known_hosts, fills apt lists,
#: waits for boot to finish).
POST_BOOT_SCRIPT = """set -e
apt-get -qq update
state=$(timeout 40 systemctl is-system-running --wait 2>/dev/null || true)
echo "system-state: $state"
if [ "$state" != running ]; then systemctl --failed --no-legend --plain 2>/dev/null || true; fi
"""


def _paths(inventory_dir: Path | None) -> tuple[Path, Path]:
    d = Path(inventory_dir if inventory_dir is not None else config.INVENTORY_DIR).absolute()
    return d / config.INVENTORY_NAME, d / config.SECRETS_NAME


def _lab_host(plan: HostPlan, pid: int | None, suite: str) -> LabHost:
    return LabHost(
        suite=suite,
        name=plan.name,
        address=plan.address,
        control_address=plan.control_address,
        outsider_address=plan.outsider_address,
        netns=plan.netns,
        root=hosts.root_dir(plan.name),
        veth=plan.veth,
        boot_log=hosts.boot_log(plan.name),
        pid=pid,
    )


def _write_host_known_hosts(plan: HostPlan) -> Path:
    path = hosts.host_dir(plan.name) / "known_hosts"
    write_file(path, hosts.known_hosts_line(plan) + "\n", 0o644)
    return path


def _our_pid(entry: dict[str, Any] | None, plan: HostPlan) -> int | None:
    """The entry's nspawn pid if that process is alive and runs this host's root dir."""
    if not entry or not isinstance(entry.get("pid"), int):
        return None
    pid = entry["pid"]
    if hosts.alive(pid) and nspawn_root(cmdline(pid)) == str(hosts.root_dir(plan.name)):
        return pid
    return None


def _reusable(plan: HostPlan, entry: dict[str, Any] | None, image: Image, key: Path) -> bool:
    if not entry or entry.get("rootfs_hash") != image.rootfs_hash or entry.get("repo_hash") != image.repo_hash:
        return False
    if _our_pid(entry, plan) is None or not network.healthy(plan):
        return False
    if hosts.load_secrets(plan.name) is None or not hosts.host_key_file(plan.name).exists():
        return False
    try:
        kh = _write_host_known_hosts(plan)
        cp = hosts.ssh(plan, "true", key=key, known_hosts=kh, timeout=20, check=False)
    except LabError as e:
        log.info("%s: not reusable: %s", plan.name, e)
        return False
    return cp.returncode == 0


def _lock_name(root: Path) -> str | None:
    try:
        st = root.stat()
    except OSError:
        return None
    return f"inode-{st.st_dev}:{st.st_ino}"


def _teardown(plans: list[HostPlan], st: dict[str, Any]) -> None:
    """Stop and remove these hosts, whatever state they are in. Updates ``st`` (not saved)."""
    if not plans:
        return
    roots = {str(hosts.root_dir(p.name)) for p in plans}
    pids = {pid for pid, root in find_nspawn(config.HOSTS_DIR).items() if root in roots}
    for p in plans:
        pid = _our_pid(st["hosts"].get(p.name), p)
        if pid is not None:
            pids.add(pid)
    if pids:
        log.info("stopping %s", ", ".join(p.name for p in plans))
        hosts.stop(pids)
    # A container's processes outlive a SIGKILLed (or crashed) nspawn. Find them through
    # the netns of our name, and through the container's init as recorded (pid + start time).
    stragglers: set[int] = set()
    for p in plans:
        ino = netns_inode(network.NETNS_DIR / p.netns)
        if ino is not None:
            stragglers |= pids_in_netns({ino})
        entry = st["hosts"].get(p.name) or {}
        init_pid, init_start = entry.get("init_pid"), entry.get("init_start")
        if isinstance(init_pid, int) and init_start is not None and start_time(init_pid) == init_start:
            stragglers.add(init_pid)
        stragglers |= cgroups.pids(p.name)
    if stragglers:
        log.warning(
            "killing %d leftover container process(es) in %s", len(stragglers), ", ".join(p.netns for p in plans)
        )
        hosts.kill_now(stragglers)
    for p in plans:
        network.destroy(p)
        cgroups.remove(p.name)
        entry = st["hosts"].pop(p.name, None) or {}
        lock = entry.get("nspawn_lock") or _lock_name(hosts.root_dir(p.name))
        hosts.remove_host_dir(p.name)
        # systemd-nspawn removes these itself on a clean exit; not after SIGKILL.
        leftovers = [NSPAWN_RUN_DIR / "propagate" / p.machine]
        if lock:
            leftovers.append(NSPAWN_RUN_DIR / "locks" / lock)
        for path in leftovers:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink(missing_ok=True)


def _present_indices(st: dict[str, Any]) -> set[int]:
    """Every lab host index with anything left of it: state, dir, netns, veth."""
    found = {i for i in map(index_of_name, st["hosts"]) if i is not None}
    if config.HOSTS_DIR.is_dir():
        found |= {i for i in (index_of_name(p.name) for p in config.HOSTS_DIR.iterdir()) if i is not None}
    found |= set(network.lab_netns()) | set(network.lab_veths())
    for root in find_nspawn(config.HOSTS_DIR).values():
        i = index_of_name(Path(root).parent.name)
        if i is not None:
            found.add(i)
    return found


def _run_parallel(func, plans: list[HostPlan]) -> tuple[dict[str, Any], dict[str, Exception]]:
    results: dict[str, Any] = {}
    errors: dict[str, Exception] = {}
    if not plans:
        return results, errors
    with ThreadPoolExecutor(max_workers=len(plans), thread_name_prefix="lab") as ex:
        futures = {p.name: ex.submit(func, p) for p in plans}
        for name, fut in futures.items():
            try:
                results[name] = fut.result()
            except Exception as e:  # noqa: BLE001 - reported together below
                errors[name] = e
    return results, errors


def _raise_for(errors: dict[str, Exception], what: str) -> None:
    if not errors:
        return
    lines = [f"{what} failed for {', '.join(sorted(errors))}:"]
    for name in sorted(errors):
        e = errors[name]
        lines.append(f"--- {name}: {e if isinstance(e, LabError) else repr(e)}")
    lines.append("The hosts are left as they are for inspection; down() (invoke lab.down) removes them.")
    raise LabError("\n".join(lines))


def host_suites(hosts: int | Sequence[str]) -> list[str]:
    """Each host's Debian suite: N hosts of the default suite, or one suite per host, in order."""
    if isinstance(hosts, int) and not isinstance(hosts, bool):
        plan_hosts(hosts)  # validates the count
        return [config.SUITE] * hosts
    if isinstance(hosts, str):
        raise LabError(f"lab hosts: give a number of hosts or a list of suites, not {hosts!r}")
    suites = list(hosts)
    unknown = sorted({s for s in suites if s not in config.SUITES})
    if unknown:
        raise LabError(f"unknown Debian suite {', '.join(map(repr, unknown))} (known: {', '.join(config.SUITES)})")
    plan_hosts(len(suites))
    return suites


def up(hosts: int | Sequence[str] = 1, *, inventory_dir: Path | str | None = None,
       boot_timeout: float = config.BOOT_TIMEOUT) -> Lab:
    """Bring up lab hosts lab1..labN; reuse healthy running ones, boot the rest.

    ``hosts`` is a number of Debian 12 hosts, or each host's suite in order
    (``["bookworm", "bookworm", "trixie"]``). Hosts beyond N that an earlier call
    started are stopped and removed, so the lab afterwards is exactly lab1..labN.
    Writes ``inventories/lab.yaml`` (a group per suite besides ``lab``) and
    ``inventories/lab-secrets.yaml`` (or those files in ``inventory_dir``).
    """
    return _up(host_suites(hosts), inventory_dir, boot_timeout)


def _up(suites: list[str], inventory_dir: Path | str | None, boot_timeout: float) -> Lab:
    t0 = time.monotonic()
    count = len(suites)
    plans = plan_hosts(count)
    suite_of = {p.name: suite for p, suite in zip(plans, suites)}
    require_root()
    require_commands(RUN_COMMANDS)
    inventory_path, secrets_path = _paths(Path(inventory_dir) if inventory_dir is not None else None)
    images = {suite: ensure_image(suite) for suite in dict.fromkeys(suites)}
    raised = ensure_inotify_instances(count)
    if raised:
        log.warning("fs.inotify.max_user_instances raised from %d to %d for %d hosts (each host's systemd takes "
                    "inotify instances; at 128 about the 20th host fails to boot)", *raised, count)
    config.STATE_DIR.mkdir(parents=True, exist_ok=True)
    domain = lab_domain()

    with state.locked():
        key = hosts.ensure_key()
        st = state.load()
        st_mutex = threading.Lock()

        wanted = {p.index for p in plans}
        extra = sorted(_present_indices(st) - wanted)
        if extra:
            log.info("removing lab hosts beyond the %d requested: %s", count, ", ".join(f"lab{i}" for i in extra))
            _teardown([plan_host(i) for i in extra], st)
            state.save(st)

        ok, _ = _run_parallel(lambda p: _reusable(p, st["hosts"].get(p.name), images[suite_of[p.name]], key), plans)
        reused = [p for p in plans if ok.get(p.name)]
        fresh = [p for p in plans if not ok.get(p.name)]
        if reused:
            log.info("reusing running %s", ", ".join(p.name for p in reused))
        _teardown(fresh, st)
        state.save(st)
        for p in fresh:
            network.check_free(p)
        network.ensure_blackhole()

        def create(plan: HostPlan) -> tuple[int, float]:
            t_prep = time.monotonic()
            image = images[suite_of[plan.name]]
            network.create(plan)
            try:
                hosts.prepare_root(plan, image, key, hosts.new_secrets(), domain)
                pid = hosts.start(plan, image)
            except BaseException:
                network.destroy(plan)
                raise
            with st_mutex:
                st["hosts"][plan.name] = {
                    "index": plan.index,
                    "pid": pid,
                    "machine": plan.machine,
                    "suite": image.suite,
                    "root": str(hosts.root_dir(plan.name)),
                    "nspawn_lock": _lock_name(hosts.root_dir(plan.name)),
                    "rootfs_hash": image.rootfs_hash,
                    "repo_hash": image.repo_hash,
                    "started_at": time.time(),
                }
                state.save(st)
            t_started = time.monotonic()
            log.debug("%s: root prepared and nspawn started in %.1f s", plan.name, t_started - t_prep)
            return pid, t_started

        if fresh:
            log.info("booting %s", ", ".join(p.name for p in fresh))
        started, errors = _run_parallel(create, fresh)
        _raise_for(errors, "preparing/starting")

        # Host keys straight from each root dir (no trust on first use).
        lines = [hosts.known_hosts_line(p) for p in plans]
        write_file(config.KNOWN_HOSTS_PATH, "\n".join(lines) + "\n", 0o644)
        for p in plans:
            _write_host_known_hosts(p)

        def settle(plan: HostPlan) -> str:
            pid, t_started = started[plan.name]
            hosts.wait_for_sshd(plan, pid, t_started + boot_timeout, boot_timeout)
            t_ssh = time.monotonic() - t_started
            inits = children(pid)
            if len(inits) == 1:
                with st_mutex:
                    st["hosts"][plan.name].update(init_pid=inits[0], init_start=start_time(inits[0]))
                    state.save(st)
            cp = hosts.ssh(plan, POST_BOOT_SCRIPT, key=key, known_hosts=config.KNOWN_HOSTS_PATH, timeout=90)
            out = cp.stdout.strip()
            sys_state = out.splitlines()[0].split(":", 1)[-1].strip() if out else "?"
            if sys_state != "running":
                log.warning("%s: systemd state %r after boot:\n%s", plan.name, sys_state, out)
            t_ready = time.monotonic() - t_started
            log.info("%s (%s): sshd up %.1f s after start, ready after %.1f s", plan.name, suite_of[plan.name],
                     t_ssh, t_ready)
            return sys_state

        _, errors = _run_parallel(settle, fresh)
        _raise_for(errors, "booting")

        final = {p.name: _our_pid(st["hosts"].get(p.name), p) for p in plans}
        lab_hosts = [_lab_host(p, final[p.name], suite_of[p.name]) for p in plans]
        all_secrets = {}
        for p in plans:
            s = hosts.load_secrets(p.name)
            if s is None:  # pragma: no cover - written by prepare_root, checked by _reusable
                raise LabError(f"{p.name}: secrets file {hosts.secrets_file(p.name)} is missing")
            all_secrets[p.name] = s

    write_secrets(secrets_path, all_secrets)
    write_inventory(inventory_path, lab_hosts, secrets_path=secrets_path)
    log.info(
        "lab up: %d host(s) (%d booted, %d reused) in %.1f s; inventory %s",
        len(plans),
        len(fresh),
        len(reused),
        time.monotonic() - t0,
        inventory_path,
    )
    return Lab(
        hosts=lab_hosts,
        inventory_path=inventory_path,
        secrets_path=secrets_path,
        known_hosts_path=config.KNOWN_HOSTS_PATH,
        key_path=key,
    )


def down(*, inventory_dir: Path | str | None = None) -> None:
    """Remove every lab host (processes, netns, veths, root dirs) and the generated inventory.

    Leaves the cached image and repo and the lab key pair. Safe to call when nothing is up.
    """
    t0 = time.monotonic()
    require_root()
    inventory_path, secrets_path = _paths(Path(inventory_dir) if inventory_dir is not None else None)
    if config.STATE_DIR.exists():
        with state.locked():
            st = state.load()
            present = sorted(_present_indices(st))
            _teardown([plan_host(i) for i in present], st)
            network.remove_blackhole()
            cgroups.remove_parent()
            for path in (config.STATE_FILE, config.KNOWN_HOSTS_PATH):
                path.unlink(missing_ok=True)
            try:
                config.HOSTS_DIR.rmdir()
            except FileNotFoundError:
                pass
            except OSError as e:
                raise LabError(f"{config.HOSTS_DIR} is not empty after down(): {e}") from e
        if present:
            log.info("lab down: removed %s in %.1f s", ", ".join(f"lab{i}" for i in present), time.monotonic() - t0)
        else:
            log.info("lab down: nothing was up")
    for path in (inventory_path, secrets_path):
        path.unlink(missing_ok=True)
