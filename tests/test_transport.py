"""The node transport against a real HTTP server on 127.0.0.1 (ThreadingHTTPServer in a thread).

The server's handler can be told to answer 503 a few times, drop the connection after N body bytes,
ignore Range, send endless data, answer given statuses or redirects; it records every request.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from repo_tool.errors import ConfigError, IOFailedError
from repo_tool.storage.http import RemoteDir
from repo_tool.storage.proxy import _no_proxy
from repo_tool.storage.transport import FetchError, Transport, form_encode


@dataclass
class Seen:
    path: str
    query: str
    range: str | None
    status: int = 0
    target: str = ""  # as sent on the request line (absolute through a proxy)
    proxy_auth: str | None = None
    authorization: str | None = None


@dataclass
class Behaviour:
    fail: int = 0  # answer 503 to this many requests
    drop_after: int | None = None  # close the connection after this many body bytes, once
    drop_always: bool = False  # ... every time
    ignore_range: bool = False
    bad_range_start: bool = False
    endless: bool = False  # 200 without Content-Length, data until the client leaves
    close_silently: bool = False  # close after each answer without saying Connection: close
    status: dict[str, int] = field(default_factory=dict)
    redirect: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        return [s.path for s in self.seen]


@dataclass
class Server:
    url: str
    root: Path
    behaviour: Behaviour

    def put(self, name: str, data: bytes) -> bytes:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data


def make_handler(root: Path, state: Behaviour) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with state.lock:
                state.connections += 1

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            seen = Seen(parts.path, parts.query, self.headers.get("Range"), target=self.path,
                        proxy_auth=self.headers.get("Proxy-Authorization"),
                        authorization=self.headers.get("Authorization"))
            with state.lock:
                state.seen.append(seen)
                failing = state.fail > 0
                state.fail -= failing
            name = unquote(parts.path.lstrip("/"))
            file = root / name
            if failing:
                seen.status = 503
                self.answer(503, b"busy")
            elif name in state.status:
                seen.status = state.status[name]
                self.answer(seen.status, b"no")
            elif name in state.redirect:
                seen.status = 302
                self.answer(302, headers={"Location": state.redirect[name]})
            elif state.endless and self.command == "GET":
                seen.status = 200
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    while True:
                        self.wfile.write(b"x" * 65536)
                except OSError:
                    pass
            elif not file.is_file():
                seen.status = 404
                self.answer(404, b"not found")
            else:
                self.send_file(file.read_bytes(), seen)
            if state.close_silently:
                self.close_connection = True

        def send_file(self, data: bytes, seen: Seen) -> None:
            start, headers = 0, {}
            wanted = self.headers.get("Range")
            if wanted and not state.ignore_range:
                start = int(wanted.removeprefix("bytes=").rstrip("-"))
                shown = start + 1 if state.bad_range_start else start
                headers["Content-Range"] = f"bytes {shown}-{len(data) - 1}/{len(data)}"
            seen.status = 206 if "Content-Range" in headers else 200
            body = data[start:]
            with state.lock:
                drop = state.drop_after
                if not state.drop_always:
                    state.drop_after = None
            if drop is None or drop >= len(body):
                self.answer(seen.status, body, headers)
                return
            self.send_response(seen.status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    return Handler


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client that left is part of the tests
            super().handle_error(request, client_address)


@contextmanager
def serving(httpd: ThreadingHTTPServer) -> Iterator[int]:
    """Run ``httpd`` in a thread; yield its port."""
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@contextmanager
def serve(root: Path, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    """The test server for ``root`` on 127.0.0.1 (HTTPS with ``tls``)."""
    state = Behaviour()
    httpd = QuietServer(("127.0.0.1", 0), make_handler(root, state))
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    with serving(httpd) as port:
        yield Server(f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}", root, state)


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as made:
        yield made


@pytest.fixture
def transport() -> Iterator[Transport]:
    with Transport() as made:
        yield made


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff sleeps are recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr("repo_tool.storage.transport.time.sleep", slept.append)
    return slept


# --- query parameters (SPEC §9.4) ------------------------------------------------------------------


def test_query_is_sorted_and_form_urlencoded(server: Server) -> None:
    server.put("metadata/timestamp.json", b"{}")
    with Transport({"version": "1.19.0", "seed": "123"}) as transport:
        metadata = RemoteDir(server.url + "/metadata", transport)
        assert metadata.read("timestamp.json") == b"{}"
        transport.query["target"] = "1.20.0"
        transport.query["migrations"] = "migrate_v1.20.0_a.lz4,manifest.json"
        assert metadata.read("timestamp.json") == b"{}"
        described = metadata.describe("timestamp.json")
    assert [s.query for s in server.behaviour.seen] == [
        "seed=123&version=1.19.0",
        "migrations=migrate_v1.20.0_a.lz4%2Cmanifest.json&seed=123&target=1.20.0&version=1.19.0",
    ]
    assert described == (f"{server.url}/metadata/timestamp.json?migrations=migrate_v1.20.0_a.lz4%2Cmanifest.json"
                         "&seed=123&target=1.20.0&version=1.19.0")


def test_form_encoding_matches_the_url_crate() -> None:
    assert form_encode("a b,c~d*e-f.g_h/é") == "a+b%2Cc%7Ed*e-f.g_h%2F%C3%A9"
    assert Transport({"b": "2", "a": "1"}).with_query("http://h/x") == "http://h/x?a=1&b=2"
    assert Transport({"a": "1"}).with_query("http://h/x?z=0") == "http://h/x?z=0&a=1"
    assert Transport().with_query("http://h/x") == "http://h/x"


def test_names_are_percent_quoted_keeping_slashes(server: Server, transport: Transport) -> None:
    server.put("targets/sub dir/a b+c.json", b"spaced")
    targets = RemoteDir(server.url + "/targets/", transport)
    assert targets.url == server.url + "/targets/"
    assert targets.read("sub dir/a b+c.json") == b"spaced"
    assert server.behaviour.seen[0].path == "/targets/sub%20dir/a%20b%2Bc.json"


def test_file_urls_and_plain_paths_get_no_query(tmp_path: Path) -> None:
    (tmp_path / "sub dir").mkdir()
    (tmp_path / "sub dir" / "a b.json").write_bytes(b"local")
    with Transport({"seed": "1"}) as transport:
        for base in (str(tmp_path), tmp_path.as_uri(), tmp_path.as_uri() + "/"):
            directory = RemoteDir(base, transport)
            assert directory.read("sub dir/a b.json") == b"local"
            assert directory.read("missing.json") is None
            assert directory.read("sub dir/a b.json/below") is None
            assert "?" not in directory.describe("sub dir/a b.json")
            chunks = directory.stream("sub dir/a b.json", 5, chunk=2)
            assert chunks is not None and list(chunks) == [b"lo", b"ca", b"l"]
            with pytest.raises(FetchError, match="exceeds the 4-byte limit"):
                directory.read("sub dir/a b.json", 4)
        assert transport.requests == 0
    with pytest.raises(ConfigError, match="unsupported URL scheme 'ftp'"):
        RemoteDir("ftp://example.com/repo", Transport())


# --- not found, retries, backoff -------------------------------------------------------------------


@pytest.mark.parametrize("status", [403, 404, 410])
def test_403_404_410_are_not_found_and_not_retried(server: Server, transport: Transport, status: int) -> None:
    server.put("present.json", b"here")
    server.behaviour.status["gone.json"] = status
    remote = RemoteDir(server.url, transport)
    assert remote.read("gone.json") is None
    assert remote.stream("gone.json", 10) is None
    assert remote.read("missing.json") is None
    assert remote.read("present.json") == b"here"
    assert [s.status for s in server.behaviour.seen] == [status, status, 404, 200]
    assert transport.connections == 1  # error bodies are read so the connection stays usable


def test_5xx_is_retried_with_backoff(server: Server, transport: Transport, sleeps: list[float]) -> None:
    server.put("timestamp.json", b"ok")
    server.behaviour.fail = 3
    assert transport.fetch(server.url + "/timestamp.json", 100) == b"ok"
    assert [s.status for s in server.behaviour.seen] == [503, 503, 503, 200]
    assert sleeps == [0.1, pytest.approx(0.15), pytest.approx(0.225)]


def test_backoff_is_capped_at_one_second(server: Server, sleeps: list[float]) -> None:
    server.behaviour.fail = 100
    with Transport(tries=9) as transport, pytest.raises(FetchError) as caught:
        transport.fetch(server.url + "/x", 10)
    assert caught.value.started
    assert sleeps == pytest.approx([0.1, 0.15, 0.225, 0.3375, 0.50625, 0.759375, 1.0, 1.0])


def test_5xx_fails_after_the_tries(server: Server, transport: Transport, sleeps: list[float]) -> None:
    server.behaviour.fail = 100
    url = server.url + "/timestamp.json"
    with pytest.raises(FetchError, match=r"timestamp\.json: HTTP 503 Service Unavailable \(tried 4 times\)") as caught:
        transport.fetch(url, 100)
    assert isinstance(caught.value, IOFailedError) and caught.value.exit_code == 1  # I/O failed, not a bad repo
    assert caught.value.started
    assert len(server.behaviour.seen) == 4


def test_other_client_errors_are_not_retried(server: Server, transport: Transport) -> None:
    server.behaviour.status["bad.json"] = 400
    with pytest.raises(FetchError, match=r"bad\.json: HTTP 400 Bad Request$"):
        transport.fetch(server.url + "/bad.json", 100)
    assert len(server.behaviour.seen) == 1


def test_redirects_are_followed(server: Server, transport: Transport) -> None:
    server.put("real/file.json", b"moved")
    server.behaviour.redirect["file.json"] = "/real/file.json"
    assert transport.fetch(server.url + "/file.json", 100) == b"moved"
    assert server.behaviour.paths() == ["/file.json", "/real/file.json"]


def test_connection_refused_has_not_started(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with Transport(tries=3) as transport, pytest.raises(FetchError, match="Connection refused") as caught:
        transport.fetch(f"http://127.0.0.1:{port}/1.root.json", 100)
    assert caught.value.started is False
    assert caught.value.within("root").started is False
    assert len(sleeps) == 2 and transport.requests == 0


def test_read_timeout_is_retried_and_has_started(sleeps: list[float]) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections (kernel backlog), never answers
        port = silent.getsockname()[1]
        t0 = time.monotonic()
        with Transport(timeout=0.2, tries=2) as transport, pytest.raises(FetchError, match="timed out") as caught:
            transport.fetch(f"http://127.0.0.1:{port}/timestamp.json", 100)
    assert caught.value.started is True
    assert transport.requests == 2 and transport.connections == 2
    assert 0.4 <= time.monotonic() - t0 < 5


# --- resuming dropped answers ----------------------------------------------------------------------


def test_dropped_answer_resumes_with_range(server: Server, transport: Transport, sleeps: list[float]) -> None:
    data = server.put("image.lz4", os.urandom(3_000_000))
    server.behaviour.drop_after = 1_000_000
    assert transport.fetch(server.url + "/image.lz4", len(data)) == data
    assert [(s.range, s.status) for s in server.behaviour.seen] == [(None, 200), ("bytes=1000000-", 206)]
    assert sleeps == [0.1]

    server.behaviour.seen.clear()
    server.behaviour.drop_after = 123_457
    chunks = transport.stream(server.url + "/image.lz4", len(data), chunk=65536)
    assert chunks is not None
    pieces = list(chunks)
    assert b"".join(pieces) == data and max(map(len, pieces)) <= 65536
    assert [s.range for s in server.behaviour.seen] == [None, "bytes=123457-"]


def test_server_ignoring_range_is_skipped_ahead(server: Server, transport: Transport, sleeps: list[float]) -> None:
    data = server.put("image.lz4", os.urandom(2_500_000))
    server.behaviour.drop_after = 1_700_001
    server.behaviour.ignore_range = True
    chunks = transport.stream(server.url + "/image.lz4", len(data), chunk=1 << 20)
    assert chunks is not None and b"".join(chunks) == data
    assert [(s.range, s.status) for s in server.behaviour.seen] == [(None, 200), ("bytes=1700001-", 200)]


def test_wrong_content_range_is_refused(server: Server, transport: Transport, sleeps: list[float]) -> None:
    server.put("image.lz4", os.urandom(100_000))
    server.behaviour.drop_after = 5000
    server.behaviour.bad_range_start = True
    with pytest.raises(FetchError, match=r"from 5000 on, the server sent Content-Range 'bytes 5001-99999/100000'"):
        transport.fetch(server.url + "/image.lz4", 100_000)


def test_truncated_every_time_fails_after_the_tries(server: Server, transport: Transport,
                                                    sleeps: list[float]) -> None:
    data = server.put("snapshot.json", os.urandom(10_000))
    server.behaviour.drop_after = 1000
    server.behaviour.drop_always = True
    with pytest.raises(FetchError, match=r"truncated answer \(1000 of 7000 bytes\) \(tried 4 times\)"):
        transport.fetch(server.url + "/snapshot.json", len(data))
    assert [s.range for s in server.behaviour.seen] == [None, "bytes=1000-", "bytes=2000-", "bytes=3000-"]


# --- limits ----------------------------------------------------------------------------------------


def test_limit_exceeded(server: Server, transport: Transport) -> None:
    data = server.put("root.json", os.urandom(5000))
    url = server.url + "/root.json"
    assert transport.fetch(url, 5000) == data
    with pytest.raises(FetchError, match=rf"^{url}: the answer exceeds the 4999-byte limit$"):
        transport.fetch(url, 4999)


@pytest.mark.parametrize("chunk", [1000, 1 << 20])
def test_endless_data_stops_at_the_limit(server: Server, transport: Transport, chunk: int) -> None:
    server.behaviour.endless = True
    url = server.url + "/timestamp.json"
    with pytest.raises(FetchError, match="exceeds the 1048576-byte limit"):
        transport.fetch(url, 1 << 20)
    chunks = transport.stream(url, 10_000, chunk=chunk)
    assert chunks is not None
    got: list[int] = []
    with pytest.raises(FetchError, match="exceeds the 10000-byte limit"):
        got.extend(len(piece) for piece in chunks)
    assert sum(got) <= 10_000


# --- connections -----------------------------------------------------------------------------------


def test_connections_are_kept_alive(server: Server, transport: Transport) -> None:
    names = [f"{n}.root.json" for n in range(1, 6)]
    for name in names:
        server.put(name, name.encode())
    remote = RemoteDir(server.url, transport)
    for name in names:
        assert remote.read(name, 1024) == name.encode()
    assert remote.read("6.root.json") is None
    empty = server.put("empty.json", b"")
    assert remote.read("empty.json") == empty
    assert transport.requests == len(server.behaviour.seen) == 7
    assert transport.connections == server.behaviour.connections == 1


def test_abandoned_stream_closes_its_connection(server: Server, transport: Transport) -> None:
    data = server.put("big", os.urandom(3 << 20))
    chunks = transport.stream(server.url + "/big", len(data), chunk=1 << 16)
    assert chunks is not None
    next(chunks)
    chunks.close()  # type: ignore[attr-defined]
    assert transport.fetch(server.url + "/big", len(data)) == data
    assert transport.connections == 2


def test_closed_idle_connection_is_replaced_without_a_try(server: Server, transport: Transport,
                                                          sleeps: list[float]) -> None:
    server.put("a.json", b"a")
    server.behaviour.close_silently = True
    remote = RemoteDir(server.url, transport)
    assert remote.read("a.json") == b"a"
    threading.Event().wait(0.05)  # the server has closed it meanwhile (time.sleep is patched)
    assert remote.read("a.json") == b"a"
    assert sleeps == [] and transport.connections == 2


def test_threads_share_the_transport(server: Server, transport: Transport) -> None:
    files = {f"t{n}": server.put(f"t{n}", os.urandom(10_000 + n)) for n in range(40)}
    remote = RemoteDir(server.url, transport)
    failures: list[str] = []

    def work(names: list[str]) -> None:
        for name in names:
            if remote.read(name, 20_000) != files[name]:
                failures.append(name)

    threads = [threading.Thread(target=work, args=(list(files)[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert transport.requests == 40 and transport.connections <= 4


# --- HTTPS and proxies -----------------------------------------------------------------------------


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a self-signed certificate for localhost, trusted through SSL_CERT_FILE."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@contextmanager
def connect_proxy() -> Iterator[tuple[str, list[str]]]:
    """A CONNECT proxy on 127.0.0.1: yields its URL and the list of CONNECT targets it was asked for."""
    targets: list[str] = []

    class Tunnel(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_CONNECT(self) -> None:
            targets.append(self.path)
            host, port = self.path.rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            self.send_response(200, "Connection established")
            self.end_headers()
            self.close_connection = True

            def pipe(source: socket.socket, sink: socket.socket) -> None:
                try:
                    while data := source.recv(65536):
                        sink.sendall(data)
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

            back = threading.Thread(target=pipe, args=(upstream, self.connection))
            back.start()
            pipe(self.connection, upstream)
            back.join()
            upstream.close()

    with serving(QuietServer(("127.0.0.1", 0), Tunnel)) as port:
        yield f"127.0.0.1:{port}", targets  # no scheme: http:// is the default


def test_https_through_a_connect_proxy(tmp_path: Path, tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(tmp_path, tls) as origin, connect_proxy() as (proxy, tunnels):
        origin.put("timestamp.json", b"secure")
        monkeypatch.setenv("HTTPS_PROXY", proxy)
        with Transport({"seed": "1"}) as transport:
            remote = RemoteDir(origin.url, transport)
            assert remote.read("timestamp.json") == b"secure"
            assert remote.read("timestamp.json") == b"secure"
            assert transport.connections == 1
        assert tunnels == [origin.url.removeprefix("https://")]
        assert [s.target for s in origin.behaviour.seen] == ["/timestamp.json?seed=1"] * 2

        monkeypatch.setenv("NO_PROXY", "example.com,localhost")
        with Transport() as transport:
            assert transport.fetch(origin.url + "/timestamp.json", 100) == b"secure"
        assert len(tunnels) == 1


def test_https_refuses_an_untrusted_certificate(tmp_path: Path, tls: ssl.SSLContext,
                                                monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    with serve(tmp_path, tls) as origin:
        origin.put("timestamp.json", b"secure")
        monkeypatch.delenv("SSL_CERT_FILE")
        with Transport(tries=2) as transport, pytest.raises(FetchError, match="CERTIFICATE_VERIFY_FAILED") as caught:
            transport.fetch(origin.url + "/timestamp.json", 100)
        assert caught.value.started is False
        assert origin.behaviour.seen == []


def test_http_proxy_gets_the_absolute_url(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    server.put("metadata/timestamp.json", b"proxied")
    monkeypatch.setenv("HTTP_PROXY", server.url.replace("http://", "http://user:p%40ss@"))
    with Transport({"seed": "7"}) as transport:
        assert transport.fetch("http://updates.example:8080/metadata/timestamp.json", 100) == b"proxied"
    (seen,) = server.behaviour.seen
    assert seen.target == "http://updates.example:8080/metadata/timestamp.json?seed=7"
    assert seen.proxy_auth == "Basic dXNlcjpwQHNz"  # user:p@ss


# A plain-HTTP proxy in a process of its own: it answers every request with a 302 to the URL given on its
# command line, and prints one line per request: the request line's target and the Proxy-Authorization
# it received ("-" for none).
_REDIRECTING_PROXY = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        print(self.path, self.headers.get("Proxy-Authorization") or "-", flush=True)
        self.send_response(302)
        self.send_header("Location", sys.argv[1])
        self.send_header("Content-Length", "0")
        self.end_headers()

httpd = HTTPServer(("127.0.0.1", 0), Proxy)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"""


@contextmanager
def redirecting_proxy(location: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """The proxy process above on 127.0.0.1; yields its port and the process (its stdout: the requests)."""
    proc = subprocess.Popen([sys.executable, "-c", _REDIRECTING_PROXY, location], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline()), proc
    finally:
        proc.kill()
        proc.wait()


def test_proxy_credentials_are_not_sent_past_the_proxy_on_a_redirect(server: Server,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxy answers 302 to a host NO_PROXY lists: that host is asked directly, and must not receive
    the proxy's credentials (urllib3 and reqwest strip them; they belong to the proxy alone)."""
    server.put("metadata/timestamp.json", b"direct")
    with redirecting_proxy(server.url + "/metadata/timestamp.json") as (port, proc):
        monkeypatch.setenv("HTTP_PROXY", f"http://user:secret@127.0.0.1:{port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        with Transport({"seed": "7"}) as transport:
            assert transport.fetch("http://updates.example/metadata/timestamp.json", 100) == b"direct"
        proc.kill()
        assert proc.stdout is not None
        asked = proc.stdout.read().splitlines()
    assert asked == ["http://updates.example:80/metadata/timestamp.json?seed=7 Basic dXNlcjpzZWNyZXQ="]  # user:secret
    (seen,) = server.behaviour.seen
    assert (seen.target, seen.proxy_auth) == ("/metadata/timestamp.json", None)


def test_authorization_is_dropped_on_a_cross_origin_redirect(server: Server, tmp_path: Path) -> None:
    """A credential given for one origin (scheme, host, port) stays with it: kept on a redirect within
    it, dropped once a redirect leads to another."""
    other_root = tmp_path / "other"
    other_root.mkdir()
    with serve(other_root) as other:
        other.put("file", b"elsewhere")
        server.put("file", b"here")
        server.behaviour.redirect["same"] = "/file"
        server.behaviour.redirect["away"] = other.url + "/file"
        with Transport() as transport:
            for name in ("same", "away"):
                _, conn, response = transport._exchange("GET", f"{server.url}/{name}", {"Authorization": "Bearer t"})
                response.read()
                conn.close()
    assert [(s.path, s.authorization) for s in server.behaviour.seen] == [
        ("/same", "Bearer t"), ("/file", "Bearer t"), ("/away", "Bearer t")]
    assert [(s.path, s.authorization) for s in other.behaviour.seen] == [("/file", None)]


def test_no_proxy_matching() -> None:
    rules = "example.com, .internal,10.0.0.0/8,::1"
    assert _no_proxy("example.com", rules) and _no_proxy("cdn.example.com", rules)
    assert not _no_proxy("badexample.com", rules)
    assert _no_proxy("a.internal", rules) and _no_proxy("internal", rules)
    assert _no_proxy("10.1.2.3", rules) and _no_proxy("::1", rules) and not _no_proxy("11.0.0.1", rules)
    assert _no_proxy("anything", "*") and not _no_proxy("anything", "")


# --- sizes (HEAD) ----------------------------------------------------------------------------------


def test_size_from_a_head_request(server: Server, transport: Transport, sleeps: list[float]) -> None:
    data = server.put("targets/abc.root.ext4.lz4", os.urandom(12345))
    server.behaviour.status["targets/gone"] = 410
    server.behaviour.fail = 2
    remote = RemoteDir(server.url + "/targets", transport)
    assert transport.size(remote.location("abc.root.ext4.lz4")) == len(data)
    assert transport.size(remote.location("missing")) is None
    assert transport.size(remote.location("gone")) is None
    assert remote.read("abc.root.ext4.lz4") == data
    assert [s.status for s in server.behaviour.seen] == [503, 503, 200, 404, 410, 200]
    assert transport.connections == 1


def test_size_of_local_files(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"12345")
    transport = Transport()
    assert transport.size(str(tmp_path / "a")) == 5
    assert transport.size((tmp_path / "a").as_uri()) == 5
    assert transport.size(str(tmp_path / "missing")) is None
    assert transport.size(str(tmp_path)) is None


# --- the publisher's read-only HTTP storage uses the same transport --------------------------------


def test_http_storage_reads_through_the_transport(server: Server, sleeps: list[float]) -> None:
    from repo_tool.storage.base import StorageError, TooLargeError
    from repo_tool.storage.http import HttpStorage

    server.put("metadata/aws-k8s/x86_64/timestamp.json", b'{"signed": {}}')
    storage = HttpStorage(server.url + "/metadata").child("aws-k8s", "x86_64")
    assert storage.describe("timestamp.json") == f"{server.url}/metadata/aws-k8s/x86_64/timestamp.json"
    server.behaviour.fail = 1
    assert storage.read("timestamp.json") == b'{"signed": {}}'
    assert storage.size("timestamp.json") == 14
    assert storage.read("1.root.json") is None and storage.size("1.root.json") is None
    # Too large: the object is wrong, not the connection (as local and S3 storage say it: TooLargeError).
    with pytest.raises(TooLargeError, match=r"timestamp\.json: the answer exceeds the 10-byte limit$"):
        storage.read("timestamp.json", 10)
    assert server.behaviour.connections == 1
    with pytest.raises(StorageError, match="read-only"):
        storage.create("timestamp.json", b"{}")
