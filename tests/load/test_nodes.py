"""50 node processes (``repo-tool node check-update``) at once against one HTTP server: each with
its own seed, cache and config, each answering what the core predicts for its seed; then again
with warm caches.  Full-size figures (and baselines): ``bench/load_nodes.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repo_tool.cli.common import now_ns
from tests.load.kit import (
    Launch,
    RecordProperty,
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

NODES = 50
DEADLINE_S = 180  # per round: the launcher kills what is still running then
NODE_RSS_BOUND_MIB = 200  # generous: a node measures about 50 MiB


def test_fifty_nodes_at_once_cold_then_warm(tmp_path: Path, record_property: RecordProperty) -> None:
    qs, manifest = staggered_quickstart(tmp_path / "qs")
    rounds: dict[str, tuple[Launch, int]] = {}
    with serve(qs.dir / "repo", tmp_path / "requests.log") as server:
        nodes = make_nodes(tmp_path / "nodes", server.url, spread_seeds(NODES))
        assert len(nodes) == NODES
        for name, paths in (("cold", cold_paths(qs)), ("warm", warm_paths(qs))):
            since = server.count()
            before = now_ns()
            result = launch([n.argv(qs.root, "check-update", "--json") for n in nodes], tmp_path / name, DEADLINE_S)
            problems = answer_problems(nodes, result, manifest, before, now_ns())
            problems += request_problems(server, since, nodes, paths)
            assert not problems, "\n".join(problems[:10])
            rounds[name] = (result, server.count() - since)
    assert rounds["cold"][1] == NODES * 5 and rounds["warm"][1] == NODES * 2  # warm: at most 2 each
    # The seeds really split between the two answers.
    assert {json.loads(c.stdout)["version"] for c in rounds["warm"][0].children} == {"1.0.0", "1.1.0"}
    lines = []
    for name, (result, requests) in rounds.items():
        # Every peak is the node's own (above the launcher's floor) and bounded.
        assert all(result.launcher_hwm_kib < c.maxrss_kib < NODE_RSS_BOUND_MIB * 1024 for c in result.children)
        rss = result.rss_mib()
        for key, value in (("wall_s", result.wall_s), ("requests", requests), ("rss_max_mib", rss["max"]),
                           ("rss_median_mib", rss["median"])):
            record_property(f"{name}_{key}", round(value, 3))
        lines.append(f"{name}: {result.wall_s:.1f} s, {requests} requests, node peak RSS max {rss['max']:.1f} MiB, "
                     f"median {rss['median']:.1f} MiB")
    print(f"\n{NODES} nodes at once: " + "; ".join(lines))
