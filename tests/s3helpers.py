"""S3 test helpers: a fault-injecting HTTP proxy in front of the moto server, a python-tuf
ngclient that reads a private bucket with credentials, and bucket snapshots.

The proxy is a real HTTP hop: the tool under test talks to it through ``--endpoint-url`` and
it forwards to moto.  A ``rule`` decides per request whether to pass it, drop it before it
reaches S3 (the write never happened), drop the answer after S3 applied it (the write happened
but the client never heard), answer it with a synthesized S3 error instead of forwarding it (an
:class:`S3Error` such as ``SLOW_DOWN``: S3 throttling), or hold it until released (to line two
publishers up).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

PASS, DROP_BEFORE, DROP_AFTER = "pass", "drop-before", "drop-after"


@dataclass(frozen=True)
class S3Error:
    """An error answer the proxy sends itself (the request never reaches S3), in S3's own format."""

    status: int
    code: str
    message: str

    def body(self, request_id: str) -> bytes:
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{self.code}</Code>'
                f"<Message>{self.message}</Message><RequestId>{request_id}</RequestId>"
                f"<HostId>{request_id}</HostId></Error>").encode()


SLOW_DOWN = S3Error(503, "SlowDown", "Please reduce your request rate.")
"""What S3 answers when a prefix gets more requests than it can take (throttling)."""


@dataclass
class Request:
    method: str
    path: str
    index: int  # among writes (PUT/POST/DELETE); -1 for reads

    @property
    def is_write(self) -> bool:
        return self.index >= 0

    @property
    def key(self) -> str:
        return urlparse(self.path).path

    @property
    def identity(self) -> tuple[str, ...]:
        """The same write in another run: step, object name without its hash prefix, part number.
        (manifest.json's hash differs between runs: its waves count from the time of the run.)"""
        name = self.key.rsplit("/", 1)[-1]
        if "/targets/" in self.key:
            name = name.split(".", 1)[1]
        part = parse_qs(urlparse(self.path).query).get("partNumber", [""])[0]
        return (self.step, name, part)

    @property
    def step(self) -> str:
        """What S3 operation this is, for messages: PutObject, UploadPart, CreateMultipartUpload ..."""
        query = urlparse(self.path).query
        if self.method == "POST" and "uploads" in query.split("&"):
            return "CreateMultipartUpload"
        if self.method == "POST" and "uploadId=" in query:
            return "CompleteMultipartUpload"
        if self.method == "PUT" and "partNumber=" in query:
            return "UploadPart"
        if self.method == "DELETE" and "uploadId=" in query:
            return "AbortMultipartUpload"
        return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "HeadObject"}.get(self.method, self.method)


Rule = Callable[[Request], str | S3Error]


@dataclass
class FaultProxy:
    upstream: str
    rule: Rule = field(default=lambda request: PASS)
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    hold: Callable[[Request], None] | None = None
    # The path of an endpoint URL with one (as botocore sends it, e.g. "/%20" for "http://h:p/ #x"): taken
    # off each request's path before it is forwarded, as a reverse proxy mounted there would.
    base_path: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._writes = 0

    def reset(self, rule: Rule | None = None) -> None:
        with self._lock:
            self.requests.clear()
            self._writes = 0
            self.rule = rule or (lambda request: PASS)

    def writes(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.is_write]

    def _record(self, method: str, path: str) -> Request:
        with self._lock:
            index = -1
            if method in ("PUT", "POST", "DELETE"):
                index, self._writes = self._writes, self._writes + 1
            request = Request(method, path, index)
            self.requests.append(request)
            return request


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    target = urlparse(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _any(self) -> None:
            body = self._body()
            request = proxy._record(self.command, self.path)
            action = proxy.rule(request)
            if proxy.hold is not None:
                proxy.hold(request)
            if action == DROP_BEFORE:
                self.close_connection = True
                return
            if isinstance(action, S3Error):
                self._answer_error(action, request)
                return
            hop_by_hop = ("transfer-encoding", "connection", "expect")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in hop_by_hop}
            headers["Content-Length"] = str(len(body))
            conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=60)
            try:
                path = self.path
                if proxy.base_path and path.startswith(proxy.base_path + "/"):
                    path = path[len(proxy.base_path):]
                conn.request(self.command, path, body=body, headers=headers)
                answer = conn.getresponse()
                data = answer.read()
            finally:
                conn.close()
            if action == DROP_AFTER:
                self.close_connection = True
                return
            self.send_response_only(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                    self.send_header(name, value)
            length = answer.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length or str(len(data)))  # HEAD: the object's size
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _answer_error(self, error: S3Error, request: Request) -> None:
            body = error.body(f"FAULTPROXY{request.index + 1:08d}")
            self.send_response_only(error.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":  # S3 sends no body with a HEAD answer
                self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

    return Handler


@contextlib.contextmanager
def fault_proxy(upstream: str, base_path: str = "") -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, base_path=base_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


# --- reading the bucket as a node would (with credentials, as a CDN with origin access) -------------


def s3_fetcher(client: Any) -> Any:
    """A python-tuf fetcher for ``s3://bucket/key`` URLs through an authenticated boto3 client."""
    from tuf.api.exceptions import DownloadHTTPError
    from tuf.ngclient import FetcherInterface

    class S3Fetcher(FetcherInterface):
        def _fetch(self, url: str) -> Iterator[bytes]:
            parsed = urlparse(url)
            try:
                body = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
            except Exception as exc:
                status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
                raise DownloadHTTPError(f"{url}: {exc}", status) from None
            return iter(lambda: body.read(1 << 16), b"")

    return S3Fetcher()


@dataclass
class ClientView:
    """What a node sees: the newest update for the variant/arch, every image of it downloaded."""

    latest: str
    versions: list[str]
    snapshot_version: int


def node_view(client: Any, metadata_url: str, targets_url: str, root: bytes, work: Path,
              variant: str, arch: str, fetcher: Any = None) -> ClientView:
    """Read the repo with ngclient (full TUF verification), download manifest.json and the newest
    update's images (hash-checked by ngclient); raise if anything is missing or wrong.  ``fetcher``
    (a python-tuf FetcherInterface) replaces the S3 fetcher over ``client``, e.g. for file:// URLs."""
    import shutil

    from tuf.ngclient import Updater

    shutil.rmtree(work, ignore_errors=True)
    (work / "meta").mkdir(parents=True)
    (work / "dl").mkdir()
    updater = Updater(metadata_dir=str(work / "meta"), metadata_base_url=metadata_url,
                      target_base_url=targets_url, target_dir=str(work / "dl"),
                      fetcher=s3_fetcher(client) if fetcher is None else fetcher, bootstrap=root)
    updater.refresh()
    info = updater.get_targetinfo("manifest.json")
    assert info is not None, "manifest.json not listed"
    manifest = json.loads(Path(updater.download_target(info)).read_bytes())
    updates = [u for u in manifest["updates"] if (u["variant"], u["arch"]) == (variant, arch)]
    versions = sorted((u["version"] for u in updates), key=lambda v: tuple(int(x) for x in v.split(".")))
    newest = next(u for u in updates if u["version"] == versions[-1])
    for kind in ("boot", "root", "hash"):
        image = updater.get_targetinfo(newest["images"][kind])
        assert image is not None, f"{newest['images'][kind]} not listed"
        updater.download_target(image)
    snapshot = json.loads((work / "meta" / "snapshot.json").read_bytes())
    return ClientView(versions[-1], versions, snapshot["signed"]["version"])


def bucket_objects(client: Any, bucket: str) -> dict[str, str]:
    """Every key in ``bucket`` → its ETag."""
    result: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            result[item["Key"]] = item["ETag"]
    return result
