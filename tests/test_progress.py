"""The progress line of long jobs (repo_tool.cli.progress): drawn on a terminal only, never with --json,
cleared at the end.  Unit tests of the line writer with an injected clock and stream, then the real CLI
run with its stderr on a pseudo-terminal (publish, audit, node update) and on a pipe."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import os
import pty
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import lz4.frame
import pytest
import yaml

from repo_tool import hashing
from repo_tool.cli.progress import GIB, MIB, ProgressLine, progress_line, render
from repo_tool.core.lz4frames import ImageError
from repo_tool.core.progress import NO_PROGRESS, Progress, counted
from repo_tool.hashing import hash_files
from tests.repohelpers import ARCH, QS, VARIANT, copy_quickstart, release_config, serve_directory, write_node_config

# --- the line writer ----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def writer(enabled: bool = True, width: int = 80) -> tuple[ProgressLine, io.StringIO, Clock]:
    stream, clock = io.StringIO(), Clock()
    return ProgressLine(stream, enabled=enabled, width=width, clock=clock), stream, clock


def visible(text: str) -> list[str]:
    """What a terminal shows after ``text``: ``\\r`` returns to the start of the line, characters
    overwrite what is there; trailing blanks and empty lines dropped."""
    lines: list[str] = []
    current: list[str] = []
    column = 0
    for char in text:
        if char == "\n":
            lines.append("".join(current).rstrip())
            current, column = [], 0
        elif char == "\r":
            column = 0
        else:
            if column < len(current):
                current[column] = char
            else:
                current.append(char)
            column += 1
    lines.append("".join(current).rstrip())
    return [line for line in lines if line]


def test_render_shows_bytes_percent_rate_and_time_left() -> None:
    line = render("hashing", 412 * MIB, 1000 * MIB, 200 * MIB)
    assert line == "hashing  412.0/1000.0 MiB   41%  200.0 MiB/s  ETA 0:03"
    assert render("uploading", GIB, 3 * GIB, 100 * MIB) == "uploading  1.00/3.00 GiB   33%  100.0 MiB/s  ETA 0:20"
    assert render("x", 0, 10 * MIB, None) == "x  0.0/10.0 MiB    0%"
    assert render("x", 5 * MIB, 0, 1.0 * MIB) == "x  5.0 MiB  1.0 MiB/s"  # total unknown: no percent, no ETA
    assert render("x", 10, 10, 5.0).endswith("100%  0.0 MiB/s")  # done: no ETA
    assert "ETA 1:00:00" in render("x", 0, 3600 * MIB, MIB)


def test_redraws_at_most_every_interval_and_clears_at_the_end() -> None:
    line, stream, clock = writer()
    line.start("hashing", 100 * MIB)
    assert stream.getvalue() == "\rhashing  0.0/100.0 MiB    0%"
    line.advance(10 * MIB)
    clock.now += 0.05  # inside the interval: nothing drawn
    line.advance(10 * MIB)
    assert stream.getvalue() == "\rhashing  0.0/100.0 MiB    0%"
    clock.now += 0.05
    line.advance(20 * MIB)  # 40 MiB in 0.1 s
    assert visible(stream.getvalue()) == ["hashing  40.0/100.0 MiB   40%  400.0 MiB/s  ETA 0:00"]
    line.stop()
    assert stream.getvalue().endswith("\r" + " " * len("hashing  40.0/100.0 MiB   40%  400.0 MiB/s  ETA 0:00") + "\r")
    assert visible(stream.getvalue()) == []
    line.advance(MIB)  # after the end: nothing drawn
    line.stop()
    assert visible(stream.getvalue()) == []


def test_a_job_of_no_bytes_draws_nothing() -> None:
    line, stream, _ = writer()
    line.start("uploading", 0)  # refresh, rollout: no target to send
    line.stop()
    assert stream.getvalue() == ""
    line.start("x", 0)  # a size not known: drawn from the first bytes on
    line.advance(MIB)
    assert visible(stream.getvalue()) == ["x  1.0 MiB"]


def test_the_rate_is_that_of_the_last_seconds() -> None:
    line, stream, clock = writer()
    line.start("x", 1000 * MIB)
    for _ in range(50):  # 10 MiB/s for 5 s
        clock.now += 0.1
        line.advance(MIB)
    for _ in range(40):  # then 100 MiB/s for 4 s: the rate measured over the last 3 s is 100 MiB/s
        clock.now += 0.1
        line.advance(10 * MIB)
    assert visible(stream.getvalue())[-1].startswith("x  450.0/1000.0 MiB   45%  100.0 MiB/s  ETA 0:05")


def test_a_note_goes_above_the_line_which_is_drawn_again() -> None:
    line, stream, _ = writer()
    line.start("uploading", 10 * MIB)
    line.note("wrote targets/a")
    assert visible(stream.getvalue()) == ["wrote targets/a", "uploading  0.0/10.0 MiB    0%"]
    line.stop()
    line.note("wrote 2.snapshot.json")
    assert visible(stream.getvalue()) == ["wrote targets/a", "wrote 2.snapshot.json"]


def test_disabled_it_draws_nothing_but_notes() -> None:
    line, stream, clock = writer(enabled=False)
    line.start("hashing", 10 * MIB)
    clock.now += 1
    line.advance(MIB)
    line.note("wrote x")
    line.stop()
    assert stream.getvalue() == "wrote x\n"


def test_a_long_line_is_cut_to_the_terminal_width() -> None:
    line, stream, _ = writer(width=30)
    line.start("root image " + "x" * 60, 10 * MIB)
    assert max(len(text) for text in visible(stream.getvalue())) < 30


def test_safe_from_many_threads() -> None:
    line, stream, clock = writer()
    line.start("x", 8 * 1000 * 64)

    def work() -> None:
        for _ in range(1000):
            clock.now += 0.001  # racy on purpose: readings from many threads
            line.advance(64)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clock.now += 1
    line.advance(0)
    assert visible(stream.getvalue())[-1].startswith("x  0.5/0.5 MiB  100%")
    line.stop()
    assert visible(stream.getvalue()) == []


def test_not_drawn_on_a_pipe_or_with_json(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w") as handle:
        assert not progress_line(stream=handle).enabled
    master, slave = pty.openpty()
    try:
        with os.fdopen(slave, "w", closefd=False) as terminal:
            assert progress_line(stream=terminal).enabled
            assert not progress_line(as_json=True, stream=terminal).enabled
    finally:
        os.close(master)
        os.close(slave)


class Recorder(Progress):
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self.done = 0

    def start(self, label: str, total: int) -> None:
        self.events.append(("start", (label, total)))

    def advance(self, count: int) -> None:
        with self.lock:
            self.done += count

    def stop(self) -> None:
        self.events.append(("stop", self.done))


def test_counted_reports_each_chunk_and_closes_the_source() -> None:
    closed = []

    def source() -> Iterator[bytes]:
        try:
            yield b"abc"
            yield b"de"
            yield b"never"
        finally:
            closed.append(True)

    recorder = Recorder()
    chunks = counted(source(), recorder)
    assert next(chunks) == b"abc" and next(chunks) == b"de"
    chunks.close()  # type: ignore[attr-defined]
    assert recorder.done == 3 and closed == [True]
    assert list(counted([b"x"], NO_PROGRESS)) == [b"x"]


@pytest.mark.parametrize("jobs", [1, 2])
def test_hash_files_reports_every_byte_as_one_job(tmp_path: Path, jobs: int) -> None:
    files = []
    for index, size in enumerate([3 * MIB + 5, 20 * MIB, 1000]):
        path = tmp_path / f"{index}.lz4"
        path.write_bytes(lz4.frame.compress(os.urandom(size), block_size=lz4.frame.BLOCKSIZE_MAX4MB))
        files.append(path)
    recorder = Recorder()
    hash_files(files, jobs=jobs, lz4=files, progress=recorder)
    total = sum(path.stat().st_size for path in files)
    assert recorder.events == [("start", ("hashing", total)), ("stop", total)]


# --- the real CLI on a pseudo-terminal ----------------------------------------------------------------

# The command line as installed, with every redraw let through (INTERVAL 0): the jobs here take
# milliseconds, and the line must show a rate all the same.
EVERY_REDRAW = ("import sys, repo_tool.cli.progress as p; p.INTERVAL = 0.0; from repo_tool.cli import main; "
                "sys.argv[0] = 'repo-tool'; main()")


def cli(*args: str, terminal: bool = True) -> tuple[int, str, str]:
    """Run the CLI in a process of its own; its stderr a pseudo-terminal (or a pipe).  Exit code,
    stdout and everything written to stderr."""
    argv = [sys.executable, "-c", EVERY_REDRAW, *args]
    if not terminal:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=slave, stdin=subprocess.DEVNULL)
        os.close(slave)
        err = b""
        with contextlib.suppress(OSError):  # EIO once the process has exited: nothing holds the terminal
            while data := os.read(master, 65536):
                err += data
        os.close(master)
        code = proc.wait(timeout=600)
        out.seek(0)
        return code, out.read().decode(), err.decode().replace("\r\n", "\n")


def drawn(err: str, label: str) -> list[str]:
    """The progress lines of job ``label`` drawn on the terminal (each redraw starts with ``\\r``)."""
    return [part.strip() for part in err.replace("\n", "\r").split("\r") if part.startswith(f"{label}  ")]


def assert_drawn_then_cleared(err: str, label: str) -> None:
    lines = drawn(err, label)
    assert any("MiB/s" in line and "%" in line for line in lines), err
    assert not any(line.startswith(label) for line in visible(err)), visible(err)


@pytest.fixture
def release(qs: QS, tmp_path: Path) -> list[str]:
    """``publish`` arguments of 1.2.0, three LZ4 images of a few MiB."""
    images = []
    for kind, size in (("boot", 2 * MIB), ("root", 6 * MIB), ("hash", MIB)):
        path = tmp_path / f"bottlerocket-{VARIANT}-{ARCH}-1.2.0-abcdef0-{kind}.img.lz4"
        path.write_bytes(lz4.frame.compress(os.urandom(size // 2) + bytes(size // 2)))
        images += [f"--{kind}-image", str(path)]
    return ["publish", *qs.args("--version", "1.2.0", *images, *release_config(tmp_path, "1.2.0"))]


def test_publish_draws_hashing_and_uploading_then_clears(release: list[str]) -> None:
    code, _, err = cli(*release)
    assert code == 0, err
    assert_drawn_then_cleared(err, "hashing")
    assert_drawn_then_cleared(err, "uploading")
    assert any(line.startswith("wrote targets/") for line in visible(err))  # the names stay on the screen
    images = [Path(arg) for flag, arg in itertools.pairwise(release) if flag.endswith("-image")]
    mib = sum(path.stat().st_size for path in images) / MIB
    assert drawn(err, "hashing")[-1].startswith(f"hashing  {mib:.1f}/{mib:.1f} MiB  100%"), drawn(err, "hashing")


def test_publish_release_draws_hashing_and_uploading(release: list[str], qs: QS, tmp_path: Path) -> None:
    options = dict(itertools.pairwise(release))
    release_file = tmp_path / "RELEASE.yaml"
    release_file.write_text(yaml.safe_dump({
        "version": "1.2.0", "config": str(qs.config), "release_config": options["--release-config"],
        "repos": [{"variant": VARIANT, "arch": ARCH, "boot_image": options["--boot-image"],
                   "root_image": options["--root-image"], "hash_image": options["--hash-image"]}]}))
    code, _, err = cli("publish-release", str(release_file))
    assert code == 0, err
    assert_drawn_then_cleared(err, "hashing")
    assert_drawn_then_cleared(err, "uploading")


def test_a_plan_draws_its_hashing(release: list[str]) -> None:
    code, out, err = cli(*release, "--plan")
    assert code == 0, err
    assert_drawn_then_cleared(err, "hashing")
    assert not drawn(err, "uploading") and "wrote " not in err
    assert "would publish" in out


def test_publish_draws_nothing_on_a_pipe_or_with_json(release: list[str], qs: QS, tmp_path: Path) -> None:
    copy = copy_quickstart(qs, tmp_path / "copy")
    on_copy = [release[0], *copy.args(), *release[1 + len(qs.args()):]]
    code, _, err = cli(*release, terminal=False)
    assert code == 0, err
    assert "\r" not in err and "MiB/s" not in err
    assert "wrote targets/" in err
    code, out, err = cli(*on_copy, "--json")
    assert code == 0, err
    assert "MiB/s" not in err and "\r" not in err
    assert '"written"' in out


def test_audit_draws_the_targets_checked_only_on_a_terminal(qs: QS) -> None:
    args = ["audit", *qs.args(), "--targets", "all"]
    code, _, err = cli(*args)
    assert code == 0, err
    assert_drawn_then_cleared(err, "checking targets")
    code, _, err = cli(*args, terminal=False)
    assert code == 0 and "MiB/s" not in err and "\r" not in err, err
    code, out, err = cli(*args, "--json")
    assert code == 0 and "MiB/s" not in err and "\r" not in err, err
    assert '"targets_checked"' in out


def test_node_update_draws_each_image_streamed(qs: QS, tmp_path: Path) -> None:
    node = tmp_path / "node"
    node.mkdir()
    with serve_directory(qs.dir / "repo") as url:
        write_node_config(node, f"{url}/metadata/{VARIANT}/{ARCH}/", f"{url}/targets/")
        disk = node / "disk.img"
        code, _, err = cli("node", "make-disk", str(disk), "--boot-size", "4MiB", "--root-size", "16MiB",
                           "--hash-size", "1MiB", "--private-size", "1MiB")
        assert code == 0, err
        paths = ["--config", str(node / "updog.toml"), "--trusted-root", str(qs.root), "--os-release",
                 str(node / "os-release"), "--disk", str(disk), "--metadata-cache", str(node / "cache"),
                 "--migrations-dir", str(node / "migrations"), "--reboot-command", "true", "--arch", ARCH]
        code, out, err = cli("node", *paths, "update-image", "--ignore-waves")
        assert code == 0, err
        assert out == f"Update applied: {VARIANT} 1.1.0\n"
        for kind in ("root", "boot", "hash"):
            assert_drawn_then_cleared(err, f"{kind} image")
        assert visible(err) == ["Starting update to 1.1.0"]
        code, out, err = cli("node", *paths, "update-image", "--ignore-waves", "--json")
        assert code == 0 and "MiB/s" not in err and "\r" not in err, err


# --- the audit's streams (hashing.hash_streams): a local file and a stream of chunks alike --------------


@pytest.mark.parametrize("jobs", [1, 2, 4])
def test_hash_streams_reads_local_files_and_chunks_alike(tmp_path: Path, jobs: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hashing, "SHARED_MIN", 64 * 1024)  # the largest stream's check is shared out
    monkeypatch.setattr(hashing, "CHUNK", 16 * 1024)
    monkeypatch.setattr(hashing, "RING_CHUNK", 8 * 1024)
    good = lz4.frame.compress(os.urandom(200 * 1024) + bytes(200 * 1024), block_size=lz4.frame.BLOCKSIZE_MAX64KB)
    contents = {"good.lz4": good, "bad.lz4": good[:-100], "plain.bin": os.urandom(50 * 1024)}
    for name, data in contents.items():
        (tmp_path / name).write_bytes(data)

    def chunks(data: bytes) -> Iterator[bytes]:
        for start in range(0, len(data), 10_000):
            yield data[start:start + 10_000]

    def opener(data: bytes, exists: bool) -> Callable[[], Iterator[bytes] | None]:
        return lambda: chunks(data) if exists else None

    streams = []
    for name, data in [*contents.items(), ("missing.lz4", b"")]:
        streams.append(hashing.Stream(f"target {name}", len(data), opener(data, name != "missing.lz4"),
                                      name.endswith(".lz4"), None))
        streams.append(hashing.Stream(f"target {name}", len(data), lambda: None, name.endswith(".lz4"),
                                      tmp_path / name))
    recorder = Recorder()
    results = hashing.hash_streams(streams, jobs, recorder)
    for index, (name, data) in enumerate([*contents.items(), ("missing.lz4", b"")]):
        for result in results[2 * index: 2 * index + 2]:
            if name == "bad.lz4":
                assert isinstance(result, ImageError), result
                assert str(result) == "target bad.lz4: truncated LZ4 frame: nodes could not install it"
            elif name == "missing.lz4":
                assert result is None
            else:
                assert result == (len(data), hashlib.sha256(data).hexdigest())
    assert recorder.done >= 2 * (len(good) + len(contents["plain.bin"]))
