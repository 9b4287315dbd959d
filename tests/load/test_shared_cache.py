"""Node processes on one host at once (updog run by the API server and by hand, say): 20 processes
sharing one metadata cache, migrations directory and ``--state-dir``.  No write tears or blocks
another: every process answers what the core predicts, every cached file is whole, and a second
round finds everything it needs in the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_tool.cli.common import now_ns
from repo_tool.localfs import leftover_temp_files
from tests.load.kit import (
    answer_problems,
    cold_paths,
    launch,
    make_nodes,
    request_problems,
    serve,
    spread_seeds,
    staggered_quickstart,
    warm_paths,
)

pytestmark = pytest.mark.long

PROCESSES = 20
DEADLINE_S = 120


def test_processes_sharing_one_cache_and_state(tmp_path: Path) -> None:
    qs, manifest = staggered_quickstart(tmp_path / "qs")
    host = tmp_path / "host"
    with serve(qs.dir / "repo", tmp_path / "requests.log") as server:
        nodes = make_nodes(tmp_path / "nodes", server.url, spread_seeds(PROCESSES))
        argvs = [n.argv(qs.root, "check-update", "--json", host=host) for n in nodes]
        before = now_ns()
        cold = launch(argvs, tmp_path / "cold", DEADLINE_S)
        assert not answer_problems(nodes, cold, manifest, before, now_ns())
        # Each process fetched the root probe and timestamp, then whatever the cache did not hold yet.
        paths = cold_paths(qs)
        for seed, requests in server.by_seed().items():
            got = [r.path for r in requests]
            assert got[:2] == paths[:2] and all(p in paths[2:] for p in got[2:]), (seed, got)
            assert [p for p in paths if p in got] == got, (seed, got)  # in order, none twice
        since = server.count()
        before = now_ns()
        warm = launch(argvs, tmp_path / "warm", DEADLINE_S)
        problems = answer_problems(nodes, warm, manifest, before, now_ns())
        assert not problems + request_problems(server, since, nodes, warm_paths(qs))

    # Every file the processes left is whole: byte for byte a file of the repository.
    meta, targets = qs.meta, qs.targets
    fetched = sorted((host / "cache" / ".fetched").iterdir())
    assert [p.name for p in fetched] == sorted(["1.root.json", *(p.rsplit("/", 1)[1] for p in paths[1:])])
    for path in fetched:
        source = targets / path.name if path.name.endswith(".manifest.json") else meta / path.name
        assert path.read_bytes() == source.read_bytes(), path
    state = host / "state"
    newest = {role: qs.newest(role)["signed"]["version"] for role in ("snapshot", "targets")}
    assert (state / "root.json").read_bytes() == qs.root.read_bytes()
    assert (state / "timestamp.json").read_bytes() == (meta / "timestamp.json").read_bytes()
    for role, version in newest.items():
        assert (state / f"{role}.json").read_bytes() == (meta / f"{version}.{role}.json").read_bytes()
    for directory in (host / "cache", host / "cache" / ".fetched", state):
        assert leftover_temp_files(directory) == [], directory
