"""``repo-tool audit``: clean repositories pass; each tampering is caught by name."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from repo_tool.audit.role_checks import tough_refusals
from repo_tool.config import load_config
from repo_tool.core.instant import NANOS_PER_DAY, format_instant, parse_instant
from repo_tool.core.manifest import Manifest
from repo_tool.core.semver import Version
from repo_tool.publish import editor as repository
from repo_tool.publish.live import Write
from repo_tool.publish.load import Location
from repo_tool.publish.maintenance import edit_manifest
from repo_tool.trust.model import parse_role
from tests.clirun import Runner
from tests.conftest import BOTTLEROCKET, UPSTREAM
from tests.repohelpers import ARCH, QS, VARIANT, release_config, run_measured, serve_directory, write_stored_lz4

TOUGH = UPSTREAM / "tough"


def _audit(run: Runner, qs: QS, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(qs.root),
                 "--json", *extra)
    assert "Traceback" not in result.err
    return result.code, json.loads(result.out)


def _findings(report: dict[str, Any], severity: str) -> list[str]:
    return [f"{f['check']}: {f['file']}: {f['message']}" for f in report["findings"] if f["severity"] == severity]


def _one_error(report: dict[str, Any], *needles: str) -> None:
    errors = _findings(report, "error")
    assert any(all(n in e for n in needles) for e in errors), errors


def _target_object(qs: QS, name: str) -> Path:
    entry = qs.newest("targets")["signed"]["targets"][name]
    return qs.targets / f"{entry['hashes']['sha256']}.{name}"


def _image(qs: QS, kind: str) -> str:
    update = next(u for u in qs.manifest()["updates"] if u["version"] == "1.1.0")
    name: str = update["images"][kind]
    return name


def _location(qs: QS) -> Location:
    return Location.of(load_config(qs.config, None, None), VARIANT, ARCH)


# --- clean ---------------------------------------------------------------------------------


def test_quickstart_is_clean_and_the_report_is_complete(run: Runner, qs: QS, tmp_path: Path) -> None:
    code, report = _audit(run, qs, "--report", str(tmp_path / "audit.md"))
    assert code == 0, report["findings"]
    assert report["result"] == "pass" and _findings(report, "error") == []
    summary = report["summary"]
    assert summary["root_versions"] == [1]
    assert summary["targets_checked"] == summary["targets_listed"] == len(qs.newest("targets")["signed"]["targets"])
    assert summary["bytes_checked"] == sum(e["length"] for e in qs.newest("targets")["signed"]["targets"].values())
    assert {r["role"] for r in report["roles"]} == {"root", "timestamp", "snapshot", "targets"}
    assert all(r["signed_by"] and not r["not_signed"] for r in report["roles"])
    assert {k["keytype"] for k in report["keys"]} == {"ed25519"} and all(k["bits"] == 256 for k in report["keys"])
    assert report["expiries"][0]["role"] == "timestamp"  # the calendar is sorted
    text = (tmp_path / "audit.md").read_text()
    assert "PASS" in text and "Expiry calendar" in text


def test_text_output_and_config_form(run: Runner, qs: QS) -> None:
    result = run("audit", "--config", str(qs.config), "--variant", VARIANT, "--arch", ARCH, "--targets", "sample:2")
    assert result.code == 0, result.err
    assert result.out.splitlines()[-1].startswith("PASS: 0 error(s)")
    assert "targets checked 2 of" in result.out


def test_over_http(run: Runner, qs: QS) -> None:
    with serve_directory(qs.dir / "repo") as url:
        result = run("audit", "--metadata-url", f"{url}/metadata/{VARIANT}/{ARCH}/", "--targets-url",
                     f"{url}/targets/", "--root", str(qs.root), "--json")
    assert result.code == 0, result.out[-2000:]
    report = json.loads(result.out)
    assert report["summary"]["targets_checked"] == report["summary"]["targets_listed"] > 3
    assert report["repository"]["metadata_url"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize(("args", "needle"), [
    (("--targets", "some"), "--targets"), (("--within", "soon"), "--within"), (("--report", "x.pdf"), "--report"),
])
def test_usage_errors(run: Runner, qs: QS, args: tuple[str, ...], needle: str) -> None:
    result = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(qs.root),
                 *args)
    assert result.code == 2 and needle in result.err and len(result.err.strip().splitlines()) == 1


# --- tampering -----------------------------------------------------------------------------


def test_flipped_byte_in_an_image(run: Runner, qs: QS) -> None:
    path = _target_object(qs, _image(qs, "root"))
    data = bytearray(path.read_bytes())
    data[100] ^= 0x40
    path.write_bytes(bytes(data))
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "targets", path.name, "does not match the listed")


def test_target_object_missing(run: Runner, qs: QS) -> None:
    path = _target_object(qs, _image(qs, "boot"))
    path.unlink()
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "targets", path.name, "object is missing")
    assert _audit(run, qs, "--targets", "none")[0] == 0  # not downloading targets cannot see it


def test_signature_removed_below_threshold(run: Runner, qs: QS) -> None:
    path = qs.meta / "timestamp.json"
    doc = json.loads(path.read_bytes())
    doc["signatures"] = []
    path.write_text(json.dumps(doc, indent=2))
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "load", "threshold not met for role timestamp")
    # ... and the audit goes on with the files as stored: the file itself is named, keys are listed,
    # targets are still checked.
    _one_error(report, "signatures", "timestamp.json", "threshold not met for timestamp: 0 valid")
    assert report["keys"] and report["summary"]["targets_checked"] == report["summary"]["targets_listed"]


def test_delegation_in_files_a_node_refuses_is_a_finding(run: Runner, qs: QS) -> None:
    """On the files as stored (not verified) a lookup that reaches a delegation is named as a
    finding: the audit reads no delegated role of metadata nodes refuse (it used to fail on an assert)."""
    snapshot = qs.newest("snapshot")["signed"]["meta"]["targets.json"]["version"]
    path = qs.meta / f"{snapshot}.targets.json"
    doc = json.loads(path.read_bytes())
    hash_image = _image(qs, "hash")
    del doc["signed"]["targets"][hash_image]
    doc["signed"]["delegations"] = {"keys": {}, "roles": [
        {"name": "bins", "keyids": [], "threshold": 1, "paths": ["*"], "terminating": False}]}
    path.write_text(json.dumps(doc, indent=2))
    code, report = _audit(run, qs, "--targets", "none")
    assert code == 1
    _one_error(report, "load", "targets.json")
    _one_error(report, "manifest", "delegated role 'bins'", "not read")


def test_odd_key_id_in_a_signature_is_refused_like_tough(run: Runner, qs: QS) -> None:
    path = qs.meta / "timestamp.json"
    doc = json.loads(path.read_bytes())
    doc["signatures"].append({"keyid": "abc", "sig": "00"})
    path.write_text(json.dumps(doc, indent=2))
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "load", "not hex (tough rejects the file)")


def test_duplicate_signature_key_ids_are_an_error(run: Runner, qs: QS) -> None:
    """Nodes (tough) count the key once and load the repository, but python-tuf and every standard TUF
    client refuse the file: the auditor names the file and the whole key ID."""
    path = qs.meta / "timestamp.json"
    doc = json.loads(path.read_bytes())
    keyid = doc["signatures"][0]["keyid"]
    doc["signatures"].append({"keyid": keyid.upper(), "sig": doc["signatures"][0]["sig"]})
    path.write_text(json.dumps(doc, indent=2))
    code, report = _audit(run, qs)
    assert code == 1
    assert _findings(report, "error") == [
        f"signatures: {path}: key ID {keyid} signs more than once: python-tuf and other standard TUF clients "
        "refuse the file (tough counts the key once)"]
    assert not any(f["check"] == "load" for f in report["findings"])  # a node loads it


def test_signature_by_a_key_not_in_root(run: Runner, qs: QS) -> None:
    path = qs.meta / "timestamp.json"
    doc = json.loads(path.read_bytes())
    doc["signatures"].append({"keyid": "ab" * 32, "sig": "cd" * 64})
    path.write_text(json.dumps(doc, indent=2))
    code, report = _audit(run, qs)
    assert code == 0  # the threshold is still met: nodes accept it, the auditor says so
    assert any("signature by key abababababababab" in w for w in _findings(report, "warning"))
    row = next(r for r in report["roles"] if r["role"] == "timestamp")
    assert row["unknown_signatures"] == 1


def test_root_missing_in_the_middle_of_the_chain(run: Runner, qs: QS) -> None:
    for _ in range(2):  # roots 2 and 3 (same keys, version bumped, signed by the root key)
        new_root = qs.dir / "next.root.json"
        newest = max(int(p.name.split(".")[0]) for p in qs.meta.glob("*.root.json"))
        new_root.write_bytes((qs.meta / f"{newest}.root.json").read_bytes())
        assert run("root", "bump-version", str(new_root)).code == 0
        assert run("root", "sign", str(new_root), "-k", str(qs.dir / "keys" / "root.pem")).code == 0
        refreshed = run("refresh", "--config", str(qs.config), "--variant", VARIANT, "--arch", ARCH,
                        "--root-role", str(new_root))
        assert refreshed.code == 0, refreshed.err
    assert _audit(run, qs)[1]["summary"]["root_versions"] == [1, 2, 3]
    (qs.meta / "2.root.json").unlink()
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "root-chain", "2.root.json", "missing in the middle of the root chain")


def test_first_root_file_holding_another_version_is_an_error(run: Runner, qs: QS) -> None:
    """A ``1.root.json`` that holds version 3 (and no ``2.root.json``): a node shipping root v1 cannot walk
    to v3, so the chain is broken although every file present verifies.  Found in review: the audit's walk
    started from whatever version ``1.root.json`` held and never asked for the ones below."""
    for _ in range(2):
        new_root = qs.dir / "next.root.json"
        newest = max(int(p.name.split(".")[0]) for p in qs.meta.glob("*.root.json"))
        new_root.write_bytes((qs.meta / f"{newest}.root.json").read_bytes())
        assert run("root", "bump-version", str(new_root)).code == 0
        assert run("root", "sign", str(new_root), "-k", str(qs.dir / "keys" / "root.pem")).code == 0
        assert run("refresh", "--config", str(qs.config), "--variant", VARIANT, "--arch", ARCH,
                   "--root-role", str(new_root)).code == 0
    trusted = qs.dir / "trusted-v3.root.json"
    trusted.write_bytes((qs.meta / "3.root.json").read_bytes())
    (qs.meta / "1.root.json").write_bytes((qs.meta / "3.root.json").read_bytes())
    (qs.meta / "2.root.json").unlink()
    result = run("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root", str(trusted),
                 "--json")
    assert result.code == 1 and "Traceback" not in result.err
    _one_error(json.loads(result.out), "root-chain", "1.root.json", "holds version 3, expected 1")


def test_expired_and_expiring_timestamp(run: Runner, qs: QS) -> None:
    expires = qs.newest("timestamp")["signed"]["expires"]
    code, report = _audit(run, qs, "--at", expires.replace("Z", ".5Z"), "--targets", "none")
    assert code == 1
    _one_error(report, "expiry", "timestamp.json", "timestamp expired at")
    day_before = format_instant(parse_instant(expires) - NANOS_PER_DAY)
    code, report = _audit(run, qs, "--targets", "none", "--at", day_before)
    assert code == 0 and any("timestamp expires in 1 day" in w for w in _findings(report, "warning"))
    code, report = _audit(run, qs, "--targets", "none", "--within", "8 days")
    assert code == 0 and any("timestamp expires in" in w for w in _findings(report, "warning"))


def test_manifest_image_that_is_not_a_target(run: Runner, qs: QS) -> None:
    def unlisted(manifest: Manifest) -> list[str]:
        next(u for u in manifest.updates if str(u.version) == "1.1.0").images.hash = "missing-hash.lz4"
        return []

    edit_manifest(_location(qs), time.time_ns(), Write(), unlisted)
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "manifest", "hash image 'missing-hash.lz4' is not a listed target")


def test_waves_out_of_order(run: Runner, qs: QS, monkeypatch: pytest.MonkeyPatch) -> None:
    def swap(manifest: Manifest) -> list[str]:
        update = next(u for u in manifest.updates if str(u.version) == "1.1.0")
        keys = sorted(update.waves)
        update.waves[keys[0]], update.waves[keys[1]] = update.waves[keys[1]], update.waves[keys[0]]
        return []

    monkeypatch.setattr(Manifest, "validate", lambda self: None)  # the publisher would refuse this manifest
    edit_manifest(_location(qs), time.time_ns(), Write(), swap)
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "manifest", "wave times are not strictly increasing")


def test_empty_custom_that_tough_would_refuse(run: Runner, qs: QS, monkeypatch: pytest.MonkeyPatch) -> None:
    """A repository python-tuf would accept but a node would not: ``"custom": {}`` on a target."""
    real = repository.target_entry  # type: ignore[attr-defined]
    monkeypatch.setattr(repository, "target_entry",
                        lambda length, sha256, custom=None: {**real(length, sha256, custom), "custom": {}})
    monkeypatch.setattr(repository, "self_check", lambda *args, **kwargs: None)  # the publisher would refuse it
    def cap(manifest: Manifest) -> list[str]:
        manifest.update_max_version(Version.parse("1.5.0"), ARCH, VARIANT)
        return []

    edit_manifest(_location(qs), time.time_ns(), Write(), cap)
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "tough", "targets.json", "updog will reject this file", "custom is {}")


def test_key_with_a_mismatched_key_id(run: Runner, qs: QS) -> None:
    path = qs.meta / "1.root.json"
    doc = json.loads(path.read_bytes())
    entry = next(iter(doc["signed"]["keys"].values()))
    doc["signed"]["keys"]["00" * 32] = entry  # the same key under an ID that is not its sha256
    path.write_text(json.dumps(doc, indent=2))
    code, report = _audit(run, qs)
    assert code == 1
    _one_error(report, "root-chain", "1.root.json", "does not match its key")


def test_tough_refusals_table() -> None:
    """SPEC §3.4 rule 8: what tough re-serializes differently, on a hand-made role file."""
    signed = {"_type": "targets", "spec_version": "1.0.0", "version": 1, "expires": "2030-01-01T00:00:00+00:00",
              "targets": {"a": {"length": 1, "hashes": {"sha256": "00" * 32}, "custom": {}},
                          "b": {"length": None, "hashes": {"sha256": "00" * 32}},
                          "e\u0301": {"length": 1, "hashes": {"sha256": "00" * 32}}},
              "delegations": {"keys": {}, "roles": [], "extra": 1}}
    raw = json.dumps({"signed": signed, "signatures": []}).encode()
    problems = tough_refusals(parse_role(raw, "targets", "t"))
    assert any("re-serialized as '2030-01-01T00:00:00Z'" in p for p in problems)
    assert any("custom is {}" in p for p in problems)
    assert any("length is null" in p for p in problems)
    assert any("not NFC" in p for p in problems)
    assert any("delegations has fields tough drops: extra" in p for p in problems)
    fraction = dict(signed, expires="2030-01-01T00:00:00.5Z", targets={}, delegations={"keys": {}, "roles": []})
    raw = json.dumps({"signed": fraction, "signatures": []}).encode()
    assert tough_refusals(parse_role(raw, "targets", "t")) == [
        "expires '2030-01-01T00:00:00.5Z' is re-serialized as '2030-01-01T00:00:00.500Z'"]


# --- upstream fixtures ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "code"), [
    ("consistent-snapshots", 0), ("tuf-reference-impl", 0), ("dubious-role-names", 0), ("expired-repository", 1),
    ("tuf-sha512", 1), ("rotated-root", 0), ("safe-target-paths", 0),
])
def test_tough_fixtures(run: Runner, name: str, code: int) -> None:
    base = TOUGH / name
    meta = base if name == "rotated-root" else base / "metadata"
    result = run("audit", "--metadata-url", str(meta), "--targets-url", str(base / "targets"),
                 "--root", str(meta / "1.root.json"), "--no-manifest", "--json")
    assert result.code == code, result.out[-2000:]
    report = json.loads(result.out)
    if name == "rotated-root":
        assert report["summary"]["root_versions"] == [1, 2]
    if name in ("safe-target-paths", "tuf-reference-impl"):  # delegated targets are checked too
        assert report["summary"]["targets_checked"] == 3
    if name == "expired-repository":
        _one_error(report, "expiry", "timestamp expired at 1999-01-01")
    if name == "tuf-sha512":
        _one_error(report, "load", "sha256")


def test_production_roots(run: Runner, tmp_path: Path) -> None:
    prod = BOTTLEROCKET / "production-root"
    result = run("audit", "--metadata-url", str(prod), "--targets-url", str(tmp_path), "--root",
                 str(prod / "1.root.json"), "--no-manifest", "--json", "--at", "2020-10-01T00:00:00Z")
    report = json.loads(result.out)
    assert result.code == 1  # there is no timestamp.json: nodes cannot load it
    assert report["summary"]["root_versions"] == [1, 2]  # but the root chain 1 -> 2 verifies
    assert not [e for e in _findings(report, "error") if "root-chain" in e]
    assert not [w for w in _findings(report, "warning") if "signature by key" in w]  # cross-signing is expected
    _one_error(report, "load", "timestamp.json not found")


def test_memory_stays_bounded_on_more_than_2_gib_of_targets(run: Runner, qs: QS, tmp_path: Path) -> None:
    """Publish a release whose images total 2.2 GiB (LZ4 frames of sparse zeros), then audit it in a
    child process that reports its own peak RSS: targets are streamed (and decoded), never held whole."""
    images = tmp_path / "big"
    images.mkdir()
    sizes = {"boot": 64 << 20, "root": 2048 << 20, "hash": 128 << 20}
    paths = {kind: write_stored_lz4(images / f"big-1.2.0-{kind}.img.lz4", size) for kind, size in sizes.items()}
    published = run("publish", "--config", str(qs.config), "--variant", VARIANT, "--arch", ARCH, "--version",
                    "1.2.0", "--boot-image", str(paths["boot"]), "--root-image", str(paths["root"]),
                    "--hash-image", str(paths["hash"]), *release_config(images, "1.2.0"))
    assert published.code == 0, published.err
    measured = run_measured("audit", "--metadata-url", str(qs.meta), "--targets-url", str(qs.targets), "--root",
                            str(qs.root))
    assert measured.code == 0, measured.out[-2000:] + measured.err[-2000:]
    checked = int(measured.out.rsplit("(", 1)[1].split()[0])
    assert checked > sum(sizes.values()) > 2 << 30
    assert measured.peak_mib < 150, measured.peak_mib
