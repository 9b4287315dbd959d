"""Multipart uploads to S3 carry each part's CRC32 (as boto3's upload_fileobj does), against a moto server
process: the header of every UploadPart is the CRC32 of the bytes sent in it, as botocore itself encodes one,
the upload is created with ChecksumAlgorithm CRC32 and completed with each part's checksum, and the object
stored is the bytes streamed, cut into parts wherever the chunks end."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.httpchecksum import Crc32Checksum

from repo_tool.aws import AwsSettings
from repo_tool.storage.s3 import STREAM_PART_SIZE, S3Storage

if TYPE_CHECKING:
    from tests.motoserver import MotoServer

pytest_plugins = ["tests.motoserver"]

BUCKET = "part-checksums"
MIB = 1 << 20


@pytest.mark.parametrize("how", ["put_stream", "stage_stream"])
def test_streamed_parts_carry_their_crc32(aws: MotoServer, how: str) -> None:
    """Both streamed writes: stored at once, and staged then committed (a mirror's and a re-root's)."""
    aws.client("s3").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    store = S3Storage.from_url(f"s3://{BUCKET}/targets/", AwsSettings())
    data = os.urandom(2 * STREAM_PART_SIZE + 3 * MIB + 17)
    step = 3 * MIB + 1  # chunks that straddle the parts' ends
    chunks = [data[i:i + step] for i in range(0, len(data), step)]
    sent: list[tuple[str, dict[str, str], bytes, int]] = []

    def record(request: Any, **_: Any) -> None:
        body = b""
        if hasattr(request.body, "read"):
            body = request.body.read()
            request.body.seek(0)
        elif request.body:
            body = bytes(request.body)
        headers = {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
        number = int(parse_qs(urlsplit(request.url).query).get("partNumber", ["0"])[0])
        sent.append((request.method, headers, body, number))

    store.client.meta.events.register("before-send.s3.*", record)
    try:
        if how == "put_stream":
            assert store.put_stream("x.img", iter(chunks), len(data))
        else:
            staged = store.stage_stream("x.img", iter(chunks), len(data))
            assert staged is not None and staged.commit()
    finally:
        store.client.meta.events.unregister("before-send.s3.*", record)

    create = [h for m, h, b, _ in sent if m == "POST" and not b]
    assert [h["x-amz-checksum-algorithm"] for h in create] == ["CRC32"]
    parts = [(h, b) for m, h, b, _ in sorted((s for s in sent if s[0] == "PUT"), key=lambda s: s[3])]
    assert [len(b) for _, b in parts] == [STREAM_PART_SIZE, STREAM_PART_SIZE, len(data) - 2 * STREAM_PART_SIZE]
    assert b"".join(b for _, b in parts) == data
    for headers, body in parts:
        expected = Crc32Checksum()
        expected.update(body)
        assert headers["x-amz-checksum-crc32"] == expected.b64digest()
        assert "aws-chunked" not in headers.get("content-encoding", "")  # a plain body, the checksum in a header
    complete = [b for m, _, b, _ in sent if m == "POST" and b]
    assert len(complete) == 1
    for headers, _ in parts:
        assert f"<ChecksumCRC32>{headers['x-amz-checksum-crc32']}</ChecksumCRC32>".encode() in complete[0]

    client = aws.client("s3")
    head = client.head_object(Bucket=BUCKET, Key="targets/x.img", ChecksumMode="ENABLED")
    composite = Crc32Checksum()  # S3's composite checksum: the CRC32 of the parts' CRC32s
    for headers, _ in parts:
        composite.update(base64.b64decode(headers["x-amz-checksum-crc32"]))
    assert head["ChecksumCRC32"].split("-")[0] == composite.b64digest()
    assert client.get_object(Bucket=BUCKET, Key="targets/x.img")["Body"].read() == data
