"""What one audit is asked: the trusted root it anchors on, and how far it looks.

Plain values the command line builds and the checks read.  Must not: read files or storage, or
judge anything (the checks do).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from repo_tool.audit.findings import TargetsMode
from repo_tool.core.progress import NO_PROGRESS, Progress

AUDIT_JOBS = 4


@dataclass(frozen=True)
class TrustedRoot:
    """The ``root.json`` an audit anchors the chain on (the one nodes ship), and the name findings give it."""

    data: bytes
    name: str


@dataclass(frozen=True)
class AuditOptions:
    """How far one audit looks: expiries inside ``window`` ns are warnings (``window_text``: as the
    user wrote it, for the report), which targets are downloaded and checked, how many at once, and
    whether ``manifest.json`` is checked (not for TUF repositories that are not Bottlerocket's); the
    target bytes checked are reported to ``progress``."""

    window: int
    window_text: str = ""
    targets: TargetsMode = "all"
    jobs: int = AUDIT_JOBS
    check_manifest: bool = True
    progress: Progress = field(default=NO_PROGRESS, compare=False)
