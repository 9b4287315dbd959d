"""The repo-tool.yaml quickstart writes (config_text) is YAML written by yaml.safe_dump: values that
an f-string template would break (``a: b``, `` #`` starting a comment, quotes, words YAML reads as
booleans or numbers) load back as given, through the config loader and through the real CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from repo_tool.aws import AwsSettings, forget_clients
from repo_tool.config import NewEntry, config_text, load_config
from repo_tool.publish.quickstart import ARCH, VARIANT
from repo_tool.trust.model import TOP_ROLES

from .clirun import make_runner
from .s3helpers import fault_proxy

if TYPE_CHECKING:  # imported for real by pytest_plugins (so pytest can rewrite its asserts)
    from .motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

HOSTILE = ["a: b", "x #y", "it's", 'say "hi"', "- item", "[list]", "{map}", "*alias", "&anchor", "!tag", "%dir",
           "@at", "`tick", "yes", "no", "null", "~", "true", "0x10", "1e3", "012", "2026-12-05", " lead", "trail ",
           "é ü", "a #b: c 'd\""]


@pytest.mark.parametrize("value", HOSTILE)
def test_config_text_round_trips(tmp_path: Path, value: str) -> None:
    signers = {role: [f"keys/{value}/{role}.pem", f"awskms:alias/{role}"] for role in TOP_ROLES}
    # (root is read as a path or a file:// URL: "keys/" keeps "a: b" from looking like a URL scheme)
    entry = NewEntry("dev", f"repo/{value}", f"s3://bucket/{value}/", f"keys/{value}.json", signers,
                     aws=AwsSettings(value, f"http://127.0.0.1:9/{value}"))
    path = tmp_path / "repo-tool.yaml"
    path.write_text(config_text(entry))
    config = load_config(path, None)
    assert (config.metadata_url, config.targets_url) == (entry.metadata_url, entry.targets_url)
    assert config.root == tmp_path / "keys" / f"{value}.json"
    assert config.signers == signers
    assert config.aws == AwsSettings(value, f"http://127.0.0.1:9/{value}")


def test_config_text_stays_readable() -> None:
    """The same keys in the same order as before, one per line, the short lists and maps inline."""
    text = config_text(NewEntry("dev", "repo/metadata", "repo/targets", "root.json",
                                {role: [f"keys/{role}.pem"] for role in TOP_ROLES},
                                aws=AwsSettings("release", "https://s3.example.net")))
    body = [line for line in text.splitlines() if not line.startswith("#")]
    assert body == [
        "repos:",
        "  dev:",
        "    metadata_url: repo/metadata",
        "    targets_url: repo/targets",
        "    root: root.json",
        "    signers:",
        *[f"      {role}: [keys/{role}.pem]" for role in TOP_ROLES],
        "    expiration: {snapshot: 2 weeks, targets: 2 weeks, timestamp: 1 week}",
        "    wave_policy: default",
        "    endpoint_url: https://s3.example.net",
        "    profile: release",
    ]
    assert text.startswith("# repo-tool configuration: one entry per repository family.\n")


def test_quickstart_writes_what_it_was_given(aws: MotoServer, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``quickstart --profile 'a: b #c' --endpoint-url 'http://HOST:PORT/ #x'`` into a directory whose
    name has a quote and a colon, with an S3 prefix that has them too: the config it writes loads back
    to exactly those values, and a later command run from the config alone reaches S3 through them
    (the endpoint is a proxy mounted at "/ ": botocore drops the "#x" fragment and sends "/%20/...")."""
    profile = "a: b #c"
    # (botocore shlex-splits a section name: quoted, it may hold a space, a colon and a #)
    aws.config_file.write_text(f'[profile "{profile}"]\nregion = us-west-2\naws_access_key_id = testing\n'
                               "aws_secret_access_key = testing\n")
    forget_clients()
    run = make_runner(capsys)
    directory = tmp_path / "it's: here"
    metadata_url, targets_url = "s3://qs-yaml/it's: meta/", "s3://qs-yaml/targets/"
    with fault_proxy(aws.endpoint, base_path="/%20") as proxy:
        endpoint = f"{proxy.url}/ #x"
        result = run("quickstart", str(directory), "--metadata-url", metadata_url, "--targets-url", targets_url,
                     "--profile", profile, "--endpoint-url", endpoint)
        assert result.code == 0, result.err
        assert proxy.requests, "quickstart did not go through the --endpoint-url"
        path = directory / "repo-tool.yaml"
        repo = yaml.safe_load(path.read_text())["repos"]["dev"]
        assert (repo["metadata_url"], repo["targets_url"]) == (metadata_url, targets_url)
        assert (repo["profile"], repo["endpoint_url"]) == (profile, endpoint)
        config = load_config(path, None)
        assert config.aws == AwsSettings(profile, endpoint)
        assert config.root == directory.resolve() / "root.json"

        proxy.reset()
        forget_clients()
        refreshed = run("refresh", "--config", str(path), "--variant", VARIANT, "--arch", ARCH)
        assert refreshed.code == 0, refreshed.err
        assert any(r.key.startswith("/%20/qs-yaml/it%27s%3A%20meta/") for r in proxy.requests), proxy.requests[:3]
