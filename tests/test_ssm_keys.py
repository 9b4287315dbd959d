"""Signing keys held in AWS SSM Parameter Store (tuftool's ``aws-ssm://[PROFILE]/NAME``, pubsys' ``ssm``
signing key in Infra.toml), against the moto server process: a repository published with SSM-held
targets, snapshot and timestamp keys verifies; a missing parameter, one that is not a key and one stored
in plain text each give one line naming it, and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from repo_tool.core.instant import parse_instant
from repo_tool.errors import ConfigError
from repo_tool.signing.ssm import SsmKey, parse_source
from repo_tool.storage.base import LocalStorage
from repo_tool.trust.verifier import load_repo
from tests.clirun import Runner, assert_one_line_error
from tests.conftest import UPSTREAM
from tests.faults.helpers import audit_clean, local_client_sees
from tests.repohelpers import ARCH, QS, VARIANT, tough_repo_with_infra_toml, tree_state, write_images

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

def put_key(aws: MotoServer, name: str, pem: bytes, kind: str = "SecureString") -> None:
    aws.client("ssm").put_parameter(Name=name, Value=pem.decode(), Type=kind)  # type: ignore[arg-type]


def use_signers(qs: QS, signers: dict[str, list[str]]) -> None:
    config = yaml.safe_load(qs.config.read_text())
    config["repos"]["dev"]["signers"].update(signers)
    qs.config.write_text(yaml.safe_dump(config))


def test_source_spellings() -> None:
    assert parse_source("aws-ssm:///bottlerocket/keys/targets") == SsmKey("/bottlerocket/keys/targets")
    assert parse_source("aws-ssm://ci/keys/x") == SsmKey("/keys/x", "ci")
    assert parse_source("ssm:plain-name") == SsmKey("plain-name")
    assert parse_source("awskms:alias/x") is None and parse_source("keys/targets.pem") is None
    # Names SSM could not hold are refused before AWS is asked (review: AWS would answer with a
    # ValidationException, an AWS fault).
    for bad in ("aws-ssm:///keys/targets/", "aws-ssm:////keys/targets", "aws-ssm:///keys//targets",
                "ssm:/keys/targets/", "ssm:keys?x", "aws-ssm:///keys/tar%20gets"):
        with pytest.raises(ConfigError, match=r"^key .*: '.*' is not an SSM parameter name"):
            parse_source(bad)


def test_an_unknown_profile_names_the_key(aws: MotoServer, run: Runner, qs: QS) -> None:
    """(review) A profile AWS does not know: one line naming the key, exit 2 (configuration)."""
    for source in ("aws-ssm://nosuch/keys/targets", "aws-kms://nosuch/alias/targets"):
        result = run("root", "add-key", str(qs.root), "-k", source, "-r", "targets")
        assert_one_line_error(result, 2, f"key {source}: AWS", "nosuch")


def test_publish_with_ssm_held_keys_verifies(aws: MotoServer, run: Runner, qs: QS, tmp_path: Path) -> None:
    for role in ("targets", "snapshot", "timestamp"):
        put_key(aws, f"/repo-tool/{role}", (qs.dir / "keys" / f"{role}.pem").read_bytes())
    use_signers(qs, {"targets": ["aws-ssm:///repo-tool/targets"], "snapshot": ["ssm:/repo-tool/snapshot"],
                     "timestamp": ["aws-ssm:///repo-tool/timestamp"]})
    (qs.dir / "keys" / "targets.pem").unlink()  # only SSM holds them now
    done = run("publish", *qs.args("--version", "1.2.0", *write_images(tmp_path / "img", "1.2.0")))
    assert done.code == 0, done.err
    assert audit_clean(run, "--root", str(qs.root), "--metadata-url", str(qs.meta), "--targets-url",
                       str(qs.targets)) == []
    assert local_client_sees(run, tmp_path / "clients", qs.root, qs.meta, qs.targets) == "1.2.0"


@pytest.mark.parametrize("case", ["missing", "not a key", "plain text"])
def test_bad_parameters_are_named_in_one_line(aws: MotoServer, run: Runner, qs: QS, tmp_path: Path,
                                              case: str) -> None:
    if case == "not a key":
        put_key(aws, "/repo-tool/targets", b"hunter2")
    elif case == "plain text":
        put_key(aws, "/repo-tool/targets", (qs.dir / "keys" / "targets.pem").read_bytes(), kind="String")
    use_signers(qs, {"targets": ["aws-ssm:///repo-tool/targets"]})
    before = tree_state(qs.dir / "repo")
    result = run("publish", *qs.args("--version", "1.2.0", *write_images(tmp_path / "img", "1.2.0")))
    needle = {"missing": "key aws-ssm:///repo-tool/targets: SSM parameter /repo-tool/targets not found",
              "not a key": "SSM parameter /repo-tool/targets",
              "plain text": "SSM parameter /repo-tool/targets is a String parameter; a private key must be a "
                            "SecureString"}[case]
    assert_one_line_error(result, 2, needle)
    assert tree_state(qs.dir / "repo") == before


def test_pubsys_infra_toml_with_an_ssm_signing_key(aws: MotoServer, run: Runner, tmp_path: Path) -> None:
    """pubsys' Infra.toml, unchanged: ``signing_keys = { ssm = { parameter = "..." } }``, the key in SSM."""
    tough = UPSTREAM / "tough"
    source = tough / "consistent-snapshots"
    put_key(aws, "/infra/snakeoil", (tough / "test-keys" / "snakeoil.pem").read_bytes())
    config, meta = tough_repo_with_infra_toml(tmp_path, source, '{ ssm = { parameter = "/infra/snakeoil" } }')
    images = write_images(tmp_path / "img", "1.0.0")
    done = run("publish", "--config", str(config), "--variant", VARIANT, "--arch", ARCH, "--version", "1.0.0",
               *images, "--new-manifest")
    assert done.code == 0, done.err
    trusted = (source / "metadata" / "1.root.json").read_bytes()
    repo = load_repo(LocalStorage(meta), trusted, parse_instant("2026-11-21T00:00:00Z"))
    assert (repo.targets.version, repo.snapshot.version, repo.timestamp.version) == (2, 2, 2)
    assert json.loads((meta / "2.targets.json").read_bytes())["signatures"][0]["keyid"] == (
        "69f069cf595e3f09cbe99a9f0f82127f7c7d2fde859e30fd5c0f2b4fc9c4a507")
