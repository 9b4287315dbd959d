"""manifest.json: reading like updog, writing like updata, editing like pubsys (SPEC §5, §11.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repo_tool.core.instant import CivilTime, format_instant, parse_instant
from repo_tool.core.manifest import EMPTY_MANIFEST_BYTES, Images, Manifest
from repo_tool.core.release import parse_release
from repo_tool.core.semver import Version
from repo_tool.core.waves import parse_policy
from repo_tool.errors import ConfigError, ManifestError, WavesUnorderedError

from .conftest import BOTTLEROCKET, MANIFESTS, UPDOG_TESTS, WAVES_CORE_KIT

GOOD_MANIFESTS = sorted(
    p for p in MANIFESTS.rglob("*.json") if p.name not in ("bad-bound.json", "duplicate-bound.json")
)
V = Version.parse


def images(tag: str) -> Images:
    return Images(boot=f"{tag}-boot.ext4.lz4", root=f"{tag}-root.ext4.lz4", hash=f"{tag}-root.verity.lz4")


def test_every_upstream_manifest_is_covered() -> None:
    assert len(GOOD_MANIFESTS) == 9  # example, example_2, example_3 x2, multiple x2, regret, single_wave, migrations


@pytest.mark.parametrize("path", GOOD_MANIFESTS, ids=lambda p: p.name)
def test_upstream_manifests_parse_and_reach_a_fixpoint(path: Path) -> None:
    manifest = Manifest.from_bytes(path.read_bytes())
    written = manifest.to_bytes()
    assert not written.endswith(b"\n")
    again = Manifest.from_bytes(written)
    assert again == manifest
    assert again.to_bytes() == written
    # the data survives: same updates, same migrations, unknown members dropped
    source = json.loads(path.read_bytes())
    out = json.loads(written)
    assert [u["version"] for u in out["updates"]] == [u["version"] for u in source["updates"]]
    assert all(list(u) == ["variant", "arch", "version", "max_version", "waves", "images"] for u in out["updates"])
    assert len(out["migrations"]) == len(source["migrations"])
    for u_out, u_in in zip(out["updates"], source["updates"]):
        assert [parse_instant(t) for t in u_out["waves"].values()] == [
            parse_instant(u_in["waves"][k]) for k in sorted(u_in["waves"], key=int)
        ]


def test_example_json_is_written_exactly_as_updata_would() -> None:
    manifest = Manifest.from_bytes((UPDOG_TESTS / "example.json").read_bytes())
    expected = (
        '{\n  "updates": [\n    {\n      "variant": "bottlerocket-aws-eks",\n      "arch": "x86_64",\n'
        '      "version": "1.13.0",\n      "max_version": "1.20.0",\n      "waves": {\n'
        '        "0": "2019-10-06T15:00:00Z",\n        "500": "2019-10-07T15:00:00Z",\n'
        '        "1024": "2019-10-08T15:00:00Z"\n      },\n      "images": {\n'
        '        "boot": "stuff-boot-bottlerocket-aws-eks-1.13-m1.20191006.img",\n'
        '        "root": "stuff-boot-bottlerocket-aws-eks-1.13-m1.20191006.img",\n'
        '        "hash": "stuff-boot-bottlerocket-aws-eks-1.13-m1.20191006.img"\n      }\n    }\n  ],\n'
        '  "migrations": {\n    "(1.11.0, 1.12.0)": [\n      "migrate_1.12.0_foo"\n    ],\n'
        '    "(1.12.0, 1.13.0)": [\n      "migrate_1.13.0_foo",\n      "migrate_1.13.0_bar"\n    ]\n  }\n}'
    )
    assert manifest.to_bytes().decode() == expected


def test_unpadded_wave_times_are_normalised() -> None:  # §11.5 #2
    manifest = Manifest.from_bytes((MANIFESTS / "update_metadata-tests" / "migrations.json").read_bytes())
    text = manifest.to_bytes().decode()
    assert '"0": "2019-08-06T15:00:00Z"' in text
    assert "2019-8-06" not in text


@pytest.mark.parametrize(
    ("name", "message"),
    [("bad-bound.json", r"updates\[0\]\.waves: Bad bound field: 234ab32"),
     ("duplicate-bound.json", r"updates\[0\]\.waves: Duplicate key ID: 0")],
)
def test_upstream_bad_manifests_fail_with_upstream_errors(name: str, message: str) -> None:  # §11.5 #1
    with pytest.raises(ManifestError, match=message):
        Manifest.from_bytes((UPDOG_TESTS / name).read_bytes())


def test_init_bytes() -> None:  # §11.5 #5
    assert Manifest().to_bytes() == EMPTY_MANIFEST_BYTES == b'{\n  "updates": [],\n  "migrations": {}\n}'


def test_migration_keys_written_in_string_order() -> None:  # §11.5 #4
    manifest = Manifest()
    manifest.set_migrations({(V("1.2.0"), V("1.3.0")): ["b"], (V("1.10.0"), V("1.11.0")): ["a"]})
    text = manifest.to_bytes().decode()
    assert text.index('"(1.10.0, 1.11.0)"') < text.index('"(1.2.0, 1.3.0)"')


def test_migration_key_spellings() -> None:  # §11.5 #6
    manifest = Manifest.from_bytes(b'{"updates": [], "migrations": {"(1.0.0,1.1.0)": [], "x(1.1.0,   1.2.0)y": ["m"]}}')
    assert list(json.loads(manifest.to_bytes())["migrations"]) == ["(1.0.0, 1.1.0)", "(1.1.0, 1.2.0)"]
    with pytest.raises(ManifestError, match=r"Could not parse OS versions: v1\.0\.0, 1\.1\.0"):
        Manifest.from_bytes(b'{"updates": [], "migrations": {"(v1.0.0, 1.1.0)": []}}')
    with pytest.raises(ManifestError, match=r"Could not parse OS versions: 1\.0\.0 -> 1\.1\.0"):
        Manifest.from_bytes(b'{"updates": [], "migrations": {"1.0.0 -> 1.1.0": []}}')
    with pytest.raises(ManifestError, match=r"Duplicate version key: \(1\.0\.0,1\.1\.0\)"):
        Manifest.from_bytes(b'{"updates": [], "migrations": {"(1.0.0, 1.1.0)": [], "(1.0.0,1.1.0)": []}}')


WAVE_KEY_CASES = [
    ('"+5"', 5, None),
    ('"00"', 0, None),
    ('"4294967295"', 4294967295, None),
    ('"4294967296"', None, "Bad bound field: 4294967296"),
    ('"-1"', None, "Bad bound field: -1"),
    ('" 1"', None, "Bad bound field:  1"),
    ('""', None, "Bad bound field: "),
]


@pytest.mark.parametrize(("key", "value", "error"), WAVE_KEY_CASES)
def test_wave_keys_parse_like_rust_u32(key: str, value: int | None, error: str | None) -> None:
    doc = ('{"updates": [{"variant": "v", "arch": "x86_64", "version": "1.0.0", "max_version": "1.0.0", '
           f'"waves": {{{key}: "2020-01-01T00:00:00Z"}}, "images": {{"boot": "b", "root": "r", "hash": "h"}}}}], '
           '"migrations": {}}')
    if error is None:
        assert list(Manifest.from_bytes(doc).updates[0].waves) == [value]
    else:
        with pytest.raises(ManifestError, match=error.replace("+", r"\+")):
            Manifest.from_bytes(doc)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("[]", "manifest: expected an object"),
        ("5", "manifest: expected an object, found number 5"),
        ("{}", "missing field `updates`"),
        ('{"updates": []}', "missing field `migrations`"),
        ('{"updates": [], "updates": [], "migrations": {}}', "duplicate field `updates`"),
        ('{"updates": {}, "migrations": {}}', "updates: expected an array"),
        ('{"updates": [{}], "migrations": {}}', r"updates\[0\]: missing field `variant`"),
        ('{"updates": [], "migrations": {"(1.0.0, 1.1.0)": "m"}}', "expected an array of target names"),
        ('{"updates": [], "migrations": {}} x', "invalid JSON"),
        ('{"updates": [], "migrations": {}, "n": NaN}', "invalid JSON"),
        ('{"updates": ["\\ud800"], "migrations": {}}', "lone surrogate"),
        ("\ufeff{}", "byte order mark"),
    ],
)
def test_malformed_manifests(doc: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        Manifest.from_bytes(doc.encode())


def test_non_utf8_is_refused() -> None:
    with pytest.raises(ManifestError, match="not valid UTF-8"):
        Manifest.from_bytes(b'{"updates": [], "migrations": {"\xff": []}}')


def test_bad_field_types_and_versions_name_the_field() -> None:
    base = json.loads((UPDOG_TESTS / "example.json").read_bytes())
    base["updates"][0]["max_version"] = "1.20"
    with pytest.raises(ManifestError, match=r"updates\[0\]\.max_version: invalid version '1\.20'"):
        Manifest.from_bytes(json.dumps(base))
    base["updates"][0]["max_version"] = 120
    with pytest.raises(ManifestError, match=r"updates\[0\]\.max_version: expected a string, found number 120"):
        Manifest.from_bytes(json.dumps(base))
    base["updates"][0]["max_version"] = "1.20.0"
    base["updates"][0]["waves"]["0"] = "yesterday"
    with pytest.raises(ManifestError, match=r"updates\[0\]\.waves\['0'\]: invalid RFC 3339 time 'yesterday'"):
        Manifest.from_bytes(json.dumps(base))


# --- editing (SPEC §5.8) ----------------------------------------------------


def test_add_update_max_version_rule_follows_upstream() -> None:
    """updata's own test: versions 1.2.3, 1.2.5, 1.2.4 with max 1.2.3, 1.2.3, 1.2.4 end all at 1.2.4."""
    manifest = Manifest()
    for version, max_version in (("1.2.3", "1.2.3"), ("1.2.5", "1.2.3"), ("1.2.4", "1.2.4")):
        manifest.add_update(V(version), V(max_version), "x86_64", "yum", images(version))
    assert {str(u.max_version) for u in manifest.updates} == {"1.2.4"}
    assert all(u.waves == {} for u in manifest.updates)


def test_add_update_default_max_version_uses_first_entry_whatever_its_variant() -> None:
    manifest = Manifest()
    assert manifest.add_update(V("1.0.0"), None, "x86_64", "aws-dev", images("a")) == []
    assert manifest.updates[0].max_version == V("1.0.0")
    warnings = manifest.add_update(V("0.9.0"), None, "aarch64", "aws-ecs-1", images("b"))
    assert manifest.updates[1].max_version == V("1.0.0")  # max(0.9.0, updates[0].max_version)
    assert len(warnings) == 1 and "aws-dev x86_64" in warnings[0]
    manifest.add_update(V("1.1.0"), None, "x86_64", "aws-dev", images("c"))
    assert [str(u.max_version) for u in manifest.updates] == ["1.1.0", "1.0.0", "1.1.0"]


def test_add_update_refuses_exact_duplicate() -> None:
    manifest = Manifest()
    manifest.add_update(V("1.0.0"), None, "x86_64", "aws-dev", images("a"))
    with pytest.raises(ManifestError, match="already exists"):
        manifest.add_update(V("1.0.0"), None, "x86_64", "aws-dev", images("a"))
    manifest.add_update(V("1.0.0+build"), None, "x86_64", "aws-dev", images("a"))  # build metadata differs


def test_update_max_version_filters() -> None:
    manifest = Manifest()
    manifest.add_update(V("1.0.0"), None, "x86_64", "a", images("1"))
    manifest.add_update(V("1.0.0"), None, "aarch64", "a", images("2"))
    manifest.add_update(V("1.0.0"), None, "x86_64", "b", images("3"))
    assert manifest.update_max_version(V("2.0.0"), arch="x86_64") == 2
    assert manifest.update_max_version(V("3.0.0"), variant="a", arch="aarch64") == 1
    assert [str(u.max_version) for u in manifest.updates] == ["2.0.0", "3.0.0", "2.0.0"]
    assert manifest.update_max_version(V("4.0.0")) == 3


def test_remove_update_keeps_max_version_and_warns() -> None:
    manifest = Manifest()
    manifest.add_update(V("1.0.0"), None, "x86_64", "a", images("1"))
    manifest.add_update(V("1.1.0"), None, "x86_64", "a", images("2"))
    warnings = manifest.remove_update("a", "x86_64", V("1.1.0"))
    assert [str(u.version) for u in manifest.updates] == ["1.0.0"]
    assert manifest.updates[0].max_version == V("1.1.0")
    assert "1.1.0" in warnings[0]
    # no match: upstream silently does nothing; here a warning says so
    assert manifest.remove_update("a", "x86_64", V("1.1.0")) == [
        "no update for a x86_64 1.1.0 in the manifest; nothing removed"]
    assert len(manifest.updates) == 1


def test_set_waves_matches_and_validates() -> None:
    policy = parse_policy((WAVES_CORE_KIT / "default-waves.toml").read_text())
    manifest = Manifest.from_bytes((UPDOG_TESTS / "single_wave.json").read_bytes())
    start = parse_instant("2025-04-03T23:08:37.864228309Z")
    assert manifest.set_waves("bottlerocket-aws-eks", "x86_64", V("1.13.0"), start, policy) == []
    assert list(manifest.updates[0].waves) == [0, 20, 102, 307, 819, 1228, 1843]
    with pytest.raises(ManifestError, match=r"no update for bottlerocket-aws-eks x86_64 9\.9\.9"):
        manifest.set_waves("bottlerocket-aws-eks", "x86_64", V("9.9.9"), start, policy)


def test_set_waves_validates_every_update() -> None:
    """Upstream validates the whole manifest after set_waves, not only the edited update."""
    manifest = Manifest()
    manifest.add_update(V("1.0.0"), None, "x86_64", "a", images("1"))
    manifest.add_update(V("1.1.0"), None, "x86_64", "a", images("2"))
    manifest.updates[0].waves = {0: CivilTime(2020, 1, 2).instant(), 100: CivilTime(2020, 1, 1).instant()}
    policy = parse_policy((WAVES_CORE_KIT / "ohno.toml").read_text())
    with pytest.raises(WavesUnorderedError, match=r'^updates\[0\] \(a x86_64 1\.0\.0\): waves: "100" '
                                                  r'\(2020-01-01T00:00:00Z\) does not start after "0"'):
        manifest.set_waves("a", "x86_64", V("1.1.0"), CivilTime(2025, 1, 1).instant(), policy)


def test_set_waves_warns_on_several_matches() -> None:
    manifest = Manifest.from_bytes(
        b'{"updates": [' + b",".join([_update_json(b"1.0.0")] * 2) + b'], "migrations": {}}'
    )
    policy = parse_policy((WAVES_CORE_KIT / "ohno.toml").read_text())
    warnings = manifest.set_waves("v", "x86_64", V("1.0.0"), CivilTime(2025, 1, 1).instant(), policy)
    assert "2 updates match" in warnings[0]


def _update_json(version: bytes) -> bytes:
    return (b'{"variant": "v", "arch": "x86_64", "version": "' + version + b'", "max_version": "' + version
            + b'", "waves": {}, "images": {"boot": "b", "root": "r", "hash": "h"}}')


def test_set_migrations_from_real_release_toml() -> None:
    release = parse_release((BOTTLEROCKET / "release" / "Release.toml").read_text())
    assert str(release.version) == "1.26.1"
    assert len(release.migrations) == 82
    manifest = Manifest()
    manifest.set_migrations(release.migrations)
    keys = list(json.loads(manifest.to_bytes())["migrations"])
    assert keys == sorted(keys) and len(keys) == 82
    assert "(0.4.0, 0.4.1)" in keys
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


def test_set_migrations_rejects_backward_keys() -> None:  # Decision 4
    manifest = Manifest()
    with pytest.raises(ManifestError, match=r"'\(1\.1\.0, 1\.0\.0\)' does not go forward"):
        manifest.set_migrations({(V("1.1.0"), V("1.0.0")): []})
    with pytest.raises(ManifestError, match="does not go forward"):
        manifest.set_migrations({(V("1.1.0"), V("1.1.0")): []})
    # but such keys are accepted on read, and reported by validate
    read = Manifest.from_bytes(b'{"updates": [], "migrations": {"(1.1.0, 1.0.0)": []}}')
    with pytest.raises(ManifestError, match="does not go forward"):
        read.validate()


def test_release_toml_errors() -> None:
    with pytest.raises(ConfigError, match="missing key 'migrations'"):
        parse_release('version = "1.0.0"')
    with pytest.raises(ConfigError, match=r"version: invalid version '1\.0'"):
        parse_release('version = "1.0"\n[migrations]\n')
    with pytest.raises(ConfigError, match="Duplicate version key"):
        parse_release('version = "1.0.0"\n[migrations]\n"(1.0.0, 1.1.0)" = []\n"(1.0.0,1.1.0)" = []\n')
    with pytest.raises(ConfigError, match="invalid TOML"):
        parse_release("version = ")


def test_target_names_lists_images_and_migrations_once() -> None:
    manifest = Manifest.from_bytes((UPDOG_TESTS / "example.json").read_bytes())
    assert manifest.target_names() == [
        "stuff-boot-bottlerocket-aws-eks-1.13-m1.20191006.img", "migrate_1.12.0_foo", "migrate_1.13.0_foo",
        "migrate_1.13.0_bar",
    ]


def test_update_json_matches_updog_shape() -> None:
    manifest = Manifest.from_bytes((UPDOG_TESTS / "example_2.json").read_bytes())
    obj = manifest.updates[0].to_json_obj()
    assert list(obj) == ["variant", "arch", "version", "max_version", "waves", "images"]
    assert list(obj["images"]) == ["boot", "root", "hash"]
    assert obj["waves"]["0"] == format_instant(parse_instant("2019-8-06T15:00:00Z"))


def test_json_nesting_limit_matches_serde_json() -> None:
    """serde_json refuses more than 128 nested arrays/objects; so must we (else nodes fail where we pass)."""
    def doc(depth: int) -> str:
        return '{"updates": [], "migrations": {}, "x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    Manifest.from_bytes(doc(128))
    with pytest.raises(ManifestError, match="recursion limit exceeded"):
        Manifest.from_bytes(doc(129))
    with pytest.raises(ManifestError, match="recursion limit exceeded"):
        Manifest.from_bytes(doc(100_000))
    # brackets inside strings do not count
    Manifest.from_bytes('{"updates": [], "migrations": {}, "x": "' + "[" * 500 + '\\"' + "{" * 500 + '"}')


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", "1" * 5000 + ".0.0", "major too large"),
        ("waves", {"9" * 5000: "2020-01-01T00:00:00Z"}, "Bad bound field"),
        ("waves", {"0": "+" + "1" * 5000 + "-01-01T00:00:00Z"}, "year out of range"),
    ],
)
def test_absurdly_long_numbers_are_clean_errors(field: str, value: object, message: str) -> None:
    doc = json.loads((UPDOG_TESTS / "example.json").read_bytes())
    doc["updates"][0][field] = value
    with pytest.raises(ManifestError, match=message):
        Manifest.from_bytes(json.dumps(doc))


def test_raw_lone_surrogate_in_text_input() -> None:
    with pytest.raises(ManifestError, match="lone surrogate"):
        Manifest.from_bytes('{"updates": [], "migrations": {}, "x": "\ud800"}')
