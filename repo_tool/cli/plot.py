"""PNG/SVG charts of rollout curves (optional: needs matplotlib, the 'plot' extra).

Drawing only: the curves come from :mod:`repo_tool.core.schedule`; nothing here computes a rollout.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from repo_tool.core.instant import NANOS_PER_HOUR
from repo_tool.core.schedule import sample_times
from repo_tool.errors import ConfigError, UsageError
from repo_tool.localfs import write_atomic

if TYPE_CHECKING:
    from repo_tool.core.schedule import FleetCurve


def plot_curves(path: str, curves: list[tuple[str, FleetCurve]], start: int, end: int, title: str) -> None:
    """Draw each curve's offered share against hours since ``start`` into ``path`` (.png or .svg)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'bottlerocket-repo-tool[plot]'") from None
    times = sample_times(start, end, 600)
    hours = [(t - start) / NANOS_PER_HOUR for t in times]
    figure, axes = plt.subplots(figsize=(9, 4.5), dpi=100)
    try:
        for name, curve in curves:
            axes.step(hours, [100 * curve.fraction_at(t) for t in times], where="post", label=name)
        axes.set_xlabel("hours since release start")
        axes.set_ylabel("% offered the update")
        axes.set_ylim(0, 102)
        axes.set_xlim(hours[0], hours[-1])
        axes.grid(True, alpha=0.3)
        axes.legend(loc="lower right")
        axes.set_title(title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="svg" if path.lower().endswith(".svg") else "png")
        try:
            write_atomic(path, buffer.getvalue())
        except OSError as exc:
            raise ConfigError(f"--plot: cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
