"""Shared by the benchmark scripts: best-of-N wall time."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path


def best(fn: Callable[[], object], repeat: int, prepare: Callable[[], object] | None = None) -> float:
    """The shortest of ``repeat`` timed calls of ``fn``; ``prepare`` runs untimed before each."""
    times = []
    for _ in range(repeat):
        if prepare is not None:
            prepare()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def write_random(path: Path, size: int) -> None:
    """``size`` random (incompressible) bytes at ``path``; an existing file of that size is kept."""
    if path.exists() and path.stat().st_size == size:
        return
    with path.open("wb") as handle:
        left = size
        while left:
            step = min(left, 8 * 1024 * 1024)
            handle.write(os.urandom(step))
            left -= step


def clean_up(directory: Path, keep: bool, given: bool, made: list[Path]) -> None:
    """End of a run: say where ``directory`` is with --keep; else remove it if the bench created it,
    or only the files and directories it ``made`` inside a --dir the user gave."""
    if keep:
        print(f"kept {directory}", file=sys.stderr)
    elif not given:
        shutil.rmtree(directory, ignore_errors=True)
    else:
        for path in made:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def add_json_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json-out", type=Path, metavar="FILE",
                        help="also write the headline figures as a JSON object to FILE (read by bench/run)")


def write_json_out(path: Path | None, figures: dict[str, object]) -> None:
    """The headline figures of a run, for ``bench/run``'s side-by-side table."""
    if path is not None:
        path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
