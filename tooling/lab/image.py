"""The cached base image (mmdebstrap rootfs tarball) and the offline apt repository, per Debian suite.

Layout under ``/var/cache/provisioner-lab``, bookworm (the default suite) where it
always was, so that caches built before suites existed stay valid; any other suite
in a directory of its own::

    rootfs/rootfs.tar   rootfs/stamp.json           (bookworm)
    repo/*.deb          repo/Packages       repo/stamp.json
    trixie/rootfs/...   trixie/repo/...

Each part is built in a temporary sibling directory and renamed into place only once
complete, with a stamp whose hash covers everything the part was built from (suite,
variant, package lists, build format). A part whose stamp is missing or different is
rebuilt; an interrupted build leaves only a ``*.tmp-*`` directory, removed next time.

The repository is resolved and downloaded through a private apt configuration
(``APT_CONFIG``: its own sources, lists, cache and an empty dpkg status), never
through this machine's: its sources name this machine's release only, and a build
must neither depend on nor change them (docs/notes/debian13-by-hand.md, 1b).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import config, state
from .errors import LabError
from .system import BUILD_COMMANDS, require_commands, run

log = logging.getLogger("tooling.lab")

STAMP_NAME = "stamp.json"
ROOTFS_TAR = "rootfs.tar"

APT_DEPENDS_FLAGS = (
    "--recurse",
    "--no-recommends",
    "--no-suggests",
    "--no-conflicts",
    "--no-breaks",
    "--no-replaces",
    "--no-enhances",
)


@dataclass(frozen=True)
class Image:
    suite: str
    rootfs_tar: Path
    repo_dir: Path
    rootfs_hash: str
    repo_hash: str


def suite_dir(suite: str, cache_dir: Path = config.CACHE_DIR) -> Path:
    """Where a suite's image lives: the cache directory itself for the default suite."""
    if suite not in config.SUITES:
        raise LabError(f"unknown Debian suite {suite!r} for the lab (known: {', '.join(config.SUITES)})")
    return cache_dir if suite == config.SUITE else cache_dir / suite


def apt_config(suite: str, root: Path, keyring: str = config.ARCHIVE_KEYRING) -> tuple[str, str]:
    """(apt.conf, sources.list) of a private apt configuration rooted at ``root`` for ``suite``.

    ``Dir::Etc::Parts`` and friends point into ``root``, so none of this machine's
    apt configuration, sources or lists take part, and none of them change.
    """
    sources = "".join(
        f"deb [signed-by={keyring}] {mirror} {dist} main\n"
        for mirror, dist in ((config.DEBIAN_MIRROR, suite), (config.DEBIAN_MIRROR, f"{suite}-updates"),
                             (config.SECURITY_MIRROR, f"{suite}-security"))
    )
    conf = (
        f'Dir::Etc "{root}/etc/";\n'
        'Dir::Etc::main "/dev/null";\n'
        f'Dir::Etc::Parts "{root}/etc/apt.conf.d/";\n'
        f'Dir::Etc::sourcelist "{root}/etc/sources.list";\n'
        f'Dir::Etc::sourceparts "{root}/etc/sources.list.d/";\n'
        f'Dir::Etc::preferences "{root}/etc/preferences";\n'
        f'Dir::Etc::preferencesparts "{root}/etc/preferences.d/";\n'
        'Dir::Etc::trusted "/dev/null";\n'
        'Dir::Etc::trustedparts "/dev/null";\n'
        f'Dir::State "{root}/state/";\n'
        f'Dir::State::status "{root}/status";\n'
        f'Dir::Cache "{root}/cache/";\n'
        'APT::Architecture "amd64";\n'
        'APT::Architectures { "amd64"; };\n'
        'APT::Sandbox::User "root";\n'
        'Acquire::Languages "none";\n'
    )
    return conf, sources


# --- pure parts --------------------------------------------------------------------------


def _hash(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def rootfs_inputs(
    include: Iterable[str] = config.ROOTFS_INCLUDE,
    suite: str = config.SUITE,
    variant: str = config.VARIANT,
) -> dict:
    return {
        "format": config.IMAGE_FORMAT,
        "suite": suite,
        "variant": variant,
        "include": sorted(set(include)),
    }


def repo_inputs(packages: Iterable[str] = config.REPO_PACKAGES, suite: str = config.SUITE) -> dict:
    return {"format": config.IMAGE_FORMAT, "suite": suite, "packages": sorted(set(packages))}


def rootfs_hash(**kw) -> str:
    return _hash(rootfs_inputs(**kw))


def repo_hash(**kw) -> str:
    return _hash(repo_inputs(**kw))


def parse_depends(text: str) -> list[str]:
    """Package names from ``apt-cache depends --recurse`` output.

    Top-level lines (no leading blank) are package names; ``<virtual>`` ones are
    dropped (their real providers appear as top-level lines of their own), and so are
    arch-qualified foreign ones (``libc6:i386``). Sorted, without duplicates.
    """
    names = set()
    for line in text.splitlines():
        if not line or line[0].isspace() or line.startswith("<"):
            continue
        name = line.strip()
        if ":" in name:
            continue
        names.add(name)
    return sorted(names)


def parse_packages_index(text: str) -> set[str]:
    """Names of the packages in a ``Packages`` index."""
    return {line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Package:")}


def read_stamp(part_dir: Path) -> str | None:
    try:
        return json.loads((part_dir / STAMP_NAME).read_text())["hash"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


# --- building ----------------------------------------------------------------------------


def _remove_stale(cache_dir: Path) -> None:
    for p in cache_dir.iterdir():
        if ".tmp-" in p.name or ".old-" in p.name:
            log.info("removing leftover of an interrupted image build: %s", p)
            shutil.rmtree(p, ignore_errors=True)


def _ensure_part(final: Path, inputs: dict, builder: Callable[[Path], None], must_exist: Sequence[str]) -> str:
    want = _hash(inputs)
    if read_stamp(final) == want and all((final / m).exists() for m in must_exist):
        log.debug("cached %s is current (%s)", final, want[:12])
        return want
    why = "missing" if not final.exists() else "out of date"
    log.info("building %s (%s)", final, why)
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f"{final.name}.tmp-", dir=final.parent))
    try:
        builder(tmp)
        for m in must_exist:
            if not (tmp / m).exists():
                raise LabError(f"building {final.name}: {m} was not produced")
        stamp = {"hash": want, "inputs": inputs, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        (tmp / STAMP_NAME).write_text(json.dumps(stamp, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        old = None
        if final.exists():
            old = final.with_name(f"{final.name}.old-{os.getpid()}")
            os.rename(final, old)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    log.info("built %s in %.1f s", final, time.monotonic() - t0)
    return want


def _build_rootfs(out: Path, suite: str) -> None:
    inputs = rootfs_inputs(suite=suite)
    argv = [
        "mmdebstrap",
        f"--variant={inputs['variant']}",
        f"--include={','.join(inputs['include'])}",
        f"--logfile={out / 'mmdebstrap.log'}",
        inputs["suite"],
        str(out / ROOTFS_TAR),
    ]
    run(argv, timeout=1800)


def _private_apt(suite: str, root: Path) -> dict[str, str]:
    """Lay out a private apt configuration in ``root``; the environment that selects it."""
    for sub in ("etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "state/lists/partial",
                "cache/archives/partial"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "status").write_text("")
    conf, sources = apt_config(suite, root)
    (root / "etc" / "sources.list").write_text(sources)
    (root / "apt.conf").write_text(conf)
    return {**os.environ, "APT_CONFIG": str(root / "apt.conf")}


def _build_repo(out: Path, suite: str) -> None:
    packages = repo_inputs(suite=suite)["packages"]
    apt_root = Path(tempfile.mkdtemp(prefix=f"apt-{suite}.", dir=out.parent))
    try:
        env = _private_apt(suite, apt_root)
        run(["apt-get", "update", "-q"], env=env, timeout=600)
        cp = run(["apt-cache", "depends", *APT_DEPENDS_FLAGS, *packages], env=env, timeout=300)
        names = parse_depends(cp.stdout)
        missing = sorted(set(packages) - set(names))
        if missing:
            raise LabError(f"apt-cache cannot find {', '.join(missing)} in {suite}")
        log.info("downloading %d %s packages for the offline repo", len(names), suite)
        run(["apt-get", "download", "-q", *names], cwd=out, env=env, timeout=1200)
    finally:
        shutil.rmtree(apt_root, ignore_errors=True)
    index = run(["dpkg-scanpackages", ".", "/dev/null"], cwd=out, timeout=600).stdout
    (out / "Packages").write_text(index)
    have = parse_packages_index(index)
    missing = sorted(set(packages) - have)
    if missing:
        raise LabError(f"offline repo lacks {', '.join(missing)} after apt-get download")
    for p in out.iterdir():
        os.chmod(p, 0o644)


def ensure_image(suite: str = config.SUITE, cache_dir: Path = config.CACHE_DIR) -> Image:
    """Return the suite's cached image, building whichever part is missing or out of date."""
    base = suite_dir(suite, cache_dir)
    base.mkdir(parents=True, exist_ok=True)
    rootfs_dir, repo_dir = base / "rootfs", base / "repo"
    with state.locked(base / ".lock"):
        stale = read_stamp(rootfs_dir) != rootfs_hash(suite=suite) or read_stamp(repo_dir) != repo_hash(suite=suite)
        if stale:
            require_commands(BUILD_COMMANDS)
        _remove_stale(base)
        rh = _ensure_part(rootfs_dir, rootfs_inputs(suite=suite), lambda out: _build_rootfs(out, suite), [ROOTFS_TAR])
        ph = _ensure_part(repo_dir, repo_inputs(suite=suite), lambda out: _build_repo(out, suite), ["Packages"])
    return Image(suite=suite, rootfs_tar=rootfs_dir / ROOTFS_TAR, repo_dir=repo_dir, rootfs_hash=rh, repo_hash=ph)
