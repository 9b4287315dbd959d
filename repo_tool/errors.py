"""Error types shared by every layer of repo-tool, by kind.

Every expected failure is a :class:`RepoToolError` of one of three kinds, each with the process
exit code the CLI uses for it:

* :class:`InputError` (exit 2): the command line, the configuration or an input file is wrong
  (:class:`UsageError`, :class:`ConfigError` and theirs); fix it and run again;
* :class:`VerificationError` (exit 1): the repository is bad: a signature, hash, length, expiry,
  version or format that a client would refuse;
* :class:`IOFailedError` (exit 1): reading or writing failed (storage, network, AWS, a disk); where
  running again helps (a conflict with another publisher, a file changed under a publish) the message
  says what to run again (``retry``).

The message is one line and names the file, flag or field at fault; context is added with
:meth:`RepoToolError.within` (or the whole message replaced with :meth:`RepoToolError.reworded`),
which keep the error's type and attributes instead of rebuilding it.  This module imports nothing
and must not: every layer imports it.
"""

from __future__ import annotations

from typing import TypeVar

_E = TypeVar("_E", bound="RepoToolError")


def one_line(text: str) -> str:
    """``text`` with each character that is not printable (newlines and other control characters,
    line separators, lone surrogates) written as its escape (``\\n``, ``\\x1b``, ``\\u2028``), so a
    message quoting a file's or an argument's text stays one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def mentions(message: str, context: str) -> bool:
    """Whether ``message`` starts with ``context``, or holds it whole where ``context`` is a file name,
    path or URL (one word with a ``/`` or a ``.``): ``a.toml`` is named in ``cannot read a.toml: ...``,
    not in ``a.toml.bak``."""
    if message == context or message.startswith(f"{context}:"):
        return True
    if not ("/" in context or "." in context) or any(c.isspace() for c in context):
        return False
    start = message.find(context)
    while start >= 0:
        before, after = message[:start], message[start + len(context):]
        longer = _continues(after[:1]) or (after[:1] == "." and _continues(after[1:2]))
        if not _continues(before[-1:]) and not longer:
            return True
        start = message.find(context, start + 1)
    return False


def unnamed(message: str, context: str) -> str:
    """``message`` without a leading ``context: ``: for a caller that names ``context`` itself, in front
    of the message or in a column of its own, so the name is said once."""
    return message[len(context) + 2:] if context and message.startswith(f"{context}: ") else message


def _continues(char: str) -> bool:
    """Whether ``char`` would make a path next to it a longer one."""
    return bool(char) and (char.isalnum() or char in "/_-")


class RepoToolError(Exception):
    """Base class: an expected failure with a one-line message."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message

    def within(self: _E, context: str) -> _E:
        """The same error with ``context: `` put in front of its message, unless the message names
        ``context`` already (a path or URL said once, not ``f: ... f ...``)."""
        if mentions(self.message, context):
            return self
        return self.reworded(f"{context}: {self.message}")

    def reworded(self: _E, message: str) -> _E:
        """The same error (its type and attributes) with ``message`` instead: how a caller adds what
        it knows without rebuilding the error as ``type(exc)(...)``, which loses both when a subclass
        takes other arguments or carries state."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.message = one_line(message)
        clone.args = (clone.message,)
        return clone

    def __str__(self) -> str:
        return self.message


def some_failed(failures: list[tuple[str, RepoToolError]], done: int, verb: str) -> RepoToolError | None:
    """One error for a run over many repositories (``label``, its error) where ``done`` others were
    ``verb`` (e.g. "mirrored"): None if none failed; else naming every failure, of the kind of the first
    that failed verification or a write (exit 1) if any did, else of the first (a usage error, exit 2)."""
    if not failures:
        return None
    named = "; ".join(f"{label}: {exc.message}" for label, exc in failures)
    kind = next((exc for _, exc in failures if exc.exit_code == 1), failures[0][1])
    return kind.reworded(f"{len(failures)} of {done + len(failures)} repositories failed "
                                   f"({done} {verb}): {named}")


class InputError(RepoToolError):
    """The kind "usage or configuration": what the user gave is wrong (exit 2)."""

    exit_code = 2


class UsageError(InputError):
    """A command line that cannot be carried out as written."""


class ConfigError(InputError):
    """A configuration or input file (policy, manifest, Release.toml ...) is invalid."""


class InstantError(ConfigError):
    """An RFC 3339 instant could not be parsed or is out of range."""


class OffsetError(ConfigError):
    """A relative time such as ``in 3 days`` could not be parsed (upstream ``BadOffset``)."""


class VersionError(ConfigError):
    """A string is not a strict semantic version."""


class ManifestError(ConfigError):
    """``manifest.json`` cannot be parsed, or an edit would make it invalid."""


class WavesUnorderedError(ManifestError):
    """Upstream ``WavesUnordered``: wave times are not strictly increasing by seed."""


class PolicyError(ConfigError):
    """A wave policy file is invalid."""


class SeedError(ConfigError):
    """A host seed outside 0..2047 (SPEC Decision 3)."""


class MigrationError(ConfigError):
    """No migration path exists, or the migration graph has a cycle/backward edge."""


class VerificationError(RepoToolError):
    """The kind "the repository is bad": signed data failed verification (bad signature, hash,
    length, expiry ...), exit 1."""

    exit_code = 1


class IOFailedError(RepoToolError):
    """The kind "I/O failed": storage, the network, AWS or a disk could not be read or written
    (exit 1).  ``retry`` says what to run again, when the failure may pass."""

    exit_code = 1

    def __init__(self, message: str, retry: str | None = None) -> None:
        super().__init__(f"{message}; {retry}" if retry else message)


class UnreachableError(IOFailedError):
    """Nothing could be asked of the server: no connection could be made at all (refused, no route,
    DNS, connect timeout).  Every storage adapter and the node's transport raise a subclass of this for
    it, so the TUF root walk ends on it the same way whichever adapter read ``N+1.root.json``
    (SPEC §3.5: like a not-found answer)."""
