"""``check-expirations``: every role of every variant/arch repository against a window, for cron/CI
(exit 0 clean, 1 expiring/expired/failed to load, 2 usage); discovery of repositories by listing
local directories and S3 prefixes, ``variants:`` in the config, one repository by URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repo_tool.audit.expirations import EXPIRED, OK, SOON, status_of
from repo_tool.config import load_config
from repo_tool.core.instant import NANOS_PER_SECOND, format_instant, parse_instant
from repo_tool.storage.base import LocalStorage

from .clirun import Run, Runner, assert_one_line_error
from .repohelpers import ARCH, QS, VARIANT, serve_directory, write_images

if TYPE_CHECKING:
    from .motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

DAY = 86400 * NANOS_PER_SECOND
HOUR = 3600 * NANOS_PER_SECOND
MINUTE = 60 * NANOS_PER_SECOND
OTHER = ("aws-ecs-2", "aarch64")


def init_other(run: Runner, config: Path, tmp_path: Path, variant: str = OTHER[0], arch: str = OTHER[1]) -> None:
    """A second repository next to the quickstart's, started with ``publish --init``."""
    result = run("publish", "--config", str(config), "--variant", variant, "--arch", arch, "--version", "1.0.0",
                 *write_images(tmp_path / "img" / variant / arch, "1.0.0", variant, arch), "--init")
    assert result.code == 0, result.err


def timestamp_expires(meta: Path) -> int:
    return parse_instant(json.loads((meta / "timestamp.json").read_bytes())["signed"]["expires"])


def check(run: Runner, *args: str) -> tuple[Run, dict[str, Any]]:
    result = run("check-expirations", *args, "--json")
    assert result.code in (0, 1), result.err
    return result, result.json()


def statuses(repo: dict[str, Any]) -> dict[str, str]:
    return {role["role"]: role["status"] for role in repo["roles"]}


def add_to_config(config: Path, line: str) -> None:
    config.write_text(config.read_text() + f"    {line}\n")


# --- one repository -------------------------------------------------------------------------------


def test_clean_repo_exits_zero_with_every_role(qs: QS, run: Runner) -> None:
    result = run("check-expirations", "--config", str(qs.config))
    assert result.code == 0, result.err
    assert result.err == ""
    lines = result.out.splitlines()
    roles = [line for line in lines if line.startswith(f"dev {VARIANT}/{ARCH}")]
    assert [line.split()[2] for line in roles] == ["root", "timestamp", "snapshot", "targets"]
    assert all(line.endswith(" OK") for line in roles)
    assert lines[-1].startswith("summary: 1 repository checked at ") and lines[-1].endswith(": 1 ok")

    _, data = check(run, "--config", str(qs.config))
    assert data["result"] == "ok" and data["within"] == "3 days"
    [repo] = data["repos"]
    assert (repo["repo"], repo["variant"], repo["arch"], repo["error"]) == ("dev", VARIANT, ARCH, None)
    assert repo["metadata_url"] == LocalStorage(qs.meta).url
    files = {role["role"]: (role["file"], role["version"]) for role in repo["roles"]}
    ts = json.loads((qs.meta / "timestamp.json").read_bytes())["signed"]
    snapshot_version = ts["meta"]["snapshot.json"]["version"]
    assert files["timestamp"] == ("timestamp.json", ts["version"])
    assert files["snapshot"] == (f"{snapshot_version}.snapshot.json", snapshot_version)
    assert files["root"] == ("1.root.json", 1)
    timestamp = next(role for role in repo["roles"] if role["role"] == "timestamp")
    assert timestamp["expires"] == ts["expires"]


def test_timestamp_expiring_inside_the_window_exits_one(qs: QS, run: Runner) -> None:
    expires = timestamp_expires(qs.meta)
    at = format_instant(expires - DAY)
    result, data = check(run, "--config", str(qs.config), "--at", at)
    assert result.code == 1 and result.err == ""  # the JSON says it all: no summary line beside it
    assert data["counts"] == {"failed": 0, EXPIRED: 0, SOON: 1, OK: 0}
    [repo] = data["repos"]
    assert statuses(repo) == {"root": OK, "timestamp": SOON, "snapshot": OK, "targets": OK}
    timestamp = next(role for role in repo["roles"] if role["role"] == "timestamp")
    assert timestamp["remaining_seconds"] == 86400
    assert data["result"] == "expiring" and data["at"] == at
    # A narrower window lets it pass; the text form names the status.
    assert run("check-expirations", "--config", str(qs.config), "--at", at, "--within", "23 hours").code == 0
    text = run("check-expirations", "--config", str(qs.config), "--at", at, "--within", "36 hours")
    assert text.code == 1
    assert any(" timestamp " in line and line.endswith("EXPIRES SOON") for line in text.out.splitlines())
    # The summary once, on stdout; nothing on stderr (no repository failed to load).
    assert text.err == ""
    assert [line for line in text.out.splitlines() if "summary" in line] == [text.out.splitlines()[-1]]
    assert text.out.splitlines()[-1].endswith(": 0 ok, 1 with roles expiring within 36 hours")


def test_time_left_is_rounded_down_to_two_units(qs: QS, run: Runner) -> None:
    expires = timestamp_expires(qs.meta)
    cases = [
        (expires - (6 * DAY + 23 * HOUR + 59 * MINUTE + 30 * NANOS_PER_SECOND), "6d 23h left"),  # not "1w left"
        (expires - (45 * MINUTE + 10 * NANOS_PER_SECOND + 999), "45m 10s left"),
        (expires + DAY + 23 * HOUR + 59 * MINUTE, "1d 23h ago"),  # not "2d ago"
    ]
    for at, expected in cases:
        text = run("check-expirations", "--config", str(qs.config), "--at", format_instant(at))
        line = next(line for line in text.out.splitlines() if " timestamp " in line)
        assert f" {expected} " in line, line


def test_expired_timestamp_is_flagged_expired(qs: QS, run: Runner) -> None:
    expires = timestamp_expires(qs.meta)
    for at in (expires, expires + 1):  # expires is the first instant it no longer holds
        result, data = check(run, "--config", str(qs.config), "--at", format_instant(at))
        assert result.code == 1
        [repo] = data["repos"]
        assert statuses(repo)["timestamp"] == EXPIRED and repo["error"] is None
        assert statuses(repo)["snapshot"] == OK  # two weeks
    text = run("check-expirations", "--config", str(qs.config), "--at", "in 8 days")
    assert text.code == 1 and text.err == ""
    line = next(line for line in text.out.splitlines() if " timestamp " in line)
    assert line.endswith(" EXPIRED") and " ago " in line
    assert text.out.count("summary:") == 1 and "1 with expired roles" in text.out.splitlines()[-1]


def test_status_boundaries() -> None:
    assert status_of(100, 100, 0) == EXPIRED
    assert status_of(101, 100, 0) == OK
    assert status_of(110, 100, 10) == SOON
    assert status_of(111, 100, 10) == OK


# --- many repositories -----------------------------------------------------------------------------


def test_discovers_every_variant_arch_below_a_local_base(qs: QS, run: Runner, tmp_path: Path) -> None:
    init_other(run, qs.config, tmp_path)
    base = qs.dir / "repo" / "metadata"
    (base / "half-made" / "x86_64").mkdir(parents=True)  # no timestamp.json: not a repository
    (base / "notes.txt").write_text("not a directory\n")
    result, data = check(run, "--config", str(qs.config))
    assert result.code == 0, result.err
    assert [(r["variant"], r["arch"]) for r in data["repos"]] == [OTHER, (VARIANT, ARCH)]
    assert all(r["error"] is None and set(statuses(r).values()) == {OK} for r in data["repos"])
    # --variant/--arch pairs choose instead of discovering.
    _, chosen = check(run, "--config", str(qs.config), "--variant", OTHER[0], "--arch", OTHER[1])
    assert [(r["variant"], r["arch"]) for r in chosen["repos"]] == [OTHER]


def test_a_repo_that_fails_to_load_is_reported_and_the_others_still_checked(qs: QS, run: Runner,
                                                                            tmp_path: Path) -> None:
    init_other(run, qs.config, tmp_path)
    path = qs.meta / "timestamp.json"
    doc = json.loads(path.read_bytes())
    doc["signatures"] = []
    path.write_text(json.dumps(doc))
    result, data = check(run, "--config", str(qs.config))
    assert result.code == 1
    assert data["result"] == "failed" and data["counts"]["failed"] == 1 and data["counts"][OK] == 1
    broken, other = (next(r for r in data["repos"] if r["variant"] == v) for v in (VARIANT, OTHER[0]))
    assert broken["roles"] == [] and "timestamp" in broken["error"]
    assert other["error"] is None and set(statuses(other).values()) == {OK}
    # The failure is one error line on stderr naming the repository and the reason; no summary there.
    assert_one_line_error(result, 1, f"dev {VARIANT}/{ARCH}", broken["error"])
    text = run("check-expirations", "--config", str(qs.config))
    assert_one_line_error(text, 1, f"dev {VARIANT}/{ARCH}", broken["error"])
    assert "summary" not in text.err
    failed = [line for line in text.out.splitlines() if "FAILED" in line]
    assert len(failed) == 1 and failed[0].startswith(f"dev {VARIANT}/{ARCH}")
    assert sum(f"dev {OTHER[0]}/{OTHER[1]}" in line for line in text.out.splitlines()) == 4
    assert text.out.count("summary:") == 1 and text.out.splitlines()[-1].endswith(": 1 ok, 1 failed to load")


def test_variants_in_the_config(qs: QS, run: Runner, tmp_path: Path) -> None:
    init_other(run, qs.config, tmp_path)
    add_to_config(qs.config, f"variants: [{VARIANT}/{ARCH}]")
    assert load_config(qs.config, None).variants == [(VARIANT, ARCH)]
    result, data = check(run, "--config", str(qs.config))
    assert result.code == 0
    assert [(r["variant"], r["arch"]) for r in data["repos"]] == [(VARIANT, ARCH)]
    # A listed repository that is not there is a failure, not silently skipped.
    qs.config.write_text(qs.config.read_text().replace(f"[{VARIANT}/{ARCH}]", f"[{VARIANT}/{ARCH}, aws-dev/x86_64]"))
    result, data = check(run, "--config", str(qs.config))
    assert result.code == 1
    assert "timestamp.json not found" in data["repos"][1]["error"]


@pytest.mark.parametrize(("value", "needle"), [
    ("[aws-k8s-1.28]", "expected VARIANT/ARCH"),
    ("[aws-k8s-1.28/x86_64, aws-k8s-1.28/x86_64]", "listed twice"),
    ("[a/b/c]", "not a safe name"),
    ("[]", "non-empty list"),
    ("aws-k8s-1.28/x86_64", "non-empty list"),
])
def test_bad_variants_are_config_errors(qs: QS, run: Runner, value: str, needle: str) -> None:
    add_to_config(qs.config, f"variants: {value}")
    assert_one_line_error(run("check-expirations", "--config", str(qs.config)), 2, "repos.dev.variants", needle)


def test_one_repository_by_metadata_url(qs: QS, run: Runner) -> None:
    result, data = check(run, "--metadata-url", str(qs.meta), "--root", str(qs.root))
    assert result.code == 0, result.err
    [repo] = data["repos"]
    assert (repo["repo"], repo["variant"], repo["arch"]) == (None, None, None)
    assert set(statuses(repo).values()) == {OK}
    with serve_directory(qs.dir / "repo") as url:
        result, data = check(run, "--metadata-url", f"{url}/metadata/{VARIANT}/{ARCH}/", "--root", str(qs.root),
                             "--at", "in 6 days")
        assert result.code == 1
        assert statuses(data["repos"][0])["timestamp"] == SOON


def test_http_base_needs_variants(qs: QS, run: Runner) -> None:
    with serve_directory(qs.dir / "repo") as url:
        qs.config.write_text(qs.config.read_text().replace("metadata_url: ", f"metadata_url: {url}/metadata #"))
        assert_one_line_error(run("check-expirations", "--config", str(qs.config)), 2, "cannot be listed",
                              "variants:", "--variant/--arch")
        result, data = check(run, "--config", str(qs.config), "--variant", VARIANT, "--arch", ARCH)
        assert result.code == 0, result.err
        assert data["repos"][0]["metadata_url"] == f"{url}/metadata/{VARIANT}/{ARCH}/"


def test_nothing_found_below_the_base_is_a_failure(qs: QS, run: Runner, tmp_path: Path) -> None:
    qs.config.write_text(qs.config.read_text().replace("metadata_url: ", f"metadata_url: {tmp_path / 'empty'} #"))
    result, data = check(run, "--config", str(qs.config))
    assert result.code == 1
    assert "no repositories found" in data["repos"][0]["error"]


# --- usage ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "needle"), [
    (["--within", "3 months"], "--within"),
    (["--within", "soon"], "--within"),
    (["--at", "tomorrow"], "--at"),
    (["--variant", VARIANT], "pairs"),
])
def test_bad_options_are_one_line_usage_errors(qs: QS, run: Runner, args: list[str], needle: str) -> None:
    assert_one_line_error(run("check-expirations", "--config", str(qs.config), *args), 2, needle)


def test_source_options_are_checked(qs: QS, run: Runner) -> None:
    assert_one_line_error(run("check-expirations"), 2, "--config", "--metadata-url")
    assert_one_line_error(run("check-expirations", "--metadata-url", str(qs.meta)), 2, "--root")
    assert_one_line_error(run("check-expirations", "--config", str(qs.config), "--metadata-url", str(qs.meta),
                              "--root", str(qs.root)), 2, "not both")
    assert_one_line_error(run("check-expirations", "--config", str(qs.config), "--repo", "nope"), 2, "nope")


# --- S3 ---------------------------------------------------------------------------------------------


def test_s3_repositories_are_discovered_by_listing(aws: MotoServer, run: Runner, tmp_path: Path) -> None:
    bucket = "bottlerocket-updates"
    made = run("quickstart", str(tmp_path / "qs"), "--metadata-url", f"s3://{bucket}/metadata/",
               "--targets-url", f"s3://{bucket}/targets/")
    assert made.code == 0, made.err
    config = tmp_path / "qs" / "repo-tool.yaml"
    init_other(run, config, tmp_path)
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key="metadata/half-made/x86_64/1.root.json", Body=b"{}")
    s3.put_object(Bucket=bucket, Key="metadata/README", Body=b"not a repository")
    result, data = check(run, "--config", str(config))
    assert result.code == 0, result.err
    assert [(r["variant"], r["arch"]) for r in data["repos"]] == [OTHER, (VARIANT, ARCH)]
    assert data["repos"][1]["metadata_url"] == f"s3://{bucket}/metadata/{VARIANT}/{ARCH}/"
    assert all(set(statuses(r).values()) == {OK} for r in data["repos"])
    # The same through --metadata-url, and an expired view of it.
    result, data = check(run, "--metadata-url", f"s3://{bucket}/metadata/{VARIANT}/{ARCH}/",
                         "--root", str(tmp_path / "qs" / "root.json"), "--at", "in 30 days")
    assert result.code == 1
    assert set(statuses(data["repos"][0]).values()) == {OK, EXPIRED}
    # A bucket that is not there: the listing failure is reported for the configured repo.
    config.write_text(config.read_text().replace(f"s3://{bucket}/metadata/", "s3://no-such-bucket-here/metadata/"))
    result, data = check(run, "--config", str(config))
    assert result.code == 1
    assert "cannot discover repositories" in data["repos"][0]["error"]
