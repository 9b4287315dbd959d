"""Repositories for tests: a quickstart made once per session and copied per test, role files
signed with its keys (forgeries), and checks written independently of the code under test (plain
hashlib/json, no repo_tool canonical writer)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import lz4.frame

from repo_tool.cli.common import now_ns
from repo_tool.core.semver import Version
from repo_tool.publish.inputs import load_policy
from repo_tool.publish.quickstart import run as quickstart_run
from repo_tool.signing.signers import KeySigner, load_signer
from repo_tool.trust.model import envelope_bytes
from repo_tool.trust.tufjson import canonical

VARIANT = "aws-k8s-1.28"
ARCH = "x86_64"
EXPIRES = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass
class QS:
    dir: Path

    @property
    def config(self) -> Path:
        return self.dir / "repo-tool.yaml"

    @property
    def root(self) -> Path:
        return self.dir / "root.json"

    @property
    def meta(self) -> Path:
        return self.dir / "repo" / "metadata" / VARIANT / ARCH

    @property
    def targets(self) -> Path:
        return self.dir / "repo" / "targets"

    def args(self, *extra: str) -> list[str]:
        return ["--config", str(self.config), "--variant", VARIANT, "--arch", ARCH, *extra]

    def newest(self, role: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.meta / "timestamp.json").read_bytes())
        if role == "timestamp":
            return data
        snap_v = data["signed"]["meta"]["snapshot.json"]["version"]
        snap: dict[str, Any] = json.loads((self.meta / f"{snap_v}.snapshot.json").read_bytes())
        if role == "snapshot":
            return snap
        targets_v = snap["signed"]["meta"]["targets.json"]["version"]
        targets: dict[str, Any] = json.loads((self.meta / f"{targets_v}.targets.json").read_bytes())
        return targets

    def manifest(self) -> dict[str, Any]:
        entry = self.newest("targets")["signed"]["targets"]["manifest.json"]
        data = (self.targets / f"{entry['hashes']['sha256']}.manifest.json").read_bytes()
        result: dict[str, Any] = json.loads(data)
        return result


def make_quickstart(directory: Path) -> QS:
    quickstart_run(directory, now_ns(), load_policy("default")[0])
    return QS(directory)


def copy_quickstart(template: QS, directory: Path) -> QS:
    shutil.copytree(template.dir, directory, symlinks=True)
    return QS(directory)


def tree_state(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with its sha256 (to prove nothing changed)."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def olpc_canonical(value: Any) -> bytes:
    """An independent canonical JSON writer (members sorted by quoted UTF-8 bytes)."""
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: json.dumps(kv[0], ensure_ascii=False).encode())
        return b"{" + b",".join(olpc_canonical(k) + b":" + olpc_canonical(v) for k, v in items) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(olpc_canonical(v) for v in value) + b"]"
    if isinstance(value, str):
        return ('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"').encode()
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    assert isinstance(value, int), f"not canonical-able: {value!r}"
    return str(value).encode()


def tough_rule_violations(raw: bytes, role: str) -> list[str]:
    """SPEC §3.2 checked from scratch on one file."""
    out: list[str] = []
    pairs_seen: list[str] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            pairs_seen.append("duplicate member")
        return dict(pairs)

    doc = json.loads(raw, object_pairs_hook=hook, parse_float=lambda s: out.append(f"float {s}"))
    out += pairs_seen
    signed = doc["signed"]

    def walk(node: Any) -> None:
        if node is None:
            out.append("null")
        elif isinstance(node, dict):
            if node.get("custom", 1) == {}:
                out.append("custom {}")
            for k, v in node.items():
                if unicodedata.normalize("NFC", k) != k:
                    out.append("non-NFC key")
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
        elif isinstance(node, str) and unicodedata.normalize("NFC", node) != node:
            out.append("non-NFC string")

    walk(doc)
    if signed.get("spec_version") != "1.0.0":
        out.append("spec_version")
    if signed.get("_type") != role:
        out.append("_type")
    if not EXPIRES.match(signed.get("expires", "")):
        out.append(f"expires {signed.get('expires')}")
    if not isinstance(signed.get("version"), int) or not 1 <= signed["version"] < 2**64:
        out.append("version")
    if role == "root":
        if signed.get("consistent_snapshot") is not True:
            out.append("consistent_snapshot")
        if set(signed["roles"]) != {"root", "snapshot", "targets", "timestamp"}:
            out.append("roles")
        for keyid, key in signed["keys"].items():
            if set(key) != {"keytype", "scheme", "keyval"} or set(key["keyval"]) != {"public"}:
                out.append(f"key {keyid} fields")
            if (key["keytype"], key["scheme"]) not in {
                ("rsa", "rsassa-pss-sha256"), ("ed25519", "ed25519"), ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256")
            }:
                out.append(f"key {keyid} type")
            if hashlib.sha256(olpc_canonical(key)).hexdigest() != keyid:
                out.append(f"key {keyid} id")
        for name, role_def in signed["roles"].items():
            if not 1 <= role_def["threshold"] <= len(role_def["keyids"]):
                out.append(f"threshold {name}")
            if any(k not in signed["keys"] for k in role_def["keyids"]):
                out.append(f"unknown key in {name}")
    elif role in ("timestamp", "snapshot"):
        name = "snapshot.json" if role == "timestamp" else "targets.json"
        meta = signed["meta"]
        if set(meta) != {name} or set(meta[name]) != {"version", "length", "hashes"} or list(
            meta[name]["hashes"]
        ) != ["sha256"]:
            out.append(f"meta {meta}")
    else:
        for name, entry in signed["targets"].items():
            if not SAFE.match(name) or name in (".", ".."):
                out.append(f"name {name}")
            if next(iter(entry["hashes"])) != "sha256" or not isinstance(entry["length"], int):
                out.append(f"target {name}")
            if "custom" in entry and not (isinstance(entry["custom"], dict) and entry["custom"]):
                out.append(f"custom {name}")
        if "delegations" in signed and signed["delegations"] != {"keys": {}, "roles": []}:
            out.append("delegations")
    ids = [s["keyid"] for s in doc["signatures"]]
    if len(ids) != len(set(ids)):
        out.append("duplicate signature key IDs")
    return out


IMAGE_SUFFIXES = {"boot": "boot.ext4.lz4", "root": "root.ext4.lz4", "hash": "root.verity.lz4"}


def image_path(directory: Path, kind: str, version: str, variant: str = VARIANT, arch: str = ARCH) -> Path:
    """Where a release's ``kind`` image goes, named as Bottlerocket names it."""
    return directory / f"bottlerocket-{variant}-{arch}-{version}-0123abc-{IMAGE_SUFFIXES[kind]}"


def write_images(directory: Path, version: str, variant: str = VARIANT, arch: str = ARCH,
                 after: str | None = "1.1.0") -> list[str]:
    """The three images of a release (a small lz4 frame each), as ``--boot-image/--root-image/--hash-image``,
    and its ``--release-config`` (:func:`release_config`: by default joined to quickstart's newest version)."""
    directory.mkdir(parents=True, exist_ok=True)
    args = []
    for kind in IMAGE_SUFFIXES:
        path = image_path(directory, kind, version, variant, arch)
        path.write_bytes(lz4.frame.compress(f"{kind} {version} {variant} {arch}\n".encode() * 1000))
        args += [f"--{kind}-image", str(path)]
    return [*args, *release_config(directory, version, after)]


# Versions the tests publish after quickstart's 1.0.0 and 1.1.0.
LADDER = ("1.1.0", "1.2.0", "1.2.1", "1.2.3", "1.2.4", "1.3.0", "1.5.0", "1.10.0", "2.0.0", "3.0.0")


def release_config(directory: Path, version: str, after: str | None = "1.1.0") -> list[str]:
    """``--release-config`` and a Release.toml in ``directory`` for ``version``, with an empty migration
    step to it from ``after`` and from each version of :data:`LADDER` between them (so releases the
    tests publish one after another stay joined); no steps if ``after`` is None."""
    release = directory / "Release.toml"
    target = Version.parse(version)
    starts = [] if after is None else sorted({Version.parse(v) for v in (after, *LADDER)
                                                if Version.parse(after) <= Version.parse(v) < target})
    steps = "".join(f'"({start}, {version})" = []\n' for start in starts)
    release.write_text(f'version = "{version}"\n\n[migrations]\n{steps}')
    return ["--release-config", str(release)]


# An LZ4 frame header: version 1, independent blocks, no checksums, 4 MiB blocks (FLG 60, BD 70, HC 73).
STORED_FRAME_HEADER = bytes.fromhex("04224d18607073")
STORED_BLOCK = 4 << 20


def write_stored_lz4(path: Path, size: int, noise: bool = False) -> Path:
    """A valid LZ4 frame of ``size`` bytes of content held in stored (uncompressed) 4 MiB blocks: zeros
    left as holes in a sparse file, or random bytes (``noise``).  Cheap to write at any size, and as
    costly to hash and decode as an incompressible image."""
    with path.open("wb") as handle:
        handle.write(STORED_FRAME_HEADER)
        for start in range(0, size, STORED_BLOCK):
            count = min(STORED_BLOCK, size - start)
            handle.write((count | 0x80000000).to_bytes(4, "little"))
            if noise:
                handle.write(os.urandom(count))
            else:
                handle.seek(count, os.SEEK_CUR)
        handle.write(bytes(4))  # end mark
    return path


def write_node_config(directory: Path, metadata_url: str, targets_url: str, seed: int = 0,
                      version_lock: str = "latest", ignore_waves: bool = False, current: str = "1.0.0") -> None:
    """A node's ``updog.toml`` and ``os-release`` in ``directory`` (a host of VARIANT at ``current``)."""
    (directory / "updog.toml").write_text(
        f'metadata_base_url = "{metadata_url}"\ntargets_base_url = "{targets_url}"\n'
        f'seed = {seed}\nversion_lock = "{version_lock}"\nignore_waves = {str(ignore_waves).lower()}\n')
    (directory / "os-release").write_text(
        f'NAME=Bottlerocket\nVERSION_ID={current}\nVARIANT_ID="{VARIANT}"\nPRETTY_NAME="Bottlerocket OS {current}"\n')


def signer(path: Path) -> KeySigner:
    return load_signer(str(path))


def sign_file(signed: dict[str, Any], signers: list[KeySigner], keyids: list[str] | None = None) -> bytes:
    """A role file signed by ``signers`` (each under its own key ID, or the matching one of
    ``keyids``: the same signature may be repeated under other spellings)."""
    data = canonical(signed)
    signatures = [{"keyid": s.keyid, "sig": s.sign_hex(data)} for s in signers]
    if keyids is not None:
        signatures = [{"keyid": k, "sig": signatures[0]["sig"]} for k in keyids]
    return envelope_bytes(data, signatures)


# Runs the CLI and prints its peak RSS (VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork+exec, so
# it would report pytest's size) and exit code as the last line of stderr.
_PEAK_RSS_SCRIPT = ("import re, sys\nfrom repo_tool.cli import main\ntry:\n    main(sys.argv[1:])\n"
                    "except SystemExit as exc:\n    code = exc.code\n"
                    "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
                    "print('maxrss', hwm, code, file=sys.stderr)\n")


@dataclass(frozen=True)
class PeakRun:
    code: int
    peak_mib: float
    out: str
    err: str


def run_measured(*args: str) -> PeakRun:
    """``repo-tool ARGS`` in a child process of its own, with the child's peak RSS."""
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS_SCRIPT, *args], capture_output=True, text=True,
                          check=False)
    last = done.stderr.strip().splitlines()[-1].split() if done.stderr.strip() else []
    assert last[:1] == ["maxrss"], done.stdout[-2000:] + done.stderr[-2000:]
    return PeakRun(int(last[2]), int(last[1]) / 1024, done.stdout, done.stderr)


@contextlib.contextmanager
def serve_directory(directory: Path, log: list[str] | None = None, verbatim_names: bool = False,
                    statuses: Mapping[str, int] | None = None) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (any free port); yield the base URL.
    Requested paths are appended to ``log`` instead of being printed.  With ``verbatim_names`` the
    request path names the file as it is (``%3F`` is the file ``%3F``), as a repository stores
    ``quote(role, '')`` names and the TUF conformance simulator serves them.  A file whose name (the
    last path segment) is in ``statuses`` is answered with that status and an empty body."""

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            status = (statuses or {}).get(self.path.partition("?")[0].rsplit("/", 1)[-1])
            if status is None:
                super().do_GET()
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def translate_path(self, path: str) -> str:
            if verbatim_names:
                return str(directory / path.partition("?")[0].lstrip("/"))
            return super().translate_path(path)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if log is not None:  # once per request (errors are not logged a second time)
                log.append(self.path)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            # A client that stops reading (a size limit hit, a timeout) resets the connection: not an
            # error of the server, and printing it would land in the stderr a test is checking.
            if not isinstance(sys.exc_info()[1], ConnectionError):
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def roll_timestamp_forward(meta: Path) -> None:
    """Break ``meta``'s timestamp.json as an attacker would: its version raised, its signature now wrong."""
    path = meta / "timestamp.json"
    doc = json.loads(path.read_bytes())
    doc["signed"]["version"] += 1
    path.write_text(json.dumps(doc))


def tough_repo_with_infra_toml(tmp_path: Path, source: Path, signing_keys: str) -> tuple[Path, Path]:
    """tough's repository ``source`` (its metadata and targets) copied to ``tmp_path/repo`` for
    VARIANT/ARCH, and a pubsys Infra.toml publishing to it with ``signing_keys`` (a TOML inline table);
    (the config, the copied metadata directory)."""
    meta = tmp_path / "repo" / "metadata" / VARIANT / ARCH
    shutil.copytree(source / "metadata", meta)
    shutil.copytree(source / "targets", tmp_path / "repo" / "targets")
    config = tmp_path / "Infra.toml"
    config.write_text(
        "[repo.tough]\n"
        f'metadata_base_url = "file://{tmp_path}/repo/metadata"\n'
        f'targets_url = "file://{tmp_path}/repo/targets"\n'
        f'root_role_url = "file://{source}/metadata/1.root.json"\n'
        f"signing_keys = {signing_keys}\n"
    )
    return config, meta
