#!/usr/bin/env python3
"""P8: ``repo-tool rollout status`` over many variant/arch repositories, against a python-tuf script.

Builds (once per run) a fleet: ``repo-tool quickstart``, then REPOS variant/arch repositories (30
variants x 2 arches = 60 by default, tests/load/kit.py's pairs) made by one ``publish-release --init``
of 1.0.0 (its waves started 6 days 12 hours before AT: complete) and one ``publish-release`` of 1.1.0
(started 50 hours before AT: rolling, in the default policy's 4th wave), a few KiB of images each.
Serves the repository from this file's ``--serve`` (HTTP/1.1, keep-alive, TCP_NODELAY) in a separate
process; the config lists the pairs under ``variants:`` (an HTTP base cannot be listed).  AT is one
instant fixed for the whole run (when it starts), given to both sides, so their counts compare.
Then times, REPEAT rounds taking the sides in turn (odd rounds in the other order), after one untimed
warm-up round of each:

  ours:      ``repo-tool rollout status --config STATUS.yaml --at AT --json``, one process: every
             repository loaded and verified as a node loads it (8 at a time), its manifest.json
             fetched and checked, every update's standing (2048 seeds each)
  baseline:  what a release engineer would script with python-tuf: this file run with
             ``--baseline`` (imports python-tuf and the standard library only), one process: for each
             repository in turn, an ``ngclient.Updater`` on a fresh metadata directory with the
             trusted root, ``refresh()``, ``get_targetinfo("manifest.json")``, ``download_target``,
             ``json.load``; then, for the newest update of the variant/arch, the seeds 0..2047 it is
             offered to at AT, by updog's readiness rule written here from SPEC §7 (its own, not
             repo_tool.core's) and the max_version filter of §8.1

Every round checks that both sides exited 0 and that, for every repository, the newest update's
version and offered-seed count are the same on both sides (it stops otherwise); before the rounds,
untimed, so do runs at five more instants, from before 1.1.0's first timed wave to after its last
(``CHECK_HOURS``).  Prints the best
wall time of each, min / median / max, peak RSS (``os.wait4`` in tests/load/launcher.py) and the
HTTP requests of one run of each.  Ratio: baseline time / ours (higher is better); target >= 1.0x.

``--json-out``: ``ours_s``, ``baseline_s``, ``ratio``, ``ours_rss_mib``, ``spread_s`` and more.

Usage: python bench/rollout_status.py [--repos N] [--repeat N] [--dir DIR] [--keep] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import calendar
import json
import re
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

# Only the standard library at the top: ``--baseline`` runs this file as the release engineer's script,
# which imports python-tuf and nothing of repo-tool; the fleet builder imports the rest in main().

MAX_SEED = 2048
NS = 1_000_000_000
HOUR = 3600 * NS

# --- the baseline: a python-tuf script ----------------------------------------------------------

_INSTANT = re.compile(r"(-?\d{4,})-(\d{1,2})-(\d{1,2})[Tt ](\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d+))?"
                      r"(Z|z|UTC|[+-]\d{2}:?\d{2})")
_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


def instant_ns(text: str) -> int:
    """SPEC §5.3's lenient RFC 3339 read, as integer ns since the epoch (UTC)."""
    m = _INSTANT.fullmatch(text)
    if m is None:
        raise ValueError(f"not an RFC 3339 instant: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = int(((m.group(7) or "")[:9]).ljust(9, "0"))
    zone = m.group(8)
    offset = 0
    if zone not in ("Z", "z", "UTC"):
        digits = zone[1:].replace(":", "")
        offset = (int(digits[:2]) * 3600 + int(digits[2:]) * 60) * (1 if zone[0] == "+" else -1)
    return (calendar.timegm((year, month, day, hour, minute, second)) - offset) * NS + fraction


def version_key(text: str) -> tuple[int, int, int]:
    """Release versions only (the fleet publishes no pre-release): enough order for this script."""
    m = _SEMVER.fullmatch(text)
    if m is None:
        raise ValueError(f"this script orders plain MAJOR.MINOR.PATCH versions only: {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def update_ready(waves: dict[int, int], seed: int, now: int) -> bool:
    """SPEC §7: updog's ``update_ready(seed, now)`` for an update's ``waves`` (seed -> instant ns)."""
    below = [k for k in waves if 0 <= k < seed]
    above = [k for k in waves if seed <= k <= MAX_SEED]
    start = max(below) if below else None
    end = min(above) if above else None
    if start is None and end is None:
        return True  # no wave
    if start is None:
        return True  # Initial: passed or not, ready at once (the quirk)
    if end is None:
        return waves[start] <= now  # Last: passed once it starts
    start_time, end_time = waves[start], waves[end]
    if end_time <= now:
        return True  # passed
    if start_time > now:
        return False  # not started
    width, span = end - start, end_time - start_time
    s, n = divmod(span, NS)
    time_per_seed = (s // width) * NS + ((s % width) * NS) // width + n // width  # chrono's TimeDelta / i32
    return now >= start_time + time_per_seed * seed  # the absolute seed, as updog merged it


def offered(update: dict[str, Any], now: int) -> int:
    """How many of the seeds 0..2047 updog offers ``update`` at ``now`` (§8.1: none above max_version)."""
    if version_key(update["version"]) > version_key(update["max_version"]):
        return 0
    waves = {int(k): instant_ns(v) for k, v in update["waves"].items()}
    return sum(1 for seed in range(MAX_SEED) if update_ready(waves, seed, now))


def baseline(spec_file: Path, at_text: str) -> None:
    """``--baseline SPEC.json AT``: the python-tuf script.  Prints {"VARIANT/ARCH": [version, seeds]}."""
    import tempfile

    from tuf.ngclient import Updater

    spec = json.loads(spec_file.read_text())
    root = Path(spec["root"]).read_bytes()
    now = instant_ns(at_text)
    result: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory(prefix="p8-baseline-") as work:
        for variant, arch in spec["pairs"]:
            cache = Path(work) / variant / arch
            cache.mkdir(parents=True)
            updater = Updater(metadata_dir=str(cache), metadata_base_url=f"{spec['url']}/metadata/{variant}/{arch}/",
                              target_base_url=f"{spec['url']}/targets/", target_dir=str(cache), bootstrap=root)
            updater.refresh()
            info = updater.get_targetinfo("manifest.json")
            if info is None:
                raise SystemExit(f"{variant}/{arch}: manifest.json is not listed")
            with open(updater.download_target(info), "rb") as handle:
                manifest = json.load(handle)
            mine = [u for u in manifest["updates"] if (u["variant"], u["arch"]) == (variant, arch)]
            newest = max(mine, key=lambda u: version_key(u["version"]))
            result[f"{variant}/{arch}"] = [newest["version"], offered(newest, now)]
    print(json.dumps(result))


# --- the server ---------------------------------------------------------------------------------


def serve(directory: Path, log: Path) -> None:
    """``--serve DIR LOG``: DIR over HTTP/1.1 (keep-alive) on 127.0.0.1, one line per request in LOG;
    prints the port.  Its sockets send at once (TCP_NODELAY, as web servers and CDNs set it): without
    it, a keep-alive answer written as headers then body waits for the client's delayed ACK, about
    40 ms a request on Linux loopback, which would time the server instead of the clients."""
    import functools
    import os
    import socket
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handle = log.open("a")
    lock = threading.Lock()

    class Handler(SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            with lock:
                handle.write(f"{code} {self.path}\n")
                handle.flush()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64

    server = Server(("127.0.0.1", 0), functools.partial(Handler, directory=os.path.abspath(directory)))
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.05)


# --- building the fleet and timing both sides ----------------------------------------------------

DEADLINE_S = 600
# Besides AT, the counts are compared (untimed) at these hours from AT (1.1.0 started 50 hours before
# it): before 1.1.0's first timed wave, inside three of its waves, after its last; the metadata
# expires after them all.
CHECK_HOURS = (-49.5, -48.5, -30.0, 30.0, 100.0)


class Served:
    """This file's ``--serve`` in its own process, for as long as the ``with`` block runs."""

    def __init__(self, directory: Path, log: Path) -> None:
        self.argv = [sys.executable, str(Path(__file__).resolve()), "--serve", str(directory), str(log)]
        self.log = log

    def __enter__(self) -> Served:
        import subprocess

        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.process.stdout.readline())}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def count(self) -> int:
        """Requests answered so far."""
        return len(self.log.read_text().splitlines()) if self.log.exists() else 0


def build(run_dir: Path, pairs: list[tuple[str, str]], at: int) -> Path:
    """The quickstart and the fleet (1.0.0 complete, 1.1.0 rolling at ``at``); the quickstart's directory."""
    import yaml

    from repo_tool.core.instant import format_instant
    from tests.load.kit import REPO_TOOL, launch, write_images, write_release

    qs = run_dir / "qs"
    made = launch([[*REPO_TOOL, "quickstart", str(qs)]], run_dir / "quickstart", DEADLINE_S).children[0]
    if made.code != 0:
        raise SystemExit(f"quickstart: exit {made.code}: {made.stderr.strip()[-500:]}")
    for version, started, init in (("1.0.0", at - (6 * 24 + 12) * HOUR, True), ("1.1.0", at - 50 * HOUR, False)):
        images = {pair: write_images(run_dir / "images" / version / "-".join(pair), *pair, version) for pair in pairs}
        release = write_release(run_dir / f"release-{version}.yaml", qs / "repo-tool.yaml", version, images)
        data = yaml.safe_load(release.read_text())
        data["release_start_time"] = format_instant(started)
        release.write_text(yaml.safe_dump(data))
        argv = [*REPO_TOOL, "publish-release", str(release), *(["--init"] if init else []), "--json"]
        child = launch([argv], run_dir / f"publish-{version}", DEADLINE_S).children[0]
        if child.code != 0:
            raise SystemExit(f"publish-release {version}: exit {child.code}: {child.stderr.strip()[-500:]}")
    return qs


def status_config(qs: Path, url: str, pairs: list[tuple[str, str]]) -> Path:
    """The quickstart's config with the repository read over HTTP and the pairs listed."""
    import yaml

    data = yaml.safe_load((qs / "repo-tool.yaml").read_text())
    repo = data["repos"]["dev"]
    repo.update({"metadata_url": f"{url}/metadata/", "targets_url": f"{url}/targets/",
                 "variants": [f"{v}/{a}" for v, a in pairs]})
    path = qs / "status.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def ours_counts(stdout: str) -> dict[str, list[Any]]:
    """``rollout status --json``: the newest update of each variant/arch (its first row) and its seeds."""
    result: dict[str, list[Any]] = {}
    for row in json.loads(stdout):
        if row["state"] == "failed":
            raise SystemExit(f"rollout status: {row['variant']}/{row['arch']} failed: {row['error']}")
        result.setdefault(f"{row['variant']}/{row['arch']}", [row["version"], row["seeds_offered"]])
    return result


def spread(values: list[float]) -> str:
    return " / ".join(f"{v * 1000:.0f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=60, help="variant/arch repositories, 2 arches per variant (1-60)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds; the best of them is shown (default 5)")
    parser.add_argument("--dir", type=Path, help="where the fleet is made (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the directory afterwards")
    parser.add_argument("--baseline", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=Path, nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path, metavar="FILE",
                        help="also write the headline figures as a JSON object to FILE (read by bench/run)")
    args = parser.parse_args()
    if args.baseline:
        baseline(Path(args.baseline[0]), args.baseline[1])
        return
    if args.serve:
        serve(*args.serve)
        return
    if not 1 <= args.repos <= 60:
        parser.error("--repos: 1 to 60")
    if args.repeat < 1:
        parser.error("--repeat: at least 1")

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root, for tests.load
    from timing import clean_up, write_json_out  # bench/timing.py (scripts run from bench/)

    from repo_tool.cli.common import now_ns
    from repo_tool.core.instant import format_instant
    from tests.load.kit import REPO_TOOL, Launch, launch, publish_pairs

    pairs = publish_pairs()[: args.repos]
    at = now_ns() // NS * NS  # whole seconds: the same instant for both sides, written as RFC 3339
    at_text = format_instant(at)
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-rollout-status-"))
    work.mkdir(parents=True, exist_ok=True)
    run_dir = work / "rollout-status"
    made = [run_dir]
    try:
        qs = build(run_dir, pairs, at)
        with Served(qs / "repo", run_dir / "requests.log") as server:
            config = status_config(qs, server.url, pairs)
            spec = run_dir / "baseline.json"
            spec.write_text(json.dumps({"url": server.url, "root": str(qs / "root.json"), "pairs": pairs}))

            def argv(name: str, when: str) -> list[str]:
                if name == "ours":
                    return [*REPO_TOOL, "rollout", "status", "--config", str(config), "--at", when, "--json"]
                return [sys.executable, str(Path(__file__).resolve()), "--baseline", str(spec), when]

            sides = {name: argv(name, at_text) for name in ("ours", "baseline")}
            times: dict[str, list[float]] = {name: [] for name in sides}
            rss: dict[str, list[float]] = {name: [] for name in sides}
            cpu: dict[str, list[float]] = {name: [] for name in sides}
            requests: dict[str, int] = {}
            counts: dict[str, dict[str, list[Any]]] = {}
            checked: list[tuple[str, list[tuple[Any, ...]]]] = []

            def run(name: str, rep: int | str, when: str = at_text) -> Launch:
                before = server.count()
                done = launch([argv(name, when)], run_dir / f"{name}-{rep}", DEADLINE_S)
                child = done.children[0]
                if child.code != 0 or child.timed_out:
                    raise SystemExit(f"{name}: exit {child.code}: {child.stderr.strip()[-800:]}")
                got = ours_counts(child.stdout) if name == "ours" else json.loads(child.stdout)
                if len(got) != len(pairs):
                    raise SystemExit(f"{name}: {len(got)} repositories reported, not {len(pairs)}")
                counts[name] = got
                requests[name] = server.count() - before
                return done

            for hours in CHECK_HOURS:  # untimed: the two counts agree through the whole rollout
                when = format_instant(at + int(hours * HOUR))
                for name in sides:
                    run(name, f"check-{hours}", when)
                if counts["ours"] != counts["baseline"]:
                    raise SystemExit(f"at {when}: the counts differ: ours {counts['ours']}, "
                                     f"baseline {counts['baseline']}")
                checked.append((when, sorted({tuple(c) for c in counts["ours"].values()})))
            for rep in range(-1, args.repeat):  # -1: the warm-up, untimed
                for name in sides if rep % 2 == 0 else list(sides)[::-1]:
                    done = run(name, rep)
                    if rep >= 0:
                        child = done.children[0]
                        times[name].append(done.wall_s)
                        rss[name].append(child.maxrss_mib)
                        cpu[name].append(child.user_s + child.sys_s)
                if counts["ours"] != counts["baseline"]:
                    wrong = sorted(k for k in counts["ours"] if counts["ours"][k] != counts["baseline"].get(k))
                    raise SystemExit(f"round {rep}: the counts differ for {wrong[:5]}: ours "
                                     f"{[counts['ours'][k] for k in wrong[:5]]}, baseline "
                                     f"{[counts['baseline'].get(k) for k in wrong[:5]]}")
    finally:
        clean_up(work, args.keep, args.dir is not None, made)

    best = {name: min(values) for name, values in times.items()}
    ratio = best["baseline"] / best["ours"]
    rounds = [b / o for b, o in zip(times["baseline"], times["ours"])]
    seeds = sorted({c[1] for c in counts["ours"].values()})
    versions = sorted({c[0] for c in counts["ours"].values()})
    print(f"{len(pairs)} variant/arch repositories over HTTP at {at_text}; newest {', '.join(versions)}, seeds "
          f"offered {', '.join(map(str, seeds))} of {MAX_SEED} (equal on both sides, every round); best of "
          f"{args.repeat} rounds")
    print("also compared, untimed: " + "; ".join(f"{when}: {', '.join(f'{v} {n}' for v, n in found)}"
                                                for when, found in checked))
    print(f"{'':10} {'best':>8} {'min / median / max ms':>22} {'peak RSS':>9} {'CPU (min)':>10} {'requests':>9}")
    for name in sides:
        print(f"{name:10} {best[name] * 1000:5.0f} ms {spread(times[name]):>22} {max(rss[name]):6.0f} MiB "
              f"{min(cpu[name]) * 1000:7.0f} ms {requests[name]:>9}")
    print(f"ratio baseline / ours: {ratio:.2f}x (per round {min(rounds):.2f} / {statistics.median(rounds):.2f} / "
          f"{max(rounds):.2f}); target >= 1.0x: {'met' if ratio >= 1.0 else 'NOT met'}")
    write_json_out(args.json_out, {
        "repos": len(pairs), "repeat": args.repeat, "at": at_text, "seeds_offered": seeds, "checked": checked,
        "ours_s": best["ours"], "baseline_s": best["baseline"], "ratio": ratio, "round_ratios": rounds,
        "spread_s": {k: [min(v), statistics.median(v), max(v)] for k, v in times.items()},
        "cpu_s": {k: min(v) for k, v in cpu.items()}, "requests": requests,
        "ours_rss_mib": max(rss["ours"]), "baseline_rss_mib": max(rss["baseline"]),
    })


if __name__ == "__main__":
    main()
