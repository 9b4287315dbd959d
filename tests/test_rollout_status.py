"""``rollout status``: where every variant/arch repository's releases stand, through the real CLI.

The seeds offered are checked against updog's per-seed answers: ``waves ready-at`` asked for every
seed 0..2047 (a published update) and updog's selection for every seed over the published manifest
(paused, halted, pulled), at instants before, at, inside and after each wave."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repo_tool.audit.status_table import percent
from repo_tool.cli.common import now_ns
from repo_tool.core.instant import NANOS_PER_SECOND, format_instant, parse_instant
from repo_tool.core.manifest import Manifest
from repo_tool.core.readiness import SEED_COUNT
from repo_tool.core.selection import Host, select
from repo_tool.core.semver import Version

from . import browser
from .clirun import Runner, assert_one_line_error
from .repohelpers import ARCH, QS, VARIANT, write_images

if TYPE_CHECKING:
    from .motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

DAY = 86400 * NANOS_PER_SECOND
HOUR = 3600 * NANOS_PER_SECOND
POLICIES = ("default", "accelerated", "slow-roll", "ohno")
LONG = ("--targets-expires", "in 90 days", "--snapshot-expires", "in 90 days", "--timestamp-expires", "in 90 days")


def publish(run: Runner, qs: QS, tmp_path: Path, variant: str, version: str, *extra: str,
            init: bool = False) -> None:
    images = write_images(tmp_path / "img" / variant / version, version, variant, ARCH, after=None if init else "1.0.0")
    result = run("publish", "--config", str(qs.config), "--variant", variant, "--arch", ARCH, "--version", version,
                 *images, *LONG, *extra, *(["--init"] if init else []))
    assert result.code == 0, result.err


def status(run: Runner, qs: QS, at: int | None = None, *extra: str, code: int = 0) -> list[dict[str, Any]]:
    when = () if at is None else ("--at", format_instant(at))
    result = run("rollout", "status", "--config", str(qs.config), *when, *extra, "--json")
    assert result.code == code, result.err
    rows: list[dict[str, Any]] = result.json()
    return rows


def row_of(rows: list[dict[str, Any]], variant: str, version: str) -> dict[str, Any]:
    [row] = [r for r in rows if (r["variant"], r["version"]) == (variant, version)]
    return row


def instants(row: dict[str, Any]) -> list[int]:
    """Before, at, inside and after each timed wave of a status row (and around the first and last)."""
    times = sorted({parse_instant(t) for w in row["waves"] for t in (w["starts_at"], w["offered_by"]) if t})
    found = {times[0] - DAY, times[-1] + DAY}
    for start, end in zip(times, [*times[1:], times[-1] + HOUR]):
        found |= {start - 1, start, start + 1, (start + end) // 2, end - 1}
    return sorted(found)


def ready_at_every_seed(run: Runner, policy: str, start: str) -> list[int | None]:
    """``waves ready-at`` for each seed: the instant it is offered (None: as soon as published)."""
    found: list[int | None] = []
    for seed in range(SEED_COUNT):
        result = run("waves", "ready-at", policy, "--start", start, "--seed", str(seed), "--json")
        assert result.code == 0, result.err
        answer = result.json()
        found.append(None if answer["immediately"] else parse_instant(answer["ready_at"]))
    return found


def selected_seeds(manifest: Manifest, variant: str, version: str, at: int) -> int:
    """The seeds updog's selection keeps ``version`` applicable for at ``at`` (a host on 1.0.0)."""
    count = 0
    for seed in range(SEED_COUNT):
        chosen = select(manifest, Host(variant, ARCH, Version.parse("1.0.0"), seed), at)
        count += any(c.kept for c in chosen.considered if str(c.update.version) == version)
    return count


def live_manifest(qs: QS, variant: str) -> Manifest:
    meta = qs.dir / "repo" / "metadata" / variant / ARCH
    snapshot = json.loads((meta / "timestamp.json").read_bytes())["signed"]["meta"]["snapshot.json"]["version"]
    targets = json.loads((meta / f"{snapshot}.snapshot.json").read_bytes())["signed"]["meta"]["targets.json"]
    listed = json.loads((meta / f"{targets['version']}.targets.json").read_bytes())["signed"]["targets"]
    digest = listed["manifest.json"]["hashes"]["sha256"]
    return Manifest.from_bytes((qs.targets / f"{digest}.manifest.json").read_bytes())


def test_seeds_offered_equal_waves_ready_at_summed_for_every_shipped_policy(qs: QS, run: Runner,
                                                                             tmp_path: Path) -> None:
    start = format_instant(now_ns() // NANOS_PER_SECOND * NANOS_PER_SECOND + HOUR)
    for policy in POLICIES:
        publish(run, qs, tmp_path, f"pol-{policy}", "1.0.0", "--wave-policy", policy, "--release-start-time", start,
                init=True)
    mine = [arg for policy in POLICIES for arg in ("--variant", f"pol-{policy}", "--arch", ARCH)]
    first = status(run, qs, None, *mine)
    assert [row["variant"] for row in first] == [f"pol-{policy}" for policy in POLICIES]
    for policy in POLICIES:
        variant = f"pol-{policy}"
        readies = ready_at_every_seed(run, policy, start)
        seen_states = set()
        for at in instants(row_of(first, variant, "1.0.0")):
            row = row_of(status(run, qs, at, *mine), variant, "1.0.0")
            expected = sum(1 for when in readies if when is None or when <= at)
            assert row["seeds_offered"] == expected, (policy, format_instant(at))
            assert row["fleet_fraction"] == expected / SEED_COUNT
            seen_states.add(row["state"])
            assert row["state"] == ("complete" if expected == SEED_COUNT else
                                    "scheduled" if at < parse_instant(start) + _first_wave(policy) else "rolling")
        assert seen_states == {"scheduled", "rolling", "complete"}, policy
        last = max(when for when in readies if when is not None)
        assert row_of(first, variant, "1.0.0")["complete_at"] == format_instant(last)


def _first_wave(policy: str) -> int:
    from repo_tool.core.waves import policy_to_waves
    from repo_tool.publish.inputs import load_policy

    return min(policy_to_waves(load_policy(policy)[0], 0).values())


@pytest.mark.parametrize("action", ["pause", "halt", "pull"])
def test_paused_halted_and_pulled_updates_count_what_updog_selects(qs: QS, run: Runner, tmp_path: Path,
                                                                    action: str) -> None:
    variant = "held-" + action
    now = now_ns()
    start = format_instant(now // NANOS_PER_SECOND * NANOS_PER_SECOND - DAY - 12 * HOUR)  # three waves begun
    publish(run, qs, tmp_path, variant, "1.0.0", "--wave-policy", "default", "--release-start-time", start, init=True)
    publish(run, qs, tmp_path, variant, "1.1.0", "--wave-policy", "default", "--release-start-time", start)
    mine = ("--variant", variant, "--arch", ARCH)
    before = row_of(status(run, qs, None, *mine), variant, "1.1.0")
    assert before["state"] == "rolling" and 0 < before["seeds_offered"] < SEED_COUNT
    edit = {"pause": ("rollout", "pause"), "halt": ("rollout", "halt"), "pull": ("set-max-version",)}[action]
    extra = ("--max-version", "1.0.0") if action == "pull" else ()
    result = run(*edit, "--config", str(qs.config), "--variant", variant, "--arch", ARCH, *extra, *LONG)
    assert result.code == 0, result.err
    manifest = live_manifest(qs, variant)
    rows = status(run, qs, None, *mine)
    row = row_of(rows, variant, "1.1.0")
    assert row["state"] == {"pause": "paused", "halt": "halted", "pull": "pulled"}[action]
    for at in [now, now + DAY, now + 10 * DAY, *instants(before)]:
        row = row_of(status(run, qs, at, *mine), variant, "1.1.0")
        assert row["seeds_offered"] == selected_seeds(manifest, variant, "1.1.0", at), format_instant(at)
    if action == "pull":
        assert row["seeds_offered"] == 0 and row["max_version"] == "1.0.0"
        # 1.0.0, now the one nodes get, is under way: it is shown too
        assert row_of(rows, variant, "1.0.0")["state"] == "rolling"
    else:
        assert row["next_wave_at"] is None and row["complete_at"] is None
        held = [w for w in row["waves"] if w["held"]]
        assert held and all(w["offered_by"] is None for w in held)  # never the far-future stand-in
        assert all(w["starts_at"] is None or parse_instant(w["starts_at"]) <= now for w in held)
        assert 0 < row["seeds_offered"] < SEED_COUNT
    if action == "pause":
        assert row["paused_since"] is not None
        resumed = run("rollout", "resume", "--config", str(qs.config), "--variant", variant, "--arch", ARCH, *LONG)
        assert resumed.code == 0, resumed.err
        assert row_of(status(run, qs, None, *mine), variant, "1.1.0")["state"] == "rolling"


def test_table_shows_the_same_rows_with_a_bar(qs: QS, run: Runner) -> None:
    rows = status(run, qs, now_ns() + 3 * DAY)
    result = run("rollout", "status", "--config", str(qs.config), "--at", "in 3 days")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("rollout status at ") and lines[1].split()[:3] == ["REPOSITORY", "VERSION", "STATE"]
    [line] = [line for line in lines if line.startswith(f"dev {VARIANT}/{ARCH}  1.1.0")]
    newest = row_of(rows, VARIANT, "1.1.0")
    assert f"{newest['seeds_offered']}/2048" in line and "rolling" in line
    assert lines[-1].startswith("summary: 1 repository at ")


def test_one_repository_by_url(qs: QS, run: Runner) -> None:
    result = run("rollout", "status", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets),
                 "--root", str(qs.root), "--json")
    assert result.code == 0, result.err
    rows = result.json()
    assert [(r["repo"], r["variant"], r["arch"], r["version"]) for r in rows] == [
        (None, VARIANT, ARCH, "1.1.0"), (None, VARIANT, ARCH, "1.0.0")]
    none = run("rollout", "status", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets),
               "--root", str(qs.root), "--variant", "other", "--arch", ARCH, "--json")
    assert none.code == 0, none.err
    assert [(r["variant"], r["state"], r["version"]) for r in none.json()] == [("other", "none", None)]
    text = run("rollout", "status", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets),
               "--root", str(qs.root), "--variant", "other", "--arch", ARCH)
    assert f"other/{ARCH}" in text.out and "no update" in text.out


@pytest.mark.parametrize(("args", "needle"), [
    (["--metadata-url", "x", "--root", "r.json"], "--targets-url"),
    (["--metadata-url", "x", "--targets-url", "y"], "--root"),
    (["--variant", "a"], "pairs"),
    (["--watch", "5", "--at", "now"], "--watch"),
    (["--watch", "0"], "--watch"),
    (["--watch", "86401"], "--watch"),
    (["--within", "soon"], "--within"),
])
def test_usage_errors(qs: QS, run: Runner, args: list[str], needle: str) -> None:
    config = [] if "--metadata-url" in args else ["--config", str(qs.config)]
    assert_one_line_error(run("rollout", "status", *config, *args), 2, needle)


def test_an_expired_repository_is_shown_and_fails(qs: QS, run: Runner) -> None:
    result = run("rollout", "status", "--config", str(qs.config), "--at", "in 30 days", "--json")
    assert_one_line_error(result, 1, f"dev {VARIANT}/{ARCH}", "expired", "nodes refuse")
    [row] = result.json()
    assert (row["state"], row["expiry"], row["seeds_offered"]) == ("complete", "expired", SEED_COUNT)
    assert row["error"].startswith("timestamp.json expired at ")


FLEET = [(f"aws-k8s-1.{minor}", arch) for minor in range(29, 39) for arch in ("x86_64", "aarch64")]


def publish_fleet(run: Runner, qs: QS, tmp_path: Path) -> None:
    """``publish-release`` of 1.0.0 into 20 new variant/arch repositories, in one run."""
    repos = []
    for variant, arch in FLEET:
        images = write_images(tmp_path / "fleet" / variant / arch, "1.0.0", variant, arch, after=None)
        repos.append({"variant": variant, "arch": arch, "boot_image": images[1], "root_image": images[3],
                      "hash_image": images[5]})
    release = tmp_path / "RELEASE.yaml"
    release.write_text(json.dumps({"version": "1.0.0", "config": str(qs.config), "wave_policy": "default",
                                   "release_start_time": "in 2 hours", "repos": repos}))
    result = run("publish-release", str(release), "--init", *LONG)
    assert result.code == 0, result.err


def tamper(meta: Path) -> None:
    """Change one signed byte of the repository's newest targets.json (its signature no longer holds)."""
    snapshot = json.loads((meta / "timestamp.json").read_bytes())["signed"]["meta"]["snapshot.json"]["version"]
    version = json.loads((meta / f"{snapshot}.snapshot.json").read_bytes())["signed"]["meta"]["targets.json"]["version"]
    path = meta / f"{version}.targets.json"
    path.write_bytes(path.read_bytes().replace(b'"version":', b'"version" :', 1))


def test_twenty_repositories_in_one_run_and_a_tampered_one_named(qs: QS, run: Runner, tmp_path: Path) -> None:
    publish_fleet(run, qs, tmp_path)
    pairs = [arg for variant, arch in FLEET for arg in ("--variant", variant, "--arch", arch)]
    at = now_ns() + DAY + 3 * HOUR
    rows = status(run, qs, at, *pairs)
    assert [(r["variant"], r["arch"]) for r in rows] == FLEET
    assert {(r["version"], r["state"], r["error"]) for r in rows} == {("1.0.0", "rolling", None)}
    assert len({r["seeds_offered"] for r in rows}) == 1 and 0 < rows[0]["seeds_offered"] < SEED_COUNT
    discovered = status(run, qs)  # no pairs: every VARIANT/ARCH/ below metadata_url, the quickstart's too
    assert {(r["variant"], r["arch"]) for r in discovered} == {*FLEET, (VARIANT, ARCH)}

    broken = FLEET[7]
    tamper(qs.dir / "repo" / "metadata" / broken[0] / broken[1])
    result = run("rollout", "status", "--config", str(qs.config), "--at", format_instant(at), *pairs, "--json")
    assert_one_line_error(result, 1, f"dev {broken[0]}/{broken[1]}: ")
    after = result.json()
    assert [(r["variant"], r["arch"]) for r in after] == FLEET
    failed = [r for r in after if r["state"] == "failed"]
    assert [(r["variant"], r["arch"]) for r in failed] == [broken] and failed[0]["error"]
    assert [r for r in after if r["state"] != "failed"] == [r for r in rows if (r["variant"], r["arch"]) != broken]

    page = tmp_path / "status.html"
    text = run("rollout", "status", "--config", str(qs.config), "--at", format_instant(at), *pairs, "--html", str(page))
    assert text.code == 1 and text.err.count("repo-tool: error: ") == 1
    # the page, in a real browser: every variant/arch row and its share, a screenshot, nothing fetched
    dom = browser.parse(browser.dump_dom(page))
    assert [(r["attrs"]["data-variant"], r["attrs"]["data-arch"]) for r in dom.rows] == FLEET
    for found, row in zip(dom.rows, after):
        assert found["attrs"]["data-state"] == row["state"]
        if row["state"] != "failed":
            assert percent(row["fleet_fraction"]) in found["text"]
            assert f"{row['seeds_offered']} of 2048 seeds" in found["text"]
    browser.screenshot(page, tmp_path / "status.png", height=2200)
    assert browser.network_requests(page) == []
    lines = text.out.splitlines()
    assert sum(1 for line in lines if " rolling " in line) == 19
    assert any(f"{broken[0]}/{broken[1]}" in line and "FAILED" in line for line in lines)
    assert lines[-1].endswith(": 19 updates: 19 rolling; 1 failed")


def test_watch_redraws_on_a_terminal_and_stops_on_ctrl_c(qs: QS) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    primary, secondary = os.openpty()
    child = subprocess.Popen([sys.executable, "-m", "repo_tool", "rollout", "status", "--config", str(qs.config),
                              "--watch", "1"], stdin=secondary, stdout=secondary, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while seen.count(b"Ctrl-C stops") < 3 and time.monotonic() < deadline:
            try:
                seen += os.read(primary, 65536)
            except OSError:
                break
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    finally:
        child.kill()
        os.close(primary)
    text = seen.decode()
    assert text.count("\x1b[H\x1b[2J") >= 3 and text.count("rollout status at ") >= 3
    assert "every 1 s; Ctrl-C stops" in text and "█" in text  # a UTF-8 terminal gets the block bar
    assert child.returncode == 0 and b"Traceback" not in err, err



def test_s3_repositories_are_discovered_and_a_missing_manifest_fails(aws: MotoServer, run: Runner,
                                                                      tmp_path: Path) -> None:
    bucket = "bottlerocket-updates"
    made = run("quickstart", str(tmp_path / "qs"), "--metadata-url", f"s3://{bucket}/metadata/",
               "--targets-url", f"s3://{bucket}/targets/")
    assert made.code == 0, made.err
    qs = QS(tmp_path / "qs")
    rows = status(run, qs, now_ns() + 2 * DAY)
    assert [(r["variant"], r["version"], r["state"]) for r in rows] == [
        (VARIANT, "1.1.0", "rolling"), (VARIANT, "1.0.0", "rolling")]
    assert rows[0]["metadata_url"] == f"s3://{bucket}/metadata/{VARIANT}/{ARCH}/"
    by_url = run("rollout", "status", "--metadata-url", f"s3://{bucket}/metadata/{VARIANT}/{ARCH}/",
                 "--targets-url", f"s3://{bucket}/targets/", "--root", str(qs.root), "--json")
    assert by_url.code == 0 and [r["version"] for r in by_url.json()] == ["1.1.0", "1.0.0"]
    # manifest.json's object gone from the targets bucket: that repository fails, naming it
    s3 = aws.client("s3")
    for item in s3.list_objects_v2(Bucket=bucket, Prefix="targets/")["Contents"]:
        if item["Key"].endswith(".manifest.json"):
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    result = run("rollout", "status", "--config", str(qs.config), "--json")
    assert_one_line_error(result, 1, f"dev {VARIANT}/{ARCH}", "manifest.json", "not found")
    assert [r["state"] for r in result.json()] == ["failed"]


def test_ctrl_c_while_reading_a_server_that_does_not_answer_stops_at_once(qs: QS) -> None:
    import signal
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        config = qs.dir / "silent.yaml"
        config.write_text(qs.config.read_text().replace("metadata_url: repo/metadata", f"metadata_url: {url}/metadata")
                          .replace("targets_url: repo/targets", f"targets_url: {url}/targets")
                          + "    variants: [a/x86_64, b/x86_64, c/x86_64, d/x86_64, e/x86_64]\n")
        child = subprocess.Popen([sys.executable, "-m", "repo_tool", "rollout", "status", "--config", str(config),
                                  "--watch", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2)
        started = time.monotonic()
        child.send_signal(signal.SIGINT)
        try:
            out, err = child.communicate(timeout=20)
        finally:
            child.kill()
        assert time.monotonic() - started < 10  # not after the reads in flight time out
        assert child.returncode == 130 and out == b"" and b"Traceback" not in err, err
        once = subprocess.Popen([sys.executable, "-m", "repo_tool", "rollout", "status", "--config", str(config)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(2)
        once.send_signal(signal.SIGINT)
        try:
            out, err = once.communicate(timeout=20)
        finally:
            once.kill()
        assert (once.returncode, out, err) == (130, b"", b"repo-tool: error: aborted\n")


def test_watch_goes_on_when_the_config_is_caught_half_saved(qs: QS) -> None:
    import subprocess
    import sys

    good = qs.config.read_text()
    child = subprocess.Popen([sys.executable, "-m", "repo_tool", "rollout", "status", "--config", str(qs.config),
                              "--watch", "1", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    try:
        assert [r["version"] for r in json.loads(child.stdout.readline())] == ["1.1.0", "1.0.0"]
        qs.config.write_text(good[: len(good) // 2] + "\n  : [\n")
        line = child.stderr.readline().decode()
        assert line.startswith("repo-tool: error: ") and line.endswith("(reading again in 1 s)\n"), line
        qs.config.write_text(good)
        while True:  # a line may have been read before the config broke; then a good one again
            rows = json.loads(child.stdout.readline())
            if rows:
                break
        assert [r["version"] for r in rows] == ["1.1.0", "1.0.0"]
    finally:
        child.kill()
        child.communicate(timeout=30)


def test_status_loads_no_signer_boto3_or_publisher_for_a_local_fleet(qs: QS) -> None:
    """A read-only command on a dashboard: the rollout group imports its subcommands on demand."""
    import subprocess
    import sys

    probe = ("import sys; from repo_tool.cli import main\n"
             f"try:\n    main(['rollout', 'status', '--config', {str(qs.config)!r}, '--json'])\n"
             "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
             "print(sorted(m for m in ('boto3', 'securesystemslib', 'repo_tool.signing.signers',"
             " 'repo_tool.publish.live') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
