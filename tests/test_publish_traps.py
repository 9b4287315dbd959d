"""Small traps of the publishing commands (issue 17): one flag, one meaning (refresh's --allow-expired,
--link-target), publish-release --init beside existing repositories, the start a plan assumes,
pulling every update, expirations on the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from .clirun import Runner, assert_one_line_error
from .repohelpers import QS, tree_state
from .test_publish import trusted_load


# --- refresh: --allow-expired, and --unsafe a deprecated alias ----------------------------------


def test_refresh_allow_expired_and_deprecated_unsafe(qs: QS, run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    from repo_tool.cli import publish_cmd

    later = trusted_load(qs).timestamp.expires + 1
    monkeypatch.setattr(publish_cmd, "now_ns", lambda: later)
    before = tree_state(qs.dir / "repo")
    assert_one_line_error(run("refresh", *qs.args()), 1, "expired", "--allow-expired")
    assert tree_state(qs.dir / "repo") == before
    planned = run("refresh", *qs.args("--allow-expired", "--plan"))
    assert planned.code == 0, planned.err
    assert "--unsafe" not in run("refresh", "--help").out  # hidden: one flag, one meaning
    help_text = " ".join(run("refresh", "--help").out.split())
    assert "--allow-expired" in help_text and "only the expiry dates are not" in help_text
    old = run("refresh", *qs.args("--unsafe"))
    assert old.code == 0, old.err
    assert "--unsafe is deprecated" in old.err and "--allow-expired" in old.err
    assert trusted_load(qs, later).timestamp.expires > later
