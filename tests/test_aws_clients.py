"""Every AWS client repo_tool.aws makes names the tool in its requests' User-Agent
(``app/repo-tool-VERSION``, botocore's user_agent_appid), checked on the requests that reach the moto
server (botocore's ``before-send`` event sees the headers as sent), and a user's own app ID wins."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from repo_tool import __version__
from repo_tool.aws import AwsSettings, forget_clients

from .clirun import make_runner

if TYPE_CHECKING:  # imported for real by pytest_plugins (so pytest can rewrite its asserts)
    from .motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

APP = f"app/repo-tool-{__version__}"  # botocore writes the "/" of the app ID as "-"


def recorder(seen: list[str]) -> Callable[..., None]:
    """A ``before-send`` handler that notes each request's User-Agent header."""

    def before_send(request: Any, **_: Any) -> None:
        agent = request.headers["User-Agent"]
        seen.append(agent.decode() if isinstance(agent, bytes) else str(agent))

    return before_send


@pytest.fixture
def agents(aws: MotoServer) -> Iterator[list[str]]:
    """The User-Agent of every request sent through the (cached) S3 and KMS clients from now on."""
    forget_clients()
    seen: list[str] = []
    AwsSettings().client("s3").meta.events.register("before-send.s3", recorder(seen))
    AwsSettings().client("kms").meta.events.register("before-send.kms", recorder(seen))
    yield seen
    forget_clients()


def test_every_client_sends_the_app_id(agents: list[str]) -> None:
    AwsSettings().client("s3").list_buckets()
    AwsSettings().client("kms").list_keys()
    regional = AwsSettings().client("s3", region="eu-central-1")  # what infra create-bucket --region uses
    regional.meta.events.register("before-send.s3", recorder(agents))
    regional.list_buckets()
    assert len(agents) == 3
    assert all(APP in agent.split() for agent in agents), agents


def test_cli_requests_carry_the_app_id(agents: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    run = make_runner(capsys)
    result = run("infra", "create-bucket", "ua-bucket")
    assert result.code == 0, result.err
    result = run("keys", "import-kms", "alias/none")
    assert result.code == 1  # GetPublicKey answered NotFound: a request was sent all the same
    assert len(agents) >= 6  # HeadBucket, CreateBucket, four settings, GetPublicKey
    assert all(APP in agent.split() for agent in agents), agents


def test_a_users_own_app_id_wins(aws: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SDK_UA_APP_ID", "release-pipeline")
    forget_clients()
    seen: list[str] = []
    s3 = AwsSettings().client("s3")
    s3.meta.events.register("before-send.s3", recorder(seen))
    s3.list_buckets()
    assert "app/release-pipeline" in seen[0] and "repo-tool" not in seen[0]
    forget_clients()
