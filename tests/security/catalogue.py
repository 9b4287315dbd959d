"""The TUF attack catalogue as data: one :class:`Scenario` per attack, each with what the attacker
does (its ``setup``, applied to a served quickstart repository and a node), the words of the node's
one-line error (or a recovery), and what the auditor says about the repository as stored.

``tests/security/test_catalogue.py`` runs every entry with the same checks; ``README.md`` in this
directory lists them (a test keeps the two in step).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lz4.frame

from repo_tool.signing.keyfiles import generate_private, write_private_key
from repo_tool.trust.verifier import resolve_name
from tests.repohelpers import sign_file, signer
from tests.security.conftest import MIB, Victim
from tests.security.harness import Rule, expired, in_flight_bound, load_json

RECOVERED = "recovered"
PAD = 2 * MIB + 17  # bytes appended to make a file "endless" for its limit


@dataclass
class Attack:
    """What a setup hands back to the test: how to run the node and where to look afterwards."""

    args: tuple[str, ...] = ("update", "-n")
    audit_targets: Path | None = None  # audit this targets dir (a mirror) instead of the repo's
    audit_root: Path | None = None  # the operator's newest root, when it is not the node's
    outside: list[Path] = field(default_factory=list)  # paths that must not exist afterwards
    after: Callable[[], None] | None = None  # extra checks once the node has run


@dataclass(frozen=True)
class Scenario:
    id: str
    attack: str  # the attack class
    does: str  # what the attacker does
    node: tuple[str, ...] | str  # words of the node's one-line error, or RECOVERED
    audit: tuple[str, ...] | str  # words of an auditor error finding, or "n/a (why)": the stored repo audits clean
    setup: Callable[[Victim], Attack | None]
    state: bool = False  # the node runs with --state-dir (updog keeps no state across runs)
    stateless: str = ""  # for state scenarios: what updog (no --state-dir) does, checked by the test
    short_timeouts: bool = False  # the node's transport gets 1 s timeouts (keeps the test short)

    @property
    def test_name(self) -> str:
        return f"test_attack[{self.id}]"


# --- helpers used by the setups ------------------------------------------------------------------


def images(v: Victim, version: str = "1.1.0") -> dict[str, str]:
    update = next(u for u in v.qs.manifest()["updates"] if u["version"] == version)
    found: dict[str, str] = update["images"]
    return found


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def pad(path: Path, count: int = PAD) -> None:
    with path.open("ab") as handle:
        handle.write(b" " * count)


def newest_role_file(v: Victim, role: str) -> Path:
    if role == "timestamp":
        return v.qs.meta / "timestamp.json"
    parent = "timestamp" if role == "snapshot" else "snapshot"
    version = v.qs.newest(parent)["signed"]["meta"][f"{role}.json"]["version"]
    return v.qs.meta / f"{version}.{role}.json"


def newest_root(v: Victim) -> Path:
    return max(v.qs.meta.glob("*.root.json"), key=lambda p: int(p.name.split(".")[0]))


def new_key(v: Victim, name: str) -> Path:
    path = v.dir / f"{name}.pem"
    write_private_key(path, generate_private("ed25519"))
    return path


def next_root(v: Victim, edit: Callable[[dict[str, Any]], None], signed_by: list[Path]) -> tuple[Path, bytes]:
    """The newest root with ``version + 1`` and ``edit`` applied, signed by ``signed_by``."""
    current = load_json(newest_root(v))["signed"]
    current["version"] += 1
    edit(current)
    raw = sign_file(current, [signer(p) for p in signed_by])
    return v.dir / f"{current['version']}.root.json", raw


def keyid(path: Path) -> str:
    return signer(path).keyid


def refresh(v: Victim, *root_roles: Path) -> None:
    """The owner's ``refresh`` (re-sign targets, snapshot, timestamp), publishing new roots."""
    extra = [a for p in root_roles for a in ("--root-role", str(p))]
    done = v.run("refresh", *v.qs.args(*extra))
    assert done.code == 0, done.err


def rotate(v: Victim, role: str, threshold: int | None = None, keep_old: bool = False) -> Path:
    """The owner publishes root N+1 with a new ``role`` key (replacing the old one unless
    ``keep_old``), optionally a new threshold, signed by the root key, and re-signs with the new
    key; returns the new key."""
    key = new_key(v, f"new-{role}")
    old = v.qs.dir / "keys" / f"{role}.pem"

    def edit(signed: dict[str, Any]) -> None:
        entry = signer(key).entry
        signed["keys"][keyid(key)] = entry
        keyids = signed["roles"][role]["keyids"]
        if not keep_old:
            keyids.remove(keyid(old))
            if not any(keyid(old) in r["keyids"] for r in signed["roles"].values()):
                del signed["keys"][keyid(old)]
        keyids.append(keyid(key))
        if threshold is not None:
            signed["roles"][role]["threshold"] = threshold

    path, raw = next_root(v, edit, [v.qs.dir / "keys" / "root.pem"])
    path.write_bytes(raw)
    signers = f"[keys/{role}.pem, {key}]" if keep_old else f"[{key}]"
    config = v.qs.config.read_text()
    assert f"{role}: [keys/{role}.pem]" in config
    v.qs.config.write_text(config.replace(f"{role}: [keys/{role}.pem]", f"{role}: {signers}"))
    refresh(v, path)
    return key


def forge_manifest(v: Victim, edit: Callable[[dict[str, Any]], None],
                   targets: Callable[[dict[str, Any]], None] | None = None) -> bytes:
    """Store an edited ``manifest.json`` as ``<sha256>.manifest.json`` and list it in a new targets
    file (with ``targets`` applied too), snapshot and timestamp: a holder of the online keys."""
    manifest = v.qs.manifest()
    edit(manifest)
    raw = json.dumps(manifest, indent=2).encode()
    digest = hashlib.sha256(raw).hexdigest()
    (v.qs.targets / f"{digest}.manifest.json").write_bytes(raw)

    def relist(signed: dict[str, Any]) -> None:
        signed["targets"]["manifest.json"] = {**signed["targets"]["manifest.json"], "length": len(raw),
                                              "hashes": {"sha256": digest}}
        if targets is not None:
            targets(signed)

    v.forger.forge(targets=relist)
    return raw


def node_ok(v: Victim, *args: str, state: bool = True) -> None:
    result = v(*args, state=state)
    assert result.code == 0, result.err


def node_refuses(v: Victim, needle: str, state: bool = True) -> None:
    result = v("check-update", "-n", state=state)
    assert result.code == 1 and needle in result.err, result.err


def set_version(version: int) -> Callable[[dict[str, Any]], None]:
    def mutate(signed: dict[str, Any]) -> None:
        signed["version"] = version

    return mutate


def set_expired(signed: dict[str, Any]) -> None:
    signed["expires"] = expired(time.time_ns())


# --- the setups ----------------------------------------------------------------------------------


def arbitrary_software(v: Victim) -> None:
    flip_byte(v.target_path(images(v)["root"]))


def malicious_mirror(v: Victim) -> Attack:
    mirror = make_mirror(v)
    new, old = images(v)["boot"], images(v, "1.0.0")["boot"]
    # the mirror holds the older release's boot image (validly published) under the new one's name
    (mirror / v.target_path(new).name).write_bytes(v.target_path(old).read_bytes())
    return Attack(audit_targets=mirror)


def make_mirror(v: Victim) -> Path:
    """A copy of the targets, served by the same server under /mirror/, that the node is pointed at."""
    mirror = v.qs.dir / "repo" / "mirror"
    shutil.copytree(v.qs.targets, mirror)
    v.use_targets_url(f"{v.url}/mirror/")
    return mirror


def mirror_stale_manifest(v: Victim) -> Attack:
    mirror = make_mirror(v)
    current = v.target_path("manifest.json").name
    first = load_json(v.qs.meta / "1.targets.json")["signed"]["targets"]["manifest.json"]["hashes"]["sha256"]
    (mirror / current).write_bytes((v.qs.targets / f"{first}.manifest.json").read_bytes())
    return Attack(audit_targets=mirror)


def rollback_timestamp(v: Victim) -> None:
    old = (v.qs.meta / "timestamp.json").read_bytes()
    node_ok(v, "check-update", "-n")
    refresh(v)
    node_ok(v, "check-update", "-n")  # the node now trusts timestamp v3
    (v.qs.meta / "timestamp.json").write_bytes(old)


def rollback_snapshot(v: Victim) -> None:
    node_ok(v, "check-update", "-n")
    refresh(v)
    node_ok(v, "check-update", "-n")  # trusts snapshot v3
    old = load_json(v.qs.meta / "2.snapshot.json")
    raw = (v.qs.meta / "2.snapshot.json").read_bytes()

    def list_old(signed: dict[str, Any]) -> None:
        signed["meta"]["snapshot.json"] = {"length": len(raw), "hashes": {"sha256": hashlib.sha256(raw).hexdigest()},
                                           "version": old["signed"]["version"]}

    v.forger.forge(timestamp=list_old)  # a new timestamp (v4), by the timestamp key, listing snapshot v2


def rollback_targets(v: Victim) -> None:
    node_ok(v, "check-update", "-n")
    refresh(v)
    node_ok(v, "check-update", "-n")  # trusts targets v3
    raw = (v.qs.meta / "2.targets.json").read_bytes()

    def list_old(signed: dict[str, Any]) -> None:
        signed["meta"]["targets.json"] = {"length": len(raw), "hashes": {"sha256": hashlib.sha256(raw).hexdigest()},
                                          "version": 2}

    v.forger.forge(snapshot=list_old)  # snapshot v4 and timestamp v4 listing targets v2


def rollback_root_version(v: Victim) -> None:
    # 2.root.json holds root version 1 (validly signed): a root that goes backwards
    (v.qs.meta / "2.root.json").write_bytes((v.qs.meta / "1.root.json").read_bytes())


def rollback_root_hidden(v: Victim) -> Attack:
    node_ok(v, "check-update", "-n")
    old_key = v.qs.dir / "keys" / "timestamp.pem"
    rotate(v, "timestamp")
    node_ok(v, "check-update", "-n")  # the node has seen root v2 (its state keeps it)
    newest = v.dir / "2.root.json"
    shutil.copy(v.qs.meta / "2.root.json", newest)
    (v.qs.meta / "2.root.json").unlink()  # hidden from the node
    shutil.rmtree(v.dir / "cache")  # the metadata cache is gone (as after a reboot); the state is not
    v.forger.forge(timestamp=set_version(10**6), keys={"timestamp": [signer(old_key)]})
    return Attack(audit_root=newest)


def freeze(role: str) -> Callable[[Victim], None]:
    def setup(v: Victim) -> None:
        v.forger.forge(**{role: set_expired})  # type: ignore[arg-type]

    return setup


def freeze_root(v: Victim) -> None:
    path, raw = next_root(v, set_expired, [v.qs.dir / "keys" / "root.pem"])
    (v.qs.meta / path.name).write_bytes(raw)


def endless_role(role: str) -> Callable[[Victim], None]:
    def setup(v: Victim) -> None:
        if role == "root":
            (v.qs.meta / "2.root.json").write_bytes((v.qs.meta / "1.root.json").read_bytes())
            pad(v.qs.meta / "2.root.json")
        else:
            pad(newest_role_file(v, role))

    return setup


def endless_target(kind: str) -> Callable[[Victim], None]:
    def setup(v: Victim) -> None:
        pad(v.target_path("manifest.json" if kind == "manifest" else images(v)[kind]))

    return setup


def endless_stream(name: Callable[[Victim], str]) -> Callable[[Victim], Attack]:
    def setup(v: Victim) -> Attack:
        assert v.server is not None
        rule = v.server.add(Rule(name(v), "endless"))

        def bounded() -> None:
            assert rule.hits >= 1
            assert v.server is not None
            requests = v.server.requested(rule.name)
            sent = sum(r.sent for r in requests)
            # the client stopped reading near its limit (an endless body that nobody stops runs at
            # GB/s until the test ends): what it read, plus what the kernel held on each connection
            assert sent < 16 * MIB + len(requests) * in_flight_bound(), (sent, len(requests))

        return Attack(after=bounded)

    return setup


def extraneous_migration(v: Victim) -> None:
    forge_manifest(v, lambda m: m["migrations"]["(1.0.0, 1.1.0)"].append("migrate_v1.1.0_extra.lz4"))


def extraneous_delegation(v: Victim) -> Attack:
    def delegate(signed: dict[str, Any]) -> None:
        signed["delegations"] = {"keys": {}, "roles": [
            {"name": "extra", "keyids": [], "threshold": 1, "paths": ["*"], "terminating": False}]}

    v.forger.forge(targets=delegate)

    def not_fetched() -> None:
        assert v.server is not None
        assert not [r for r in v.server.seen if "extra" in r.path], v.server.seen

    return Attack(after=not_fetched)


def mix(role: str) -> Callable[[Victim], None]:
    def setup(v: Victim) -> None:
        refresh(v)
        newest = newest_role_file(v, role)
        version = int(newest.name.split(".")[0])
        newest.write_bytes((v.qs.meta / f"{version - 1}.{role}.json").read_bytes())

    return setup


def ff_recovery(role: str) -> Callable[[Victim], None]:
    """The attacker holding the online keys pushes ``role`` to version 10^6 on the node (its state
    keeps it); the owner takes the repository back and rotates the ``role`` key."""

    def setup(v: Victim) -> None:
        node_ok(v, "check-update", "-n")
        honest = {p.name: p.read_bytes() for p in v.qs.meta.iterdir()}
        v.forger.forge(**{role: set_version(10**6)})  # type: ignore[arg-type]
        node_ok(v, "check-update", "-n")  # fast-forwarded
        for path in v.qs.meta.iterdir():
            if path.name not in honest:
                path.unlink()
        for name, raw in honest.items():
            (v.qs.meta / name).write_bytes(raw)
        node_refuses(v, "rollback attack")  # the honest repository is now "older": the node is stuck
        rotate(v, role)

    return setup


def threshold_two(v: Victim) -> Path:
    return rotate(v, "targets", threshold=2, keep_old=True)


def threshold_not_met(v: Victim) -> None:
    threshold_two(v)
    v.forger.forge(targets=lambda s: None)  # signed by one of the two targets keys


def threshold_duplicate_keyid(v: Victim) -> None:
    threshold_two(v)
    own = v.forger.key("targets").keyid
    v.forger.forge(targets=lambda s: None, keyids={"targets": [own, own.upper()]})


def revoked_key(v: Victim) -> None:
    old_key = v.qs.dir / "keys" / "timestamp.pem"
    rotate(v, "timestamp")
    v.forger.forge(timestamp=set_version(10**6), keys={"timestamp": [signer(old_key)]})


def bad_intermediate_root(v: Victim) -> None:
    new_root_key = new_key(v, "new-root")
    old_id = keyid(v.qs.dir / "keys" / "root.pem")

    def replace_root_key(signed: dict[str, Any]) -> None:
        signed["keys"][keyid(new_root_key)] = signer(new_root_key).entry
        signed["roles"]["root"]["keyids"] = [keyid(new_root_key)]
        del signed["keys"][old_id]

    two, raw = next_root(v, replace_root_key, [new_root_key])  # not signed by root v1's key
    (v.qs.meta / two.name).write_bytes(raw)
    three, raw = next_root(v, lambda s: None, [new_root_key])  # fine relative to v2
    (v.qs.meta / three.name).write_bytes(raw)


TRAVERSAL = "../../../../../../../../../../tmp/repo-tool-traversal-{}"


def path_traversal(v: Victim) -> Attack:
    name = TRAVERSAL.format(v.dir.name)
    data = b"#!/bin/sh\necho owned\n"
    digest = hashlib.sha256(data).hexdigest()
    stored = v.qs.targets / f"{digest}.{resolve_name(name)}"  # where the node's URL for it points
    stored.parent.mkdir(parents=True)
    stored.write_bytes(data)

    def add(signed: dict[str, Any]) -> None:
        signed["targets"][name] = {"length": len(data), "hashes": {"sha256": digest}}

    forge_manifest(v, lambda m: m["migrations"]["(1.0.0, 1.1.0)"].append(name), targets=add)
    migrations = v.dir / "migrations"
    return Attack(outside=[Path("/tmp") / f"repo-tool-traversal-{v.dir.name}",
                           migrations.parent / "tmp", (migrations / name).resolve()])


def unlisted_target(v: Victim) -> None:
    def edit(manifest: dict[str, Any]) -> None:
        update = next(u for u in manifest["updates"] if u["version"] == "1.1.0")
        update["images"]["root"] = "not-a-target-root.ext4.lz4"

    forge_manifest(v, edit)


def partition_too_small(v: Victim) -> None:
    v.disk.unlink()
    v.make_disk(root_size=4 * MIB)


def image_rule(kind: str, rule: Callable[[str], Rule]) -> Callable[[Victim], Attack]:
    def setup(v: Victim) -> Attack:
        assert v.server is not None
        added = v.server.add(rule(v.target_path(images(v)[kind]).name))

        def hit() -> None:
            assert added.hits >= 1

        return Attack(after=hit)

    return setup


def drop_resume(v: Victim) -> Attack:
    assert v.server is not None
    name = v.target_path(images(v)["root"]).name
    v.server.add(Rule(name, "drop", after=100_000, times=1))

    def resumed() -> None:
        assert v.server is not None
        assert [r.range for r in v.server.requested(name)] == [None, "bytes=100000-"]

    return Attack(after=resumed)


def drop_resume_tampered(v: Victim) -> Attack:
    """The resumed bytes differ in one byte that still decodes as LZ4 (a literal), so only the
    SHA-256 over the whole stream can tell."""
    assert v.server is not None
    path = v.target_path(images(v)["root"])
    data = path.read_bytes()
    clean = lz4.frame.decompress(data)
    for at in range(150_000, len(data)):
        changed = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]
        with contextlib.suppress(RuntimeError):
            if len(lz4.frame.decompress(changed)) == len(clean):
                break
    else:
        raise AssertionError("no byte of the image is a literal")
    v.server.add(Rule(path.name, "drop", after=100_000, times=1))
    rule = v.server.add(Rule(path.name, "tamper-resume", after=at))

    def resumed() -> None:
        assert rule.hits == 1

    return Attack(after=resumed)


def length_lie(v: Victim) -> None:
    name = images(v)["boot"]

    def longer(signed: dict[str, Any]) -> None:
        signed["targets"][name]["length"] += 4096

    v.forger.forge(targets=longer)


# --- the catalogue -------------------------------------------------------------------------------

STATELESS_ACCEPTS = "updog (no --state-dir) accepts it: it keeps no state across runs"
TRANSPORT = "n/a (transport: the stored repository is intact)"
CLIENT_STATE = "n/a (client state: the stored files form a valid older repository)"

CATALOGUE: tuple[Scenario, ...] = (
    Scenario("arbitrary-software", "arbitrary software installation",
             "flips one byte of the 1.1.0 root image object on the server",
             ("root image", "SHA-256 mismatch"), ("targets", "does not match the listed"), arbitrary_software),
    Scenario("malicious-mirror", "malicious mirror",
             "a targets mirror serves the 1.0.0 boot image at the 1.1.0 boot image's `<sha256>.<name>`",
             ("/mirror/", "boot.ext4.lz4", "the answer exceeds the", "-byte limit"),
             ("targets", "boot.ext4.lz4", "larger than the", "-byte limit"),
             malicious_mirror),
    Scenario("mirror-stale-manifest", "malicious mirror (freeze)",
             "a targets mirror serves the first release's manifest.json at the current manifest's name",
             ("target manifest.json", "/mirror/", "bytes,", "listed"), ("targets", "manifest.json", "bytes,", "listed"),
             mirror_stale_manifest),
    Scenario("rollback-timestamp", "rollback", "replays the previous, validly signed timestamp.json (v2 after v3)",
             ("timestamp.json", "version 2 is older than the trusted version 3"), CLIENT_STATE, rollback_timestamp,
             state=True, stateless=STATELESS_ACCEPTS),
    Scenario("rollback-snapshot", "rollback",
             "with the timestamp key: a new timestamp (v4) listing the previous snapshot (v2)",
             ("lists an older snapshot than the trusted timestamp",), CLIENT_STATE, rollback_snapshot,
             state=True, stateless=STATELESS_ACCEPTS),
    Scenario("rollback-targets", "rollback",
             "with the snapshot and timestamp keys: a new snapshot (v4) listing the previous targets (v2)",
             ("snapshot version 4 lists targets.json version 2, older than the trusted 3",), CLIENT_STATE,
             rollback_targets, state=True, stateless=STATELESS_ACCEPTS),
    Scenario("rollback-root-version", "rollback", "serves `2.root.json` holding the validly signed root version 1",
             ("2.root.json", "holds version 1, expected 2"), ("root-chain", "holds version 1, expected 2"),
             rollback_root_version),
    Scenario("rollback-root-hidden", "rollback",
             "after a timestamp key rotation (root v2) the node has seen, hides `2.root.json` and signs a fresh "
             "timestamp with the rotated-out key; the node's metadata cache is gone (reboot), its state is not",
             ("root version 1 is older than the trusted root version 2",),
             ("root-chain", "below the trusted root's 2"), rollback_root_hidden, state=True,
             stateless="updog (no --state-dir, no cache) cannot know root v2 existed: it accepts"),
    Scenario("freeze-timestamp", "indefinite freeze", "serves a validly signed timestamp.json that has expired",
             ("timestamp.json", "timestamp metadata expired"), ("expiry", "timestamp expired at"),
             freeze("timestamp")),
    Scenario("freeze-snapshot", "indefinite freeze", "serves an expired snapshot (listed by a fresh timestamp)",
             ("snapshot.json", "snapshot metadata expired"), ("expiry", "snapshot expired at"), freeze("snapshot")),
    Scenario("freeze-targets", "indefinite freeze", "serves an expired targets (listed by fresh snapshot, timestamp)",
             ("targets.json", "targets metadata expired"), ("expiry", "targets expired at"), freeze("targets")),
    Scenario("freeze-root", "indefinite freeze", "serves `2.root.json`, validly signed but expired",
             ("2.root.json", "root metadata expired"), ("expiry", "root expired at"), freeze_root),
    Scenario("endless-root", "endless data", "serves `2.root.json` padded past 2 MiB",
             ("2.root.json", "exceeds the 1048576-byte limit"),
             ("root-chain", "2.root.json", "larger than the 1048576-byte limit"),
             endless_role("root")),
    Scenario("endless-timestamp", "endless data", "serves timestamp.json padded past 2 MiB",
             ("timestamp.json", "exceeds the 1048576-byte limit"),
             ("load", "timestamp.json", "larger than the 1048576-byte limit"),
             endless_role("timestamp")),
    Scenario("endless-snapshot", "endless data", "serves the snapshot padded past its listed length",
             ("2.snapshot.json", "the answer exceeds the", "-byte limit"),
             ("load", "2.snapshot.json", "larger than the", "-byte limit"), endless_role("snapshot")),
    Scenario("endless-targets", "endless data", "serves the targets padded past its listed length",
             ("2.targets.json", "the answer exceeds the", "-byte limit"),
             ("load", "2.targets.json", "larger than the", "-byte limit"), endless_role("targets")),
    Scenario("endless-manifest", "endless data", "serves manifest.json padded past its listed length",
             ("manifest.json", "the answer exceeds the", "-byte limit"),
             ("targets", "manifest.json", "larger than the", "-byte limit"), endless_target("manifest")),
    Scenario("endless-image", "endless data", "serves the 1.1.0 root image padded past its listed length",
             ("root.ext4.lz4", "the answer exceeds the", "-byte limit"),
             ("targets", "root.ext4.lz4", "larger than the", "-byte limit"),
             endless_target("root")),
    Scenario("endless-stream-timestamp", "endless data", "answers timestamp.json with an endless stream",
             ("timestamp.json", "exceeds the 1048576-byte limit"), TRANSPORT,
             endless_stream(lambda v: "timestamp.json")),
    Scenario("endless-stream-image", "endless data", "answers the root image request with an endless stream",
             ("root.ext4.lz4", "the answer exceeds the", "-byte limit"), TRANSPORT,
             endless_stream(lambda v: v.target_path(images(v)["root"]).name)),
    Scenario("extraneous-migration", "extraneous dependencies",
             "a signed manifest.json lists a migration `migrate_v1.1.0_extra.lz4` that no targets file lists",
             ("target 'migrate_v1.1.0_extra.lz4' is not listed",),
             ("manifest", "migration 'migrate_v1.1.0_extra.lz4' is not a listed target"), extraneous_migration),
    Scenario("extraneous-delegation", "extraneous dependencies",
             "a signed targets file delegates to a role `extra` that the snapshot does not list",
             ("does not list delegated role 'extra'",), ("load", "does not list delegated role 'extra'"),
             extraneous_delegation),
    Scenario("mix-snapshot", "mix-and-match", "serves the previous publish's snapshot under the newest name",
             ("3.snapshot.json", "sha256 does not match"), ("load", "3.snapshot.json", "does not match"),
             mix("snapshot")),
    Scenario("mix-targets", "mix-and-match", "serves the previous publish's targets under the newest name",
             ("3.targets.json", "sha256 does not match"), ("load", "3.targets.json", "does not match"),
             mix("targets")),
    Scenario("ff-timestamp-recovery", "fast-forward recovery",
             "with the timestamp key, pushes timestamp v1000000 to the node; the owner then rotates the "
             "timestamp key (root v2)", RECOVERED, "n/a (the recovered repository audits clean)",
             ff_recovery("timestamp"), state=True,
             stateless="updog keeps no state: never fast-forwarded, nothing to recover"),
    Scenario("ff-snapshot-recovery", "fast-forward recovery",
             "with the snapshot and timestamp keys, pushes snapshot v1000000 to the node; the owner then rotates "
             "the snapshot key only (root v2)", RECOVERED, "n/a (the recovered repository audits clean)",
             ff_recovery("snapshot"), state=True,
             stateless="updog keeps no state: never fast-forwarded, nothing to recover"),
    Scenario("threshold-not-met", "threshold", "targets needs 2 signatures (root v2); serves targets signed by 1",
             ("signature threshold not met for role targets: 1 valid of 2 required",),
             ("signatures", "threshold not met for targets: 1 valid signature(s) of 2 required"), threshold_not_met),
    Scenario("threshold-duplicate-keyid", "threshold",
             "targets needs 2 signatures; serves one signature twice, under its key ID in lower and upper case",
             ("signature threshold not met for role targets: 1 valid of 2 required",),
             ("signatures", "threshold not met for targets: 1 valid signature(s) of 2 required"),
             threshold_duplicate_keyid),
    Scenario("revoked-key", "revoked key", "root v2 replaces the timestamp key; the old key signs a new timestamp",
             ("timestamp.json", "threshold not met for role timestamp: 0 valid of 1 required"),
             ("signatures", "threshold not met for timestamp: 0 valid"), revoked_key),
    Scenario("bad-intermediate-root", "root rotation",
             "publishes `2.root.json` signed only by a new root key (not by root v1's) and a good `3.root.json`",
             ("2.root.json", "signed by root v1", "threshold not met for role root"),
             ("root-chain", "2.root.json", "threshold not met for role root"), bad_intermediate_root),
    Scenario("path-traversal", "path traversal",
             "a signed target `../../../../../../../../../../tmp/repo-tool-traversal-…`, listed as a migration "
             "by a signed manifest.json", ("migration", "not a plain file name"),
             ("manifest", "not a plain file name"), path_traversal),
    Scenario("unlisted-target", "unlisted target", "a signed manifest.json names a root image no targets file lists",
             ("'not-a-target-root.ext4.lz4' is not listed",),
             ("manifest", "root image 'not-a-target-root.ext4.lz4' is not a listed target"), unlisted_target),
    Scenario("partition-too-small", "resource exhaustion", "an honest 8 MiB root image, a 4 MiB root partition",
             ("partition too small",), "n/a (node disk: the stored repository is intact)", partition_too_small),
    Scenario("stall-image", "slow retrieval", "sends 64 KiB of the root image, then nothing, on every try",
             ("root.ext4.lz4", "timed out (tried 4 times)"), TRANSPORT,
             image_rule("root", lambda name: Rule(name, "stall", after=65536)), short_timeouts=True),
    Scenario("drop-resume", "interrupted transfer", "drops the connection once, 100 kB into the root image",
             RECOVERED, TRANSPORT, drop_resume),
    Scenario("drop-resume-tampered", "interrupted transfer",
             "drops the connection 100 kB into the root image, then answers the Range resume with one byte "
             "altered (one that still decodes as LZ4)",
             ("root image", "SHA-256 mismatch"), TRANSPORT, drop_resume_tampered),
    Scenario("drop-always", "interrupted transfer", "drops the connection 10 kB into every root image answer",
             ("root.ext4.lz4", "truncated answer", "(tried 4 times)"), TRANSPORT,
             image_rule("root", lambda name: Rule(name, "drop", after=10_000))),
    Scenario("length-lie", "wrong length", "a signed targets file lists the boot image 4096 bytes longer than it is",
             ("boot image", "expected", "bytes, got"), ("targets", "bytes,", "listed"), length_lie),
)

BY_ID = {s.id: s for s in CATALOGUE}
assert len(BY_ID) == len(CATALOGUE), "duplicate scenario ids"


def describe_node(s: Scenario) -> str:
    if s.node == RECOVERED:
        return "recovered: the update is applied"
    return "refused: " + " … ".join(f'"{w}"' for w in s.node)


def describe_audit(s: Scenario) -> str:
    if isinstance(s.audit, str):
        return s.audit
    return "exit 1: " + " … ".join(f'"{w}"' for w in s.audit)

