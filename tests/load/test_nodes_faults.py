"""50 node processes at once against a server that fails some requests (503, connection dropped
without an answer, body cut off half way), at most twice per file: every node retries (tough's 4
tries, resuming cut bodies) and still answers what the core predicts for its seed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from repo_tool.cli.common import now_ns
from tests.load.kit import (
    RecordProperty,
    answer_problems,
    cold_paths,
    launch,
    make_nodes,
    request_problems,
    serve,
    spread_seeds,
    staggered_quickstart,
)

pytestmark = pytest.mark.long

NODES = 50
DEADLINE_S = 180


def test_fifty_nodes_retry_through_server_faults(tmp_path: Path, record_property: RecordProperty) -> None:
    qs, manifest = staggered_quickstart(tmp_path / "qs")
    with serve(qs.dir / "repo", tmp_path / "requests.log", faults="mixed") as server:
        nodes = make_nodes(tmp_path / "nodes", server.url, spread_seeds(NODES))
        before = now_ns()
        result = launch([n.argv(qs.root, "check-update", "--json") for n in nodes], tmp_path / "run", DEADLINE_S)
        problems = answer_problems(nodes, result, manifest, before, now_ns())
        # Each node made exactly the planned tries: every failure retried once, nothing more.
        problems += request_problems(server, 0, nodes, cold_paths(qs), mode="mixed")
        assert not problems, "\n".join(problems[:10])
        requests = server.requests()
    actions = Counter(r.action for r in requests)
    # A cut body is resumed where it stopped (every later try asks for the rest with Range); nothing
    # else asks for a range.
    resume_at: dict[tuple[int, str], int | None] = {}
    for r in requests:
        assert r.range == resume_at.get((r.seed, r.path)), r
        if r.sent is not None:
            resume_at[(r.seed, r.path)] = r.sent
    assert sum(r.range is not None for r in requests) >= 10
    assert min(actions["503"], actions["drop"], actions["cut"]) >= 10, actions  # every kind, many times
    rss = result.rss_mib()
    record_property("wall_s", round(result.wall_s, 3))
    record_property("requests", sum(actions.values()))
    record_property("rss_max_mib", round(rss["max"], 1))
    print(f"\n{NODES} nodes through faults {dict(actions)}: {result.wall_s:.1f} s, "
          f"node peak RSS max {rss['max']:.1f} MiB, median {rss['median']:.1f} MiB")
