"""Start many processes at once and report each one's exit status and peak RSS.

Run as ``python launcher.py JOBS.json DEADLINE_S [--sequential]``: JOBS.json is a list of
``{"argv": [...], "stdout": PATH, "stderr": PATH}``; every job is started with ``posix_spawn``
(output into its files), all at once unless ``--sequential``, and reaped with ``os.wait4``.  Jobs
still running DEADLINE_S seconds after the start are killed (SIGKILL) and reported as timed out
(with ``--sequential``, jobs not started by then too).  Prints one JSON object: ``wall_s`` (first
start to last exit), ``launcher_hwm_kib`` and, per job in order, ``code`` (negative: killed by that
signal; None: never started), ``maxrss_kib``, ``user_s``, ``sys_s``, ``wall_s`` and ``timed_out``.

Why a launcher: Linux keeps a process's peak RSS across fork and exec, so a child started straight
from pytest (or any large process) reports at least its parent's size as ``ru_maxrss``.  This
script imports only small standard modules, so what a child reports is its own peak, unless that
is below ``launcher_hwm_kib`` (about 10 MiB), the floor of every figure.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

POLL_S = 0.005


def _spawn(job: dict[str, Any]) -> int:
    argv = [str(a) for a in job["argv"]]
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [(os.POSIX_SPAWN_OPEN, 1, str(job["stdout"]), flags, 0o644),
               (os.POSIX_SPAWN_OPEN, 2, str(job["stderr"]), flags, 0o644)]
    return os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)


def run(jobs: list[dict[str, Any]], deadline_s: float, sequential: bool) -> dict[str, Any]:
    not_started: dict[str, Any] = {"code": None, "maxrss_kib": 0, "user_s": 0.0, "sys_s": 0.0, "wall_s": 0.0,
                                   "timed_out": True}
    results: list[dict[str, Any]] = [dict(not_started) for _ in jobs]
    t0 = time.monotonic()
    running: dict[int, tuple[int, float]] = {}  # pid -> (job index, start)
    queue = list(range(len(jobs)))

    def start_next() -> None:
        i = queue.pop(0)
        running[_spawn(jobs[i])] = (i, time.monotonic())

    while queue and (not sequential or not running):
        start_next()
    killed: set[int] = set()
    while running:
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            if time.monotonic() - t0 > deadline_s:
                queue.clear()
                for other in set(running) - killed:
                    os.kill(other, signal.SIGKILL)
                    killed.add(other)
            time.sleep(POLL_S)
            continue
        i, started = running.pop(pid)
        results[i] = {"code": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss,
                      "user_s": usage.ru_utime, "sys_s": usage.ru_stime, "wall_s": time.monotonic() - started,
                      "timed_out": pid in killed}
        if sequential and queue:
            start_next()
    wall = time.monotonic() - t0
    with open("/proc/self/status") as handle:
        hwm = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
    return {"wall_s": wall, "launcher_hwm_kib": hwm, "children": results}


def main() -> None:
    with open(sys.argv[1]) as handle:
        jobs = json.load(handle)
    print(json.dumps(run(jobs, float(sys.argv[2]), "--sequential" in sys.argv[3:])))


if __name__ == "__main__":
    main()
