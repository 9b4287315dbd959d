"""The live edit: load a variant/arch repository, edit it, check it, then plan or sign and write it.

Every publishing operation is one ``with`` block::

    with live_edit(location, now, Write(progress)) as edit:   # or PlanOnly()
        manifest = edit.manifest()          # edit the manifest, the target list (edit.editor) ...
        ...
    return edit.outcome

:func:`live_edit` loads the live repository as a client would (:func:`~.load.load_live`).  On a
clean exit of the block it checks the edit -- ``manifest.json`` is valid and does not break the
migration chain nodes walk (:func:`check_chain`), the configured keys meet every threshold, every
file passes the SPEC §3.2 checklist and none would be expired -- and hands it to the output:
:class:`PlanOnly` signs and writes nothing, :class:`Write` signs and then writes in the SPEC §4
order (:func:`~.editor.write_plan`).  If the block raises, nothing is built and nothing is written.
A block that finds nothing to do calls ``edit.cancel()`` before it leaves (an early ``return`` is
a clean exit: without ``cancel()`` the edit as it stands is checked and written).

Must not: write anything before every check has passed, or decide what an operation edits (that
is :mod:`.release`'s and :mod:`.maintenance`'s).
"""

from __future__ import annotations

import difflib
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from repo_tool.core.chain import check_edit
from repo_tool.core.instant import format_instant, format_whole_seconds
from repo_tool.core.manifest import MANIFEST_NAME, Manifest
from repo_tool.core.rollout import HELD, Hold, is_held
from repo_tool.errors import MigrationError
from repo_tool.publish.editor import BuildInputs, NewTarget, Plan, Progress, RepoEditor, write_plan
from repo_tool.publish.load import DEFAULT_LOAD, Loaded, LoadOptions, Location, load_live
from repo_tool.signing.signers import role_signers


@dataclass
class Outcome:
    """What an operation did (or, for a plan, would do)."""

    location: Location
    plan: Plan
    manifest_before: bytes
    manifest_after: bytes
    waves: dict[int, int] | None = None
    warnings: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    planned_only: bool = True
    start: int = 0  # expirations count from it (publish: the release start; else the run's now)
    waves_start: int | None = None  # the waves count from it, if the edit set them
    created: bool = False  # the edit starts a new repository (--init)
    hold: Hold = HELD  # why :attr:`waves` a pause or halt moved away are held: paused since T, or halted

    def manifest_diff(self) -> list[str]:
        before = self.manifest_before.decode().splitlines()
        after = self.manifest_after.decode().splitlines()
        return list(difflib.unified_diff(before, after, "manifest.json (live)", "manifest.json (new)", lineterm=""))

    def to_json(self) -> dict[str, Any]:
        loc = self.location
        return {
            "repo": loc.config.name,
            "variant": loc.variant,
            "arch": loc.arch,
            "metadata_url": loc.meta.url,
            "targets_url": loc.targets.url,
            "planned_only": self.planned_only,
            "created": self.created,
            "signed": self.plan.signed,
            "targets_added": [
                {"name": t.name, "length": t.length, "sha256": t.sha256, "object": t.object_name, "link": t.link}
                for t in self.plan.targets
            ],
            "roots_added": [name for name, _ in self.plan.roots],
            "versions": self.plan.versions,
            "expires": {role: format_whole_seconds(ns) for role, ns in self.plan.expires.items()},
            "waves": {str(k): format_instant(v) for k, v in sorted(self.waves.items())}
            if self.waves is not None
            else None,
            "start": format_instant(self.start),
            "waves_start": format_instant(self.waves_start) if self.waves_start is not None else None,
            "waves_held": str(self.hold) if self.waves is not None and any(map(is_held, self.waves.values())) else None,
            "manifest_changed": self.manifest_before != self.manifest_after,
            "written": self.written,
            "warnings": self.warnings,
        }


# --- what the end of an edit produces ------------------------------------------------------------


class Output(ABC):
    """What the end of an edit does with it: :class:`PlanOnly` or :class:`Write`; ``progress`` is told
    of the bytes hashed before the edit (both) and of the objects written (:class:`Write`)."""

    progress: Progress | None = None

    @abstractmethod
    def build(self, editor: RepoEditor, inputs: BuildInputs) -> Plan:
        """The checked plan of the edit (signed or not)."""

    @abstractmethod
    def deliver(self, outcome: Outcome) -> None:
        """Carry out ``outcome``'s plan (or nothing)."""


@dataclass
class PlanOnly(Output):
    """A plan (``--plan``): every key it would use is loaded (KMS: the public key and state, no
    signing) and every threshold checked, so it fails where the real run would; it signs nothing
    and writes nothing."""

    progress: Progress | None = None

    def build(self, editor: RepoEditor, inputs: BuildInputs) -> Plan:
        return editor.unsigned(inputs)

    def deliver(self, outcome: Outcome) -> None:
        """A plan is only shown."""


@dataclass
class Write(Output):
    """Sign, and write in the SPEC §4 order, telling ``progress`` what was written."""

    progress: Progress | None = None

    def build(self, editor: RepoEditor, inputs: BuildInputs) -> Plan:
        return editor.signed(inputs)

    def deliver(self, outcome: Outcome) -> None:
        location = outcome.location
        outcome.written = write_plan(outcome.plan, location.meta, location.targets, self.progress)
        outcome.planned_only = False


# --- the migration chain invariant ----------------------------------------------------------------


RELEASE_TOML_HINT = "add that step to Release.toml (--release-config; release_config: in a publish-release file)"
PULL_HINT = ("nodes would be sent along it, fail the walk and stay where they are; choose another version, or pass "
             "--allow-broken-chain to pull anyway (an emergency pull of a bad release)")


@dataclass(frozen=True)
class ChainPolicy:
    """How an edit that breaks the migration chain is met: refused with ``hint`` on what to do, or,
    with ``allow_broken`` (an emergency pull), let through with a warning."""

    hint: str = RELEASE_TOML_HINT
    allow_broken: bool = False


def check_chain(before: Manifest, after: Manifest, policy: ChainPolicy = ChainPolicy()) -> list[str]:
    """Refuse an edit that breaks the migration chain nodes walk (SPEC §8.3; see
    :mod:`repo_tool.core.chain`); return a warning for each break that was there before it (and, with
    ``policy.allow_broken``, for each one it causes)."""
    result = check_edit(before, after)
    if result.caused and not policy.allow_broken:
        first = max(result.caused, key=lambda b: (b.high, b.low))  # the nearest pair names the missing step
        more = f" (and {len(result.caused) - 1} more pair(s))" if len(result.caused) > 1 else ""
        raise MigrationError(f"refusing a manifest nodes cannot follow: {first.describe()}{more}; {policy.hint}")
    return ([f"migration chain broken by this edit (--allow-broken-chain): {b.describe()}" for b in result.caused]
            + [f"migration chain already broken: {b.describe()}" for b in result.existing])


# --- the edit ----------------------------------------------------------------------------------------


class LiveEdit:
    """One edit of a loaded repository: its target list (:attr:`editor`), its ``manifest.json``
    (:meth:`manifest`, if the operation edits it) and the target's custom data, what the outcome
    reports (:attr:`waves`, :attr:`warnings`), when expirations count from (:attr:`start`) and, if the
    edit sets waves, when they count from (:attr:`waves_start`)."""

    def __init__(self, loaded: Loaded, now: int) -> None:
        self.loaded = loaded
        self.now = now
        self.editor = RepoEditor(loaded.root, loaded.repo, loaded.new_roots)
        self.start = now
        self.start_from: str | None = None  # what set :attr:`start`, if not the time the run runs
        self.waves_start: int | None = None
        self.chain = ChainPolicy()
        self.waves: dict[int, int] | None = None
        self.warnings: list[str] = []
        self._manifest: Manifest | None = None
        self._custom: dict[str, Any] | None = None
        self._outcome: Outcome | None = None
        self._cancelled = False

    @classmethod
    def open(cls, location: Location, now: int, options: LoadOptions = DEFAULT_LOAD) -> LiveEdit:
        """A verified load of the live repository, ready to edit."""
        return cls(load_live(location, now, options), now)

    @property
    def location(self) -> Location:
        return self.loaded.location

    def manifest(self) -> Manifest:
        """The live ``manifest.json``, to edit in place: the edit then includes it (validated,
        checked against the migration chain, and listed again if it changed)."""
        if self._manifest is None:
            self._manifest = self.loaded.manifest()
        return self._manifest

    def manifest_custom(self) -> dict[str, Any]:
        """A copy of the custom data of the ``manifest.json`` target ({} if none)."""
        entry = self.editor.targets.get(MANIFEST_NAME) or {}
        custom = entry.get("custom")
        return dict(custom) if isinstance(custom, dict) else {}

    def set_manifest_custom(self, custom: dict[str, Any]) -> None:
        """Replace the custom data of the ``manifest.json`` target (none if ``custom`` is empty)."""
        self._custom = custom

    def cancel(self) -> None:
        """Nothing to do: the end of the ``with`` block builds and writes nothing."""
        self._cancelled = True

    def build(self, output: Output) -> Outcome:
        """Check the edit and build the plan ``output`` asks for; nothing is written here."""
        loaded, editor = self.loaded, self.editor
        after = loaded.manifest_bytes
        chain_warnings: list[str] = []
        manifest = self._manifest
        if manifest is not None:
            manifest.validate()
            after = manifest.to_bytes()
            if after != loaded.manifest_bytes:
                chain_warnings = check_chain(loaded.manifest(), manifest, self.chain)
            if after != loaded.manifest_bytes or loaded.repo is None or MANIFEST_NAME not in editor.targets:
                editor.add_target(NewTarget(MANIFEST_NAME, len(after), hashlib.sha256(after).hexdigest(), after),
                                  replace=True)
        if self._custom is not None:
            editor.set_custom(MANIFEST_NAME, self._custom or None)
        config = self.location.config
        expirations = config.expirations_from(self.start, self.now, self.start_from)
        plan = output.build(editor, BuildInputs(role_signers(config), self.start, expirations, self.now,
                                                self.location.meta))
        return Outcome(self.location, plan, loaded.manifest_bytes, after, self.waves,
                       [*loaded.warnings, *chain_warnings, *self.warnings], start=self.start,
                       waves_start=self.waves_start, created=loaded.repo is None)

    def end(self, output: Output) -> None:
        """Build, and deliver unless cancelled: the end of a :func:`live_edit` block."""
        if not self._cancelled:
            self._outcome = self.build(output)
            output.deliver(self._outcome)

    @property
    def outcome(self) -> Outcome:
        """What the ended edit did (or, for a plan, would do)."""
        if self._outcome is None:
            raise RuntimeError("the edit has not ended, or was cancelled")
        return self._outcome


@contextmanager
def live_edit(location: Location, now: int, output: Output, options: LoadOptions = DEFAULT_LOAD
              ) -> Iterator[LiveEdit]:
    """Load, let the block edit, then check and plan or write (see the module docstring)."""
    edit = LiveEdit.open(location, now, options)
    yield edit
    edit.end(output)
