"""Shared by the fault tests: release images, the kill shim as a subprocess, and what a client,
a node and the auditor make of a repository after a fault."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import lz4.frame

from repo_tool.publish.quickstart import ARCH, VARIANT, sample_image
from tests.clirun import Runner
from tests.repohelpers import release_config, write_node_config
from tests.s3helpers import node_view
from tests.test_s3 import BUCKET, S3Repo

CHECKOUT = Path(__file__).resolve().parents[2]
OLD, NEW = "1.1.0", "1.2.0"
# tempfile.mkstemp(prefix=".NAME.", suffix=".tmp"): 8 characters from [a-z0-9_] in between.
TEMP_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
RUN_TIMEOUT = 300


def write_images(directory: Path, version: str, size: int, noise: bool = False) -> list[str]:
    """``--version`` and the three image options for a release of LZ4 images of ``size`` bytes
    uncompressed: quickstart's sample images (they compress well), or random bytes (``noise``: the
    files are a little larger than ``size``)."""
    directory.mkdir(parents=True, exist_ok=True)
    args = ["--version", version]
    for kind in ("boot", "root", "hash"):
        path = directory / f"bottlerocket-{VARIANT}-{ARCH}-{version}-{kind}.img.lz4"
        data: bytes = lz4.frame.compress(os.urandom(size)) if noise else sample_image(kind, version, size)
        path.write_bytes(data)
        args += [f"--{kind}-image", str(path)]
    return [*args, *release_config(directory, version)]


@dataclass(frozen=True)
class Step:
    kind: str  # write, fsync, before-link ... or before-send PutObject, after-call UploadPart ...
    detail: str  # the path, or the S3 key (part number, answer status)

    def __str__(self) -> str:
        return f"{self.kind} {self.detail}"


@dataclass
class Killed:
    returncode: int
    stderr: str
    steps: list[Step]  # in order; the last one is where a killed run died

    @property
    def last(self) -> Step:
        return self.steps[-1]

    @property
    def point(self) -> str:
        """Where it died as ``KIND#K``."""
        return f"{self.last.kind}#{sum(1 for s in self.steps if s.kind == self.last.kind)}"

    def reached(self, kind: str, detail_suffix: str) -> bool:
        return any(s.kind == kind and s.detail.endswith(detail_suffix) for s in self.steps)

    def kill_points(self) -> list[str]:
        """For each step N of this (clean) run, its ``KIND#K`` (the Kth step of its kind): step N
        again, whichever thread gets there first in another run."""
        seen: Counter[str] = Counter()
        points = []
        for step in self.steps:
            seen[step.kind] += 1
            points.append(f"{step.kind}#{seen[step.kind]}")
        return points


def _command(at: int | str, args: list[str], trace: Path, s3: bool) -> list[str]:
    return ["--trace", str(trace), *(["--s3"] if s3 else []), str(at), "--", *args]


def _killed(returncode: int, stderr: str, trace: Path) -> Killed:
    lines = trace.read_text().splitlines() if trace.exists() else []
    return Killed(returncode, stderr, [Step(*line.split("\t")[1:3]) for line in lines])


def killpoint(at: int | str, args: list[str], trace: Path, env: Mapping[str, str] | None = None,
              s3: bool = False) -> Killed:
    """``python -m tests.faults.killpoint ... -- ARGS``: ``repo-tool ARGS`` in a new interpreter,
    SIGKILLed at ``at``: the Nth write step (0: never) or ``KIND#K``."""
    trace.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-m", "tests.faults.killpoint", *_command(at, args, trace, s3)],
                          cwd=CHECKOUT, env=None if env is None else dict(env), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)
    return _killed(done.returncode, done.stderr, trace)


class KillServer:
    """``python -m tests.faults.killpoint --serve``: the same runs as :func:`killpoint`, each in a child
    forked from one interpreter that has imported repo-tool and boto3 already (no start-up per run)."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.faults.killpoint", "--serve"], cwd=CHECKOUT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, at: int | str, args: list[str], trace: Path, env: Mapping[str, str] | None = None,
            s3: bool = False) -> Killed:
        trace.unlink(missing_ok=True)
        stderr = trace.with_name(f"{trace.name}.stderr")
        request = {"argv": _command(at, args, trace, s3), "env": dict(os.environ if env is None else env),
                   "cwd": str(CHECKOUT), "stdout": os.devnull, "stderr": str(stderr)}
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        ready, _, _ = select.select([self._proc.stdout], [], [], RUN_TIMEOUT)
        if not ready:
            self._proc.kill()
            raise RuntimeError(f"no answer from the kill server within {RUN_TIMEOUT} s: {args}")
        answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the kill server exited with status {self._proc.wait()}")
        return _killed(json.loads(answer)["returncode"], stderr.read_text(), trace)

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def file_fetcher() -> Any:
    """A python-tuf fetcher for file:// URLs (a missing file is a 404, as a web server says)."""
    from tuf.api.exceptions import DownloadHTTPError
    from tuf.ngclient import FetcherInterface

    class FileFetcher(FetcherInterface):
        def _fetch(self, url: str) -> Iterator[bytes]:
            try:
                data = Path(unquote(urlsplit(url).path)).read_bytes()
            except FileNotFoundError:
                raise DownloadHTTPError(f"{url}: not found", 404) from None
            return iter([data])

    return FileFetcher()


def node_check(run: Runner, work: Path, root: Path, metadata_url: str, targets_url: str) -> str:
    """This tool's node ``check-update -n -j`` (a host on 1.0.0, waves ignored) with a fresh cache:
    the version it would update to.  Fails the test on any error."""
    work.mkdir(parents=True, exist_ok=True)
    write_node_config(work, metadata_url, targets_url, seed=1234)
    result = run("node", "--config", str(work / "updog.toml"), "--trusted-root", str(root),
                 "--os-release", str(work / "os-release"), "--metadata-cache", str(work / "cache"),
                 "--migrations-dir", str(work / "migrations"), "--arch", ARCH, "check-update", "-n", "-j")
    assert result.code == 0, f"node check-update failed: {result.err}"
    version: str = json.loads(result.out)["version"]
    return version


def local_client_sees(run: Runner, work: Path, root: Path, meta: Path, targets: Path) -> str:
    """The newest release python-tuf's ngclient (every image of it downloaded and hash-checked) and
    this tool's node see in a local repository; they must agree."""
    meta_url, targets_url = meta.resolve().as_uri() + "/", targets.resolve().as_uri() + "/"
    seen = node_view(None, meta_url, targets_url, root.read_bytes(), work / "ngclient", VARIANT, ARCH,
                     fetcher=file_fetcher()).latest
    assert node_check(run, work / "node", root, meta_url, targets_url) == seen
    return seen


def s3_client_sees(run: Runner, repo: S3Repo, work: Path) -> str:
    """The newest release ngclient (reading the bucket, every image of it hash-checked) and this
    tool's node (reading a copy of the metadata and manifest objects) see; they must agree."""
    seen: str = repo.view(work / "ngclient").latest
    mirror = work / "mirror"
    for key in repo.objects():
        if key.startswith("metadata/") or key.endswith(".manifest.json"):
            path = mirror / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(repo.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    meta_url = (mirror / "metadata" / VARIANT / ARCH).as_uri() + "/"
    assert node_check(run, work / "node", repo.dir / "root.json", meta_url, (mirror / "targets").as_uri() + "/") == seen
    return seen


def audit_clean(run: Runner, *args: str) -> list[dict[str, str]]:
    """``repo-tool audit ARGS --json`` exits 0 with no error; return its warnings."""
    result = run("audit", *args, "--json")
    findings = json.loads(result.out)["findings"] if result.out else []
    errors = [f for f in findings if f["severity"] == "error"]
    assert result.code == 0 and not errors, (result.code, errors, result.err)
    return [f for f in findings if f["severity"] == "warning"]


def temp_files(directory: Path) -> list[Path]:
    """Files under ``directory`` named like the storage's temporary files."""
    return sorted(p for p in directory.rglob(".*") if p.is_file() and TEMP_FILE.match(p.name))


def killed_at(kill_server: KillServer, number: int, point: str, args: list[str], trace: Path,
              env: Mapping[str, str] | None = None, s3: bool = False) -> tuple[Killed, str]:
    """Run ``args`` killed at step ``number`` (``point``, see :meth:`Killed.kill_points`); check it died
    there; return the run and where, for messages."""
    killed = kill_server.run(point, args, trace, env, s3)
    where = f"step {number} ({point}): {killed.steps[-1:]}"
    assert killed.returncode == -signal.SIGKILL, (where, killed.stderr)
    assert killed.point == point, where
    return killed, where
