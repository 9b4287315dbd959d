"""The progress line of long jobs: one line on stderr, rewritten in place, cleared when the job ends.

``label  412.0/1024.0 MiB  40%  1650 MiB/s  ETA 0:01``: bytes done and expected, the rate over the
last few seconds and the time left at that rate.  Redrawn at most every ``INTERVAL`` seconds (a few
dozen bytes per redraw, so it costs nothing measurable), from whichever thread reports bytes, under
one lock.  :func:`progress_line` gives one that draws only when stderr is a terminal and the answer
is not JSON; otherwise it draws nothing (its :meth:`ProgressLine.note` lines are still printed).
Must not: write to stdout, or leave a partial line behind (every job's line is cleared at its end).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TextIO

from repo_tool.core.progress import Progress

INTERVAL = 0.1  # seconds between redraws (at most ~10 a second)
RATE_WINDOW = 3.0  # seconds of samples the rate (and the time left) are measured over
MIB = 1 << 20
GIB = 1 << 30


def amount(count: int, unit: int) -> str:
    return f"{count / unit:.2f}" if unit == GIB else f"{count / unit:.1f}"


def duration(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def render(label: str, done: int, total: int, rate: float | None) -> str:
    """One progress line (without the carriage return)."""
    unit = GIB if max(done, total) >= GIB else MIB
    name = "GiB" if unit == GIB else "MiB"
    parts = [label]
    if total > 0:
        parts.append(f"{amount(done, unit)}/{amount(total, unit)} {name}")
        parts.append(f"{min(100, 100 * done // total):3d}%")
    else:
        parts.append(f"{amount(done, unit)} {name}")
    if rate is not None:
        parts.append(f"{rate / MIB:.1f} MiB/s")
        if total > done and rate > 0:
            parts.append(f"ETA {duration((total - done) / rate)}")
    return "  ".join(parts)


class ProgressLine(Progress):
    """The line of the current job on ``stream`` (drawn only if ``enabled``), ``width`` columns at most;
    ``clock`` gives seconds (injected by tests).  Safe to call from several threads."""

    def __init__(self, stream: TextIO, *, enabled: bool = True, width: int = 80,
                 clock: Callable[[], float] = time.monotonic, interval: float | None = None) -> None:
        self.stream = stream
        self.enabled = enabled
        self.width = max(20, width)
        self.clock = clock
        self.interval = INTERVAL if interval is None else interval
        self._lock = threading.Lock()
        self._label: str | None = None
        self._total = 0
        self._done = 0
        self._drawn = 0  # characters of the line now on screen
        self._next = 0.0  # the clock reading after which the next redraw may happen
        self._samples: deque[tuple[float, int]] = deque()

    @property
    def active(self) -> bool:
        return self._label is not None

    def start(self, label: str, total: int) -> None:
        with self._lock:
            self._clear()
            self._label, self._total, self._done = label, max(0, total), 0
            now = self.clock()
            self._samples = deque([(now, 0)])
            self._next = now  # the first bytes draw the line at once
            if total > 0:  # a job of no bytes (or of a size not known yet) shows nothing until it has some
                self._draw(now)

    def advance(self, count: int) -> None:
        with self._lock:
            self._done += count
            if self._label is None:
                return
            now = self.clock()
            if now >= self._next:
                self._draw(now)

    def stop(self) -> None:
        with self._lock:
            self._clear()
            self._label = None

    def note(self, text: str) -> None:
        """Print ``text`` as a line of its own above the progress line (always, terminal or not)."""
        with self._lock:
            drawn = self._drawn
            self._clear()
            self.stream.write(text + "\n")
            if drawn and self._label is not None:
                self._draw(self.clock())
            self.stream.flush()

    def _rate(self, now: float) -> float | None:
        samples = self._samples
        samples.append((now, self._done))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW:
            samples.popleft()
        then, done_then = samples[0]
        return (self._done - done_then) / (now - then) if now > then else None

    def _draw(self, now: float) -> None:
        self._next = now + self.interval
        if not self.enabled or self._label is None:
            return
        line = render(self._label, self._done, self._total, self._rate(now))
        if len(line) >= self.width:
            line = line[: self.width - 2] + "…"
        self.stream.write("\r" + line + " " * max(0, self._drawn - len(line)))
        self.stream.flush()
        self._drawn = len(line)

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0


def progress_line(as_json: bool = False, stream: TextIO | None = None) -> ProgressLine:
    """The progress line of a command: drawn when ``stream`` (default stderr) is a terminal and the
    answer is not JSON."""
    stream = stream if stream is not None else sys.stderr
    try:
        terminal = stream.isatty()
        width = os.get_terminal_size(stream.fileno()).columns if terminal else 80
    except (OSError, ValueError, AttributeError):
        terminal, width = False, 80
    return ProgressLine(stream, enabled=terminal and not as_json, width=width or 80)
