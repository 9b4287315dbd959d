"""The node client's transport: HTTP(S), ``file://`` URLs and local paths (SPEC §9.4, §9.5).

Mirrors tough's HTTP transport with the settings updog uses: every http(s) URL carries the node's
query parameters (sorted by key, form-urlencoded); 30 s read and 10 s connect timeouts; 4 tries with a
backoff of 100 ms growing ×1.5 up to 1 s for connection errors, timeouts and 5xx answers; an answer
cut off mid-body is resumed with ``Range: bytes=N-``; 403, 404 and 410 mean "not found".  Every read
is bounded: more than ``limit`` bytes is an error (tough's protection against endless data).
Connections are kept alive and shared by all threads, one request at a time on each.  Proxies come
from the environment as in reqwest: ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` (http:// proxies,
CONNECT tunnels for https) and ``NO_PROXY`` (updog exports the first and the last from updog.toml),
read by :mod:`repo_tool.storage.proxy`.

This is the client only: named files under a base URL are :class:`repo_tool.storage.http.RemoteDir`.
It knows nothing of TUF, and nothing it raises says more than what happened to one URL.
"""

from __future__ import annotations

import http.client
import re
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO
from urllib.parse import SplitResult, urljoin, urlsplit
from urllib.request import url2pathname

from repo_tool.errors import ConfigError, IOFailedError, UnreachableError
from repo_tool.storage.base import ReadErrors, limited_chunks
from repo_tool.storage.proxy import Proxies, proxy_headers

NOT_FOUND = frozenset({403, 404, 410})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
BACKOFF, BACKOFF_FACTOR, MAX_BACKOFF = 0.1, 1.5, 1.0
CHUNK = 1 << 20
IDLE_PER_HOST = 8
USER_AGENT = "repo-tool"
_FORM_SAFE = frozenset(b"*-._0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")
# A kept-alive connection the server has closed meanwhile fails like this before any answer.
_STALE = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.RemoteDisconnected)

_Key = tuple[str, str, int]


class FetchError(IOFailedError):
    """A download failed: too large, truncated, refused, or still failing after every try."""

    started = True  # a connection was made: the server was asked


class AnswerTooLargeError(FetchError):
    """More bytes than the most that may be read (a target's signed length, tough's role limits): what
    the server holds is wrong, so reading it again would not help."""


class NotConnectedError(FetchError, UnreachableError):
    """No connection could be made at all, on any try (the TUF root walk then stops)."""

    started = False


class _Retry(Exception):
    """One try failed in a way worth trying again; ``connected`` says whether a connection was made."""

    def __init__(self, reason: str, connected: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.connected = connected


def form_encode(text: str) -> str:
    """``application/x-www-form-urlencoded`` as the url crate writes it (``,`` → ``%2C``, space → ``+``)."""
    return "".join(chr(b) if b in _FORM_SAFE else "+" if b == 0x20 else f"%{b:02X}" for b in text.encode())


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, http.client.IncompleteRead):  # its str() is its repr, class name and all
        return f"connection closed after {len(exc.partial)} bytes of the body"
    text = getattr(exc, "strerror", None) or str(exc)
    return text or "the connection failed"


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(parts: SplitResult, default: int) -> int:
    try:
        return parts.port or default
    except ValueError:
        raise ConfigError(f"{parts.geturl()}: invalid port") from None


def _too_large(url: str, limit: int) -> FetchError:
    return AnswerTooLargeError(f"{url}: the answer exceeds the {limit}-byte limit")


def _local_path(url: str) -> Path | None:
    """The file a ``file://`` URL or plain path names; None for http(s)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(f"{url}: file URLs must name a local file (file:///PATH)")
        return Path(url2pathname(parts.path))
    if parts.scheme == "":
        return Path(url)
    raise ConfigError(f"{url}: unsupported URL scheme {parts.scheme!r} (expected http, https or file)")


def _open_file(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _file_failed(path, exc) from None


def _file_failed(path: Path, exc: BaseException) -> FetchError:
    return FetchError(f"{path}: {getattr(exc, 'strerror', None) or exc}")


class Transport:
    """Fetches URLs for one node run; ``query`` is sent with every http(s) request and may change
    between requests.  ``requests`` and ``connections`` count what was actually sent and opened.
    Proxy settings are read from the environment when the transport is made."""

    def __init__(self, query: Mapping[str, str] | None = None, timeout: float = 30, connect_timeout: float = 10,
                 tries: int = 4) -> None:
        if tries < 1:
            raise ConfigError(f"tries must be at least 1, not {tries}")
        self.query: dict[str, str] = dict(query or {})
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.tries = tries
        self.requests = 0
        self.connections = 0
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._tls: ssl.SSLContext | None = None
        self._proxies = Proxies()

    def with_query(self, url: str) -> str:
        """``url`` as it is requested: http(s) URLs get the query parameters, sorted by key."""
        if not self.query or urlsplit(url).scheme not in ("http", "https"):
            return url
        encoded = "&".join(f"{form_encode(k)}={form_encode(v)}" for k, v in sorted(self.query.items()))
        return f"{url}{'&' if '?' in url else '?'}{encoded}"

    def fetch(self, url: str, limit: int | None) -> bytes | None:
        """The whole body at ``url``; None if not found; FetchError beyond ``limit`` bytes or on failure."""
        chunks = self.stream(url, limit)
        return None if chunks is None else b"".join(chunks)

    def stream(self, url: str, limit: int | None, chunk: int = CHUNK) -> Iterator[bytes] | None:
        """The body at ``url`` in pieces of at most ``chunk`` bytes, or None if not found.

        The first request is sent before this returns; the iterator resumes dropped answers and raises
        FetchError once more than ``limit`` bytes arrive.  Closing it early closes its connection.
        """
        path = _local_path(url)
        if path is not None:
            handle = _open_file(path)
            errors = ReadErrors(str(path), lambda exc: _file_failed(path, exc), _too_large)
            return None if handle is None else limited_chunks(handle, limit, chunk, errors)
        download = _Download(self, self.with_query(url), limit)
        return download.chunks(chunk) if download.start() else None

    def size(self, url: str) -> int | None:
        """The size of the file at ``url`` (Content-Length of a HEAD request), or None if not found."""
        path = _local_path(url)
        if path is not None:
            try:
                return path.stat().st_size if path.is_file() else None
            except (FileNotFoundError, NotADirectoryError):
                return None
            except OSError as exc:
                raise _file_failed(path, exc) from None
        head = _Download(self, self.with_query(url), None, "HEAD")
        if not head.start():
            return None
        head._done()
        if head.expect is None:
            raise FetchError(f"{head.url}: no Content-Length in the answer")
        return head.expect

    def close(self) -> None:
        """Close the idle kept-alive connections."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- connections -----------------------------------------------------------------------------

    def _connect(self, key: _Key) -> http.client.HTTPConnection:
        scheme, host, port = key
        proxy = self._proxies.for_host(scheme, host)
        address = (host, port) if proxy is None else (proxy.hostname or "", _port(proxy, 80))
        conn: http.client.HTTPConnection
        if scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            conn = http.client.HTTPSConnection(*address, timeout=self.connect_timeout, context=self._tls)
            if proxy is not None:
                conn.set_tunnel(host, port, headers=proxy_headers(proxy))
        else:
            conn = http.client.HTTPConnection(*address, timeout=self.connect_timeout)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise _Retry(_why(exc), connected=False) from None
        conn.sock.settimeout(self.timeout)
        with self._lock:
            self.connections += 1
        return conn

    def _take(self, key: _Key) -> http.client.HTTPConnection | None:
        with self._lock:
            conns = self._idle.get(key)
            return conns.pop() if conns else None

    def _give(self, key: _Key, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        """Keep ``conn`` for the next request if ``response`` was read to its end, else close it."""
        if response.length == 0 and not response.isclosed():
            response.read()  # an empty body: marks the answer finished
        if response.isclosed() and not response.will_close and conn.sock is not None:
            with self._lock:
                conns = self._idle.setdefault(key, [])
                if len(conns) < IDLE_PER_HOST:
                    conns.append(conn)
                    return
        conn.close()

    def _exchange(self, method: str, url: str, headers: Mapping[str, str]
                  ) -> tuple[_Key, http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one request and read the answer's head, following redirects.

        Each hop's headers are made afresh: ``Proxy-Authorization`` goes only to the proxy of that hop
        (in the request to a plain-HTTP proxy, in the CONNECT to an https one), never to a host the
        redirect leads to past the proxy; ``Authorization`` is dropped once a redirect leaves the
        origin (scheme, host, port) it was given for, as urllib3 and reqwest do."""
        origin: _Key | None = None
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError(f"{url}: cannot follow a redirect to a non-HTTP URL")
            key = (parts.scheme, parts.hostname, _port(parts, 443 if parts.scheme == "https" else 80))
            origin = origin or key
            if key != origin:
                headers = {name: value for name, value in headers.items() if name.lower() != "authorization"}
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            hop = dict(headers)
            proxy = self._proxies.for_host(key[0], key[1]) if parts.scheme == "http" else None
            if proxy is not None:  # a plain-HTTP proxy gets the absolute URL
                target = f"http://{_netloc(key[1], key[2])}{target}"
                hop.update(proxy_headers(proxy))
            conn, response = self._send(method, key, target, hop)
            location = response.getheader("Location")
            if response.status not in REDIRECTS or not location:
                return key, conn, response
            self._discard(key, conn, response)
            url = urljoin(url, location)
        raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")

    def _send(self, method: str, key: _Key, target: str, headers: Mapping[str, str]
              ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        conn = self._take(key)
        while True:
            reused = conn is not None
            if conn is None:
                conn = self._connect(key)
            try:
                conn.request(method, target, headers={"User-Agent": USER_AGENT, **headers})
                with self._lock:
                    self.requests += 1
                return conn, conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if not (reused and isinstance(exc, _STALE)):
                    raise _Retry(_why(exc), connected=True) from None
                conn = None  # the server closed the idle connection: once more on a new one

    def _discard(self, key: _Key, conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        """Skip a small answer's body (error page, redirect) so the connection can be reused."""
        try:
            response.read(64 * 1024)
        except (OSError, http.client.HTTPException):
            conn.close()
            return
        self._give(key, conn, response)


class _Download:
    """One GET (or HEAD) with tough's retries; resumes from byte ``received`` after a dropped answer."""

    def __init__(self, transport: Transport, url: str, limit: int | None, method: str = "GET") -> None:
        self.transport = transport
        self.url = url
        self.limit = limit
        self.method = method
        self.received = 0  # body bytes handed out
        self.tries = 0
        self.delay = BACKOFF
        self.started = False
        self.key: _Key | None = None
        self.conn: http.client.HTTPConnection | None = None
        self.response: http.client.HTTPResponse | None = None
        self.expect: int | None = None  # Content-Length of the current answer
        self.got = 0  # bytes of the current answer read
        self.skip = 0  # bytes of the current answer already handed out (a server that ignored Range)

    def start(self) -> bool:
        """Send the request, retrying; False if the server says not found."""
        return self._retry(None)

    def _retry(self, failed: str | None) -> bool:
        """Tries until an answer starts; ``failed`` is why the previous try (a dropped answer) failed."""
        while True:
            if failed is not None:
                if self.tries >= self.transport.tries:
                    failure = FetchError if self.started else NotConnectedError
                    raise failure(f"{self.url}: {failed} (tried {self.tries} times)")
                time.sleep(self.delay)
                self.delay = min(self.delay * BACKOFF_FACTOR, MAX_BACKOFF)
            self.tries += 1
            try:
                return self._try()
            except _Retry as exc:
                self.started = self.started or exc.connected
                failed = exc.reason

    def _try(self) -> bool:
        headers = {"Range": f"bytes={self.received}-"} if self.received else {}
        key, conn, response = self.transport._exchange(self.method, self.url, headers)
        self.started = True
        status = response.status
        self.skip = 0
        if status == 200:
            self.skip = self.received
        elif status == 206 and self.received:
            match = _CONTENT_RANGE.fullmatch(response.getheader("Content-Range") or "")
            if match is None or int(match.group(1)) != self.received:
                conn.close()
                raise FetchError(f"{self.url}: asked for bytes from {self.received} on, the server sent "
                                 f"Content-Range {response.getheader('Content-Range')!r}")
        elif status >= 500:
            self.transport._discard(key, conn, response)
            raise _Retry(f"HTTP {status} {response.reason}", connected=True)
        elif status in NOT_FOUND and not self.received:
            self.transport._discard(key, conn, response)
            return False
        else:
            conn.close()
            raise FetchError(f"{self.url}: HTTP {status} {response.reason}")
        length = response.getheader("Content-Length")
        self.expect = int(length) if length is not None and length.isdigit() else None
        if self.expect is not None and self.limit is not None and self.expect - self.skip + self.received > self.limit:
            conn.close()
            raise _too_large(self.url, self.limit)
        self.key, self.conn, self.response, self.got = key, conn, response, 0
        return True

    def chunks(self, size: int) -> Iterator[bytes]:
        try:
            while True:
                data = self._read(size)
                if not data:
                    return
                yield data
        finally:
            if self.conn is not None:  # abandoned or failed mid-answer
                self.conn.close()
                self.conn = self.response = None

    def _read(self, size: int) -> bytes:
        while self.response is not None:
            want = size if self.limit is None else min(size, self.limit + 1 - self.received)
            if self.skip:
                want = min(size, self.skip)
            try:
                data = self.response.read(want)
            except (OSError, http.client.HTTPException) as exc:
                self._dropped(_why(exc))
                continue
            if not data:
                if self.expect is not None and self.got < self.expect:
                    self._dropped(f"truncated answer ({self.got} of {self.expect} bytes)")
                    continue
                self._done()
                break
            self.got += len(data)
            if self.expect is not None and self.got >= self.expect:
                self._done()
            if self.skip:
                dropped = min(self.skip, len(data))
                self.skip -= dropped
                data = data[dropped:]
                if not data:
                    continue
            self.received += len(data)
            if self.limit is not None and self.received > self.limit:
                raise _too_large(self.url, self.limit)
            return data
        return b""

    def _done(self) -> None:
        """The answer was read to its end: keep the connection for the next request."""
        assert self.key is not None and self.conn is not None and self.response is not None
        self.transport._give(self.key, self.conn, self.response)
        self.conn = self.response = None

    def _dropped(self, reason: str) -> None:
        assert self.conn is not None
        self.conn.close()
        self.conn = self.response = None
        if not self._retry(reason):
            raise FetchError(f"{self.url}: not found any more when resuming at byte {self.received}")

