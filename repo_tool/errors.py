"""Error types shared by every layer of repo-tool.

Each error carries the process exit code the CLI uses for it: 2 for bad input
(usage, configuration, malformed files), 1 for verification failures.  The
message is one line and names the file, flag or field at fault; the CLI adds
the context it knows (for example the file path) with :meth:`RepoToolError.within`.
"""

from __future__ import annotations


def one_line(text: str) -> str:
    """``text`` with each character that is not printable (newlines and other control characters,
    line separators, lone surrogates) written as its escape (``\\n``, ``\\x1b``, ``\\u2028``), so a
    message quoting a file's or an argument's text stays one line and cannot drive the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class RepoToolError(Exception):
    """Base class: an expected failure with a one-line message."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        message = one_line(message)
        super().__init__(message)
        self.message = message

    def within(self, context: str) -> RepoToolError:
        """Return the same kind of error with ``context: `` put in front."""
        return type(self)(f"{context}: {self.message}")

    def __str__(self) -> str:
        return self.message


class UsageError(RepoToolError):
    """A command line that cannot be carried out as written."""


class ConfigError(RepoToolError):
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
    """Signed data failed verification (bad signature, hash, length, expiry ...)."""

    exit_code = 1


class UnreachableError(VerificationError):
    """Nothing could be asked of the server: no connection could be made at all (refused, no route,
    DNS, connect timeout).  Every storage adapter and the node's transport raise a subclass of this for
    it, so the TUF root walk ends on it the same way whichever adapter read ``N+1.root.json``
    (SPEC §3.5: like a not-found answer)."""
