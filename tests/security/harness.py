"""Tools for the attack catalogue: a hostile HTTP server, a metadata forger holding the
quickstart's keys, and before/after snapshots of everything a node must not touch.

Written independently of the node's own code paths where it matters: the server speaks plain
HTTP/1.1 with its own Range handling, the snapshots use hashlib and os.stat, the GPT flags are
read back through ``repo_tool.node.gpt`` (the on-disk format, checked by tests/test_gpt.py).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import socket
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from repo_tool.core.instant import format_whole_seconds
from repo_tool.node.gpt import Disk
from repo_tool.signing.signers import KeySigner
from repo_tool.trust.metadata import meta_entry
from tests.repohelpers import QS, sign_file, signer

# --- a hostile server ----------------------------------------------------------------------------

Action = Literal["endless", "stall", "drop", "tamper-resume"]


@dataclass
class Rule:
    """What the server does to requests whose file name (last path segment) is ``name``.

    ``endless``: 200 with no Content-Length and data until the client leaves; ``stall``: headers and
    ``after`` body bytes, then nothing until the server stops; ``drop``: ``after`` body bytes, then the
    connection is shut; ``tamper-resume``: answers a ``Range`` request with the byte at offset ``after``
    of the file flipped.  ``times`` bounds how many requests the rule hits (None: every one)."""

    name: str
    action: Action
    after: int = 0
    times: int | None = None
    hits: int = 0


@dataclass
class Request:
    path: str  # as requested, query included
    range: str | None
    status: int = 0
    sent: int = 0  # body bytes written


@dataclass
class AttackServer:
    url: str
    root: Path
    rules: list[Rule] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def requested(self, name: str) -> list[Request]:
        """Requests whose file name is ``name``."""
        return [r for r in self.seen if _file_name(r.path) == name]

    def _rule(self, name: str, ranged: bool) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.name != name or (rule.times is not None and rule.hits >= rule.times):
                    continue
                if rule.action == "tamper-resume" and not ranged:
                    continue
                rule.hits += 1
                return rule
        return None


ENDLESS_SNDBUF = 256 * 1024  # an endless body's send buffer (Linux doubles what is asked)


def in_flight_bound() -> int:
    """Bytes the kernel may hold between the server's writes and the client's reads on one loopback
    connection: the endless body's send buffer, and the client's receive buffer, which autotunes up
    to tcp_rmem's maximum (4 MiB by default, 32 MiB on some hosts)."""
    try:
        receive = int(Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        receive = 64 * 1024 * 1024
    return 2 * ENDLESS_SNDBUF + receive


def _file_name(path: str) -> str:
    return unquote(urlsplit(path).path).rsplit("/", 1)[-1]


def _handler(server: AttackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _head(self, status: int, length: int | None, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            if length is not None:
                self.send_header("Content-Length", str(length))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()

        def _write(self, seen: Request, data: bytes) -> None:
            self.wfile.write(data)
            seen.sent += len(data)

        def do_GET(self) -> None:
            seen = Request(self.path, self.headers.get("Range"))
            with server.lock:
                server.seen.append(seen)
            relative = unquote(urlsplit(self.path).path).lstrip("/")
            file = (server.root / relative).resolve()
            name = relative.rsplit("/", 1)[-1]
            rule = server._rule(name, seen.range is not None)
            try:
                if rule is not None and rule.action == "endless":
                    seen.status = 200
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, ENDLESS_SNDBUF)
                    self._head(200, None)
                    while not server.stop.is_set():
                        self._write(seen, b" " * 65536)
                    return
                if server.root.resolve() not in file.parents or not file.is_file():
                    seen.status = 404
                    self._head(404, 9)
                    self._write(seen, b"not found")
                    return
                self._send(seen, file.read_bytes(), rule)
            except OSError:  # the client went away: part of several attacks
                self.close_connection = True

        def _send(self, seen: Request, data: bytes, rule: Rule | None) -> None:
            start, extra = 0, {}
            if seen.range is not None:
                start = int(seen.range.removeprefix("bytes=").rstrip("-"))
                extra["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            seen.status = 206 if extra else 200
            body = data[start:]
            if rule is not None and rule.action == "tamper-resume" and start <= rule.after < len(data):
                at = rule.after - start
                body = body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1:]
            self._head(seen.status, len(body), extra)
            if rule is None or rule.action == "tamper-resume":
                self._write(seen, body)
                return
            self._write(seen, body[: rule.after])
            self.wfile.flush()
            if rule.action == "stall":
                server.stop.wait(60)  # holds the connection open, sending nothing
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


@contextmanager
def attack_server(root: Path) -> Iterator[AttackServer]:
    """Serve ``root`` on 127.0.0.1 with per-file attack rules (none at first)."""
    state = AttackServer("", root)
    httpd = _QuietServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# --- a forger holding the repository's keys ------------------------------------------------------

Mutator = Callable[[dict[str, Any]], None]


@dataclass
class Forger:
    """Writes role files into a quickstart's metadata directory as someone holding its online keys
    would (or some of them): each changed role gets the next version, and every parent up to
    ``timestamp.json`` is re-signed to list it, unless told otherwise."""

    qs: QS

    def key(self, role: str) -> KeySigner:
        return signer(self.qs.dir / "keys" / f"{role}.pem")

    def newest(self) -> dict[str, dict[str, Any]]:
        return {role: self.qs.newest(role) for role in ("timestamp", "snapshot", "targets")}

    def forge(self, *, targets: Mutator | None = None, snapshot: Mutator | None = None,
              timestamp: Mutator | None = None, keys: dict[str, list[KeySigner]] | None = None,
              keyids: dict[str, list[str]] | None = None) -> dict[str, bytes]:
        """Re-sign from the lowest role given a mutator up to the timestamp; return the new files by
        role.  ``keys`` replaces the signers of a role (default: its quickstart key)."""
        current = self.newest()
        changed = {"targets": targets, "snapshot": snapshot, "timestamp": timestamp}
        order = ("targets", "snapshot", "timestamp")
        first = next(i for i, role in enumerate(order) if changed[role] is not None)
        written: dict[str, bytes] = {}
        below: tuple[str, bytes, int] | None = None
        for role in order[first:]:
            signed = copy.deepcopy(current[role]["signed"])
            signed["version"] += 1
            if below is not None:
                listed, raw, version = below
                signed["meta"][listed] = meta_entry(raw, version)
            mutate = changed[role]
            if mutate is not None:
                mutate(signed)
            signers = (keys or {}).get(role) or [self.key(role)]
            raw = sign_file(signed, signers, (keyids or {}).get(role))
            name = "timestamp.json" if role == "timestamp" else f"{signed['version']}.{role}.json"
            (self.qs.meta / name).write_bytes(raw)
            written[role] = raw
            below = (f"{role}.json", raw, signed["version"])
        return written


def expired(now_ns: int) -> str:
    """An ``expires`` a day before ``now_ns``."""
    return format_whole_seconds(now_ns - 86400 * 10**9)


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


# --- what must not change ------------------------------------------------------------------------

Entry = tuple[str, int, str, int]  # kind, size, sha256, mode


def tree_snapshot(directory: Path, skip: tuple[Path, ...] = ()) -> dict[str, Entry]:
    """Every file, directory and link under ``directory`` (names, sizes, sha256, modes), except the
    trees in ``skip``.  A disk image is summarised by :func:`disk_digest` (its inactive partitions
    left out) when it is passed in ``skip`` and hashed separately by the caller."""
    out: dict[str, Entry] = {}
    skipped = {p.resolve() for p in skip}
    for current, dirs, files in os.walk(directory):
        base = Path(current)
        dirs[:] = [d for d in dirs if (base / d).resolve() not in skipped]
        for name in [*dirs, *files]:
            path = base / name
            if path.resolve() in skipped:
                continue
            info = path.lstat()
            rel = str(path.relative_to(directory))
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", 0, os.readlink(path), info.st_mode)
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", 0, "", info.st_mode)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = ("file", info.st_size, digest, info.st_mode)
    return out


def names_under(directory: Path) -> set[str]:
    """Every path name under ``directory`` (cheap: no hashing)."""
    found: set[str] = set()
    for current, dirs, files in os.walk(directory):
        found.update(str(Path(current, n).relative_to(directory)) for n in [*dirs, *files])
    return found


def disk_digest(path: Path, inactive: str = "B", gpt: bool = True) -> tuple[int, int, str]:
    """Size, mode and sha256 of the disk image with the inactive set's partitions left out (the
    node may write there; the GPT, the active set and the private partition it must not change
    except for the inactive set's flags, which are checked separately).  ``gpt=False`` also leaves
    out the partition tables at both ends (an applied update changes the flags they hold)."""
    disk = Disk.open(path)
    parts = disk.sets[inactive]  # type: ignore[index]
    size = path.stat().st_size
    holes = [(p.offset, p.offset + p.size) for p in (parts.boot, parts.root, parts.hash)]
    if not gpt:
        holes += [(0, min(p.offset for p in disk.partitions)), (max(p.offset + p.size for p in disk.partitions), size)]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        position = 0
        for start, end in [*sorted(holes), (size, size)]:
            handle.seek(position)
            remaining = start - position
            while remaining > 0:
                chunk = handle.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                digest.update(chunk)
                remaining -= len(chunk)
            position = max(position, end)
    return size, path.stat().st_mode, digest.hexdigest()
