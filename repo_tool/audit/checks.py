"""Audit one variant/arch repository end to end and report every finding (issue: auditor).

The audit answers "is every byte here signed by the keys we trust, by enough of
them, and will nodes keep accepting it tomorrow?" for repositories written by
this tool or by Bottlerocket's pubsys/tuftool.  Unlike a client load it does not
stop at the first problem: each check records findings (error / warning /
info, with the file concerned) and the audit goes on with whatever can still
be checked.

Checks: the root chain from ``1.root.json`` (every version present, each
signed by a threshold of the previous root and of itself, the trusted root
part of it); the client load as updog does it (:mod:`repo_tool.trust.verifier`, Unsafe
so that expiry becomes findings); per role the keys that signed and those that
did not, signatures by keys not listed; key types and sizes; every rule for
which tough (so a node) refuses a file (SPEC §3.4); every listed target (all,
none or a sample) streamed from ``<sha256>.<name>`` and checked for length and
sha256 with bounded parallelism and memory, the images and migrations the
manifest names also decoded as LZ4 frames as nodes decode them; ``manifest.json``
against the targets and the migration chain (:mod:`repo_tool.core.chain`);
expiries inside a window as warnings, past ones as errors.

Size: about 590 lines, one job (the audit) whose checks share one report; the architecture issue
(16) moves the tough-rule and key checks beside the model they judge.
"""

from __future__ import annotations

import itertools
import json
import threading
import unicodedata
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from repo_tool.core.chain import breaks as chain_breaks
from repo_tool.core.instant import NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_MINUTE, format_instant, parse_instant
from repo_tool.core.lz4frames import ImageError
from repo_tool.core.manifest import Manifest, check_migration_keys
from repo_tool.errors import InstantError, RepoToolError
from repo_tool.hashing import hash_chunks
from repo_tool.localfs import leftover_temp_files
from repo_tool.storage.base import LocalStorage, Storage
from repo_tool.trust.keys import KeyError_, keyid_of, public_key, tough_key_problem
from repo_tool.trust.metadata import SIZE_LIMITS, SPEC_VERSION, RoleFile, duplicate_keyids, parse_role, valid_signers
from repo_tool.trust.tufjson import canonical
from repo_tool.trust.verifier import (
    Repo,
    Target,
    load_repo,
    read_target,
    resolve_name,
    role_file_name,
    verify_next_root,
    verify_trusted_root,
)

Severity = Literal["error", "warning", "info"]
TargetsMode = Literal["all", "none"] | int  # an int: a sample of that many targets
AUDIT_JOBS = 4
CHUNK = 1 << 20
ROOT_GAP_PROBE = 8
MANIFEST_NAME = "manifest.json"  # after a missing N.root.json, how many later versions are probed


@dataclass(frozen=True)
class Finding:
    severity: Severity
    check: str
    file: str
    message: str

    def to_json_obj(self) -> dict[str, str]:
        return {"severity": self.severity, "check": self.check, "file": self.file, "message": self.message}


@dataclass
class Report:
    metadata_url: str
    targets_url: str
    at: int
    window: int
    window_text: str
    findings: list[Finding] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    expiries: list[dict[str, Any]] = field(default_factory=list)
    root_versions: list[int] = field(default_factory=list)
    targets_listed: int = 0
    targets_checked: int = 0
    bytes_checked: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, severity: Severity, check: str, file: str, message: str) -> None:
        with self._lock:
            self.findings.append(Finding(severity, check, file, message))

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def ok(self) -> bool:
        return self.count("error") == 0

    def to_json_obj(self) -> dict[str, Any]:
        order = {"error": 0, "warning": 1, "info": 2}
        return {
            "repository": {"metadata_url": self.metadata_url, "targets_url": self.targets_url},
            "at": format_instant(self.at),
            "window": self.window_text,
            "result": "pass" if self.ok else "fail",
            "summary": {
                "errors": self.count("error"), "warnings": self.count("warning"), "infos": self.count("info"),
                "targets_listed": self.targets_listed, "targets_checked": self.targets_checked,
                "bytes_checked": self.bytes_checked, "root_versions": self.root_versions,
            },
            "roles": self.roles,
            "keys": self.keys,
            "expiries": [{k: v for k, v in e.items() if k != "expires_ns"}
                         for e in sorted(self.expiries, key=lambda e: e["expires_ns"])],
            "findings": [f.to_json_obj() for f in sorted(self.findings, key=lambda f: order[f.severity])],
        }


# --- the audit ---------------------------------------------------------------------------


def audit(meta: Storage, targets: Storage, trusted_root: bytes, trusted_name: str, now: int, window: int,
          window_text: str = "", targets_mode: TargetsMode = "all", jobs: int = AUDIT_JOBS,
          check_manifest: bool = True) -> Report:
    """Run every check; the report holds the findings (``report.ok`` when there is no error)."""
    report = Report(meta.url, targets.url, now, window, window_text or f"{window} ns")
    _leftovers(report, meta, targets)
    chain = _root_chain(meta, trusted_root, trusted_name, report)
    try:
        repo = load_repo(meta, trusted_root, now, safe=False, trusted_root_name=trusted_name)
    except RepoToolError as exc:
        # Said once: a root problem the chain check already named is not repeated here.
        if not (".root.json" in exc.message and any(f.check == "root-chain" for f in report.findings)):
            report.add("error", "load", meta.url, f"a node refuses this repository: {exc.message}")
        fallback = _best_effort(report, meta, chain, now)
        if fallback is None:
            for index, root_file in enumerate(chain):
                _role_row(report, root_file, root_file.signed, meta.describe(f"{root_file.version}.root.json"),
                          chain[index - 1].signed if index else None)
            if chain:
                _keys(report, chain[-1], meta.describe(f"{chain[-1].version}.root.json"))
            return report
        repo = fallback
        report.add("info", "load", meta.url, "the checks below ran on the metadata as stored, which nodes refuse")
    roots = chain if chain and chain[-1].version == repo.root.version else repo.roots
    for index, root_file in enumerate(roots):
        name = meta.describe(f"{root_file.version}.root.json")
        _role_row(report, root_file, root_file.signed, name, roots[index - 1].signed if index else None)
        _tough_rules(report, root_file, name)
    root = repo.root
    _keys(report, root, meta.describe(f"{root.version}.root.json"))
    for role_file, name in repo.role_files():
        _role_row(report, role_file, root.signed, meta.describe(name))
        _tough_rules(report, role_file, meta.describe(name))
        _meta_completeness(report, role_file, meta.describe(name))
    for role_name, role_file in repo.delegated.items():
        report.add("info", "delegations", meta.url, f"delegated role {role_name!r} (version {role_file.version})")
        _duplicate_signatures(report, role_file, meta.describe(role_file_name(role_name, role_file.version,
                                                                              repo.consistent)))
    _expiries(report, repo, meta)
    manifest = _manifest(report, repo, targets, targets_mode != "none") if check_manifest else None
    decoded = set(manifest.target_names()) if manifest is not None else set()
    _targets(report, repo, targets, targets_mode, jobs, decoded)
    return report


def _leftovers(report: Report, *stores: Storage) -> None:
    """Temporary files a killed publisher left in a local repository: harmless (no client asks for
    them, a rerun writes under new names) but worth deleting, which only an operator can know is safe."""
    roots = {store.root: store for store in stores if isinstance(store, LocalStorage)}  # each directory once
    for store in roots.values():
        for name in leftover_temp_files(store.root):
            report.add("warning", "leftovers", store.describe(name),
                       "temporary file of an interrupted write (or of a publish still running); no client "
                       "reads it: delete it when no publisher is running")


def _best_effort(report: Report, meta: Storage, chain: list[RoleFile], now: int) -> Repo | None:
    """The timestamp, snapshot and targets as stored, parsed without the load's checks, so the
    rest of the audit can still look at them; each file that cannot be read is named."""
    if not chain:
        return None
    consistent = chain[-1].signed.get("consistent_snapshot") is True
    files: list[RoleFile] = []
    parent: RoleFile | None = None
    for role in ("timestamp", "snapshot", "targets"):
        if parent is None:
            name = "timestamp.json"
        else:
            meta_map = parent.signed.get("meta")
            entry = meta_map.get(f"{role}.json") if isinstance(meta_map, dict) else None
            version = entry.get("version") if isinstance(entry, dict) else None
            if not isinstance(version, int):
                report.add("error", "load", meta.describe(role_file_name(parent.role, parent.version, consistent)),
                           f"lists no {role}.json version")
                return None
            name = role_file_name(role, version, consistent)
        try:
            raw = meta.read(name, SIZE_LIMITS[role] * 16)
            if raw is None:
                report.add("error", "load", meta.describe(name), "not found")
                return None
            parent = parse_role(raw, role, meta.describe(name))
        except RepoToolError as exc:
            report.add("error", "load", meta.describe(name), exc.message)
            return None
        files.append(parent)
    return Repo(meta, chain, files[0], files[1], files[2], [], now, False)


# --- root chain ----------------------------------------------------------------------------


def _later_roots(meta: Storage, missing: int, report: Report) -> list[int]:
    """Versions above a missing ``N.root.json`` that exist (a gap in the chain)."""
    found = []
    for version in range(missing + 1, missing + 1 + ROOT_GAP_PROBE):
        try:
            if meta.size(f"{version}.root.json") is not None:
                found.append(version)
        except RepoToolError as exc:
            report.add("warning", "root-chain", meta.describe(f"{version}.root.json"),
                       f"cannot tell whether it exists: {exc.message}")
            break
    return found


def _root_chain(meta: Storage, trusted_root: bytes, trusted_name: str, report: Report) -> list[RoleFile]:
    """Every ``N.root.json`` from 1 up, each verified against the one before and itself."""
    chain: list[RoleFile] = []
    try:
        trusted = verify_trusted_root(trusted_root, trusted_name)
    except RepoToolError as exc:
        report.add("error", "root-chain", trusted_name, exc.message)
        return chain
    version = 1
    while True:
        name = f"{version}.root.json"
        try:
            raw = meta.read(name, SIZE_LIMITS["root"])
        except RepoToolError as exc:
            report.add("error", "root-chain", meta.describe(name), exc.message)
            break
        if raw is None:
            later = _later_roots(meta, version, report)
            if later:
                report.add("error", "root-chain", meta.describe(name),
                           f"missing in the middle of the root chain ({later[0]}.root.json exists); clients "
                           f"holding an older root cannot walk past it and the migrator's cache is incomplete")
            elif version <= trusted.version:
                report.add("error", "root-chain", meta.describe(name),
                           f"missing: every root up to the trusted version {trusted.version} must stay published")
            break
        try:
            current = verify_trusted_root(raw, meta.describe(name)) if version == 1 else verify_next_root(
                chain[-1], raw, meta.describe(name))
        except RepoToolError as exc:
            report.add("error", "root-chain", meta.describe(name), exc.message)
            break
        if current.version == trusted.version and raw != trusted_root:
            same = canonical(current.signed) == canonical(trusted.signed)
            report.add("info" if same else "error", "root-chain", meta.describe(name),
                       f"formatted differently from the trusted root {trusted_name} (same signed content)" if same
                       else f"differs from the trusted root {trusted_name} of the same version")
        chain.append(current)
        version += 1
    report.root_versions = [r.version for r in chain]
    if chain and chain[-1].version < trusted.version:
        report.add("error", "root-chain", meta.url,
                   f"the published chain ends at version {chain[-1].version}, below the trusted root's "
                   f"{trusted.version}")
    return chain


# --- roles, keys, signatures -----------------------------------------------------------------


def _role_row(report: Report, role_file: RoleFile, root: dict[str, Any], file: str,
              previous_root: dict[str, Any] | None = None) -> None:
    role = role_file.role
    role_def = root.get("roles", {}).get(role, {}) if isinstance(root.get("roles"), dict) else {}
    listed = [k.lower() for k in role_def.get("keyids", []) if isinstance(k, str)]
    threshold = role_def.get("threshold", 0)
    signed_bytes = canonical(role_file.signed)
    good = valid_signers(signed_bytes, role_file.signatures, root, role) if listed else set()
    unknown = [s["keyid"] for s in role_file.signatures if s["keyid"].lower() not in good]
    if previous_root is not None:  # a rotated root is also signed by old root keys: those are expected
        old_good = valid_signers(signed_bytes, role_file.signatures, previous_root, role)
        unknown = [k for k in unknown if k.lower() not in old_good]
    _duplicate_signatures(report, role_file, file)
    held = root.get("keys")
    held_ids = {x.lower() for x in held} if isinstance(held, dict) else set()
    for keyid in [k for k in listed if k not in held_ids]:
        report.add("warning", "keys", file, f"role {role} lists key ID {keyid[:16]}… that the root does not hold")
    if len(set(listed)) != len(listed):
        report.add("warning", "keys", file, f"role {role} lists a key ID twice")
    for keyid in unknown:
        report.add("warning", "signatures", file,
                   f"signature by key {keyid[:16]}… that is not a valid signature by a key listed for {role}")
    if len(good) < threshold:
        report.add("error", "signatures", file,
                   f"threshold not met for {role}: {len(good)} valid signature(s) of {threshold} required")
    report.roles.append({
        "role": role, "file": file, "version": role_file.version, "expires": format_instant(role_file.expires),
        "spec_version": role_file.signed.get("spec_version"), "threshold": threshold,
        "signed_by": sorted(good), "not_signed": [k for k in listed if k not in good],
        "unknown_signatures": len(unknown),
    })
    if role_file.signed.get("spec_version") != SPEC_VERSION:
        report.add("info", "compatibility", file, f"spec_version {role_file.signed.get('spec_version')!r}: "
                   "pubsys and tuftool cannot edit this file (they require \"1.0.0\")")


def _duplicate_signatures(report: Report, role_file: RoleFile, file: str) -> None:
    for keyid in duplicate_keyids(role_file.signatures):
        report.add("error", "signatures", file, f"key ID {keyid} signs more than once: python-tuf and other "
                   "standard TUF clients refuse the file (tough counts the key once)")


def _keys(report: Report, root: RoleFile, file: str) -> None:
    keys = root.signed.get("keys", {})
    roles = root.signed.get("roles", {})
    for keyid, entry in keys.items():
        member_of = [r for r, d in roles.items() if keyid.lower() in [k.lower() for k in d.get("keyids", [])]]
        bits: int | None = None
        try:
            key = public_key(entry)
            if isinstance(key, rsa.RSAPublicKey):
                bits = key.key_size
            elif isinstance(key, ec.EllipticCurvePublicKey):
                bits = key.curve.key_size
            elif isinstance(key, ed25519.Ed25519PublicKey):
                bits = 256
        except KeyError_:
            pass
        problem = tough_key_problem(entry)
        if problem:
            report.add("error", "keys", file, f"key {keyid[:16]}…: {problem} (tough refuses the whole file)")
        elif keyid_of(entry) != keyid.lower():
            report.add("error", "keys", file, f"key ID {keyid[:16]}… is not the sha256 of its entry")
        if not member_of:
            report.add("info", "keys", file, f"key {keyid[:16]}… is listed but used by no role")
        report.keys.append({"keyid": keyid, "keytype": entry.get("keytype"), "scheme": entry.get("scheme"),
                            "bits": bits, "roles": member_of})


def _tough_rules(report: Report, role_file: RoleFile, file: str) -> None:
    """What makes tough refuse a file that a spec-following client may accept (SPEC §3.4 rule 8)."""
    for problem in tough_refusals(role_file):
        report.add("error", "tough", file, f"updog will reject this file: {problem}")
    if len(role_file.raw) > SIZE_LIMITS[role_file.role]:
        fatal = role_file.role in ("root", "timestamp")  # the others are bounded by a listed length instead
        report.add("error" if fatal else "warning", "size", file, f"{len(role_file.raw)} bytes is over tough's "
                   f"default {SIZE_LIMITS[role_file.role]}-byte limit" + ("" if fatal else
                   " (fine only while its parent lists its length)"))
    elif len(role_file.raw) > 0.8 * SIZE_LIMITS[role_file.role]:
        report.add("warning", "size", file, f"{len(role_file.raw)} bytes is over 80 % of tough's "
                   f"{SIZE_LIMITS[role_file.role]}-byte limit")


def _meta_completeness(report: Report, role_file: RoleFile, file: str) -> None:
    """tough <= 0.17.1 (older hosts) requires length and hashes in timestamp meta; without a length
    even tough 0.19 caps the listed file at its default size limit."""
    listed = {"timestamp": "snapshot.json", "snapshot": "targets.json"}.get(role_file.role)
    meta = role_file.signed.get("meta")
    entry = meta.get(listed) if listed and isinstance(meta, dict) else None
    if not isinstance(entry, dict):
        return
    missing = [f for f in ("length", "hashes") if f not in entry]
    if missing:
        severity: Severity = "warning" if role_file.role == "timestamp" else "info"
        report.add(severity, "compatibility", file, f"meta.{listed} has no {' or '.join(missing)}: older updog "
                   "(tough <= 0.17.1) refuses it, and without a length tough reads at most its default limit")


def tough_refusals(role_file: RoleFile) -> list[str]:
    """Why tough's re-serialization of this file would differ from the signed bytes (so its
    signature fails on a node), or why tough cannot parse it at all."""
    problems: list[str] = []
    expires = role_file.signed.get("expires")
    try:
        if isinstance(expires, str) and format_instant(parse_instant(expires)) != expires:
            problems.append(f"expires {expires!r} is re-serialized as {format_instant(parse_instant(expires))!r}")
    except InstantError:
        problems.append(f"expires {expires!r} cannot be parsed")
    stack: list[tuple[str, Any]] = [("signed", role_file.signed)]
    while stack:
        path, node = stack.pop()
        if node is None:
            problems.append(f"{path} is null")
        elif isinstance(node, str):
            if not node.isascii() and not unicodedata.is_normalized("NFC", node):
                problems.append(f"{path}: string is not NFC")
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(node))
        elif isinstance(node, dict):
            for key, child in node.items():
                if not key.isascii() and not unicodedata.is_normalized("NFC", key):
                    problems.append(f"{path}: member name {key!r} is not NFC")
                if key == "custom" and path.startswith("signed.targets."):
                    # tough keeps custom as opaque JSON (nulls inside survive), but {} is dropped
                    # and anything that is not an object is refused
                    if not isinstance(child, dict) or child == {}:
                        problems.append(f"{path}.custom is {json.dumps(child)} (tough drops an empty custom and "
                                        "refuses one that is not an object)")
                    continue
                stack.append((f"{path}.{key}", child))
    delegations = role_file.signed.get("delegations")
    if isinstance(delegations, dict):
        extra = sorted(set(delegations) - {"keys", "roles"})
        if extra:
            problems.append(f"delegations has fields tough drops: {', '.join(extra)}")
        known = {"name", "keyids", "threshold", "paths", "path_hash_prefixes", "terminating"}
        for entry in delegations.get("roles", []) if isinstance(delegations.get("roles"), list) else []:
            if isinstance(entry, dict) and set(entry) - known:
                problems.append(f"delegated role {entry.get('name')!r} has fields tough drops: "
                                f"{', '.join(sorted(set(entry) - known))}")
    return problems


# --- expiry ------------------------------------------------------------------------------------


def remaining_text(ns: int) -> str:
    """``6 days 23 hours`` / ``expired 2 days ago`` / ``45 minutes``."""
    span = abs(ns)
    days, rest = divmod(span, NANOS_PER_DAY)
    hours, rest = divmod(rest, NANOS_PER_HOUR)
    minutes = rest // NANOS_PER_MINUTE
    parts = [f"{days} day{'s' * (days != 1)}"] if days else []
    if hours and len(parts) < 2:
        parts.append(f"{hours} hour{'s' * (hours != 1)}")
    if not days and (minutes or not parts):
        parts.append(f"{minutes} minute{'s' * (minutes != 1)}")
    text = " ".join(parts)
    return f"expired {text} ago" if ns < 0 else text


def _expiries(report: Report, repo: Repo, meta: Storage) -> None:
    files = [(repo.root, f"{repo.root.version}.root.json"), *repo.role_files()]
    files += [(f, f"delegated role {n}") for n, f in repo.delegated.items()]
    for role_file, name in files:
        left = role_file.expires - report.at
        status = "expired" if left <= 0 else "soon" if left <= report.window else "ok"
        report.expiries.append({"role": role_file.role, "file": meta.describe(name),
                                "expires": format_instant(role_file.expires), "remaining": remaining_text(left),
                                "status": status, "expires_ns": role_file.expires})
        if status == "expired":
            report.add("error", "expiry", meta.describe(name), f"{role_file.role} expired at "
                       f"{format_instant(role_file.expires)}: nodes refuse the repository")
        elif status == "soon":
            report.add("warning", "expiry", meta.describe(name), f"{role_file.role} expires in "
                       f"{remaining_text(left)} ({format_instant(role_file.expires)}), inside the "
                       f"{report.window_text} window")


# --- manifest and targets ----------------------------------------------------------------------


def _manifest(report: Report, repo: Repo, targets: Storage, targets_checked: bool) -> Manifest | None:
    """Check ``manifest.json`` as updog reads it; return it (None if it cannot be read)."""
    where = f"{MANIFEST_NAME} (target)"
    try:
        raw = read_target(repo, targets, MANIFEST_NAME)
    except RepoToolError as exc:
        if not targets_checked:  # otherwise the target check names the object once
            report.add("error", "manifest", where, exc.message)
        return None
    if raw is None:
        report.add("error", "manifest", repo.meta.url, "the repository lists no manifest.json target")
        return None
    try:
        manifest = Manifest.from_bytes(raw)
    except RepoToolError as exc:
        report.add("error", "manifest", where, f"updog cannot parse it: {exc.message}")
        return None
    seen: set[tuple[str, str, str]] = set()
    max_versions: dict[tuple[str, str], set[str]] = {}
    for update in manifest.updates:
        key = (update.variant, update.arch, str(update.version))
        if key in seen:
            report.add("error", "manifest", where, f"duplicate update {' '.join(key)}")
        seen.add(key)
        max_versions.setdefault((update.variant, update.arch), set()).add(str(update.max_version))
        for kind in ("boot", "root", "hash"):
            name = getattr(update.images, kind)
            if repo.find(name) is None:
                report.add("error", "manifest", where, f"update {' '.join(key)}: {kind} image {name!r} is not a "
                           "listed target: nodes fail when they stage it")
        if update.version > update.max_version:
            report.add("info", "manifest", where, f"update {' '.join(key)} is above its max_version "
                       f"{update.max_version}: no node is offered it (a pulled release)")
        times = [update.waves[k] for k in sorted(update.waves)]
        if any(b <= a for a, b in itertools.pairwise(times)):
            report.add("error", "manifest", where, f"update {' '.join(key)}: wave times are not strictly "
                       "increasing")
    for (variant, arch), values in sorted(max_versions.items()):
        if len(values) > 1:
            report.add("warning", "manifest", where, f"{variant} {arch}: updates carry different max_version "
                       f"values ({', '.join(sorted(values))}); updata sets one for all")
    try:
        check_migration_keys(manifest.migrations)
    except RepoToolError as exc:
        report.add("error", "manifest", where, f"{exc.message}: updog's migration walk cannot use it")
    for broken in chain_breaks(manifest):
        report.add("error", "manifest", where, broken.describe())
    for names in manifest.migrations.values():
        for name in names:
            try:  # nodes save a migration under its resolved name (``./m`` is ``m``)
                plain = resolve_name(name)
            except RepoToolError:
                plain = ""
            if "/" in plain or "\0" in plain or not plain:
                report.add("error", "manifest", where, f"migration {name!r} is not a plain file name (a path could "
                           "lead out of the migrations directory): nodes refuse it")
            elif repo.find(name) is None:
                report.add("error", "manifest", where, f"migration {name!r} is not a listed target: updates that "
                           "need it fail")
    return manifest


def _targets(report: Report, repo: Repo, store: Storage, mode: TargetsMode, jobs: int,
             decoded: Collection[str] = ()) -> None:
    """Download targets (all, a sample, or none) checking length and SHA-256; those in ``decoded``
    (the images and migrations the manifest names) are also decoded as LZ4 frames, as nodes read them."""
    names = sorted({name for role in (repo.targets, *repo.delegated.values())
                    for name in (role.signed.get("targets") or {})})
    report.targets_listed = len(names)
    if mode == "none":
        return
    if isinstance(mode, int):
        step = max(1, len(names) // max(1, mode))
        chosen = names[::step][:mode]
        if MANIFEST_NAME in names and MANIFEST_NAME not in chosen:
            chosen = [MANIFEST_NAME, *chosen[: max(0, mode - 1)]]
        names = chosen
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for checked, size in pool.map(lambda n: _check_target(report, repo, store, n, n in decoded), names):
            with report._lock:
                report.targets_checked += checked
                report.bytes_checked += size


def _check_target(report: Report, repo: Repo, store: Storage, name: str, lz4: bool = False) -> tuple[int, int]:
    target: Target | None
    try:
        target = repo.find(name)
    except RepoToolError as exc:
        report.add("error", "targets", name, exc.message)
        return 0, 0
    if target is None:
        return 0, 0
    *folders, object_name = repo.object_name(target).split("/")  # foreign repos may use path-like names
    size = 0
    where = f"{store.url}{repo.object_name(target)}"
    try:
        folder = store.child(*folders) if folders else store
        where = folder.describe(object_name)
        chunks: Iterator[bytes] | None = folder.stream(object_name, target.length, CHUNK)
        if chunks is None:
            report.add("error", "targets", where, f"target {name} is listed but its object is missing")
            return 1, 0
        try:
            size, sha256 = hash_chunks(chunks, f"target {name}" if lz4 else None)
        except ImageError as exc:
            # Not a good LZ4 frame.  Say first whether the object is what was signed (another sha256:
            # a bad copy or tampering in storage), else that the release itself is broken.
            size, sha256 = hash_chunks(folder.stream(object_name, target.length, CHUNK) or [], None)
            if (size, sha256) == (target.length, target.sha256):
                report.add("error", "targets", where, exc.message)
                return 1, size
    except RepoToolError as exc:
        message = exc.message if exc.message.startswith(f"target {name}") else f"target {name}: {exc.message}"
        report.add("error", "targets", where, message)
        return 1, size
    if size != target.length:
        report.add("error", "targets", where, f"target {name}: {size} bytes, {target.length} listed")
    elif sha256 != target.sha256:
        report.add("error", "targets", where, f"target {name}: sha256 {sha256} does not match the "
                   f"listed {target.sha256}")
    return 1, size
