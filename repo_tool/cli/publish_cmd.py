"""``publish``, ``publish-release``, ``refresh``, ``rollout pause|resume|halt|reschedule``, ``set-max-version``,
``remove-update``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import click

from repo_tool.cli.common import (
    aws_options,
    echo_json,
    expires_options,
    now_ns,
    parse_time_option,
    parse_version_option,
    warn,
)
from repo_tool.cli.editing import (
    ALLOW_EXPIRED_HELP,
    StartSource,
    already_published,
    location_of,
    output_for,
    repo_config,
    report,
    show,
)
from repo_tool.cli.options import complete_policy, config_on_command_line, config_option, repo_option
from repo_tool.config import RepoConfig
from repo_tool.core.instant import format_instant
from repo_tool.core.manifest import Manifest
from repo_tool.core.rollout import Action
from repo_tool.core.semver import Version
from repo_tool.errors import ConfigError, UsageError
from repo_tool.publish.inputs import load_policy, load_release
from repo_tool.publish.load import LoadOptions, Location
from repo_tool.publish.maintenance import (
    PullOptions,
    RolloutRequest,
    edit_manifest,
    refresh,
    rollout,
    set_max_version,
)
from repo_tool.publish.release import AlreadyPublished, PublishOptions, ReleaseImages, publish, publish_many
from repo_tool.publish.release_file import load_release_file

PUBSYS_FLAGS = """\b
Flag names follow pubsys repo's where they match: --repo, --variant,
--arch, --version, --boot-image, --root-image, --hash-image,
--copy-target, --link-target, --release-start-time; --config also
reads pubsys's Infra.toml."""


def repo_options(func: Callable[..., Any], start: str = "now") -> Callable[..., Any]:
    """--config/--repo/--variant/--arch, shared by every command that edits a live repo (``start``: what
    an offset in --targets-expires ... counts from)."""
    decorators: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        config_option("repo-tool.yaml, or a pubsys Infra.toml.", required=True),
        repo_option(),
        click.option("--variant", required=True, help="Variant, e.g. aws-k8s-1.28."),
        click.option("--arch", required=True, help="Architecture: x86_64 or aarch64."),
        click.option("--plan", "plan_only", is_flag=True, help="Print what would change; write and sign nothing."),
        click.option("--json", "as_json", is_flag=True, help="Print the result as JSON."),
        click.option("--allow-expired", is_flag=True, help=ALLOW_EXPIRED_HELP),
        expires_options(start),
        aws_options,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


@click.command("publish", epilog=PUBSYS_FLAGS)
@partial(repo_options, start="--release-start-time (else now)")
@click.option("--version", "version_text", required=True, help="Release version (a leading 'v' is dropped).")
@click.option("--boot-image", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The boot partition image (e.g. bottlerocket-...-boot.ext4.lz4), a target named as the file.")
@click.option("--root-image", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The root partition image (...-root.ext4.lz4), a target named as the file.")
@click.option("--hash-image", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The dm-verity hash image of the root (...-root.verity.lz4), a target named as the file.")
@click.option("--link-target", "link_targets", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Extra target file stored as a hard link to the file, not a copy (a local targets directory on "
                   "the same file system; else refused: use --copy-target). The repository then serves that very "
                   "file: it may be moved or deleted, never rewritten in place.")
@click.option("--copy-target", "copy_targets", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Extra target file (migrations, kmod kit ...), copied into (or uploaded to) the targets storage; "
                   "its name is the file name.")
@click.option("--release-config", "release_config", default=None, type=click.Path(dir_okay=False),
              help="Release.toml of this version: its migration steps are added to the manifest's "
                   "(a step it lists again replaces the live one, with a warning).")
@click.option("--wave-policy", default=None, shell_complete=complete_policy,
              help="Policy file or name (default: the repo's wave_policy).")
@click.option("--release-start-time", "start_text", default=None,
              help="RFC 3339 time or offset ('in 2 hours'); waves and expirations count from it. Default: now.")
@click.option("--init", is_flag=True, help="Start a new repository (refused if one exists).")
@click.option("--new-manifest", is_flag=True, help="The live repo has no manifest.json yet: start one.")
@click.option("--root-role", "root_roles", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A new root (N+1.root.json, cross-signed) to publish with this release; repeat for a chain.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Files hashed at once (default: CPUs).")
def publish_cmd(config_path: str, repo_name: str | None, variant: str, arch: str, plan_only: bool, as_json: bool,
                allow_expired: bool, version_text: str, boot_image: Path, root_image: Path, hash_image: Path,
                link_targets: tuple[Path, ...], copy_targets: tuple[Path, ...], release_config: str | None,
                wave_policy: str | None, start_text: str | None, init: bool, new_manifest: bool,
                root_roles: tuple[Path, ...], jobs: int | None) -> None:
    """Add a release to a variant/arch repository: targets, manifest.json, waves, signed metadata."""
    now = now_ns()
    location = location_of(config_path, repo_name, variant, arch)
    options = _options(location.config, version_text, release_config, wave_policy, start_text, now)
    options.load = LoadOptions(init=init, allow_expired=allow_expired, new_manifest=new_manifest,
                               new_root_files=tuple(root_roles))
    options.jobs = jobs
    images = ReleaseImages(variant, arch, boot_image, root_image, hash_image, list(link_targets), list(copy_targets))
    result = publish(location, now, output_for(plan_only, as_json), images, options)
    if isinstance(result, AlreadyPublished):
        already_published(result, as_json, {"variant": variant, "arch": arch, "version": str(options.version)})
        return
    show(result, as_json, StartSource.of("--release-start-time", start_text, now))


def _options(config: RepoConfig, version_text: str, release_config: str | None, wave_policy: str | None,
             start_text: str | None, now: int, version_flag: str = "--version",
             start_flag: str = "--release-start-time") -> PublishOptions:
    version = parse_version_option(version_text[1:] if version_text.startswith("v") else version_text, version_flag)
    policy, _ = load_policy(wave_policy or config.wave_policy)
    start = now if start_text is None else parse_time_option(start_text, now, start_flag)
    migrations = None
    if release_config:
        release = load_release(release_config)
        if release.version != version:
            raise ConfigError(f"{release_config}: version is {release.version}, but the release being published "
                              f"is {version} ({version_flag}); a Release.toml belongs to one release")
        migrations = release.migrations
    start_from = None if start_text is None else f"{start_flag} {format_instant(start)}"
    return PublishOptions(version=version, policy=policy, start=start, start_from=start_from, migrations=migrations)


@click.command("publish-release")
@click.argument("release_file", type=click.Path(dir_okay=False))
@config_option("Config file (default: 'config' in the release file, then REPO_TOOL_CONFIG).")
@repo_option("Repository name (default: 'repo' in the release file).")
@click.option("--plan", "plan_only", is_flag=True, help="Print what would change; write and sign nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--allow-expired", is_flag=True, help=ALLOW_EXPIRED_HELP)
@click.option("--init", is_flag=True,
              help="Start the repositories that do not exist yet and continue those that do (a new arch in one "
                   "run); one half made (a root but no timestamp.json) is refused. Each says if it was created.")
@click.option("--jobs", type=click.IntRange(min=1), default=None, help="Files hashed at once (default: CPUs).")
@expires_options("the release file's release_start_time (else now)")
@aws_options
def publish_release_cmd(release_file: str, config_path: str | None, repo_name: str | None, plan_only: bool,
                        as_json: bool, allow_expired: bool, init: bool, jobs: int | None) -> None:
    """Publish one version to many variant/arch repositories (RELEASE.yaml), shared targets once.

    \b
    version: 1.2.0
    config: repo-tool.yaml          # optional, relative to this file
    repo: prod                      # optional
    release_config: Release.toml    # optional
    wave_policy: default            # optional
    repos:
      - {variant: aws-k8s-1.28, arch: x86_64, boot_image: ..., root_image: ..., hash_image: ...,
         link_targets: [...], copy_targets: [...]}   # as --link-target, --copy-target
    """
    now = now_ns()
    given = Path(config_path) if config_path else None
    if config_on_command_line(click.get_current_context()):
        release = load_release_file(Path(release_file), given)
    else:  # REPO_TOOL_CONFIG: the release file's own config: comes first
        release = load_release_file(Path(release_file), default_config=given)
    config = repo_config(release.config, repo_name or release.repo)
    options = _options(config, release.version, str(release.release_config) if release.release_config else None,
                       release.wave_policy, release.release_start_time, now, f"{release.path}: version",
                       f"{release.path}: release_start_time")
    options.load = LoadOptions(init=init, or_continue=True, allow_expired=allow_expired)
    options.jobs = jobs
    jobs_list = [(Location.of(config, e.variant, e.arch),
                  ReleaseImages(e.variant, e.arch, e.boot_image, e.root_image, e.hash_image,
                                list(e.link_targets), list(e.copy_targets), f"{release.path}: repos[{i}]"))
                 for i, e in enumerate(release.repos)]
    outcomes = publish_many(jobs_list, now, output_for(plan_only, as_json), options)
    if isinstance(outcomes, AlreadyPublished):
        already_published(outcomes, as_json, {"version": str(options.version), "repos": []})
        return
    start = StartSource.of(f"release_start_time in {release.path}", release.release_start_time, now)
    results = [report(o, as_json, start) for o in outcomes]
    if as_json:
        echo_json({"version": str(options.version), "repos": results})


def _deprecated_unsafe(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """``refresh --unsafe`` (the README named it before ``--allow-expired`` was shared): still works, says so."""
    if value:
        warn("refresh --unsafe is deprecated and will be removed: use --allow-expired (the same meaning)")
    return value


@click.command("refresh")
@repo_options
@click.option("--unsafe", is_flag=True, hidden=True, callback=_deprecated_unsafe,
              help="Deprecated: the same as --allow-expired.")
@click.option("--root-role", "root_roles", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A new root (N+1.root.json) to publish; repeat for a chain.")
def refresh_cmd(config_path: str, repo_name: str | None, variant: str, arch: str, plan_only: bool, as_json: bool,
                allow_expired: bool, unsafe: bool, root_roles: tuple[Path, ...]) -> None:
    """Re-sign targets, snapshot and timestamp with fresh expirations (for a scheduler).

    An expired repository is refused unless --allow-expired is given (it then revives it)."""
    location = location_of(config_path, repo_name, variant, arch)
    outcome = refresh(location, now_ns(), output_for(plan_only, as_json),
                      LoadOptions(allow_expired=unsafe or allow_expired, new_root_files=tuple(root_roles)))
    show(outcome, as_json)


def _rollout_command(action: Action, help_text: str) -> click.Command:
    @repo_options
    @click.option("--version", "version_text", default=None,
                  help="The update to act on (default: the newest for this variant/arch).")
    def command(config_path: str, repo_name: str | None, variant: str, arch: str, plan_only: bool, as_json: bool,
                allow_expired: bool, version_text: str | None, **extra: Any) -> None:
        now = now_ns()
        location = location_of(config_path, repo_name, variant, arch)
        version = parse_version_option(version_text, "--version") if version_text else None
        policy, start = None, None
        if action is Action.RESCHEDULE:
            policy, _ = load_policy(extra["wave_policy"])
            if extra.get("start_text"):
                start = parse_time_option(extra["start_text"], now, "--start")
        request = RolloutRequest(action, version, policy, start, allow_expired)
        start_source = StartSource.of("--start", extra.get("start_text"), now) if action is Action.RESCHEDULE \
            else StartSource()
        show(rollout(location, now, output_for(plan_only, as_json), request), as_json, start_source)

    command.__doc__ = help_text
    if action is Action.RESCHEDULE:
        command = click.option("--start", "start_text", default=None,
                               help="When the new waves start (RFC 3339 or offset; default now).")(command)
        command = click.option("--wave-policy", required=True, shell_complete=complete_policy,
                               help="Policy file or name: default, accelerated, slow-roll, ohno.")(command)
    return click.command(action.value)(command)


rollout_pause_cmd = _rollout_command(
    Action.PAUSE,
    "Stop offering the update to hosts not yet reached (the initial wave, seed 0, is always offered "
    "it); remember the schedule for resume.")
rollout_resume_cmd = _rollout_command(
    Action.RESUME,
    "Continue a paused rollout; the remaining waves shift by the length of the pause.")
rollout_halt_cmd = _rollout_command(
    Action.HALT,
    "Stop the rollout for every host not yet updated, except the initial wave (seed 0), which updog "
    "always offers an update to; pull the update (set-max-version, remove-update) to stop those too. "
    "Reschedule to start again.")
rollout_reschedule_cmd = _rollout_command(
    Action.RESCHEDULE,
    "Replace the waves from a policy, e.g. accelerate or an emergency policy (ohno).")


ALLOW_BROKEN_CHAIN = click.option(
    "--allow-broken-chain", is_flag=True,
    help="Pull even if nodes would be sent along a broken migration chain (they fail and stay where they are).")


@click.command("set-max-version")
@repo_options
@click.option("--max-version", "max_text", required=True, help="New max_version for this variant/arch's updates.")
@ALLOW_BROKEN_CHAIN
@click.option("--allow-pull-all", is_flag=True,
              help="Allow a max_version below every update of this variant/arch: nodes are then offered no update "
                   "at all (an emergency stop of every release).")
def set_max_version_cmd(config_path: str, repo_name: str | None, variant: str, arch: str, plan_only: bool,
                        as_json: bool, allow_expired: bool, max_text: str, allow_broken_chain: bool,
                        allow_pull_all: bool) -> None:
    """Set max_version on the live repo's updates for this variant/arch (hosts stop above it).

    Updates above it are pulled: nodes are no longer offered them, and nodes on them are offered the
    highest update left (a rollback). A stderr warning (JSON: warnings) says what it pulls."""
    max_version = parse_version_option(max_text, "--max-version")
    location = location_of(config_path, repo_name, variant, arch)
    outcome = set_max_version(location, now_ns(), output_for(plan_only, as_json), max_version,
                              PullOptions(allow_expired, allow_broken_chain, allow_pull_all))
    show(outcome, as_json)


@click.command("remove-update")
@repo_options
@click.option("--version", "version_text", required=True, help="The update to pull from manifest.json.")
@ALLOW_BROKEN_CHAIN
def remove_update_cmd(config_path: str, repo_name: str | None, variant: str, arch: str, plan_only: bool,
                      as_json: bool, allow_expired: bool, version_text: str, allow_broken_chain: bool) -> None:
    """Pull a release: remove its update from the live manifest (its targets stay, as they must)."""
    version: Version = parse_version_option(version_text, "--version")

    def edit(manifest: Manifest) -> list[str]:
        if not any(u.matches(variant, arch, version) for u in manifest.updates):
            raise UsageError(f"manifest.json has no update {variant} {arch} {version}")
        return manifest.remove_update(variant, arch, version)

    location = location_of(config_path, repo_name, variant, arch)
    outcome = edit_manifest(location, now_ns(), output_for(plan_only, as_json), edit,
                            PullOptions(allow_expired, allow_broken_chain))
    show(outcome, as_json)


COMMANDS = [publish_cmd, publish_release_cmd, refresh_cmd, rollout_pause_cmd, rollout_resume_cmd, rollout_halt_cmd,
            rollout_reschedule_cmd, set_max_version_cmd, remove_update_cmd]
