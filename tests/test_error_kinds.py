"""Errors by kind (usage/config 2, repository bad 1, I/O failed 1), and context added without
rebuilding the error."""

from __future__ import annotations

from repo_tool.aws import ServiceError
from repo_tool.errors import (
    ConfigError,
    InputError,
    IOFailedError,
    RepoToolError,
    UnreachableError,
    UsageError,
    VerificationError,
)


class _Carrying(VerificationError):
    """A subclass that takes other arguments and carries state, as some do."""

    def __init__(self, message: str, version: int) -> None:
        super().__init__(message)
        self.version = version


def test_each_kind_has_its_exit_code() -> None:
    assert UsageError("x").exit_code == ConfigError("x").exit_code == InputError("x").exit_code == 2
    assert VerificationError("x").exit_code == 1
    assert IOFailedError("x").exit_code == ServiceError("x").exit_code == UnreachableError("x").exit_code == 1
    assert isinstance(ServiceError("x"), IOFailedError) and isinstance(UnreachableError("x"), IOFailedError)
    assert not isinstance(IOFailedError("x"), VerificationError)


def test_io_failure_says_what_to_retry() -> None:
    assert IOFailedError("s3://b/x: timed out", retry="run the publish again").message == \
        "s3://b/x: timed out; run the publish again"
    assert IOFailedError("s3://b/x: timed out").message == "s3://b/x: timed out"


def test_context_keeps_the_type_and_the_attributes() -> None:
    original = _Carrying("bad root", 7)
    within = original.within("repo.yaml")
    assert type(within) is _Carrying and within.version == 7
    assert within.message == str(within) == "repo.yaml: bad root" and within.args == ("repo.yaml: bad root",)
    assert original.message == "bad root"  # the original is left alone
    reworded = original.reworded("line one\nline two")
    assert type(reworded) is _Carrying and reworded.message == "line one\\nline two"


def test_within_on_the_base_class() -> None:
    error: RepoToolError = ConfigError("no such key").within("a.yaml")
    assert type(error) is ConfigError and error.exit_code == 2 and error.message == "a.yaml: no such key"
