"""The audit's findings model: one :class:`Report` every check adds to, and its JSON form.

A finding is an error, a warning or an info about one file; the report also holds the tables the
checks fill in (roles, keys, expiries, root versions, target counts).  The JSON keys are the
``audit --json`` interface (and what :mod:`repo_tool.audit.report` renders): keep them stable.
Nothing here reads a repository or judges a file; the checks do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from repo_tool.core.instant import format_instant
from repo_tool.errors import unnamed

Severity = Literal["error", "warning", "info"]
# an int: a sample of that many targets; present: those stored (a partial mirror)
TargetsMode = Literal["all", "none", "present"] | int


@dataclass(frozen=True)
class Finding:
    severity: Severity
    check: str
    file: str
    message: str

    def to_json_obj(self) -> dict[str, str]:
        return {"severity": self.severity, "check": self.check, "file": self.file, "message": self.message}


def held_roles_text(held: object, always_versions: bool = True) -> str:
    """A key's roles per root version (a key row's ``held_roles``) as ``timestamp (v1, v2), snapshot (v3)``;
    ``no role (v1)`` for versions where it is listed but used by no role.  Without ``always_versions``,
    a key that held the same roles in every version is just ``timestamp``.  Tolerant: anything else is ``—``."""
    entries = [e for e in held if isinstance(e, dict) and isinstance(e.get("root_version"), int)] \
        if isinstance(held, list) else []
    by_role: dict[str, list[str]] = {}
    for entry in entries:
        roles = entry.get("roles")
        for role in (roles if isinstance(roles, list) and roles else ["no role"]):
            by_role.setdefault(str(role), []).append(f"v{entry.get('root_version')}")
    if not by_role:
        return "—"
    if not always_versions and all(len(versions) == len(entries) for versions in by_role.values()):
        return ", ".join(by_role)
    return ", ".join(f"{role} ({', '.join(versions)})" for role, versions in by_role.items())


@dataclass
class Report:
    metadata_url: str
    targets_url: str
    at: int
    window: int
    window_text: str
    findings: list[Finding] = field(default_factory=list)
    roles: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    expiries: list[dict[str, Any]] = field(default_factory=list)
    root_versions: list[int] = field(default_factory=list)
    targets_listed: int = 0
    targets_checked: int = 0
    bytes_checked: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, severity: Severity, check: str, file: str, message: str) -> None:
        """Record a finding about ``file``; a message that starts by naming ``file`` (an error's own
        ``FILE: ...``) has that dropped, so the file is said once."""
        with self._lock:
            self.findings.append(Finding(severity, check, file, unnamed(message, file)))

    def count_checked(self, targets: int, size: int) -> None:
        """Add one batch of checked targets (thread-safe, as :meth:`add`)."""
        with self._lock:
            self.targets_checked += targets
            self.bytes_checked += size

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def ok(self) -> bool:
        return self.count("error") == 0

    def to_json_obj(self) -> dict[str, Any]:
        order = {"error": 0, "warning": 1, "info": 2}
        return {
            "repository": {"metadata_url": self.metadata_url, "targets_url": self.targets_url},
            "at": format_instant(self.at),
            "window": self.window_text,
            "metadata_url": self.metadata_url,  # the key check-expirations gives each repository
            "ok": self.ok,
            "result": "pass" if self.ok else "fail",
            "summary": {
                "errors": self.count("error"), "warnings": self.count("warning"), "infos": self.count("info"),
                "targets_listed": self.targets_listed, "targets_checked": self.targets_checked,
                "bytes_checked": self.bytes_checked, "root_versions": self.root_versions,
            },
            "roles": self.roles,
            "keys": self.keys,
            "expiries": [{k: v for k, v in e.items() if k != "expires_ns"}
                         for e in sorted(self.expiries, key=lambda e: e["expires_ns"])],
            "findings": [f.to_json_obj() for f in sorted(self.findings, key=lambda f: order[f.severity])],
        }
