"""One TUF root walk, whichever adapter reads the repository (SPEC §3.5).

The walk asks for ``N+1.root.json`` until the answer is "not there" (a missing file, HTTP 403/404,
S3's 403/404) or, for the node as for tough, the request cannot reach the server at all (a refused
connection); any other failure to read it fails the load.  Every adapter reports these the same way:
the publisher reads through storage adapters (a directory, S3, HTTP), the node and the standard
client through the transport (a path, ``file://``, HTTP), and each is checked here with the same
answers to ``2.root.json`` of a quickstart repository whose newest root is version 1.  The standard
client (as python-tuf) and the publisher fail on a refused connection instead: the last two tests.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.config import Config

from repo_tool.config import load_config
from repo_tool.errors import IOFailedError
from repo_tool.node.tuf_client import MetadataSource
from repo_tool.publish.load import Location, load_live
from repo_tool.storage.base import LocalStorage
from repo_tool.storage.http import HttpStorage, RemoteDir
from repo_tool.storage.s3 import S3Storage
from repo_tool.storage.transport import Transport
from repo_tool.trust.verifier import Source, load_repo
from tests.repohelpers import ARCH, QS, VARIANT, serve_directory
from tests.s3helpers import PASS, Request, S3Error, fault_proxy

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

PROBE = "2.root.json"
BUCKET = "walk"
ACCESS_DENIED = S3Error(403, "AccessDenied", "Access Denied")


def _dead_port() -> int:
    """A port on 127.0.0.1 nobody listens on: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _OneNameElsewhere:
    """A source that reads ``PROBE`` through ``other`` (the same kind of adapter, built on another
    endpoint) and everything else through ``main``: a refused connection for that one request."""

    def __init__(self, main: Source, other: Source) -> None:
        self.main, self.other, self.url = main, other, main.url

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        return (self.other if name == PROBE else self.main).read(name, limit)

    def describe(self, name: str) -> str:
        return (self.other if name == PROBE else self.main).describe(name)


# Each HTTP adapter, built on a base URL (of the metadata directory).
HTTP_ADAPTERS: dict[str, Callable[[str], Source]] = {
    "node (RemoteDir over http)": lambda url: RemoteDir(url, Transport(tries=1)),
    "tuf-client (MetadataSource over http)": lambda url: MetadataSource(url, Transport(tries=1)),
    "publisher (HttpStorage)": lambda url: HttpStorage(url, Transport(tries=1)),
}
LOCAL_ADAPTERS: dict[str, Callable[[Path], Source]] = {
    "publisher (LocalStorage)": LocalStorage,
    "node (RemoteDir, plain path)": lambda path: RemoteDir(str(path), Transport()),
    "node (RemoteDir, file://)": lambda path: RemoteDir(path.as_uri(), Transport()),
    "tuf-client (MetadataSource, file://)": lambda path: MetadataSource(path.as_uri(), Transport()),
}


def _walked_to_one(source: Source, qs: QS) -> None:
    repo = load_repo(source, qs.root.read_bytes(), time.time_ns())
    assert [root.version for root in repo.roots] == [1]
    assert repo.timestamp.version >= 1


@pytest.mark.parametrize("adapter", list(LOCAL_ADAPTERS))
def test_local_adapters(qs: QS, adapter: str) -> None:
    """Missing: the walk ends.  A file that cannot be read (here a directory in its place): the load
    fails naming it, through each local adapter alike."""
    source = LOCAL_ADAPTERS[adapter](qs.meta)
    _walked_to_one(source, qs)
    (qs.meta / PROBE).mkdir()
    with pytest.raises(IOFailedError, match=PROBE):  # the read failed: I/O, not a bad repository
        load_repo(source, qs.root.read_bytes(), time.time_ns())


@pytest.mark.parametrize("answer", ["404", "403", "refused"])
@pytest.mark.parametrize("adapter", list(HTTP_ADAPTERS))
def test_http_adapters(qs: QS, adapter: str, answer: str) -> None:
    make = HTTP_ADAPTERS[adapter]
    statuses = {PROBE: int(answer)} if answer != "refused" else {}
    with serve_directory(qs.meta, statuses=statuses) as url:
        source = make(url + "/")
        if answer == "refused":
            source = _OneNameElsewhere(source, make(f"http://127.0.0.1:{_dead_port()}/"))
        _walked_to_one(source, qs)


def test_http_answers_other_than_not_found_fail_the_load(qs: QS) -> None:
    for make in HTTP_ADAPTERS.values():
        with serve_directory(qs.meta, statuses={PROBE: 401}) as url, \
                pytest.raises(IOFailedError, match=f"{PROBE}.*401"):
            load_repo(make(url + "/"), qs.root.read_bytes(), time.time_ns())


def _bucket(aws: MotoServer, qs: QS) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for path in qs.meta.iterdir():
        s3.put_object(Bucket=BUCKET, Key=f"m/{path.name}", Body=path.read_bytes())


def _s3(aws: MotoServer, endpoint: str) -> S3Storage:
    client = aws.client("s3", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1}))
    return S3Storage(client, BUCKET, "m/")


@pytest.mark.parametrize("answer", ["404", "403", "refused"])
def test_s3_adapter(aws: MotoServer, qs: QS, answer: str) -> None:
    """S3 answers 403 for a missing key to a reader without s3:ListBucket, 404 with it."""
    _bucket(aws, qs)

    def rule(request: Request) -> str | S3Error:
        return ACCESS_DENIED if request.key.endswith(f"/{PROBE}") else PASS

    with fault_proxy(aws.endpoint) as proxy:
        if answer == "403":
            proxy.reset(rule)
        source: Source = _s3(aws, proxy.url)
        if answer == "refused":
            source = _OneNameElsewhere(source, _s3(aws, f"http://127.0.0.1:{_dead_port()}"))
        _walked_to_one(source, qs)
        if answer != "refused":
            assert [r.key for r in proxy.requests][:1] == [f"/{BUCKET}/m/{PROBE}"]


def test_the_publisher_fails_closed_when_the_next_root_cannot_be_reached(qs: QS) -> None:
    """A node ends the walk on a refused connection (tough); a publisher must know the newest root
    before it signs anything with the keys a root lists, so its load fails naming the file."""
    location = Location.of(load_config(qs.config, None, None), VARIANT, ARCH)
    with serve_directory(qs.meta) as url:
        dead = HttpStorage(f"http://127.0.0.1:{_dead_port()}/", Transport(tries=1))
        meta = _OneNameElsewhere(HttpStorage(url + "/", Transport(tries=1)), dead)
        walked = load_repo(meta, qs.root.read_bytes(), time.time_ns())  # as a node
        assert [root.version for root in walked.roots] == [1]
        with pytest.raises(IOFailedError, match=rf"127\.0\.0\.1:\d+/{PROBE}: .*refused"):
            load_live(replace(location, meta=meta), time.time_ns())  # type: ignore[arg-type]


def test_the_standard_client_fails_closed_when_the_next_root_cannot_be_reached(qs: QS) -> None:
    """python-tuf ends the walk only on 403/404: someone who can refuse one connection (but cannot forge
    an answer over TLS) must not hide a root rotation.  tuf-client's naming does the same; the node
    keeps tough's rule (SPEC §3.5)."""
    with serve_directory(qs.meta) as url:
        dead = MetadataSource(f"http://127.0.0.1:{_dead_port()}/", Transport(tries=1))
        source = _OneNameElsewhere(MetadataSource(url + "/", Transport(tries=1)), dead)
        assert [root.version for root in load_repo(source, qs.root.read_bytes(), time.time_ns()).roots] == [1]
        with pytest.raises(IOFailedError, match=rf"{PROBE}: .*refused"):
            load_repo(source, qs.root.read_bytes(), time.time_ns(), naming="tuf")
