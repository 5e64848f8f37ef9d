"""The host-side journal, run for real on this machine: a holder and step scripts in a scratch tree.

``Run(root)`` starts the real holder script (bash) with every host path of
the journal under ``root``, and runs step scripts through the real
``journal.step_script`` (dash when this machine has it, as on Debian, else
sh). The actions themselves touch whatever paths they name: tests name
paths under ``root``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from provisioner import holder, journal

SH = shutil.which("dash") or "sh"


class Run:
    def __init__(self, root: Path, run_id: str = "20260301T120000Z-0a0b0c", stale_after: int = 20):
        self.root = root
        self.run_id = run_id
        (root / "var/run").mkdir(parents=True, exist_ok=True)
        self.holder = subprocess.Popen(
            ["bash", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1,
        )
        self._send(holder.holder_script(run_id, "tester@here (pid 1)", "2026-03-01T12:00:00Z", stale_after,
                                         root=str(root)))
        self.greeting = self._until(("acquired", "busy", "error"))

    @property
    def dir(self) -> Path:
        return Path(journal.run_dir(self.run_id, str(self.root)))

    def _send(self, text: str) -> None:
        assert self.holder.stdin is not None
        self.holder.stdin.write(text)
        self.holder.stdin.flush()

    def _until(self, kinds: tuple[str, ...]) -> list[str]:
        assert self.holder.stdout is not None
        lines = []
        while True:
            line = self.holder.stdout.readline()
            if not line:
                return lines
            lines.append(line.rstrip("\n"))
            if line.split("\t", 1)[0].strip() in kinds:
                return lines

    def step(self, body: str, check: bool = False) -> subprocess.CompletedProcess:
        script = journal.step_script(self.run_id, body, root=str(self.root))
        return subprocess.run([SH, "-s"], input=script, text=True, capture_output=True, check=check)

    def rollback(self) -> list[str]:
        self._send("rollback\n")
        return self._until(("done",))

    def commit(self) -> list[str]:
        self._send("commit\n")
        return self._until(("committed",))

    def close(self) -> int:
        assert self.holder.stdin is not None
        self.holder.stdin.close()
        return self.holder.wait(timeout=30)


def state(path: Path) -> tuple | None:
    """Bytes, owner, mode and mtime of a path (a symlink: its target), or None when absent."""
    if path.is_symlink():
        return ("link", os.readlink(path))
    if not path.exists():
        return None
    st = path.stat()
    return (path.read_bytes() if path.is_file() else "dir", st.st_uid, st.st_gid, oct(st.st_mode & 0o7777),
            int(st.st_mtime))
