"""A paused or halted update reads as such wherever its schedule is shown, never as the far-future date
that stands for it ("offered from 8829-12-04"; issue 17)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

from repo_tool.core.instant import NANOS_PER_HOUR, format_instant, parse_instant
from repo_tool.core.manifest import Manifest
from repo_tool.core.rollout import paused_waves
from repo_tool.publish.inputs import load_policy

from .clirun import Runner
from .conftest import UPDOG_TESTS
from .repohelpers import QS

START = parse_instant("2025-04-03T00:00:00Z")
DATE = re.compile(r"\d{4}-\d\d-\d\dT")


def _paused_manifest(tmp_path: Path) -> Path:
    """example.json's update with default waves from START, paused at START + 2 h (the first general
    wave, seeds 1-20, in progress: its end moved away)."""
    doc = Manifest.from_bytes((UPDOG_TESTS / "example.json").read_bytes())
    update = doc.updates[0]
    doc.set_waves(update.variant, update.arch, update.version, START, load_policy("default")[0])
    update.waves, _ = paused_waves(update.waves, START + 2 * NANOS_PER_HOUR)
    path = tmp_path / "manifest.json"
    path.write_bytes(doc.to_bytes())
    return path


def test_select_says_a_paused_wave_is_paused(run: Runner, tmp_path: Path) -> None:
    path = _paused_manifest(tmp_path)
    args = ("manifest", "select", str(path), "--variant", "bottlerocket-aws-eks", "--arch", "x86_64",
            "--current", "1.11.0", "--seed", "19", "--at", format_instant(START + 3 * NANOS_PER_HOUR))
    text = run(*args).out
    assert "wave not reached: seed 19 is in the general wave starting at seed 0, paused or halted" in text, text
    assert "offered from" not in text
    reasons = run(*args, "--json").json()["reasons"]
    assert reasons[0]["kept"] is False and reasons[0]["ready_at"] is None
    assert "paused or halted" in run(*args[:-4], "--seed", "1", "--at", format_instant(START + 3 * NANOS_PER_HOUR)).out


def test_manifest_show_says_paused_or_halted(run: Runner, tmp_path: Path) -> None:
    shown = run("manifest", "show", str(_paused_manifest(tmp_path))).out.splitlines()
    waves = [line.strip() for line in shown if "wave from seed" in line]
    assert waves[0] == "wave from seed    0: 2025-04-03T01:00:00Z"
    assert waves[1:] == [f"wave from seed {seed:>4}: paused or halted" for seed in (20, 102, 307, 819, 1228, 1843)]


def _repo_args(qs: QS, *extra: str) -> list[str]:
    return ["rollout", *extra[:1], *qs.args(*extra[1:])]


def test_rollout_plan_and_audit_say_paused_since_or_halted(run: Runner, qs: QS, tmp_path: Path) -> None:
    before = tmp_path / "before"
    shutil.copytree(qs.meta, before)
    paused = run(*_repo_args(qs, "pause"))
    assert paused.code == 0, paused.err
    since = json.loads(json.dumps(qs.newest("targets")["signed"]["targets"]["manifest.json"]["custom"]))
    record = next(iter(since["repo-tool"]["paused"].values()))
    lines = paused.out.splitlines()
    assert f"waves (paused since {record['paused_at']}):" in lines
    assert any(line.split()[:4] == ["general", "seeds", "1-20", "from"] and "paused" in line for line in lines)
    assert not [line for line in lines if line.startswith("  general") and DATE.search(line)]

    audit = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(qs.root),
                "--targets", "none", "--json").json()
    assert [f["message"] for f in audit["findings"] if f["check"] == "rollout"] == [
        f"update aws-k8s-1.28 x86_64 1.1.0 is paused since {record['paused_at']}: hosts not offered it yet wait "
        "for 'repo-tool rollout resume'"]

    diff = run("audit-diff", "--root", str(qs.root), "--targets-url", str(qs.targets), str(before), str(qs.meta))
    assert diff.code == 0, diff.err
    changed = [line.strip() for line in diff.out.splitlines() if line.strip().startswith("seed 20:")]
    assert len(changed) == 1 and changed[0].endswith("-> paused or halted"), changed

    halted = run(*_repo_args(qs, "halt", "--plan", "--json"))
    assert halted.code == 0, halted.err
    assert halted.json()["waves_held"] == "halted"
    text = run(*_repo_args(qs, "halt", "--plan")).out
    after = text.split("waves (halted):")[1].splitlines()[1:]
    rows = "\n".join(line for line in itertools.takewhile(lambda line: line.startswith(" "), after))
    assert not DATE.search(rows) and "halted" in rows
