"""Keeping a published repository up: ``refresh`` (re-sign before expiry), ``rollout`` (pause,
resume, halt, reschedule an update's waves) and the pulls (``set-max-version``,
``remove-update``: any edit of the live ``manifest.json``), saying what a pull takes from nodes.

Must not: compute waves or pause records here (that is :mod:`repo_tool.core.rollout`, pure), or
write outside a :func:`~.live.live_edit` block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from repo_tool.core.manifest import Manifest, Update
from repo_tool.core.rollout import Action, Rollout, apply, hold_of, is_held, pauses_of, rollout_key, with_pauses
from repo_tool.core.semver import Version
from repo_tool.core.waves import WavePolicy
from repo_tool.errors import UsageError
from repo_tool.publish.live import PULL_HINT, ChainPolicy, LiveEdit, Outcome, Output, live_edit
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
            edit.waves_start = now if request.start is None else request.start
            manifest.set_waves(location.variant, location.arch, version, edit.waves_start, request.policy)
        key = rollout_key(location.variant, location.arch, version)
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
    """Whether an expired repository may be loaded, whether a pull may break the migration
    chain (``--allow-broken-chain``: an emergency pull of a bad release), and whether it may pull
    every update of the variant/arch (``--allow-pull-all``: nodes are then offered nothing)."""

    allow_expired: bool = False
    allow_broken_chain: bool = False
    allow_pull_all: bool = False


def edit_manifest(location: Location, now: int, output: Output, edit_fn: Callable[[Manifest], list[str]],
                  options: PullOptions = PullOptions()) -> Outcome:
    """A verified load, a manifest edit (``set-max-version``, ``remove-update``: ``edit_fn`` edits
    in place and returns warnings), re-sign, write."""
    return _pull(location, now, output, lambda edit: edit_fn(edit.manifest()), options)


def _pull(location: Location, now: int, output: Output, edit_fn: Callable[[LiveEdit], list[str]],
          options: PullOptions) -> Outcome:
    with live_edit(location, now, output, LoadOptions(allow_expired=options.allow_expired)) as edit:
        edit.chain = ChainPolicy(PULL_HINT, options.allow_broken_chain)
        edit.warnings += edit_fn(edit)
    return edit.outcome


def _versions(updates: list[Update]) -> str:
    return ", ".join(str(u.version) for u in sorted(updates, key=lambda u: u.version))


def pull_to(manifest: Manifest, repo: tuple[str, str], max_version: Version, allow_all: bool,
            pauses: Mapping[str, Any] | None = None) -> list[str]:
    """Set ``max_version`` on the variant/arch's updates (``set-max-version``); a warning saying what
    it pulls (updates offered before and not after, those a pause or halt held back told apart by
    ``pauses``, the repository's pause records, and what nodes on them are offered instead).
    Pulling every update (nodes are offered nothing, and those on a pulled release stay on it) is
    refused unless ``allow_all``.  ``repo`` is the (variant, arch)."""
    variant, arch = repo
    mine = [u for u in manifest.updates if (u.variant, u.arch) == (variant, arch)]
    if not mine:
        raise UsageError(f"manifest.json has no update for {variant} {arch}")
    pulled = [u for u in mine if max_version < u.version <= u.max_version]
    left = [u for u in mine if u.version <= max_version]
    where = f"--max-version {max_version}"
    if not left and pulled and not allow_all:
        raise UsageError(f"{where} is below every {variant} {arch} update ({_versions(mine)}): it would pull "
                         f"{len(pulled)} offered update(s) and offer nodes nothing; check the version, or pass "
                         "--allow-pull-all to stop every release")
    manifest.update_max_version(max_version, arch, variant)
    if not left:
        pulls = f"pulls {len(pulled)} update(s) ({_versions(pulled)}) and " if pulled else ""
        return [f"{where} {pulls}is below every {variant} {arch} update: nodes are offered no update at all, "
                "and nodes on a pulled release stay on it"]
    if pulled:
        newest = max(u.version for u in left)
        return [f"{where} pulls {_pulled_text(pulled, pauses or {}, f'{variant} {arch}')}: nodes on them are "
                f"offered {newest} instead (a rollback)"]
    return []


def _pulled_text(pulled: list[Update], pauses: Mapping[str, Any], repo: str) -> str:
    """The pulled updates, those a pause or halt holds back (offered to few hosts, if any) told apart."""
    held = [u for u in pulled if any(map(is_held, u.waves.values()))]
    if not held:
        return f"{len(pulled)} update(s) that were offered ({_versions(pulled)})"
    offered = [u for u in pulled if u not in held]
    parts = [f"{_versions(offered)} that {'was' if len(offered) == 1 else 'were'} offered"] if offered else []
    parts += [f"{u.version} that was held ({hold_of(pauses, f'{repo} {u.version}')}: offered only to its initial "
              "wave and the hosts reached before)" for u in sorted(held, key=lambda u: u.version)]
    return f"{len(pulled)} update(s): {', '.join(parts)}"


def set_max_version(location: Location, now: int, output: Output, max_version: Version,
                    options: PullOptions = PullOptions()) -> Outcome:
    """``set-max-version``: :func:`pull_to` on the live manifest, re-sign, write."""
    return _pull(location, now, output,
                 lambda edit: pull_to(edit.manifest(), (location.variant, location.arch), max_version,
                                      options.allow_pull_all, pauses_of(edit.manifest_custom())), options)
