#!/usr/bin/env python3
"""Load: NODES ``repo-tool node check-update`` processes at once against one HTTP server.

Makes a quickstart repository with a staggered rollout (1.0.0 everywhere, 1.1.0 offered to 60 % of
the seeds), serves it from a separate process on 127.0.0.1 (HTTP/1.1, every request logged with the
node's seed), and runs, side by side, REPEAT rounds of each:

  repo-tool cold:        NODES node processes started at once, each with its own seed, updog.toml,
                         os-release and empty metadata cache: ``check-update --json``
  repo-tool warm:        the same nodes again, with the caches the cold round left
  baseline urllib:       NODES ``python -c`` processes at once, each fetching with urllib the files a
                         cold node fetches (root probe, timestamp, snapshot, targets, manifest)
  baseline curl:         NODES ``curl`` processes at once fetching the same files (one connection each)
  baseline sequential:   one cold node after another, NODES times
  repo-tool faults:      (with --faults) the cold round against a server that fails some tries
                         (503, dropped connection, body cut half way; at most 2 per file)

Every node's answer is checked against the core's prediction for its seed and every process's
requests against the expected list; the "correct" column counts the processes without a problem in
the worst round (problems are printed on stderr).  Prints the best wall time of each, the most
requests one process made, and the peak RSS per process (max and median over all rounds; from
``os.wait4`` in a small launcher process, see tests/load/launcher.py).  The figures are noisy on a
shared machine: every process is a Python interpreter start, so they measure CPU contention too.
``--json-out``: ``baseline_s`` is the urllib baseline, ``rss_*`` the cold nodes'.

Usage: python bench/load_nodes.py [--nodes N] [--repeat N] [--faults] [--dir DIR] [--keep] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from timing import add_json_out, clean_up, write_json_out  # bench/timing.py (scripts run from bench/)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.load

from repo_tool.cli.common import now_ns
from repo_tool.core.manifest import Manifest
from tests.load.kit import (
    Launch,
    LoadServer,
    NodeDir,
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
from tests.repohelpers import QS

DEADLINE_S = 600
URLLIB = ("import sys, urllib.error, urllib.request\n"
          "for url in sys.argv[1:]:\n"
          "    try:\n"
          "        urllib.request.urlopen(url, timeout=30).read()\n"
          "    except urllib.error.HTTPError as exc:\n"
          "        exc.read()\n")


class Row:
    """One scenario: every round's launch, its requests and what went wrong."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.runs: list[Launch] = []
        self.requests: list[dict[int, int]] = []  # per round: requests per seed
        self.problems: list[list[str]] = []  # per round

    def best_wall(self) -> float:
        return min(run.wall_s for run in self.runs)

    def requests_max(self) -> int:
        """The most requests one process made in any round."""
        return max(max(counts.values(), default=0) for counts in self.requests)

    def requests_per_process(self) -> float:
        return max(sum(counts.values()) / len(run.children) for run, counts in zip(self.runs, self.requests))

    def worst_correct(self, processes: int) -> int:
        """Processes without a problem in the worst round (problems are "seed N: ..." lines)."""
        return min(processes - len({p.split(":")[0] for p in problems}) for problems in self.problems)

    def rss(self) -> tuple[float, float]:
        peaks = [c.maxrss_mib for run in self.runs for c in run.children]
        return max(peaks), statistics.median(peaks)


Check = Callable[[Launch, int, int], list[str]]  # (round, first log line, start ns) -> problems


def _round(row: Row, server: LoadServer, argvs: Sequence[Sequence[str]], work: Path, check: Check,
           sequential: bool = False) -> None:
    """One round: the launch, the requests per seed, and every wrong answer, failed process or
    unexpected request (reported at the end; nothing is left out of the figures)."""
    since = server.count()
    before = now_ns()
    result = launch(argvs, work, DEADLINE_S, sequential)
    row.runs.append(result)
    row.requests.append({seed: len(rs) for seed, rs in server.by_seed(since).items()})
    row.problems.append(check(result, since, before))


def _node_check(server: LoadServer, nodes: list[NodeDir], manifest: Manifest, paths: list[str],
                mode: str = "none") -> Check:
    def check(result: Launch, since: int, before: int) -> list[str]:
        return (answer_problems(nodes, result, manifest, before, now_ns())
                + request_problems(server, since, nodes, paths, mode))
    return check


def _fetch_check(server: LoadServer, seeds: list[int], paths: list[str]) -> Check:
    def check(result: Launch, since: int, before: int) -> list[str]:
        failed = [f"seed {seed}: exit {c.code}: {c.stderr.strip()[-200:]}" for seed, c in zip(seeds, result.children)
                  if c.code != 0]
        return failed + request_problems(server, since, [NodeDir(Path(), seed) for seed in seeds], paths)
    return check


def _fetch_urls(url: str, qs: QS, seed: int) -> list[str]:
    return [f"{url}{path}?seed={seed}&version=0.9.0" for path in cold_paths(qs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--faults", action="store_true", help="also a cold round against a failing server")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--dir", type=Path, default=None)
    add_json_out(parser)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-load-nodes-"))
    work.mkdir(parents=True, exist_ok=True)
    run_dir = work / "load-nodes"
    shutil.rmtree(run_dir, ignore_errors=True)
    made = [run_dir]
    qs, manifest = staggered_quickstart(run_dir / "qs")
    seeds = spread_seeds(args.nodes)
    rows = {name: Row(name) for name in ("repo-tool cold", "repo-tool warm", "baseline urllib", "baseline curl",
                                         "baseline sequential (cold)", "repo-tool faults (cold)")}
    curl = shutil.which("curl")
    cold = cold_paths(qs)
    try:
        with serve(qs.dir / "repo", run_dir / "requests.log") as server:
            for rep in range(args.repeat):
                nodes = make_nodes(run_dir / f"nodes-{rep}", server.url, seeds)
                argvs = [n.argv(qs.root, "check-update", "--json") for n in nodes]
                _round(rows["repo-tool cold"], server, argvs, run_dir / f"cold-{rep}",
                       _node_check(server, nodes, manifest, cold))
                _round(rows["repo-tool warm"], server, argvs, run_dir / f"warm-{rep}",
                       _node_check(server, nodes, manifest, warm_paths(qs)))
                fetches = [_fetch_urls(server.url, qs, seed) for seed in seeds]
                _round(rows["baseline urllib"], server, [[sys.executable, "-c", URLLIB, *urls] for urls in fetches],
                       run_dir / f"urllib-{rep}", _fetch_check(server, seeds, cold))
                if curl is not None:
                    _round(rows["baseline curl"], server, [[curl, "-s", *urls] for urls in fetches],
                           run_dir / f"curl-{rep}", _fetch_check(server, seeds, cold))
                one_by_one = make_nodes(run_dir / f"sequential-{rep}", server.url, seeds)
                _round(rows["baseline sequential (cold)"], server,
                       [n.argv(qs.root, "check-update", "--json") for n in one_by_one],
                       run_dir / f"sequential-{rep}-runs", _node_check(server, one_by_one, manifest, cold),
                       sequential=True)
        for rep in range(args.repeat if args.faults else 0):
            with serve(qs.dir / "repo", run_dir / f"faults-{rep}.log", faults="mixed") as server:
                nodes = make_nodes(run_dir / f"faults-nodes-{rep}", server.url, seeds)
                _round(rows["repo-tool faults (cold)"], server,
                       [n.argv(qs.root, "check-update", "--json") for n in nodes], run_dir / f"faults-{rep}",
                       _node_check(server, nodes, manifest, cold, "mixed"))
    finally:
        clean_up(work, args.keep, args.dir is not None, made)

    n = len(seeds)
    print(f"{n} processes at once (best of {args.repeat}); requests per process (max); peak RSS per process over "
          "all rounds")
    print(f"{'':30} {'wall s':>8} {'requests':>9} {'RSS max MiB':>12} {'RSS median MiB':>15} {'correct':>8}")
    figures: dict[str, object] = {"nodes": n, "repeat": args.repeat}
    keys = {"repo-tool cold": "cold", "repo-tool warm": "warm", "baseline urllib": "urllib", "baseline curl": "curl",
            "baseline sequential (cold)": "sequential", "repo-tool faults (cold)": "faults"}
    for name, row in rows.items():
        if not row.runs:
            continue
        rss_max, rss_median = row.rss()
        correct = row.worst_correct(n)
        print(f"{name:30} {row.best_wall():>8.2f} {row.requests_max():>9} {rss_max:>12.1f} {rss_median:>15.1f} "
              f"{correct:>5}/{n}")
        key = keys[name]
        figures.update({f"{key}_s": round(row.best_wall(), 3), f"{key}_requests_max": row.requests_max(),
                        f"{key}_requests_per_process": row.requests_per_process(), f"{key}_ok": correct,
                        f"{key}_rss_max_mib": round(rss_max, 1), f"{key}_rss_median_mib": round(rss_median, 1)})
        for problems in row.problems:
            for line in problems[:5]:
                print(f"  {name}: {line}", file=sys.stderr)
    cold_row, sequential_row = rows["repo-tool cold"], rows["baseline sequential (cold)"]
    rss_max, rss_median = cold_row.rss()
    figures.update({"baseline_label": f"{n} python urllib fetches", "baseline_s": figures["urllib_s"],
                    "rss_max_mib": round(rss_max, 1), "rss_median_mib": round(rss_median, 1)})
    ratio = sequential_row.best_wall() / cold_row.best_wall()
    print(f"{n} nodes at once vs one after another: {ratio:.2f}x faster; vs {n} bare urllib fetchers: "
          f"{cold_row.best_wall() / rows['baseline urllib'].best_wall():.1f}x the time; warm requests per node: "
          f"{rows['repo-tool warm'].requests_max()} (target: at most 2)")
    write_json_out(args.json_out, figures)


if __name__ == "__main__":
    main()
