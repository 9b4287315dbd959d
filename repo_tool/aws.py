"""AWS sessions and clients, and AWS errors as one readable line.

Credentials, region and endpoints come from boto3's standard chain
(``AWS_PROFILE``, ``AWS_REGION`` or ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3``,
``AWS_ENDPOINT_URL_KMS``, shared config files, instance roles ...).  The
command line can name a profile (for every AWS call) and an S3 endpoint (for
S3-compatible stores and local test servers), as ``aws --profile`` and
``aws s3 --endpoint-url`` do.  boto3 is imported only when a client is made; this module must not
know any service's rules (what a KMS key or a bucket must be is ``signing.kms``'s and
``publish.infra``'s).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from repo_tool.errors import IOFailedError

# Uploads run several files and several parts of each at once; keep enough pooled connections.
MAX_POOL_CONNECTIONS = 32
MAX_ATTEMPTS = 5


class ServiceError(IOFailedError):
    """An AWS call failed (credentials, permissions, missing bucket or key ...): exit 1."""


@dataclass(frozen=True)
class AwsSettings:
    """Which AWS profile to use for every call, and an endpoint override for S3."""

    profile: str | None = None
    endpoint_url: str | None = None

    def client(self, service: str, profile: str | None = None) -> Any:
        """A (cached, thread-safe) boto3 client for ``service``; ``profile`` overrides the settings'."""
        endpoint = self.endpoint_url if service == "s3" else None
        return _client(service, profile or self.profile, endpoint)


_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}


def _client(service: str, profile: str | None, endpoint: str | None) -> Any:
    # The environment is part of the key: a long-lived process (tests, a service) may change it.
    key = (service, profile, endpoint, tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
    with _lock:
        if key not in _clients:
            _clients[key] = _make_client(service, profile, endpoint)
        return _clients[key]


def _make_client(service: str, profile: str | None, endpoint: str | None) -> Any:
    import boto3
    from botocore.config import Config

    retries: dict[str, Any] = {}  # standard retries unless AWS_RETRY_MODE / AWS_MAX_ATTEMPTS say otherwise
    if not os.environ.get("AWS_RETRY_MODE"):
        retries["mode"] = "standard"
    if not os.environ.get("AWS_MAX_ATTEMPTS"):
        # Attempts in all, first one included, as AWS_MAX_ATTEMPTS counts them (Config's "max_attempts"
        # counts retries only: 5 there would be 6 attempts).
        retries["total_max_attempts"] = MAX_ATTEMPTS
    config = Config(
        retries=retries,
        max_pool_connections=MAX_POOL_CONNECTIONS,
        connect_timeout=10,
        read_timeout=120,
        # Only send/verify the checksums S3 requires: S3-compatible stores and CDNs may not know the newer ones.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    try:
        session = boto3.Session(profile_name=profile)
        # botocore reads AWS_DEFAULT_REGION and profiles only; AWS_REGION (what the AWS CLI v2 and the
        # other SDKs read first) takes precedence, as there.
        region = os.environ.get("AWS_REGION") or session.region_name or None
        return session.client(service, region_name=region, endpoint_url=endpoint, config=config)
    except Exception as exc:  # ProfileNotFound, NoRegionError, bad endpoint ...
        raise ServiceError(f"AWS {service}: {reason(exc)}") from None


def forget_clients() -> None:
    """Drop cached clients (tests that change the environment between runs)."""
    with _lock:
        _clients.clear()


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (``NoSuchKey``, ``412`` ...), or None."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error")
        if isinstance(error, dict) and error.get("Code"):
            return str(error["Code"])
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status:
            return str(status)
    return None


def never_connected(exc: BaseException) -> bool:
    """Whether ``exc`` is botocore failing to reach the endpoint at all (refused, DNS, connect timeout,
    the proxy unreachable): nothing was asked of the service.  Not its SSLError, which urllib3 also
    raises for a TLS failure after the request was sent (an unknown answer fails closed)."""
    from botocore.exceptions import (  # loaded already: exc came from it
        ConnectTimeoutError,
        EndpointConnectionError,
        ProxyConnectionError,
    )

    return isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError))


def http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(status, int):
            return status
    return None


def reason(exc: BaseException) -> str:
    """What AWS answered, in one line: ``Code: Message`` for service errors, else the botocore message."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and isinstance(response.get("Error"), dict):
        error = response["Error"]
        status = http_status(exc)
        code = error.get("Code") or (f"HTTP {status}" if status else "error")
        message = str(error.get("Message") or "").strip()
        return f"{code}: {message}" if message else str(code)
    text = " ".join(str(exc).split())
    name = type(exc).__name__
    if name == "NoCredentialsError":
        return "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use --profile)"
    if name == "NoRegionError":
        return "no AWS region configured (set AWS_REGION or a profile's region)"
    return text or "the AWS request failed"
