"""updog.toml and os-release parsing (SPEC §9.1)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.nodeconfig import parse_os_release, parse_updog_toml
from repo_tool.errors import ConfigError

GOOD = """metadata_base_url = "https://updates.bottlerocket.aws/2020-07-07/aws-k8s-1.28/x86_64/"
targets_base_url = "https://updates.bottlerocket.aws/targets/"
seed = 1487
version_lock = "latest"
ignore_waves = false
"""


def test_updog_toml_as_bottlerocket_writes_it() -> None:
    config = parse_updog_toml(GOOD)
    assert config.seed == 1487 and config.version_lock == "latest" and config.ignore_waves is False
    assert config.proxy_environment() == {}


def test_unknown_fields_are_ignored_as_updog_does() -> None:
    assert parse_updog_toml(GOOD + "seeed = 3\n").seed == 1487


def test_proxy_environment() -> None:
    config = parse_updog_toml(GOOD + 'https_proxy = "proxy.local:3128"\nno_proxy = ["localhost", ".internal"]\n')
    assert config.proxy_environment() == {"HTTPS_PROXY": "http://proxy.local:3128", "NO_PROXY": "localhost,.internal"}
    only_no_proxy = parse_updog_toml(GOOD + 'no_proxy = ["localhost"]\n')
    assert only_no_proxy.proxy_environment() == {}  # NO_PROXY only goes with a proxy


@pytest.mark.parametrize(("text", "needle"), [
    (GOOD.replace("seed = 1487", "seed = 2048"), "field 'seed'"),
    (GOOD.replace("seed = 1487", "seed = true"), "field 'seed' must be an integer"),
    (GOOD.replace("ignore_waves = false\n", ""), "missing field 'ignore_waves'"),
    (GOOD.replace('version_lock = "latest"', "version_lock = 1"), "field 'version_lock' must be a string"),
    (GOOD + "no_proxy = 'x'\n", "no_proxy"),
    ("seed = [", "invalid TOML"),
])
def test_updog_toml_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_updog_toml(text)


def test_os_release() -> None:
    release = parse_os_release('# comment\nNAME=Bottlerocket\nVERSION_ID=1.19.2\nVARIANT_ID="aws-k8s-1.28"\n'
                               'PRETTY_NAME="Bottlerocket OS 1.19.2 (aws-k8s-1.28)"\nBUILD_ID=29cc92cc\n')
    assert str(release.version_id) == "1.19.2" and release.variant_id == "aws-k8s-1.28"
    assert release.pretty_name == "Bottlerocket OS 1.19.2 (aws-k8s-1.28)" and release.build_id == "29cc92cc"


@pytest.mark.parametrize(("text", "needle"), [
    ("VARIANT_ID=x\n", "missing VERSION_ID"),
    ("VERSION_ID=1.0.0\n", "missing VARIANT_ID"),
    ("VERSION_ID=v1.0\nVARIANT_ID=x\n", "VERSION_ID"),
    ("VERSION_ID=1.0.0\nVARIANT_ID=x\nnonsense\n", "line 3"),
])
def test_os_release_errors(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_os_release(text)


@given(st.text(max_size=300))
def test_never_a_traceback(text: str) -> None:
    for parse in (parse_updog_toml, parse_os_release):
        with contextlib.suppress(ConfigError):
            parse(text)
