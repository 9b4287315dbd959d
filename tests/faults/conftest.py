"""Fixtures of the fault tests: the in-process CLI runner, a quickstart made once per session, the
kill shim's fork server, and the quickstart published to S3 (the S3 test modules load the moto
fixtures with ``pytest_plugins = ["tests.motoserver"]``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.clirun import Runner
from tests.faults.helpers import KillServer
from tests.test_s3 import META_URL, TARGETS_URL, S3Repo

if TYPE_CHECKING:
    from tests.motoserver import MotoServer


@pytest.fixture(scope="session")
def kill_server() -> Iterator[KillServer]:
    server = KillServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def s3_repo(aws: MotoServer, run: Runner, tmp_path: Path) -> S3Repo:
    """As tests/test_s3.py's ``repo``: the quickstart published into a moto bucket."""
    made = run("quickstart", str(tmp_path / "qs"), "--metadata-url", META_URL, "--targets-url", TARGETS_URL)
    assert made.code == 0, made.err
    return S3Repo(tmp_path / "qs", aws)
