"""``rollout``: the group of ``pause``, ``resume``, ``halt``, ``reschedule`` (edits of a live repository,
in :mod:`repo_tool.cli.publish_cmd`) and ``status`` (read-only, :mod:`repo_tool.cli.status_cmd`),
each imported only when it runs."""

from __future__ import annotations

import click

from repo_tool.cli.lazy import LazyGroup

SUBCOMMANDS = {
    "pause": "publish_cmd:rollout_pause_cmd",
    "resume": "publish_cmd:rollout_resume_cmd",
    "halt": "publish_cmd:rollout_halt_cmd",
    "reschedule": "publish_cmd:rollout_reschedule_cmd",
    "status": "status_cmd:rollout_status_cmd",
}


@click.group("rollout", cls=LazyGroup, lazy=SUBCOMMANDS)
def rollout_group() -> None:
    """Control the rollout of a published update (pause, resume, halt, reschedule) and see where the
    rollouts of every repository stand (status)."""
