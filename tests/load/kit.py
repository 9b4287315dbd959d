"""Shared by the load tests and ``bench/load_nodes.py`` / ``bench/publish_many.py``: the request
logging server and the launcher as separate processes, node directories, and the figures."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lz4.frame
import yaml

from repo_tool.cli.common import now_ns
from repo_tool.config import load_config
from repo_tool.core.instant import NANOS_PER_SECOND
from repo_tool.core.manifest import Manifest, Update
from repo_tool.core.rollout import Action
from repo_tool.core.selection import Host, select
from repo_tool.core.semver import Version
from repo_tool.core.waves import MAX_SEED
from repo_tool.publish.inputs import load_policy
from repo_tool.publish.live import Write
from repo_tool.publish.load import Location
from repo_tool.publish.maintenance import RolloutRequest, rollout
from tests.load.server import fault_plan
from tests.repohelpers import (
    ARCH,
    IMAGE_SUFFIXES,
    QS,
    VARIANT,
    image_path,
    make_quickstart,
    release_config,
    write_node_config,
    write_stored_lz4,
)

RecordProperty = Callable[[str, object], None]  # pytest's record_property fixture
HERE = Path(__file__).resolve().parent
SERVER = HERE / "server.py"
LAUNCHER = HERE / "launcher.py"
REPO_TOOL = [sys.executable, "-m", "repo_tool"]
HOUR = 3600 * NANOS_PER_SECOND
NODE_VERSION = "0.9.0"  # below both quickstart releases, so every seed is offered one of them


# --- processes and their figures ----------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    code: int | None
    maxrss_kib: int
    user_s: float
    sys_s: float
    wall_s: float
    timed_out: bool
    stdout: str
    stderr: str

    @property
    def maxrss_mib(self) -> float:
        return self.maxrss_kib / 1024


@dataclass(frozen=True)
class Launch:
    wall_s: float
    launcher_hwm_kib: int
    children: list[Child]

    def rss_mib(self) -> dict[str, float]:
        """Peak RSS of the children: the largest and the median, in MiB."""
        peaks = [c.maxrss_mib for c in self.children]
        return {"max": max(peaks), "median": statistics.median(peaks)}


def launch(argvs: Sequence[Sequence[str]], work: Path, deadline_s: float, sequential: bool = False) -> Launch:
    """Run every argv as a process (all at once unless ``sequential``) through ``launcher.py``;
    processes still running after ``deadline_s`` are killed and marked ``timed_out``."""
    work.mkdir(parents=True, exist_ok=True)
    outputs = [(work / f"{i}.out", work / f"{i}.err") for i in range(len(argvs))]
    jobs = [{"argv": list(argv), "stdout": str(out), "stderr": str(err)} for argv, (out, err) in zip(argvs, outputs)]
    (work / "jobs.json").write_text(json.dumps(jobs))
    args = [sys.executable, str(LAUNCHER), str(work / "jobs.json"), str(deadline_s)]
    done = subprocess.run([*args, *(["--sequential"] if sequential else [])], capture_output=True, text=True,
                          check=False, timeout=deadline_s + 60)
    if done.returncode != 0:
        raise RuntimeError(f"launcher failed ({done.returncode}): {done.stderr.strip()}")
    report = json.loads(done.stdout)
    children = [Child(**r, stdout=_read(out), stderr=_read(err)) for r, (out, err) in zip(report["children"], outputs)]
    return Launch(report["wall_s"], report["launcher_hwm_kib"], children)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


# --- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    seed: int
    path: str
    attempt: int
    action: str
    range: int | None  # the first byte a Range header asked for
    sent: int | None  # body bytes of a cut answer


class LoadServer:
    """``server.py`` in its own process; ``requests()`` reads its log."""

    def __init__(self, url: str, log: Path) -> None:
        self.url = url
        self.log = log

    def requests(self, since: int = 0) -> list[Request]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [Request(**json.loads(line)) for line in lines[since:]]

    def count(self) -> int:
        return len(self.requests())

    def by_seed(self, since: int = 0) -> dict[int, list[Request]]:
        out: dict[int, list[Request]] = defaultdict(list)
        for request in self.requests(since):
            out[request.seed].append(request)
        return out


@contextlib.contextmanager
def serve(directory: Path, log: Path, faults: str = "none") -> Iterator[LoadServer]:
    server = subprocess.Popen([sys.executable, str(SERVER), str(directory), str(log), "--faults", faults],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        yield LoadServer(f"http://127.0.0.1:{port}", log)
    finally:
        server.terminate()
        server.wait(timeout=30)


# --- the repository and the nodes ---------------------------------------------------------------


def stagger_rollout(qs: QS, now: int) -> None:
    """1.0.0 fully rolled out (started 8 days ago), 1.1.0 part way (started 5 days 6 hours ago: the
    default policy has offered it to 60 % of the seeds and its next wave starts in 18 hours): a node
    at 0.9.0 is offered one or the other depending on its seed, and exits 0 either way."""
    location = Location.of(load_config(qs.config, None, None), VARIANT, ARCH)
    policy, _ = load_policy("default")
    for version, hours_ago in (("1.0.0", 8 * 24), ("1.1.0", 5 * 24 + 6)):
        request = RolloutRequest(Action.RESCHEDULE, Version.parse(version), policy, now - hours_ago * HOUR)
        rollout(location, now, Write(), request)


def staggered_quickstart(directory: Path) -> tuple[QS, Manifest]:
    """A quickstart repository after :func:`stagger_rollout`, and its manifest."""
    qs = make_quickstart(directory)
    stagger_rollout(qs, now_ns())
    return qs, Manifest.from_bytes(json.dumps(qs.manifest()).encode())


def spread_seeds(count: int) -> list[int]:
    """``count`` distinct seeds spread over 0..2047."""
    return sorted({i * MAX_SEED // count for i in range(count)})


@dataclass(frozen=True)
class NodeDir:
    dir: Path
    seed: int

    def argv(self, root: Path, *args: str, host: Path | None = None) -> list[str]:
        """The node command line; with ``host``, the metadata cache, migrations and ``--state-dir``
        are that directory's, shared with every other node given the same ``host`` (one host
        running several updog commands at once)."""
        state = self.dir if host is None else host
        extra = [] if host is None else ["--state-dir", str(host / "state")]
        return [*REPO_TOOL, "node", "--config", str(self.dir / "updog.toml"), "--trusted-root", str(root),
                "--os-release", str(self.dir / "os-release"), "--metadata-cache", str(state / "cache"),
                "--migrations-dir", str(state / "migrations"), "--arch", ARCH, *extra, *args]


def make_nodes(work: Path, url: str, seeds: Sequence[int], current: str = NODE_VERSION) -> list[NodeDir]:
    """One directory per node with its own updog.toml (its seed) and os-release (as tests/test_node.py)."""
    nodes = []
    for seed in seeds:
        directory = work / f"node-{seed}"
        directory.mkdir(parents=True, exist_ok=True)
        write_node_config(directory, f"{url}/metadata/{VARIANT}/{ARCH}/", f"{url}/targets/", seed, current=current)
        nodes.append(NodeDir(directory, seed))
    return nodes


def predicted(manifest: Manifest, seed: int, now: int, current: str = NODE_VERSION) -> Update | None:
    """What the core says a node with ``seed`` at ``current`` is offered at ``now``."""
    return select(manifest, Host(VARIANT, ARCH, Version.parse(current), seed), now).update


def expected_json(update: Update) -> dict[str, Any]:
    """``check-update --json`` for an offered upgrade."""
    return {**update.to_json_obj(), "downgrade": False}


def cold_paths(qs: QS) -> list[str]:
    """The requests of a node with an empty cache, in order: the root probe, timestamp, snapshot,
    targets and manifest.json (consistent snapshot names)."""
    meta = f"/metadata/{VARIANT}/{ARCH}"
    snapshot_v = qs.newest("timestamp")["signed"]["meta"]["snapshot.json"]["version"]
    targets_v = qs.newest("snapshot")["signed"]["meta"]["targets.json"]["version"]
    manifest = qs.newest("targets")["signed"]["targets"]["manifest.json"]["hashes"]["sha256"]
    return [f"{meta}/2.root.json", f"{meta}/timestamp.json", f"{meta}/{snapshot_v}.snapshot.json",
            f"{meta}/{targets_v}.targets.json", f"/targets/{manifest}.manifest.json"]


def fault_attempts(mode: str, seed: int, paths: Sequence[str]) -> list[tuple[str, int, str]]:
    """(path, attempt, action) of every request a node with ``seed`` makes for ``paths`` in order,
    as ``server.py --faults mode`` answers them: the planned failures, then the file."""
    out = []
    for path in paths:
        plan = fault_plan(mode, seed, path)
        out += [(path, i + 1, action) for i, action in enumerate(plan)] + [(path, len(plan) + 1, "ok")]
    return out


def warm_paths(qs: QS) -> list[str]:
    """A second check with nothing new: the root probe and timestamp.json (README, node client)."""
    return cold_paths(qs)[:2]


# --- checks shared by the tests and the bench scripts ---------------------------------------------


def answer_problems(nodes: Sequence[NodeDir], result: Launch, manifest: Manifest, before: int,
                    after: int) -> list[str]:
    """What went wrong in a round of ``check-update --json``: a node that timed out, failed, or
    answered other than the core predicts for its seed (at the round's start and at its end: the
    staggered rollout has no wave edge in between, which is checked too)."""
    problems = []
    for n, child in zip(nodes, result.children):
        expected = predicted(manifest, n.seed, before)
        if expected is None or predicted(manifest, n.seed, after) != expected:
            problems.append(f"seed {n.seed}: the core's answer changed during the round or is empty")
            continue
        if child.timed_out or child.code != 0:
            problems.append(f"seed {n.seed}: exit {child.code} (timed out: {child.timed_out}): {child.stderr.strip()}")
            continue
        try:
            answer = json.loads(child.stdout)
        except ValueError:
            problems.append(f"seed {n.seed}: not JSON on stdout: {child.stdout!r}")
            continue
        if answer != expected_json(expected):
            problems.append(f"seed {n.seed}: offered {answer.get('version')}, the core says {expected.version}")
    return problems


def request_problems(server: LoadServer, since: int, nodes: Sequence[NodeDir], paths: Sequence[str],
                     mode: str = "none") -> list[str]:
    """Requests logged since ``since`` that differ from ``paths`` per node (in order, each answered
    as ``server.py --faults mode`` plans), or that carry no node's seed.  Attempts are compared only
    with faults (the server counts them across rounds)."""
    seen = server.by_seed(since)
    seeds = {n.seed for n in nodes}
    problems = [f"{len(rs)} requests from unknown seed {s}" for s, rs in seen.items() if s not in seeds]
    for n in nodes:
        got = [(r.path, r.attempt, r.action) for r in seen.get(n.seed, [])]
        want = fault_attempts(mode, n.seed, paths)
        if mode == "none":
            got, want = [(p, 0, a) for p, _, a in got], [(p, 0, a) for p, _, a in want]
        if got != want:
            problems.append(f"seed {n.seed}: requests {got}, expected {want}")
    return problems


# --- many variant/arch repositories -------------------------------------------------------------

# 30 variants x 2 arches, none of them the quickstart's own aws-k8s-1.28/x86_64.
PUBLISH_VARIANTS = tuple(f"{family}-k8s-1.{minor}" for family in ("aws", "vmware", "metal") for minor in range(30, 40))
PUBLISH_ARCHES = ("x86_64", "aarch64")
IMAGE_SHARES = {"boot": 0.06, "root": 0.88, "hash": 0.06}  # Bottlerocket's: root is most of a release


def publish_pairs() -> list[tuple[str, str]]:
    return [(variant, arch) for variant in PUBLISH_VARIANTS for arch in PUBLISH_ARCHES]


def write_images(directory: Path, variant: str, arch: str, version: str, total_bytes: int = 0) -> dict[str, Path]:
    """The three images of one release, named as Bottlerocket names them.  ``total_bytes`` 0: a few
    KiB of lz4 frame each; else LZ4 frames of that many random bytes shared out as in Bottlerocket
    (stored blocks: as costly to hash, copy and check as real lz4 images)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in IMAGE_SUFFIXES:
        path = image_path(directory, kind, version, variant, arch)
        if total_bytes:
            size = int(total_bytes * IMAGE_SHARES[kind])
            if not path.exists() or path.stat().st_size < size:
                write_stored_lz4(path, size, noise=True)
        else:
            path.write_bytes(lz4.frame.compress(f"{kind} {version} {variant} {arch}\n".encode() * 200))
        paths[kind] = path
    return paths


def write_release(path: Path, config: Path, version: str, images: dict[tuple[str, str], dict[str, Path]],
                  copy_targets: Sequence[Path] = ()) -> Path:
    """A ``publish-release`` RELEASE.yaml for every (variant, arch) in ``images``."""
    repos = [{"variant": variant, "arch": arch, "boot_image": str(files["boot"]), "root_image": str(files["root"]),
              "hash_image": str(files["hash"]), "copy_targets": [str(p) for p in copy_targets]}
             for (variant, arch), files in images.items()]
    folder = path.parent / f"release-{version}"
    folder.mkdir(parents=True, exist_ok=True)
    release_toml = release_config(folder, version, after="1.0.0")[1]
    path.write_text(yaml.safe_dump({"version": version, "config": str(config), "release_config": release_toml,
                                    "repos": repos}))
    return path
