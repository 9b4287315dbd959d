"""A static HTTP/1.1 file server for load runs, in its own process, that logs every request and
can fail some of them on purpose.

Run as ``python server.py DIRECTORY LOG [--faults none|mixed]``: prints the port, then serves
DIRECTORY on 127.0.0.1 until terminated.  Every request (including the failed ones) is one JSON line
in LOG, written before the answer goes out: ``{"seed": S, "path": P, "attempt": N, "action": A,
"range": R, "sent": B}`` where S is the ``seed`` query parameter the node sends (-1 when absent), P
the path without the query, N counts requests for (S, P), R is the first byte a ``Range: bytes=R-``
header asked for (or null; such a request is answered 206 from that byte, as a CDN does) and B the
body bytes sent of a ``cut`` answer.

With ``--faults mixed`` the first tries of some (seed, path) pairs fail as :func:`fault_plan` says:
``503`` (an error answer), ``drop`` (the connection closed without an answer) or ``cut`` (a 200
whose body stops half way; a 503 for a file that does not exist); the try after them is served
normally.

Only the standard library is imported, so the tests and the bench scripts import
:func:`fault_plan` from here to know what each node will meet.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import re
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

FAULT_MODES = ("none", "mixed")
_RANGE = re.compile(r"bytes=(\d+)-")
_PLANS: tuple[tuple[str, ...], ...] = ((), ("503",), ("drop",), ("cut",), ("503", "drop"), ("cut", "503"))


def fault_plan(mode: str, seed: int, path: str) -> tuple[str, ...]:
    """The failures the server gives (seed, path) before serving it; at most 2, so a client with
    tough's 4 tries always gets its answer."""
    if mode == "none":
        return ()
    pick = hashlib.sha256(f"{seed}:{path}".encode()).digest()[0] % len(_PLANS)
    return _PLANS[pick]


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # 50 nodes connect at once
    daemon_threads = True


class Handler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a CDN serves
    # TCP_NODELAY, as web servers and CDNs set it: the headers and the body go out as two writes, and
    # without it each request after the first on a kept-alive connection waits ~40 ms for the client's
    # delayed ACK (Nagle), a stall no real server has.
    disable_nagle_algorithm = True
    mode = "none"
    log_handle: BinaryIO
    lock = threading.Lock()
    attempts: dict[tuple[int, str], int] = {}  # noqa: RUF012 - one table for the whole server

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def _handle(self, head: bool) -> None:
        parts = urlsplit(self.path)
        seeds = parse_qs(parts.query).get("seed", [])
        seed = int(seeds[0]) if seeds and seeds[0].isdigit() else -1
        asked = _RANGE.fullmatch(self.headers.get("Range", ""))
        start = int(asked.group(1)) if asked else None
        data = self._file()
        with self.lock:  # logged before the answer goes out, so a node's requests are logged in order
            attempt = self.attempts.get((seed, parts.path), 0) + 1
            self.attempts[(seed, parts.path)] = attempt
            plan = fault_plan(self.mode, seed, parts.path)
            action = plan[attempt - 1] if attempt <= len(plan) else "ok"
            sent = len(data) // 2 if action == "cut" and data is not None else None
            record = {"seed": seed, "path": parts.path, "attempt": attempt, "action": action, "range": start,
                      "sent": sent}
            self.log_handle.write(json.dumps(record).encode() + b"\n")
            self.log_handle.flush()
        if action == "503" or (action == "cut" and data is None):  # nothing to cut: fail the try anyway
            self.send_error(503, "Service Unavailable (injected)")
        elif action == "drop":
            self.close_connection = True  # read the request, answer nothing
        elif action == "cut":
            assert data is not None and sent is not None
            self._send(200, len(data), data[:sent])
            self.close_connection = True
        elif start is not None and not head and data is not None:
            if start >= len(data):
                self.send_error(416, "Range Not Satisfiable")
            else:
                self._send(206, len(data) - start, data[start:], f"bytes {start}-{len(data) - 1}/{len(data)}")
        elif head:
            super().do_HEAD()
        else:
            super().do_GET()

    def _file(self) -> bytes | None:
        try:
            with open(self.translate_path(self.path), "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def _send(self, status: int, length: int, body: bytes, content_range: str | None = None) -> None:
        """An answer that declares ``length`` bytes and sends ``body`` (shorter: a cut answer)."""
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if content_range is not None:
            self.send_header("Content-Range", content_range)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("log")
    parser.add_argument("--faults", choices=FAULT_MODES, default="none")
    args = parser.parse_args()
    Handler.mode = args.faults
    Handler.log_handle = open(args.log, "ab")  # noqa: SIM115 - open for the server's lifetime
    server = Server(("127.0.0.1", 0), functools.partial(Handler, directory=os.path.abspath(args.directory)))
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
