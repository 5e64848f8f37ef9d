"""The cached base image (mmdebstrap rootfs tarball) and the offline apt repository.

Layout under ``/var/cache/provisioner-lab``::

    rootfs/rootfs.tar   rootfs/stamp.json
    repo/*.deb          repo/Packages       repo/stamp.json

Each part is built in a temporary sibling directory and renamed into place only once
complete, with a stamp whose hash covers everything the part was built from (suite,
variant, package lists, build format). A part whose stamp is missing or different is
rebuilt; an interrupted build leaves only a ``*.tmp-*`` directory, removed next time.
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
    rootfs_tar: Path
    repo_dir: Path
    rootfs_hash: str
    repo_hash: str


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


def _build_rootfs(out: Path) -> None:
    inputs = rootfs_inputs()
    argv = [
        "mmdebstrap",
        f"--variant={inputs['variant']}",
        f"--include={','.join(inputs['include'])}",
        f"--logfile={out / 'mmdebstrap.log'}",
        inputs["suite"],
        str(out / ROOTFS_TAR),
    ]
    run(argv, timeout=1800)


def _apt_update() -> None:
    log.info("apt-get update (package lists missing or stale)")
    run(["apt-get", "update", "-q"], timeout=600)


def _resolve_repo_packages(packages: Sequence[str]) -> list[str]:
    argv = ["apt-cache", "depends", *APT_DEPENDS_FLAGS, *packages]
    cp = run(argv, check=False, timeout=300)
    if cp.returncode != 0 or not set(packages) <= set(parse_depends(cp.stdout)):
        _apt_update()
        cp = run(argv, timeout=300)
    names = parse_depends(cp.stdout)
    missing = sorted(set(packages) - set(names))
    if missing:
        raise LabError(f"apt-cache cannot find {', '.join(missing)}; check the build machine's apt sources")
    return names


def _build_repo(out: Path) -> None:
    packages = repo_inputs()["packages"]
    names = _resolve_repo_packages(packages)
    log.info("downloading %d packages for the offline repo", len(names))
    download = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *names]
    cp = run(download, cwd=out, check=False, timeout=1200)
    if cp.returncode != 0:
        _apt_update()
        run(download, cwd=out, timeout=1200)
    index = run(["dpkg-scanpackages", ".", "/dev/null"], cwd=out, timeout=600).stdout
    (out / "Packages").write_text(index)
    have = parse_packages_index(index)
    missing = sorted(set(packages) - have)
    if missing:
        raise LabError(f"offline repo lacks {', '.join(missing)} after apt-get download")
    for p in out.iterdir():
        os.chmod(p, 0o644)


def ensure_image(cache_dir: Path = config.CACHE_DIR) -> Image:
    """Return the cached image, building whichever part is missing or out of date."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    rootfs_dir, repo_dir = cache_dir / "rootfs", cache_dir / "repo"
    with state.locked(cache_dir / ".lock"):
        stale = read_stamp(rootfs_dir) != rootfs_hash() or read_stamp(repo_dir) != repo_hash()
        if stale:
            require_commands(BUILD_COMMANDS)
        _remove_stale(cache_dir)
        rh = _ensure_part(rootfs_dir, rootfs_inputs(), _build_rootfs, [ROOTFS_TAR])
        ph = _ensure_part(repo_dir, repo_inputs(), _build_repo, ["Packages"])
    return Image(rootfs_tar=rootfs_dir / ROOTFS_TAR, repo_dir=repo_dir, rootfs_hash=rh, repo_hash=ph)
