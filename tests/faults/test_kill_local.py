"""A real SIGKILL at every write step of a publish into a local repository (tests/faults/killpoint.py):
after each, python-tuf's ngclient and this tool's node load the repository and see the old release
or the new one, the auditor finds no error, and the same publish run again finishes the job.

A killed write can leave its temporary file behind (``.NAME.XXXXXXXX.tmp``, next to where the file
goes).  What this tool does with them, as git does with its ``tmp_obj_*`` files: nothing reads them
(clients ask for names the metadata lists; a rerun writes under new random names and checks the
final names only), nothing deletes them on its own (one may belong to a publisher running right
now), and the auditor names each as a warning so that an operator can delete them.
"""

from __future__ import annotations

import shutil
import signal
from collections import Counter
from pathlib import Path

import pytest

from repo_tool.publish.editor import UPLOAD_JOBS
from tests.clirun import Runner
from tests.faults.helpers import (
    NEW,
    OLD,
    Killed,
    KillServer,
    audit_clean,
    killpoint,
    local_client_sees,
    temp_files,
    write_images,
)
from tests.repohelpers import QS, copy_quickstart, tree_state

# A publish of one release into the quickstart writes 4 targets (3 images, manifest.json) and
# 3.targets.json, 3.snapshot.json by link (write-once), timestamp.json by replace; each: the temp file
# written, fsynced, the link/replace (a step before and one after it), the directory fsynced.
EXPECTED_STEPS = Counter({"write": 7, "fsync": 7, "before-link": 6, "after-link": 6, "before-replace": 1,
                          "after-replace": 1, "fsync-dir": 7})


def _publish(qs: QS, images: list[str]) -> list[str]:
    return ["publish", *qs.args(), *images]


def _is_live(killed: Killed) -> bool:
    """The new timestamp.json was in place when the process died."""
    return killed.reached("after-replace", "/timestamp.json")


def _check_after(run: Runner, qs: QS, work: Path, expected: str) -> list[dict[str, str]]:
    """A client and a node see ``expected``; the auditor finds no error (its warnings returned)."""
    assert local_client_sees(run, work, qs.root, qs.meta, qs.targets) == expected
    return audit_clean(run, *qs.args())


@pytest.mark.long
def test_sigkill_at_every_local_write_step(template: QS, run: Runner, kill_server: KillServer, tmp_path: Path) -> None:
    images = write_images(tmp_path / "images", NEW, 6000)
    trace = tmp_path / "trace"
    qs = copy_quickstart(template, tmp_path / "qs")
    clean = killpoint(0, _publish(qs, images), trace)  # a new interpreter: `python -m tests.faults.killpoint`
    assert clean.returncode == 0, clean.stderr
    assert Counter(step.kind for step in clean.steps) == EXPECTED_STEPS, clean.steps
    shutil.rmtree(qs.dir)
    qs = copy_quickstart(template, tmp_path / "qs")
    forked = kill_server.run(0, _publish(qs, images), trace)  # the kills below run in its forked children
    assert forked.returncode == 0 and Counter(s.kind for s in forked.steps) == EXPECTED_STEPS, forked.steps
    assert [str(s) for s in clean.steps[-3:]] == [
        f"before-replace {qs.meta}/timestamp.json", f"after-replace {qs.meta}/timestamp.json", f"fsync-dir {qs.meta}"]
    points = clean.kill_points()
    for number, point in enumerate(points, 1):
        shutil.rmtree(qs.dir)
        qs = copy_quickstart(template, tmp_path / "qs")
        before = tree_state(qs.dir / "repo")
        killed = kill_server.run(point, _publish(qs, images), trace)
        where = f"step {number} ({point}): {killed.steps[-1:]}"
        assert killed.returncode == -signal.SIGKILL, (where, killed.stderr)
        assert killed.point == point, where
        live = _is_live(killed)
        leftovers = temp_files(qs.dir / "repo")
        warnings = _check_after(run, qs, tmp_path / f"client-{number}", NEW if live else OLD)
        assert sorted(w["file"] for w in warnings if w["check"] == "leftovers") == sorted(map(str, leftovers)), where
        if not live:  # nothing but new files: every file there before is untouched
            after = tree_state(qs.dir / "repo")
            assert {name: after[name] for name in before} == before, where

        stored = set(tree_state(qs.dir / "repo"))
        rerun = run(*_publish(qs, images), "--json")
        assert rerun.code == 0, (where, rerun.err)
        assert rerun.json().get("already_published", False) == live, (where, rerun.out)
        again = [name for name in rerun.json().get("written", []) if name in stored]
        assert again == [], (where, again)  # what the killed run stored is found, not written again
        assert temp_files(qs.dir / "repo") == leftovers, where  # neither tripped over nor deleted
        _check_after(run, qs, tmp_path / f"client-{number}-rerun", NEW)


def test_leftover_temp_files_are_harmless_and_named_by_the_auditor(template: QS, run: Runner, tmp_path: Path) -> None:
    """Killed at its first write (a target's temp file in targets/), then killed again just after
    linking N.targets.json (its temp file, a second link to the same bytes, stays in the metadata
    directory): clients see the old release, the auditor warns about both files and passes, and a
    third run publishes without touching them."""
    images = write_images(tmp_path / "images", NEW, 6000)
    qs = copy_quickstart(template, tmp_path / "qs")
    trace = tmp_path / "trace"
    first = killpoint("write#1", _publish(qs, images), trace)
    assert first.returncode == -signal.SIGKILL and first.last.detail.startswith(f"{qs.targets}/."), first.steps
    # The 4 targets are stored again in the second run, then 3.targets.json is linked (the 5th link).
    second = killpoint("after-link#5", _publish(qs, images), trace)
    assert second.returncode == -signal.SIGKILL
    assert str(second.last) == f"after-link {qs.meta}/3.targets.json", second.steps
    leftovers = temp_files(qs.dir / "repo")
    # One in the metadata directory; in targets/ one per upload thread that had made its temp file.
    assert [p.parent for p in leftovers][:2] == [qs.meta, qs.targets], leftovers
    assert {p.parent for p in leftovers[1:]} == {qs.targets} and len(leftovers) <= 1 + UPLOAD_JOBS, leftovers
    assert leftovers[0].read_bytes() == (qs.meta / "3.targets.json").read_bytes()
    states = {p: p.read_bytes() for p in leftovers}

    warnings = _check_after(run, qs, tmp_path / "client", OLD)
    assert [(w["check"], w["file"]) for w in warnings] == [("leftovers", str(p)) for p in leftovers]
    assert all("interrupted write" in w["message"] for w in warnings)
    text = run("audit", *qs.args())
    assert text.code == 0 and "PASS" in text.out and f"{len(leftovers)} warning(s)" in text.out, text.out

    done = run("publish", *qs.args("--json"), *images)
    assert done.code == 0, done.err
    assert done.json()["versions"] == {"targets": 4, "snapshot": 3, "timestamp": 3}  # 3.targets.json is skipped
    assert {p: p.read_bytes() for p in temp_files(qs.dir / "repo")} == states
    _check_after(run, qs, tmp_path / "client-after", NEW)
