"""``rollout status --html``: the page of :mod:`repo_tool.audit.status_page`, read as HTML and opened in
a real headless Chromium (tests/browser.py): every variant/arch row and its share, the states, the
flagged expiries, a failed repository's error, escaping, a screenshot, and no network at all.

The rows are made by the real pieces: updates with a shipped policy's waves
(:func:`repo_tool.core.schedule.policy_schedule`), paused and halted by
:func:`repo_tool.core.rollout.apply`, pulled with a ``max_version`` below the version, stood at an
instant by :func:`repo_tool.core.standing.standing` and turned into rows by
:class:`repo_tool.audit.rollout_status.FleetStatus`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from repo_tool.audit.expiry import expiry_status
from repo_tool.audit.fleet import RepoRef
from repo_tool.audit.rollout_status import Expires, FleetStatus, PairStatus, RepoStatus
from repo_tool.audit.status_page import render_page
from repo_tool.audit.status_table import percent
from repo_tool.core.instant import NANOS_PER_DAY, NANOS_PER_HOUR, format_instant, parse_instant
from repo_tool.core.manifest import Images, Update
from repo_tool.core.rollout import Action, Rollout, apply, rollout_key
from repo_tool.core.schedule import policy_schedule
from repo_tool.core.semver import Version
from repo_tool.core.standing import standing
from repo_tool.publish.inputs import load_policy
from repo_tool.storage.base import LocalStorage

from . import browser
from .browser import parse

AT = parse_instant("2026-12-02T00:00:00Z")
WITHIN = 3 * NANOS_PER_DAY
RELEASED = parse_instant("2026-12-01T00:00:00Z")
EVIL_REPO = 'evil<i id="injected-repo">&"'
EVIL_ERROR = 'timestamp.json: bad signature <script id="injected-script">alert("x")</script> & more'


def _update(variant: str, arch: str, policy: str, released: int, version: str = "1.19.0",
            max_version: str = "1.19.0") -> Update:
    waves, _rows = policy_schedule(load_policy(policy)[0], released)
    return Update(variant, arch, Version.parse(version), Version.parse(max_version), waves,
                  Images("boot.ext4.lz4", "root.ext4.lz4", "root.verity.lz4"))


def _held(update: Update, action: Action, when: int) -> tuple[Update, dict[str, Any]]:
    """``update`` paused or halted at ``when`` by ``rollout``'s own step; its repository's pause records."""
    key = rollout_key(update.variant, update.arch, update.version)
    change = apply(action, Rollout(key, update.version, dict(update.waves), {}), when)
    return Update(update.variant, update.arch, update.version, update.max_version, change.waves, update.images), \
        change.pauses


def _repo(tmp: Path, name: str, updates: list[tuple[Update, dict[str, Any]]], expires: int,
          error: str | None = None) -> RepoStatus:
    variant, arch = updates[0][0].variant, updates[0][0].arch
    ref = RepoRef(name, variant, arch, LocalStorage(tmp / name / "metadata"), b"{}")
    pair = PairStatus(variant, arch, tuple(standing(u, pauses, AT) for u, pauses in updates))
    return RepoStatus(ref, [pair], Expires("timestamp.json", expires, expiry_status(expires, AT, WITHIN)), error)


def fleet(tmp: Path) -> FleetStatus:
    later = AT + 30 * NANOS_PER_DAY
    rolling = _update("aws-k8s-1.31", "x86_64", "default", RELEASED)
    paused = _held(_update("aws-k8s-1.31", "aarch64", "default", RELEASED), Action.PAUSE, AT - 6 * NANOS_PER_HOUR)
    halted = _held(_update("aws-ecs-2", "x86_64", "slow-roll", RELEASED), Action.HALT, AT - NANOS_PER_HOUR)
    pulled = _update("aws-dev", "x86_64", "accelerated", RELEASED, max_version="1.18.0")
    complete = _update("aws-k8s-1.30", "x86_64", "ohno", RELEASED - NANOS_PER_DAY)
    scheduled = _update("vmware-k8s-1.31", "x86_64", "default", AT + 2 * NANOS_PER_HOUR)
    expired_at = AT - 2 * NANOS_PER_HOUR
    repos = [
        _repo(tmp, "k8s-x86", [(rolling, {})], later),
        _repo(tmp, "k8s-arm", [paused], later),
        _repo(tmp, "ecs", [halted], later),
        _repo(tmp, "dev", [(pulled, {})], AT + 2 * NANOS_PER_DAY),  # inside the 3-day window
        _repo(tmp, "k8s-old", [(complete, {})], later),
        _repo(tmp, "vmware", [(scheduled, {})], expired_at,
              f"timestamp.json expired at {format_instant(expired_at)}: nodes refuse this repository"),
        RepoStatus(RepoRef(EVIL_REPO, "metal-dev", "aarch64", LocalStorage(tmp / "evil"), b"{}"), error=EVIL_ERROR),
        RepoStatus(RepoRef("empty", "aws-k8s-1.29", "x86_64", LocalStorage(tmp / "empty"), b"{}"),
                   [PairStatus("aws-k8s-1.29", "x86_64", ())],
                   Expires("snapshot.json", later, expiry_status(later, AT, WITHIN))),
    ]
    return FleetStatus(AT, WITHIN, repos)


EXPECTED_STATES = {("aws-k8s-1.31", "x86_64"): "rolling", ("aws-k8s-1.31", "aarch64"): "paused",
                   ("aws-ecs-2", "x86_64"): "halted", ("aws-dev", "x86_64"): "pulled",
                   ("aws-k8s-1.30", "x86_64"): "complete", ("vmware-k8s-1.31", "x86_64"): "scheduled",
                   ("metal-dev", "aarch64"): "failed", ("aws-k8s-1.29", "x86_64"): "none"}


@pytest.fixture
def status(tmp_path: Path) -> FleetStatus:
    return fleet(tmp_path)


def test_rows_are_the_real_states(status: FleetStatus) -> None:
    states = {(row["variant"], row["arch"]): row["state"] for row in status.rows()}
    assert states == EXPECTED_STATES


def test_page_without_a_browser(status: FleetStatus) -> None:
    rows = status.rows()
    page = parse(render_page(rows, AT, WITHIN))
    assert len(page.rows) == len(rows) == len(EXPECTED_STATES)
    for found, row in zip(page.rows, rows):
        attrs = found["attrs"]
        assert (attrs["data-variant"], attrs["data-arch"], attrs["data-state"]) == \
            (row["variant"], row["arch"], row["state"])
        assert attrs["data-version"] == (row["version"] or "")
        assert float(attrs["data-fraction"]) == row["fleet_fraction"]
        if row["state"] not in ("failed", "none"):
            assert percent(row['fleet_fraction']) in found["text"]
            assert f"{row['seeds_offered']} of 2048 seeds" in found["text"]
    rolling = next(r for r in page.rows if r["attrs"]["data-state"] == "rolling")
    assert "5.0%" in rolling["text"] and "103 of 2048 seeds" in rolling["text"] and "3 of 7" in rolling["text"]
    paused = next(r for r in page.rows if r["attrs"]["data-state"] == "paused")
    assert "since 2026-12-01 18:00Z" in paused["text"]  # paused 6 hours before AT
    assert not [m for m in page.metas if m.get("http-equiv") == "refresh"]
    csp = [m for m in page.metas if m.get("http-equiv") == "Content-Security-Policy"]
    assert csp and csp[0]["content"] == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert not [t for t, _ in page.tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    assert not [t for t, a in page.tags if (a.get("id") or "").startswith("injected")]


def test_timelines(status: FleetStatus) -> None:
    """One SVG per row with an update, on one axis: a rect per timed wave with its seeds and times
    as a tooltip, held waves hatched, the initial wave a marker, and "now" on every one."""
    text = render_page(status.rows(), AT, WITHIN)
    rows = {part.split('data-state="', 1)[1].split('"', 1)[0]: part for part in text.split("<tr ")[1:]
            if 'data-state="' in part}
    rolling = rows["rolling"]
    assert rolling.count('<rect class="wave"') == 7 and 'class="held"' not in rolling
    assert "wave 3 (general): seeds 103–307: starts 2026-12-02T00:00:00Z, all offered by 2026-12-03T00:00:00Z" \
        in rolling
    assert 'class="initial"' in rolling and "seeds 0–0, offered when published" in rolling
    assert rows["paused"].count('<rect class="held"') == 6 and rows["halted"].count('<rect class="held"') == 7
    assert 'url(#hatch)' in rows["paused"] and '<pattern id="hatch"' in text
    assert all('<line class="now"' in rows[s] for s in ("rolling", "paused", "halted", "pulled", "complete"))
    assert "<svg" not in rows["failed"] and "<svg" not in rows["none"]


def test_refresh_only_when_asked(status: FleetStatus) -> None:
    page = parse(render_page(status.rows(), AT, WITHIN, refresh_seconds=30))
    assert [m["content"] for m in page.metas if m.get("http-equiv") == "refresh"] == ["30"]


def test_no_rows() -> None:
    page = parse(render_page([], AT, WITHIN))
    assert page.rows == []
    assert any(t == "title" for t, _ in page.tags)


# --- in Chromium ------------------------------------------------------------------------------


@pytest.fixture
def page_file(status: FleetStatus, tmp_path: Path) -> Path:
    path = tmp_path / "status.html"
    path.write_text(render_page(status.rows(), AT, WITHIN), encoding="utf-8")
    return path


def test_dom_in_chromium(page_file: Path, status: FleetStatus) -> None:
    dom = browser.dump_dom(page_file)
    page = parse(dom)
    assert {(r["attrs"]["data-variant"], r["attrs"]["data-arch"]): r["attrs"]["data-state"] for r in page.rows} \
        == EXPECTED_STATES
    for found, row in zip(page.rows, status.rows()):
        if row["state"] not in ("failed", "none"):
            assert percent(row['fleet_fraction']) in found["text"]
    by_state = {r["attrs"]["data-state"]: r for r in page.rows}
    for state in ("paused", "halted", "pulled", "failed"):  # highlighted: a badge with the state
        assert f'class="badge s-{state}"' in dom
        assert "alert" in (by_state[state]["attrs"]["class"] or "")
    assert "expires soon" in by_state["pulled"]["text"]  # aws-dev: 2 days left, inside 3 days
    expired = by_state["scheduled"]["text"]  # vmware: its timestamp expired 2 hours ago
    assert "expired" in expired and "nodes refuse this repository" in expired
    failed = by_state["failed"]
    assert failed["attrs"]["data-repo"] == EVIL_REPO  # the attribute holds the text, quotes and all
    assert EVIL_REPO in failed["text"] and EVIL_ERROR in failed["text"]  # shown as text
    assert not [t for t, a in page.tags if (a.get("id") or "").startswith("injected")]
    assert not [t for t, _ in page.tags if t == "script"]
    assert "<title>Rollout status at 2026-12-02T00:00:00Z</title>" in dom
    assert dom.count('class="now"') == 1 + sum(1 for r in status.rows() if r["state"] not in ("failed", "none"))
    assert ">now</text>" in dom


def test_screenshot(page_file: Path, tmp_path: Path) -> None:
    """A 1400x900 picture of the page, left in the test's tmp directory for a person to look at."""
    browser.screenshot(page_file, tmp_path / "status.png")


def test_page_loads_nothing(page_file: Path) -> None:
    assert browser.network_requests(page_file) == []
    # Nor would it without its Content-Security-Policy (which blocks a load before the network
    # sees it): the page names nothing to fetch in the first place.
    bare = page_file.with_name("no-csp.html")
    bare.write_text("\n".join(line for line in page_file.read_text(encoding="utf-8").splitlines()
                              if "Content-Security-Policy" not in line), encoding="utf-8")
    assert "Content-Security-Policy" not in bare.read_text(encoding="utf-8")
    assert browser.network_requests(bare) == []


def test_no_chromium_skips_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match=r"Debian package: chromium\)"):
        browser.chromium()


@pytest.mark.parametrize(("markup", "url"), [
    ('<img src="http://192.0.2.1/x.png" alt="">', "http://192.0.2.1/x.png"),
    ("<style>p{background:url(http://192.0.2.1/bg.png)}</style><p>styled</p>", "http://192.0.2.1/bg.png"),
])
def test_network_detector_sees_a_load(tmp_path: Path, markup: str, url: str) -> None:
    """The detector is not blind: a page without the CSP that loads an image, or a CSS background,
    from an address is reported (the request is made and logged, never sent: tests/browser.py)."""
    control = tmp_path / "control.html"
    control.write_text(f"<!DOCTYPE html><html><head><title>control</title></head><body>{markup}</body></html>",
                       encoding="utf-8")
    assert browser.network_requests(control) == [url]
