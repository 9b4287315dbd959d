"""Keeping a published repository up: ``refresh`` (re-sign before expiry), ``rollout`` (pause,
resume, halt, reschedule an update's waves) and the pulls (``set-max-version``,
``remove-update``: any edit of the live ``manifest.json``).

Must not: compute waves or pause records here (that is :mod:`repo_tool.core.rollout`, pure), or
write outside a :func:`~.live.live_edit` block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from repo_tool.core.manifest import Manifest
from repo_tool.core.rollout import Action, Rollout, apply, hold_of, pauses_of, with_pauses
from repo_tool.core.semver import Version
from repo_tool.core.waves import WavePolicy
from repo_tool.errors import UsageError
from repo_tool.publish.live import PULL_HINT, ChainPolicy, Outcome, Output, live_edit
from repo_tool.publish.load import DEFAULT_LOAD, LoadOptions, Location


def refresh(location: Location, now: int, output: Output, options: LoadOptions = DEFAULT_LOAD) -> Outcome:
    """Re-sign targets, snapshot and timestamp with new expirations; targets and manifest untouched
    (``options``: ``allow_expired`` revives an expired repository; new roots go along)."""
    with live_edit(location, now, output, replace(options, read_manifest=False)) as edit:
        pass
    return edit.outcome


@dataclass(frozen=True)
class RolloutRequest:
    """What ``repo-tool rollout`` is asked: the action, the update (default: the newest for the
    variant/arch), for ``reschedule`` the policy and its start (default: now), and whether an
    expired repository may be loaded."""

    action: Action
    version: Version | None = None
    policy: WavePolicy | None = None
    start: int | None = None
    allow_expired: bool = False


def _find_update_version(manifest: Manifest, location: Location, version: Version | None) -> Version:
    mine = [u for u in manifest.updates if (u.variant, u.arch) == (location.variant, location.arch)]
    if not mine:
        raise UsageError(f"manifest.json has no update for {location.variant} {location.arch}")
    if version is None:
        return max(u.version for u in mine)
    if not any(u.version == version for u in mine):
        raise UsageError(f"manifest.json has no update {location.variant} {location.arch} {version}")
    return version


def rollout(location: Location, now: int, output: Output, request: RolloutRequest) -> Outcome:
    """``pause``, ``resume``, ``halt`` or ``reschedule`` the waves of one published update; a pause
    is remembered in the custom data of the ``manifest.json`` target."""
    with live_edit(location, now, output, LoadOptions(allow_expired=request.allow_expired)) as edit:
        manifest = edit.manifest()
        version = _find_update_version(manifest, location, request.version)
        update = next(u for u in manifest.updates if u.matches(location.variant, location.arch, version))
        custom = edit.manifest_custom()
        pauses = pauses_of(custom)
        if request.action is Action.RESCHEDULE:
            if request.policy is None:
                raise UsageError("reschedule needs --wave-policy")
            start = now if request.start is None else request.start
            manifest.set_waves(location.variant, location.arch, version, start, request.policy)
        key = f"{location.variant} {location.arch} {version}"
        change = apply(request.action, Rollout(key, version, update.waves, pauses), now)
        update.waves = change.waves
        edit.set_manifest_custom(with_pauses(custom, change.pauses))
        edit.waves = update.waves
        edit.warnings += change.warnings
    outcome = edit.outcome
    outcome.hold = hold_of(change.pauses, key)
    return outcome


@dataclass(frozen=True)
class PullOptions:
    """Whether an expired repository may be loaded, and whether a pull may break the migration
    chain (``--allow-broken-chain``: an emergency pull of a bad release)."""

    allow_expired: bool = False
    allow_broken_chain: bool = False


def edit_manifest(location: Location, now: int, output: Output, edit_fn: Callable[[Manifest], list[str]],
                  options: PullOptions = PullOptions()) -> Outcome:
    """A verified load, a manifest edit (``set-max-version``, ``remove-update``: ``edit_fn`` edits
    in place and returns warnings), re-sign, write."""
    with live_edit(location, now, output, LoadOptions(allow_expired=options.allow_expired)) as edit:
        edit.chain = ChainPolicy(PULL_HINT, options.allow_broken_chain)
        edit.warnings += edit_fn(edit.manifest())
    return edit.outcome
