"""Publishing into a local repository that runs out of space (a small tmpfs: ENOSPC) or past the
process's file-size limit (RLIMIT_FSIZE: EFBIG): exit 1 with one line naming the file and the
system's words, no temporary file left, every file that was there untouched, and the same
publish run again (space freed) finishes the job.

Targets go first and are content-addressed, so a failure after some of them landed leaves those
complete copies (``<sha256>.<name>``, listed by no metadata): nothing reads them, the rerun finds
them and does not write them again.  Deleting them on failure could delete an object that another
publisher has just listed, so the tool never does (S3 uploads are never deleted either).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clirun import Run, Runner, assert_one_line_error
from tests.faults.helpers import CHECKOUT, NEW, OLD, audit_clean, local_client_sees, temp_files, write_images
from tests.repohelpers import QS, copy_quickstart, tree_state

TMPFS_SIZE = 16 << 20


def _pages(length: int, page: int) -> int:
    return -(-length // page)


@pytest.fixture
def small_disk(template: QS, tmp_path: Path) -> Iterator[QS]:
    """The quickstart with its repo/ on a tmpfs of its own (skipped where one cannot be mounted)."""
    if os.geteuid() != 0:
        pytest.skip(f"mounting a tmpfs needs root (running as uid {os.geteuid()})")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("mount/umount not found (util-linux)")
    qs = copy_quickstart(template, tmp_path / "qs")
    repo = qs.dir / "repo"
    as_made = repo.rename(tmp_path / "repo-as-made")
    repo.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0755", "repo-tool-faults",
                              str(repo)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"mount -t tmpfs failed: {mounted.stderr.strip() or mounted.returncode}")
    try:
        shutil.copytree(as_made, repo, dirs_exist_ok=True)
        yield qs
    finally:
        subprocess.run(["umount", str(repo)], capture_output=True, check=False)


def _fill(directory: Path, leave_pages: int) -> Path:
    """A file taking every free block of ``directory``'s file system but ``leave_pages``."""
    info = os.statvfs(directory)
    assert info.f_bavail > leave_pages
    filler = directory / "filler"
    filler.write_bytes(bytes((info.f_bavail - leave_pages) * info.f_frsize))
    assert os.statvfs(directory).f_bavail == leave_pages
    return filler


def _nothing_half_written(qs: QS, before: dict[str, str]) -> dict[str, str]:
    """No temp file; every file that was there is as it was; what is new is a complete content-addressed
    target object.  Return the new objects (name → sha256)."""
    repo = qs.dir / "repo"
    assert temp_files(repo) == []
    after = tree_state(repo)
    assert {name: after[name] for name in before} == before
    added = {name: digest for name, digest in after.items() if name not in before}
    for name, digest in added.items():
        assert name.startswith("targets/") and Path(name).name.split(".", 1)[0] == digest, name
    return added


def _named_target(result: Run, qs: QS) -> str:
    """The target object the error line names (one of this release's)."""
    path = result.err.split("repo-tool: error: ", 1)[1].split(": ", 1)[0]
    assert Path(path).parent == qs.targets, result.err
    assert f"-{NEW}-" in path or path.endswith(".manifest.json"), result.err
    return path


def _rerun_converges(run: Runner, qs: QS, images: list[str], work: Path) -> Run:
    rerun = run("publish", *qs.args("--json"), *images)
    assert rerun.code == 0, rerun.err
    assert temp_files(qs.dir / "repo") == []
    assert local_client_sees(run, work, qs.root, qs.meta, qs.targets) == NEW
    audit_clean(run, *qs.args())
    return rerun


def test_disk_full_in_the_middle_of_an_image(small_disk: QS, run: Runner, tmp_path: Path) -> None:
    """4 pages free: manifest.json (one page) may fit, no image (65 pages each) does."""
    qs = small_disk
    images = write_images(tmp_path / "images", NEW, 256 << 10, noise=True)
    filler = _fill(qs.dir / "repo", 4)
    before = tree_state(qs.dir / "repo")
    failed = run("publish", *qs.args("--json"), *images)
    assert_one_line_error(failed, 1, "cannot write: No space left on device")
    _named_target(failed, qs)
    added = _nothing_half_written(qs, before)
    assert all(name.endswith(".manifest.json") for name in added), added  # no image landed
    assert local_client_sees(run, tmp_path / "client", qs.root, qs.meta, qs.targets) == OLD
    audit_clean(run, *qs.args())

    filler.unlink()
    _rerun_converges(run, qs, images, tmp_path / "client-after")


def test_disk_full_after_the_targets_fails_at_the_metadata(small_disk: QS, run: Runner, tmp_path: Path) -> None:
    """Exactly the pages the four targets need are free: every target lands, 3.targets.json does not."""
    qs = small_disk
    images = write_images(tmp_path / "images", NEW, 64 << 10, noise=True)
    planned = run("publish", *qs.args("--plan", "--json"), *images)
    assert planned.code == 0, planned.err
    page = os.statvfs(qs.dir / "repo").f_frsize
    lengths = [t["length"] for t in planned.json()["targets_added"]]
    assert len(lengths) == 4 and max(lengths) > 16 * page
    filler = _fill(qs.dir / "repo", sum(_pages(n, page) for n in lengths))
    before = tree_state(qs.dir / "repo")
    failed = run("publish", *qs.args("--json"), *images)
    assert_one_line_error(failed, 1, f"{qs.meta}/3.targets.json: cannot write: No space left on device")
    added = _nothing_half_written(qs, before)
    assert sorted(Path(name).name.split(".", 1)[1] for name in added) == sorted(
        [*(Path(p).name for p in images[3:8:2]), "manifest.json"])
    assert local_client_sees(run, tmp_path / "client", qs.root, qs.meta, qs.targets) == OLD
    audit_clean(run, *qs.args())

    filler.unlink()
    rerun = _rerun_converges(run, qs, images, tmp_path / "client-after")
    written = rerun.json()["written"]
    stored_images = [name for name in added if not name.endswith(".manifest.json")]
    assert not any(name in written for name in stored_images), written  # found, not written again


def test_file_size_limit(template: QS, run: Runner, tmp_path: Path) -> None:
    """RLIMIT_FSIZE below the image size (Python ignores SIGXFSZ, so the write fails with EFBIG)."""
    qs = copy_quickstart(template, tmp_path / "qs")
    images = write_images(tmp_path / "images", NEW, 128 << 10, noise=True)
    limit = 32 << 10
    before = tree_state(qs.dir / "repo")
    limited = (f"import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
               "os.execv(sys.executable, [sys.executable, '-m', 'repo_tool', *sys.argv[1:]])")
    done = subprocess.run([sys.executable, "-c", limited, "publish", *qs.args("--json"), *images], cwd=CHECKOUT,
                          capture_output=True, text=True, timeout=120, check=False)
    failed = Run(done.returncode, done.stdout, done.stderr)
    assert_one_line_error(failed, 1, "cannot write: File too large")
    _named_target(failed, qs)
    added = _nothing_half_written(qs, before)
    assert all(name.endswith(".manifest.json") for name in added), added
    assert local_client_sees(run, tmp_path / "client", qs.root, qs.meta, qs.targets) == OLD
    _rerun_converges(run, qs, images, tmp_path / "client-after")
