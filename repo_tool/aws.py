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
from typing import TYPE_CHECKING, Any, Literal, overload

from repo_tool import __version__
from repo_tool.errors import ConfigError, IOFailedError

if TYPE_CHECKING:  # types-boto3[s3,kms,ssm] (dev only): the runtime needs boto3 alone
    from types_boto3_kms.client import KMSClient
    from types_boto3_s3.client import S3Client
    from types_boto3_ssm.client import SSMClient

Service = Literal["s3", "kms", "ssm"]

# Uploads run several files and several parts of each at once; keep enough pooled connections.
MAX_POOL_CONNECTIONS = 32
MAX_ATTEMPTS = 5
# Sent as "app/repo-tool-VERSION" in every request's User-Agent (botocore turns "/" into "-"), so an
# account's CloudTrail and S3 access logs show which calls this tool made.  A user's own app ID
# (AWS_SDK_UA_APP_ID, a profile's sdk_ua_app_id) wins.
APP_ID = f"repo-tool/{__version__}"


class ServiceError(IOFailedError):
    """An AWS call failed (credentials, permissions, missing bucket or key ...): exit 1."""


@dataclass(frozen=True)
class AwsSettings:
    """Which AWS profile to use for every call, and an endpoint override for S3."""

    profile: str | None = None
    endpoint_url: str | None = None

    @overload
    def client(self, service: Literal["s3"], profile: str | None = None, region: str | None = None) -> S3Client: ...
    @overload
    def client(self, service: Literal["kms"], profile: str | None = None, region: str | None = None) -> KMSClient: ...
    @overload
    def client(self, service: Literal["ssm"], profile: str | None = None, region: str | None = None) -> SSMClient: ...

    def client(self, service: Service, profile: str | None = None, region: str | None = None
               ) -> S3Client | KMSClient | SSMClient:
        """A (cached, thread-safe) boto3 client for ``service``; ``profile`` overrides the settings',
        ``region`` the configured region (AWS_REGION, AWS_DEFAULT_REGION, the profile's)."""
        endpoint = self.endpoint_url if service == "s3" else None
        return _client(service, profile or self.profile, endpoint, region)


_lock = threading.Lock()
_clients: dict[tuple[Any, ...], S3Client | KMSClient | SSMClient] = {}


def _client(service: Service, profile: str | None, endpoint: str | None, region: str | None
            ) -> S3Client | KMSClient | SSMClient:
    # The environment is part of the key: a long-lived process (tests, a service) may change it.
    key = (service, profile, endpoint, region,
           tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_"))))
    with _lock:
        if key not in _clients:
            _clients[key] = _make_client(service, profile, endpoint, region)
        return _clients[key]


def _make_client(service: Service, profile: str | None, endpoint: str | None,
                 region: str | None) -> S3Client | KMSClient | SSMClient:
    import boto3
    import botocore.session
    from botocore.config import Config

    try:
        core = botocore.session.get_session()
        session = boto3.Session(botocore_session=core, profile_name=profile)
        # botocore reads AWS_DEFAULT_REGION and profiles only; AWS_REGION (what the AWS CLI v2 and the
        # other SDKs read first) takes precedence, as there.
        region = region or os.environ.get("AWS_REGION") or session.region_name or None
        # Standard retries unless AWS_RETRY_MODE / AWS_MAX_ATTEMPTS say otherwise.  Attempts in all, first
        # one included, as AWS_MAX_ATTEMPTS counts them (Config's "max_attempts" counts retries only: 5
        # there would be 6 attempts).
        retries: dict[str, Any] = {}
        if not os.environ.get("AWS_RETRY_MODE"):
            retries["mode"] = "standard"
        if not os.environ.get("AWS_MAX_ATTEMPTS"):
            retries["total_max_attempts"] = MAX_ATTEMPTS
        options: dict[str, Any] = {"retries": retries}
        if not core.get_config_variable("user_agent_appid"):
            options["user_agent_appid"] = APP_ID  # a keyword botocore-stubs' Config does not list
        config = Config(
            max_pool_connections=MAX_POOL_CONNECTIONS,
            connect_timeout=10,
            read_timeout=120,
            # Only send/verify the checksums S3 requires: S3-compatible stores and CDNs may not know the newer ones.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            **options,
        )
        if service == "s3":
            return session.client("s3", region_name=region, endpoint_url=endpoint, config=config)
        if service == "ssm":
            return session.client("ssm", region_name=region, endpoint_url=endpoint, config=config)
        return session.client("kms", region_name=region, endpoint_url=endpoint, config=config)
    except Exception as exc:  # ProfileNotFound, NoRegionError, bad endpoint ...
        if type(exc).__name__ == "ProfileNotFound":  # the user's configuration names a profile AWS has not
            raise ConfigError(f"AWS {service}: {reason(exc)}") from None
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
