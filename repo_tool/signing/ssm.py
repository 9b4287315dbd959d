"""Private keys held in AWS SSM Parameter Store, as Bottlerocket's tools keep them.

Two spellings of a source:

* ``aws-ssm://[PROFILE]/NAME`` — tuftool's: the parameter is the URL's path, its leading ``/`` kept
  (``aws-ssm:///bottlerocket/keys/targets`` names ``/bottlerocket/keys/targets``; ``aws-ssm://ci/keys/x``
  names ``/keys/x`` read with profile ``ci``);
* ``ssm:NAME`` — the parameter's exact name, as pubsys' ``Infra.toml`` gives it
  (``[repo.NAME.signing_keys.ssm] parameter = "..."``), so a name without a leading ``/`` works too.

The parameter must be a ``SecureString`` (a private key stored in plain text is refused); it is read
with decryption and its PEM held in memory only (never written, never logged).  This module parses
sources and reads the parameter; turning the PEM into a signer is :mod:`repo_tool.signing.signers`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from repo_tool.aws import AwsSettings, ServiceError, error_code, reason
from repo_tool.errors import ConfigError, RepoToolError

URL_PREFIX = "aws-ssm://"
NAME_PREFIX = "ssm:"


@dataclass(frozen=True)
class SsmKey:
    """An SSM parameter holding a private key, and the AWS profile to read it with (None: the settings')."""

    parameter: str
    profile: str | None = None


def parse_source(source: str) -> SsmKey | None:
    """The parameter ``source`` names, or None if it is not an SSM source; a malformed one is a
    :class:`ConfigError` naming it."""
    if source.startswith(URL_PREFIX):
        profile, slash, path = source[len(URL_PREFIX):].partition("/")
        if not slash or not path.strip("/"):
            raise ConfigError(f"key {source}: expected aws-ssm://[PROFILE]/PARAMETER (tuftool's form)")
        return SsmKey(_checked_name(source, unquote("/" + path)), unquote(profile) or None)
    if source.startswith(NAME_PREFIX):
        name = source[len(NAME_PREFIX):]
        if not name.strip():
            raise ConfigError(f"key {source}: expected ssm:PARAMETER (the parameter's name)")
        return SsmKey(_checked_name(source, name))
    return None


_NAME = re.compile(r"/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*")


def _checked_name(source: str, name: str) -> str:
    """``name`` if SSM could hold a parameter by it (letters, digits, ``_.-``, ``/``-separated segments,
    no empty one, no trailing ``/``, at most 1011 characters); else a one-line error naming ``source``,
    before AWS is asked."""
    if not _NAME.fullmatch(name) or len(name) > 1011:
        raise ConfigError(f"key {source}: {name!r} is not an SSM parameter name (letters, digits, _ . - and "
                          "/-separated segments, no empty segment or trailing /)")
    return name


def read_private_pem(source: str, key: SsmKey, aws: AwsSettings) -> bytes:
    """The PEM text of ``key``'s parameter (GetParameter with decryption); errors name the source, the
    parameter and AWS's answer."""
    try:
        client = aws.client("ssm", key.profile)
    except RepoToolError as exc:  # an unknown profile, no region ...: say which key needed it
        raise exc.within(f"key {source}") from None
    try:
        answer = client.get_parameter(Name=key.parameter, WithDecryption=True)
    except Exception as exc:  # botocore's: say which parameter, and what AWS answered
        if error_code(exc) == "ParameterNotFound":
            raise ConfigError(f"key {source}: SSM parameter {key.parameter} not found") from None
        raise ServiceError(f"key {source}: AWS SSM GetParameter {key.parameter} failed: {reason(exc)}") from None
    parameter = answer.get("Parameter") or {}
    kind = parameter.get("Type")
    if kind != "SecureString":
        raise ConfigError(f"key {source}: SSM parameter {key.parameter} is a {kind} parameter; a private key must "
                          "be a SecureString (stored encrypted)")
    return str(parameter.get("Value") or "").encode()
