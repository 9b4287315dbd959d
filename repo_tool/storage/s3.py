"""Amazon S3 (and S3-compatible) storage: ``s3://BUCKET/PREFIX/``.

The upload rules of SPEC §4 map onto S3 conditional writes:

* versioned metadata and hash-named targets are created with
  ``If-None-Match: *``, so an object is never replaced and two publishers
  cannot both create the same ``V.snapshot.json``;
* ``timestamp.json`` is replaced with ``If-Match: <ETag the publisher loaded>``,
  so exactly one of two concurrent publishers moves it;
* a target already present with the same key and size is skipped (its name
  carries its sha256), so a rerun sends nothing twice;
* large files go up as multipart uploads with parts sent in parallel; a failed
  upload is aborted, and the completion itself is conditional too.

Every object gets a ``Content-Type`` and a ``Cache-Control`` for a CDN in front:
immutable for everything but ``timestamp.json``, which is ``no-cache``.

Reads follow the publisher's needs, not a client's: a missing key (404) is
"not there"; 403 is "not there" only for the ``N.root.json`` probe (S3 answers
403 for a missing key when the caller lacks ``s3:ListBucket``), anything else
denied is an error rather than a repository that looks empty.

Only :func:`repo_tool.storage.open_storage` chooses this backend (a node never loads it); it stores
bytes by name and never parses them (a name only picks its headers).

One module, a little over 450 lines: it is one concept (this backend), and its reads, conditional
writes, multipart uploads and staged objects share the client, the key mapping, the remembered ETags
and the translation of botocore's errors; a split would have to export those private pieces.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypedDict
from urllib.parse import urlparse

from repo_tool.aws import AwsSettings, error_code, http_status, never_connected, reason
from repo_tool.errors import ConfigError, RepoToolError
from repo_tool.storage.base import (
    STREAM_CHUNK,
    ConflictError,
    ReadErrors,
    Sent,
    StorageError,
    StorageUnreachableError,
    already_sized,
    already_stored,
    limited_chunks,
    object_name,
    oversized,
)
from repo_tool.storage.staging import Staged

if TYPE_CHECKING:  # types-boto3[s3] (dev only)
    from types_boto3_s3.client import S3Client
    from types_boto3_s3.type_defs import CompletedPartTypeDef, GetObjectOutputTypeDef

MULTIPART_THRESHOLD = 16 * 1024 * 1024
MIN_PART_SIZE = 16 * 1024 * 1024
MAX_PARTS = 10_000
PART_JOBS = 8
STREAM_PART_SIZE = 8 * 1024 * 1024  # a streamed upload's parts (held in memory: smaller than a file's)
STREAM_PARTS_IN_FLIGHT = 4  # ... and how many are in memory and sent at once (measured, 300 MiB from a local file into
# moto: 2.4 s against upload_fileobj's 2.7-3.1 s, peak RSS 132 MiB; 8 at once was no faster and went past 150 MiB)

# Each part of a multipart upload carries its CRC32 (computed here, sent as the x-amz-checksum-crc32 header, so
# botocore neither computes one again nor frames the body as aws-chunked with a trailer), and the upload is
# created with ChecksumAlgorithm CRC32 (a composite checksum of the parts' CRC32s), as boto3's upload_fileobj
# does by default.  It adds a check by S3 of each part's bytes; the content is checked anyway (its sha256
# against signed metadata, before completion).  Without it S3 (and moto) keep a full-object CRC64NVME of
# their own, which moto computes by copying the whole object twice more: the mirror into moto spent ~1.6 s
# more of moto's CPU per GiB than upload_fileobj (bench/RESULTS.md, P7).
PART_CHECKSUM: Final = "CRC32"

IMMUTABLE = "public, max-age=31536000, immutable"
TIMESTAMP_CACHE = "no-cache"
# One pool for every multipart upload of the process: the files uploaded at once share it, so the
# parts in flight stay bounded however many storages (repos) are written.  Threads start on first use.
_PARTS = ThreadPoolExecutor(PART_JOBS, thread_name_prefix="s3-part")
_VERSIONED_JSON = re.compile(r"^[0-9]+\.(root|snapshot|targets)\.json$")
_ROOT_PROBE = re.compile(r"^[0-9]+\.root\.json$")
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def valid_bucket_name(name: str) -> bool:
    """A name S3 accepts for a bucket: 3-63 of a-z 0-9 . -, a letter or digit at each end, no ``..``."""
    return _BUCKET_NAME.match(name) is not None and ".." not in name
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}


class Headers(TypedDict):
    """The headers every object is written with."""

    ContentType: str
    CacheControl: str


class _Condition(TypedDict, total=False):
    IfNoneMatch: str
    IfMatch: str


def object_headers(name: str) -> Headers:
    """``ContentType`` and ``CacheControl`` for an object (SPEC §4 table)."""
    if name == "timestamp.json":
        return {"ContentType": "application/json", "CacheControl": TIMESTAMP_CACHE}
    if _VERSIONED_JSON.match(name):
        return {"ContentType": "application/json", "CacheControl": IMMUTABLE}
    return {"ContentType": "application/octet-stream", "CacheControl": IMMUTABLE}


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` → (``bucket``, ``some/prefix/``)."""
    parsed = urlparse(url)
    bucket = parsed.netloc
    if parsed.scheme != "s3" or not valid_bucket_name(bucket):
        raise ConfigError(f"storage URL {url!r}: expected s3://BUCKET/PREFIX/ with a valid bucket name")
    if parsed.query or parsed.fragment:
        raise ConfigError(f"storage URL {url!r}: no query or fragment allowed")
    prefix = parsed.path.strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise ConfigError(f"storage URL {url!r}: empty, '.' or '..' path segment")
    return bucket, f"{prefix}/" if prefix else ""


class S3Storage:
    """Objects under ``s3://bucket/prefix``."""

    writable = True

    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.url = f"s3://{bucket}/{prefix}"
        self._etags: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, aws: AwsSettings) -> S3Storage:
        bucket, prefix = parse_s3_url(url)
        return cls(aws.client("s3"), bucket, prefix)

    def child(self, *parts: str) -> S3Storage:
        for part in parts:
            self._key(part)
        return S3Storage(self.client, self.bucket, self.prefix + "".join(f"{p}/" for p in parts))

    def describe(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def _key(self, name: str) -> str:
        return self.prefix + object_name(name)

    def _fail(self, name: str, call: str, exc: BaseException) -> StorageError:
        hint = ""
        if http_status(exc) == 403:
            hint = (" (a publisher needs s3:GetObject, s3:PutObject and s3:ListBucket; without ListBucket "
                    "S3 answers 403 for a missing key)")
        elif error_code(exc) in _THROTTLED or http_status(exc) == 429:
            hint = (f" (throttled: gave up after {_attempts(exc)} attempts; run the command again later, or allow "
                    "more with AWS_MAX_ATTEMPTS)")
        kind = StorageUnreachableError if never_connected(exc) else StorageError
        return kind(f"{self.describe(name)}: S3 {call} failed: {reason(exc)}{hint}")

    # -- reads -------------------------------------------------------------------------------

    def _get(self, name: str) -> GetObjectOutputTypeDef | None:
        """GetObject's answer (body still to read), or None when the object is missing."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except Exception as exc:
            if self._missing(name, exc):
                return None
            raise self._fail(name, "GetObject", exc) from None
        return answer

    def read(self, name: str, limit: int | None = None) -> bytes | None:
        answer = self._get(name)
        if answer is None:
            return None
        body = answer["Body"]
        if limit is not None and int(answer.get("ContentLength") or 0) > limit:
            body.close()
            raise oversized(self.describe(name), limit)
        try:
            data: bytes = body.read() if limit is None else body.read(limit + 1)
        except Exception as exc:
            raise self._fail(name, "GetObject", exc) from None
        finally:
            body.close()
        if limit is not None and len(data) > limit:
            raise oversized(self.describe(name), limit)
        with self._lock:
            self._etags[name] = (data, str(answer.get("ETag", "")))
        return data

    def stream(self, name: str, limit: int, chunk: int = STREAM_CHUNK) -> Iterator[bytes] | None:
        answer = self._get(name)
        if answer is None:
            return None
        if int(answer.get("ContentLength") or 0) > limit:
            answer["Body"].close()
            raise oversized(self.describe(name), limit)
        return limited_chunks(answer["Body"], limit, chunk,
                              ReadErrors(self.describe(name), lambda exc: self._fail(name, "GetObject", exc)))

    def _missing(self, name: str, exc: BaseException) -> bool:
        code = error_code(exc)
        if code == "NoSuchBucket":
            return False
        if code in _NOT_FOUND or http_status(exc) == 404:
            return True
        return http_status(exc) == 403 and bool(_ROOT_PROBE.match(name))

    def size(self, name: str) -> int | None:
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._key(name))
        except Exception as exc:
            if self._missing(name, exc):
                return None
            raise self._fail(name, "HeadObject", exc) from None
        return int(answer["ContentLength"])

    def list_dirs(self) -> list[str]:
        """The common prefixes right below this prefix (ListObjectsV2, Delimiter "/"), as names."""
        names: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, Delimiter="/")
            for page in pages:
                for common in page.get("CommonPrefixes") or []:
                    name = str(common["Prefix"])[len(self.prefix):].rstrip("/")
                    if name and "/" not in name:
                        names.append(name)
        except Exception as exc:
            hint = " (listing needs s3:ListBucket)" if http_status(exc) == 403 else ""
            raise StorageError(f"{self.url}: S3 ListObjectsV2 failed: {reason(exc)}{hint}") from None
        return sorted(names)

    # -- writes ------------------------------------------------------------------------------

    def create(self, name: str, data: bytes) -> bool:
        """Write-once.  True if written; False if identical bytes were already there."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data, IfNoneMatch="*",
                                   **object_headers(name))
            return True
        except Exception as exc:
            if not _precondition(exc):
                raise self._fail(name, "PutObject", exc) from None
        return already_stored(self, name, data)

    def put_file(self, name: str, path: Path, size: int, sent: Sent | None = None) -> bool:
        """Upload ``path`` unless an object of the same size is there (content-addressed names)."""

        def send() -> None:
            if size < MULTIPART_THRESHOLD:
                self._put_small(name, _read_exactly(path, 0, size, size), sent)
            else:
                self._multipart(name, size, lambda upload: self._file_parts(upload, path, sent))

        return self._put_new(name, size, send)

    def put_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Sent | None = None) -> bool:
        """Upload chunks produced elsewhere (see :class:`~repo_tool.storage.staging.Streamable`): staged,
        then committed at once (one streamed upload path, a few parts in flight so memory stays bounded)."""
        staged = self.stage_stream(name, chunks, size, sent)
        return False if staged is None else staged.commit()

    def stage_stream(self, name: str, chunks: Iterable[bytes], size: int, sent: Sent | None = None
                     ) -> Staged | None:
        """Take the chunks as :meth:`put_stream` does but leave the object unseen: a multipart upload
        whose parts are all sent but not completed (see :class:`~repo_tool.storage.staging.StagedBatch`).
        Small objects too (one part): a first mirror stages hundreds of migrations of a few MiB each,
        which must not wait in memory."""
        existing = self.size(name)
        if existing is not None:
            already_sized(self, name, existing, size)
            return None
        try:
            upload = self._create_upload(name, size, STREAM_PART_SIZE)
        except Exception as exc:
            raise self._fail(name, "CreateMultipartUpload", exc) from None
        staged = _S3Staged(self, name, size, upload=upload)
        try:
            staged.parts = self._stream_parts(upload, chunks, sent)
        except BaseException as exc:
            staged.discard()
            if isinstance(exc, Exception) and not isinstance(exc, RepoToolError):
                raise self._fail(name, "UploadPart", exc) from None
            raise
        return staged

    def _put_new(self, name: str, size: int, send: Callable[[], None]) -> bool:
        """Write-once upload of a content-addressed object by ``send`` unless it is there with ``size`` bytes."""
        existing = self.size(name)
        if existing is not None:
            return already_sized(self, name, existing, size)
        try:
            send()
        except RepoToolError:
            raise
        except Exception as exc:  # botocore's (some of its network errors are OSErrors too)
            if not _precondition(exc):
                raise self._fail(name, "upload", exc) from None
            # Someone else stored it between our check and our write: fine if it is the same size.
            return already_sized(self, name, self.size(name), size)
        return True

    def _put_small(self, name: str, data: bytes, sent: Sent | None) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data, IfNoneMatch="*",
                               **object_headers(name))
        if sent:
            sent(len(data))

    def _multipart(self, name: str, size: int, send_parts: Callable[[_Upload], list[CompletedPartTypeDef]],
                   min_part: int = MIN_PART_SIZE) -> None:
        """One multipart upload: ``send_parts`` sends every part; completed (if no object took the name
        meanwhile) only if it returns, aborted on any error."""
        upload = self._create_upload(name, size, min_part)
        try:
            self._complete(upload, send_parts(upload))
        except BaseException:
            self._abort(upload)
            raise

    def _create_upload(self, name: str, size: int, min_part: int) -> _Upload:
        """A new multipart upload for ``name`` (parts of at least ``min_part`` bytes), created with the
        parts' checksum algorithm (see ``PART_CHECKSUM``)."""
        key = self._key(name)
        answer = self.client.create_multipart_upload(Bucket=self.bucket, Key=key, ChecksumAlgorithm=PART_CHECKSUM,
                                                     **object_headers(name))
        return _Upload(key, answer["UploadId"], size, max(min_part, math.ceil(size / MAX_PARTS)))

    def _complete(self, upload: _Upload, parts: list[CompletedPartTypeDef]) -> None:
        """Show the object: write-once (``If-None-Match: *``)."""
        self.client.complete_multipart_upload(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id,
                                              MultipartUpload={"Parts": parts}, IfNoneMatch="*")

    def _abort(self, upload: _Upload) -> None:
        """Drop the upload's parts (best effort: never raises; an incomplete upload is never visible)."""
        with contextlib.suppress(Exception):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id)

    def _file_parts(self, upload: _Upload, path: Path, sent: Sent | None) -> list[CompletedPartTypeDef]:
        count = math.ceil(upload.size / upload.part_size)

        def part(number: int) -> CompletedPartTypeDef:
            offset = (number - 1) * upload.part_size
            data = _read_exactly(path, offset, min(upload.part_size, upload.size - offset), upload.size)
            return self._upload_part(upload, number, data, sent)

        futures: list[Future[CompletedPartTypeDef]] = [_PARTS.submit(part, number) for number in range(1, count + 1)]
        try:
            parts = [future.result() for future in futures]
        finally:
            _settle(futures)
        _read_exactly(path, upload.size, 0, upload.size)  # still the size that was hashed, before it goes live
        return parts

    def _stream_parts(self, upload: _Upload, chunks: Iterable[bytes], sent: Sent | None) -> list[CompletedPartTypeDef]:
        """Parts cut from ``chunks`` as they come, at most ``STREAM_PARTS_IN_FLIGHT`` sent at once."""
        futures: list[Future[CompletedPartTypeDef]] = []
        # The chunks of the part being cut, joined once it is whole: one copy of each byte (a chunk that
        # straddles two parts is split by memoryviews, not copied).
        pending: list[memoryview] = []
        held = 0

        def submit(data: bytes) -> None:
            while sum(not future.done() for future in futures) >= STREAM_PARTS_IN_FLIGHT:
                next(future for future in futures if not future.done()).result()
            futures.append(_PARTS.submit(self._upload_part, upload, len(futures) + 1, data, sent))

        try:
            for chunk in chunks:
                view = memoryview(chunk)
                while held + len(view) >= upload.part_size:
                    room = upload.part_size - held
                    pending.append(view[:room])
                    submit(b"".join(pending))
                    pending, held, view = [], 0, view[room:]
                if view:
                    pending.append(view)
                    held += len(view)
            if pending or not futures:
                submit(b"".join(pending))
            return [future.result() for future in futures]
        finally:
            _settle(futures)

    def _upload_part(self, upload: _Upload, number: int, data: bytes, sent: Sent | None) -> CompletedPartTypeDef:
        crc32 = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        answer = self.client.upload_part(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id,
                                         PartNumber=number, Body=data, ChecksumCRC32=crc32)
        if sent:
            sent(len(data))
        return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumCRC32": crc32}

    def swap(self, name: str, data: bytes, expected: bytes | None) -> None:
        """Replace ``name`` only if it still holds ``expected`` (None: only if it does not exist)."""
        key = self._key(name)
        condition: _Condition
        if expected is None:
            condition = {"IfNoneMatch": "*"}
        else:
            with self._lock:
                seen = self._etags.get(name)
            if seen is None or seen[0] != expected:
                current = self.read(name)
                if current != expected:
                    raise ConflictError(f"{self.describe(name)} changed since it was loaded")
                with self._lock:
                    seen = self._etags[name]
            condition = {"IfMatch": seen[1]}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **condition, **object_headers(name))
        except Exception as exc:
            if not _precondition(exc):
                raise self._fail(name, "PutObject", exc) from None
            # A retry of our own write whose first answer was lost also fails the condition.
            if self.read(name) != data:
                raise ConflictError(f"{self.describe(name)} changed since it was loaded") from None
        with self._lock:
            self._etags.pop(name, None)


@dataclass(frozen=True)
class _Upload:
    """One multipart upload under way: its key and upload id, the object's size and each part's."""

    key: str
    upload_id: str
    size: int
    part_size: int


@dataclass
class _S3Staged:
    """An object taken whole but not yet visible: a multipart upload with every part sent.  Committed
    write-once (``If-None-Match: *``)."""

    store: S3Storage
    name: str
    size: int
    upload: _Upload | None = None
    parts: list[CompletedPartTypeDef] | None = None

    def commit(self) -> bool:
        store, upload = self.store, self.upload
        assert upload is not None, "committed twice, or after discard"
        try:
            store._complete(upload, self.parts or [])
        except Exception as exc:
            self.discard()
            if not _precondition(exc):
                raise store._fail(self.name, "CompleteMultipartUpload", exc) from None
            return already_sized(store, self.name, store.size(self.name), self.size)  # stored meanwhile
        self.upload = None
        return True

    def discard(self) -> None:
        upload, self.upload = self.upload, None
        if upload is not None:
            self.store._abort(upload)


def _settle(futures: list[Future[CompletedPartTypeDef]]) -> None:
    """Cancel the parts not started and wait for those being sent: an upload aborted while a part is
    in flight may keep that part (S3's documentation), so nothing is aborted until none is."""
    for future in futures:
        future.cancel()
    wait(futures)


def _read_exactly(path: Path, offset: int, count: int, size: int) -> bytes:
    """``count`` bytes at ``offset`` of a file that must still be ``size`` bytes long."""
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size != size:
                raise StorageError(f"{path} changed while it was being uploaded", retry="publish again")
            handle.seek(offset)
            data = handle.read(count)
    except OSError as exc:
        raise StorageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) != count:
        raise StorageError(f"{path} changed while it was being uploaded", retry="publish again")
    return data


def _attempts(exc: BaseException) -> int:
    """How many times botocore sent the request that failed with ``exc`` (retries included)."""
    response = getattr(exc, "response", None)
    meta = response.get("ResponseMetadata", {}) if isinstance(response, dict) else {}
    return 1 + int(meta.get("RetryAttempts") or 0)


def _precondition(exc: BaseException) -> bool:
    return error_code(exc) in _PRECONDITION or http_status(exc) in (409, 412)
