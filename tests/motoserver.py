"""A real moto HTTP server (S3, KMS) in a separate process, for tests that talk AWS over the wire.

The server is ``tests/moto_launcher.py`` (moto plus a fix for its KMS DIGEST signing, see there),
bound to 127.0.0.1 on a port the OS picks. Use it through the fixtures::

    if TYPE_CHECKING:  # pytest_plugins imports the module (importing it first loses assert rewriting)
        from .motoserver import MotoServer

    pytest_plugins = ["tests.motoserver"]  # the fixtures (a by-name import trips ruff F811)

    def test_x(aws: MotoServer) -> None:       # server reset, AWS_* env set, boto3 default session fresh
        aws.client("s3").create_bucket(...)
        subprocess.run([...], env=aws.subprocess_env())

``moto_server`` is the session-wide server (one process for the whole run); ``aws`` is the
per-test view of it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn, overload

import boto3
import pytest
from botocore.config import Config

if TYPE_CHECKING:
    from types_boto3_kms.client import KMSClient
    from types_boto3_s3.client import S3Client
    from types_boto3_ssm.client import SSMClient

LAUNCHER = Path(__file__).resolve().with_name("moto_launcher.py")
REGION = "us-west-2"
START_TIMEOUT = 30.0


class MotoServer:
    """One moto server process; ``start()`` it, then use ``endpoint``, ``env()``, ``client()``."""

    def __init__(self, *, patched: bool = True) -> None:
        self.patched = patched
        self.workdir = Path(tempfile.mkdtemp(prefix="moto-server-"))
        self.log_path = self.workdir / "moto.log"
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        # An empty config file and a credentials file that does not exist: a developer's ~/.aws
        # (profiles, SSO, credential_process, endpoint overrides) never reaches the code under test.
        self.config_file = self.workdir / "aws-config"
        self.config_file.write_text("")
        self.credentials_file = self.workdir / "no-such-aws-credentials"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def endpoint(self) -> str:
        if not self.port:
            raise RuntimeError("moto server not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = START_TIMEOUT) -> MotoServer:
        port_file = self.workdir / "port"
        cmd = [sys.executable, str(LAUNCHER), "--port", "0", "--port-file", str(port_file)]
        if not self.patched:
            cmd.append("--unpatched")
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self._launcher_env()
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                self._fail(f"moto server exited with status {self._proc.returncode}")
            if not self.port and port_file.is_file():
                self.port = int(port_file.read_text())
            if self.port and self._answers():
                return self
            if time.monotonic() > deadline:
                self._fail(f"moto server did not answer within {timeout:.0f}s")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.port = 0
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """Environment variables that point boto3 (in-process or in a subprocess) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_CONFIG_FILE": str(self.config_file),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.credentials_file),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def subprocess_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: os.environ) without any other AWS_* variable, plus ``env()``."""
        source = os.environ if base is None else base
        return {k: v for k, v in source.items() if not k.startswith("AWS_")} | self.env()

    @overload
    def client(self, service: Literal["s3"], **kwargs: Any) -> S3Client: ...
    @overload
    def client(self, service: Literal["kms"], **kwargs: Any) -> KMSClient: ...
    @overload
    def client(self, service: Literal["ssm"], **kwargs: Any) -> SSMClient: ...

    def client(self, service: Literal["s3", "kms", "ssm"], **kwargs: Any) -> S3Client | KMSClient | SSMClient:
        """A boto3 client for ``service`` on this server, or at ``endpoint_url`` (a proxy in front of it),
        independent of the process environment."""
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        )
        options: dict[str, Any] = {"endpoint_url": self.endpoint, **kwargs}
        if service == "s3":
            # Reads check only the checksums S3 requires, as repo-tool's own client does (repo_tool/aws.py):
            # botocore 1.36.0 (the floor) takes moto's composite CRC32 of a multipart object (a checksum of
            # the parts' checksums) for the whole object's and fails the read.
            options.setdefault("config", Config(response_checksum_validation="when_required"))
            return session.client("s3", **options)
        if service == "ssm":
            return session.client("ssm", **options)
        return session.client("kms", **options)

    def reset(self) -> None:
        """Forget every bucket, key, ... (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _launcher_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2) as response:
                response.read()
        except urllib.error.HTTPError:
            return True  # an HTTP answer, whatever its status
        except OSError:  # includes TimeoutError
            return False
        return True

    def _fail(self, why: str) -> NoReturn:
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"{why}; log tail:\n{tail}")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """The session's moto server (patched KMS); started once, stopped at the end of the run."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """``moto_server``, reset, with ``env()`` applied to os.environ for this test (other AWS_*
    variables removed) and boto3's default session dropped so it re-reads that environment."""
    moto_server.reset()
    for name in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    return moto_server
