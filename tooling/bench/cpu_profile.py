"""Where the control-node CPU of a run goes: a profiled, untimed run of the CLI, every thread included.

cProfile sees only the thread it is enabled in; provisioner works on hosts in
threads (``--forks``). This runs the CLI in-process under a profiler per
thread (``threading.setprofile`` starts one in each new thread) and merges them.
"""

from __future__ import annotations

import io
import pstats
import subprocess
import sys
from pathlib import Path

from tooling.bench.peers import REPO_ROOT

# Each thread's profiler counts that thread's CPU time (time.thread_time), not wall time.
PROFILED_RUN = r"""
import cProfile, pstats, sys, threading, time
profiles = []
def start(frame, event, arg):
    sys.setprofile(None)
    p = cProfile.Profile(time.thread_time)
    profiles.append(p)
    p.enable()
threading.setprofile(start)
main = cProfile.Profile(time.thread_time)
main.enable()
from invoke.main import program
sys.argv = ["invoke", *sys.argv[2:]]
try:
    program.run(exit=False)
finally:
    main.disable()
    stats = pstats.Stats(main)
    for p in profiles:
        try:
            p.disable()
        except Exception:
            pass
        try:
            stats.add(p)
        except Exception:
            pass
    stats.dump_stats(OUT)
"""


def profile_cli(argv: list[str], out: Path, top: int = 25) -> str:
    """Run ``invoke <argv>`` profiled (untimed); the top functions by their own CPU time, then provisioner's
    own by cumulative CPU time, as text. The profile stays in ``out``."""
    script = PROFILED_RUN.replace("OUT", repr(str(out)))
    subprocess.run([sys.executable, "-c", script, "invoke", *argv], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                   capture_output=True, text=True, timeout=900)
    if not out.exists():
        return "(no profile written)"
    text = io.StringIO()
    pstats.Stats(str(out), stream=text).sort_stats("tottime").print_stats(top)
    text.write(f"provisioner's own functions by cumulative CPU (the whole profile: {out}):\n")
    pstats.Stats(str(out), stream=text).sort_stats("cumulative").print_stats(r"/provisioner/", top)
    return text.getvalue()
