"""Shared test paths and helpers.

Upstream fixtures are read in place from ``../shared/fixtures/upstream`` (the
checkout's sibling, as in CI); ``REPO_TOOL_SHARED`` may point elsewhere.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.clirun import Runner, make_runner
from tests.repohelpers import QS, copy_quickstart, make_quickstart

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("REPO_TOOL_SHARED", REPO.parent / "shared"))
UPSTREAM = SHARED / "fixtures" / "upstream"
BOTTLEROCKET = UPSTREAM / "bottlerocket"
MANIFESTS = BOTTLEROCKET / "manifests"
UPDOG_TESTS = MANIFESTS / "updog-tests"
WAVES_CORE_KIT = BOTTLEROCKET / "waves" / "core-kit"

# Every server the tests talk to is on 127.0.0.1 (moto, the repositories, the attack and load servers),
# and the node, boto3 and python-tuf all honour proxy variables: a CI machine that reaches PyPI through
# a proxy must not send the tests' own requests there (tests of proxy support set their own).
for _name in [name for name in os.environ if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")]:
    del os.environ[_name]
# A developer's own default config or debug switch must not change what the tests see.
for _name in ("REPO_TOOL_CONFIG", "REPO_TOOL_DEBUG"):
    os.environ.pop(_name, None)

if not UPSTREAM.is_dir():  # fail loudly: these tests are the compatibility proof
    raise RuntimeError(f"upstream fixtures not found at {UPSTREAM}; set REPO_TOOL_SHARED")

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
# CI's gate is reproducible: the same examples for the same commit and hypothesis version (derived
# from each test), so its verdict is the one a developer gets running .ci/run.  Finding new inputs is
# the job of "deep": random and 13 times longer (tests/fuzz scales its per-command budgets from
# max_examples); run it before a release, `HYPOTHESIS_PROFILE=deep pytest tests/fuzz ...`.
settings.register_profile("ci", deadline=None, max_examples=300, derandomize=True, database=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("deep", deadline=None, max_examples=4000, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def updog_tests() -> Path:
    return UPDOG_TESTS


@pytest.fixture(autouse=True)
def _sigterm_restored() -> Iterator[None]:
    """`repo-tool node ... -r` ignores SIGTERM for the rest of its process, as updog does before it
    runs the reboot command; run in-process, it must not leave pytest (and so every server or node
    process a later test starts, which inherits the disposition) deaf to SIGTERM."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    if before is not None:  # None: a handler not installed from Python, which cannot be put back
        signal.signal(signal.SIGTERM, before)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Runner:
    """The CLI run in-process (``tests/clirun.py``)."""
    return make_runner(capsys)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> QS:
    """A quickstart (releases 1.0.0 and 1.1.0 in a local repository), made once per test module:
    copy it (``qs``), never change it."""
    return make_quickstart(tmp_path_factory.mktemp("template") / "qs")


@pytest.fixture
def qs(template: QS, tmp_path: Path) -> QS:
    return copy_quickstart(template, tmp_path / "qs")
