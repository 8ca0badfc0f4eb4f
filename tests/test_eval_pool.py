"""`hush eval`'s pool workers exit when the evaluation that started them is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

# A stand-in for `hush eval`: a spawn pool whose workers run (or not) the same parent watch
# as evaluation.run's, started with a trivial task; prints the worker pids, then waits.
CHILD = textwrap.dedent(
    """
    import os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from hush.evaluation.run import exit_with_parent


    def no_watch(parent_pid, poll_s):
        pass


    def pid(_):
        time.sleep(0.2)  # keep both workers busy, so that both start
        return os.getpid()


    if __name__ == "__main__":
        init = exit_with_parent if sys.argv[1] == "watch" else no_watch
        spawn = get_context("spawn")
        pool = ProcessPoolExecutor(2, mp_context=spawn, initializer=init, initargs=(os.getpid(), 0.1))
        print(" ".join(str(p) for p in sorted(set(pool.map(pid, range(4))))), flush=True)
        time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state


def _orphans_after_kill(mode: str, tmp_path: Path, wait_s: float) -> list[int]:
    script = tmp_path / "parent.py"
    script.write_text(CHILD)
    parent = subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in parent.stdout.readline().split()]
        assert len(workers) == 2, workers
    finally:
        parent.send_signal(signal.SIGKILL)  # as an OOM kill or `kill -9` would
        parent.wait()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    left = [p for p in workers if _alive(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    return left


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_pool_workers_exit_when_the_evaluation_is_killed(tmp_path: Path) -> None:
    # Without the watch the workers outlive their parent (the behaviour this guards
    # against), so the check below can fail.
    assert len(_orphans_after_kill("none", tmp_path, wait_s=1.0)) == 2
    assert _orphans_after_kill("watch", tmp_path, wait_s=10.0) == []
