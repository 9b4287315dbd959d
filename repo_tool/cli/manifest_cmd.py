"""``repo-tool manifest ...``: edit and inspect manifest.json like Bottlerocket's ``updata``.

Commands and short flags follow updata (``-f/--variant`` for add-update,
``-l/--variant`` elsewhere, as upstream); every write re-serializes the whole
manifest the way updata does and replaces the file atomically.  The edits and checks are
:mod:`repo_tool.core.manifest`'s and :mod:`repo_tool.publish.inputs`'; this module parses options
and prints.
"""

from __future__ import annotations

import platform
from collections.abc import Callable

import click

from repo_tool.cli.common import echo_json, now_ns, parse_time_option, parse_version_option, warn
from repo_tool.cli.options import complete_policy, json_option, json_verdict
from repo_tool.core.instant import format_instant
from repo_tool.core.manifest import Images, migration_key_text
from repo_tool.core.nodeconfig import bottlerocket_arch
from repo_tool.core.readiness import check_seed
from repo_tool.core.rollout import when_text
from repo_tool.core.selection import Host, Overrides, find_migrations, parse_version_lock, retrieve_list, select
from repo_tool.errors import RepoToolError, UsageError
from repo_tool.publish.inputs import (
    init_manifest,
    load_manifest,
    load_policy,
    load_release,
    validate_manifest_file,
    write_manifest,
)

FILE = click.argument("file", type=click.Path(dir_okay=False))
UPDATA_FLAGS = """\b
Flags follow Bottlerocket's updata where it has the command:
-f/--variant (add-update) or -l/--variant, -v/--version, -a/--arch,
-m/--max-version, -b/--boot, -r/--root, -h/--hash, -w/--wave-file,
-f/--from, -t/--to.  So here -h is --hash (use --help), -r is a root
image (not --role), -v a version (not verbosity), and -f is --variant
or --from, as in updata."""


def _selects_update(command: Callable[..., None]) -> Callable[..., None]:
    """updata's options naming one update: -l/--variant, -v/--version, -a/--arch."""
    for option in (
        click.option("-a", "--arch", required=True, help="x86_64 or aarch64."),
        click.option("-v", "--version", "version_text", required=True, help="The update's version."),
        click.option("-l", "--variant", required=True, help="The update's variant."),
    ):
        command = option(command)
    return command


def _warn_all(warnings: list[str]) -> None:
    for message in warnings:
        warn(message)


@click.group()
def manifest() -> None:
    """Create, edit, validate and query manifest.json (Bottlerocket updata compatible)."""


@manifest.command()
@FILE
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option("Print {file, written} as JSON.")
def init(file: str, force: bool, as_json: bool) -> None:
    """Write an empty manifest."""
    init_manifest(file, force)
    if as_json:
        echo_json({"file": file, "written": True})
        return
    click.echo(f"wrote empty manifest {file}")


@manifest.command("add-update")
@FILE
@click.option("-f", "--variant", required=True, help="Variant, e.g. aws-k8s-1.28.")
@click.option("-v", "--version", "version_text", required=True, help="Release version (strict semver).")
@click.option("-a", "--arch", required=True, help="x86_64 or aarch64.")
@click.option("-m", "--max-version", "max_version_text", default=None,
              help="Highest version nodes may run; default max(version, first update's max_version).")
@click.option("-b", "--boot", "--boot-image", "boot", required=True, help="Boot image target name.")
@click.option("-r", "--root", "--root-image", "root", required=True,
              help="Root image target name (updata's -r/--root: not a root.json, not --role).")
@click.option("-h", "--hash", "--hash-image", "hash_", required=True,
              help="Verity hash image target name (updata's -h/--hash: not --help).")
@json_option("Print the update as added (and any warnings) as JSON.")
def add_update(file: str, variant: str, version_text: str, arch: str, max_version_text: str | None,
               boot: str, root: str, hash_: str, as_json: bool) -> None:
    """Add an update (without waves); sets max_version on the variant/arch's updates."""
    version = parse_version_option(version_text, "--version")
    max_version = None if max_version_text is None else parse_version_option(max_version_text, "--max-version")
    doc = load_manifest(file)
    try:
        warnings = doc.add_update(version, max_version, arch, variant, Images(boot=boot, root=root, hash=hash_))
    except RepoToolError as exc:
        raise exc.within(file) from None
    write_manifest(file, doc)
    _warn_all(warnings)
    added = doc.updates[-1]
    if as_json:
        echo_json({"file": file, "added": added.to_json_obj(), "warnings": warnings})
        return
    click.echo(f"added {variant} {arch} {version} (max_version {added.max_version}) to {file}")


@manifest.command("remove-update")
@FILE
@_selects_update
@json_option("Print {file, removed, variant, arch, version, warnings} as JSON.")
def remove_update(file: str, variant: str, version_text: str, arch: str, as_json: bool) -> None:
    """Remove an update; max_version of the others is left unchanged (as upstream)."""
    version = parse_version_option(version_text, "--version")
    doc = load_manifest(file)
    before = len(doc.updates)
    warnings = doc.remove_update(variant, arch, version)
    _warn_all(warnings)
    removed = len(doc.updates) != before
    if removed:  # else nothing matched: the file is left exactly as it was
        write_manifest(file, doc)
    if as_json:
        echo_json({"file": file, "removed": removed, "variant": variant, "arch": arch, "version": str(version),
                   "warnings": warnings})
    elif removed:
        click.echo(f"removed {variant} {arch} {version} from {file}")


@manifest.command("set-waves")
@FILE
@_selects_update
@click.option("-w", "--wave-file", "--wave-policy", "policy", required=True, shell_complete=complete_policy,
              help="Policy file or shipped policy name (default, accelerated, slow-roll, ohno).")
@click.option("--start-at", "--start-time", "start_text", default="now", show_default=True,
              help="Release start the wave offsets count from (RFC 3339, 'now', or 'in N hours').")
@json_option("Print the update with its new waves (and any warnings) as JSON.")
def set_waves(file: str, variant: str, version_text: str, arch: str, policy: str, start_text: str,
              as_json: bool) -> None:
    """Set an update's waves from a wave policy."""
    version = parse_version_option(version_text, "--version")
    wave_policy, label = load_policy(policy)
    start = parse_time_option(start_text, now_ns(), "--start-at")
    doc = load_manifest(file)
    try:
        warnings = doc.set_waves(variant, arch, version, start, wave_policy)
    except RepoToolError as exc:
        raise exc.within(file) from None
    write_manifest(file, doc)
    _warn_all(warnings)
    if as_json:
        update = next(u for u in doc.updates if u.matches(variant, arch, version))
        echo_json({"file": file, "policy": label, "start": format_instant(start), "update": update.to_json_obj(),
                   "warnings": warnings})
        return
    click.echo(f"set {len(wave_policy.waves)} waves of {label} on {variant} {arch} {version}, "
               f"starting {format_instant(start)}")


@manifest.command("set-max-version")
@FILE
@click.option("-m", "--max-version", "max_version_text", required=True,
              help="The highest version nodes may update to.")
@click.option("-a", "--arch", default=None, help="Only updates of this arch.")
@click.option("-l", "--variant", default=None, help="Only updates of this variant.")
@json_option("Print {file, max_version, updates} (the number changed) as JSON.")
def set_max_version(file: str, max_version_text: str, arch: str | None, variant: str | None,
                    as_json: bool) -> None:
    """Set max_version on every update (or those matching --arch/--variant)."""
    max_version = parse_version_option(max_version_text, "--max-version")
    doc = load_manifest(file)
    count = doc.update_max_version(max_version, arch, variant)
    if count == 0:
        warn(f"{file}: no update matches; nothing changed")
    else:
        write_manifest(file, doc)
    if as_json:
        echo_json({"file": file, "max_version": str(max_version), "updates": count})
    elif count:
        click.echo(f"set max_version {max_version} on {count} update(s) in {file}")


@manifest.command("set-migrations")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@click.option("-f", "--from", "release_path", required=True, type=click.Path(dir_okay=False),
              help="Release.toml to copy the migrations from (updata's -f/--from; a version in 'migrations').")
@click.option("-t", "--to", "to_path", default=None, type=click.Path(dir_okay=False),
              help="The manifest to write (updata's spelling; or give FILE).")
@json_option("Print {file, release, migrations} (the hops copied) as JSON.")
def set_migrations(file: str | None, release_path: str, to_path: str | None, as_json: bool) -> None:
    """Replace the manifest's migrations with those of Release.toml."""
    if (file is None) == (to_path is None):
        raise UsageError("give the manifest either as FILE or as --to, once")
    target = file if file is not None else to_path
    assert target is not None
    release = load_release(release_path)
    doc = load_manifest(target)
    try:
        doc.set_migrations(release.migrations)
    except RepoToolError as exc:
        raise exc.within(release_path) from None
    write_manifest(target, doc)
    if as_json:
        echo_json({"file": target, "release": release_path, "migrations": len(release.migrations)})
        return
    click.echo(f"copied {len(release.migrations)} migration hops from {release_path} to {target}")


@manifest.command()
@FILE
@json_option("Print {file, ok, result, updates, migration_hops}, or {file, ok: false, result: fail, error} when "
             "invalid (exit 1 still, and the error line on stderr).")
def validate(file: str, as_json: bool) -> None:
    """Check that a manifest parses, its waves and migrations are in order, and every two versions of a
    variant/arch are joined by the migration chain nodes walk (exit 1 if not)."""
    with json_verdict(as_json, file=file):
        doc = validate_manifest_file(file)
    if as_json:
        echo_json({"file": file, "ok": True, "result": "pass", "updates": len(doc.updates),
                   "migration_hops": len(doc.migrations)})
        return
    click.echo(f"{file}: valid ({len(doc.updates)} updates, {len(doc.migrations)} migration hops)")


@manifest.command()
@FILE
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as repo-tool would write it.")
def show(file: str, as_json: bool) -> None:
    """Print the updates, their waves and the migrations."""
    doc = load_manifest(file)
    if as_json:
        echo_json(doc.to_json_obj())
        return
    click.echo(f"{file}: {len(doc.updates)} updates, {len(doc.migrations)} migration hops")
    for update in doc.updates:
        click.echo(f"- {update.variant} {update.arch} {update.version} (max_version {update.max_version})")
        click.echo(f"    images: boot={update.images.boot} root={update.images.root} hash={update.images.hash}")
        if not update.waves:
            click.echo("    waves: none (offered to every seed at once)")
        for seed in sorted(update.waves):
            click.echo(f"    wave from seed {seed:>4}: {when_text(update.waves[seed])}")
    for key, names in sorted(doc.migrations.items()):
        click.echo(f"  {migration_key_text(key)}: {', '.join(names) if names else '(no migration needed)'}")


@manifest.command("select")
@FILE
@click.option("--variant", required=True, help="Host variant (VARIANT_ID).")
@click.option("--arch", default=None, help="Host arch; default this machine's.")
@click.option("--current", "current_text", required=True, help="Host's current version (VERSION_ID).")
@click.option("--seed", type=int, required=True, help="Host seed, 0-2047.")
@click.option("--version-lock", default="latest", show_default=True, help="updog.toml version_lock.")
@click.option("--image", "image_text", default=None, help="Force this version, as updog -i/--image.")
@click.option("--ignore-waves", is_flag=True, help="As updog -n/--now, or ignore_waves = true.")
@click.option("--at", "at_text", default="now", show_default=True, help="Evaluate waves at this time.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON {update, downgrade, decision, reasons}.")
def select_cmd(file: str, variant: str, arch: str | None, current_text: str, seed: int, version_lock: str,
               image_text: str | None, ignore_waves: bool, at_text: str, as_json: bool) -> None:
    """The update updog would choose, or none, and why."""
    current = parse_version_option(current_text, "--current")
    force = None if image_text is None else parse_version_option(image_text, "--image")
    now = parse_time_option(at_text, now_ns(), "--at")
    try:
        check_seed(seed)
    except RepoToolError as exc:
        raise UsageError(f"--seed: {exc}") from None
    if force is None:  # as updog: --image bypasses version_lock, even a malformed one
        try:
            parse_version_lock(version_lock)
        except RepoToolError as exc:
            raise UsageError(f"--version-lock: {exc}") from None
    doc = load_manifest(file)
    host = Host(variant, arch or bottlerocket_arch(platform.machine()), current, seed)
    result = select(doc, host, now, Overrides(version_lock, force, ignore_waves))
    if as_json:
        echo_json(result.to_json_obj())
        return
    if result.update is None:
        click.echo(f"no update: {result.decision}")
    else:
        note = f" (downgrade from {current})" if result.downgrade else ""
        click.echo(f"update: {result.update.variant} {result.update.version}{note}: {result.decision}")
    for item in result.considered:
        mark = "kept   " if item.kept else "dropped"
        click.echo(f"  {mark} {item.update.variant} {item.update.arch} {item.update.version}: {item.why}")


@manifest.command("migrations")
@FILE
@click.option("--from", "from_text", required=True, help="Version migrating from (not a file, as in set-migrations).")
@click.option("--to", "to_text", required=True, help="Version migrating to (not a file, as in set-migrations).")
@json_option("Print {from, to, direction, migrations, retrieve} as JSON (retrieve: what updog downloads).")
def migrations_cmd(file: str, from_text: str, to_text: str, as_json: bool) -> None:
    """The migrations the migrator runs from one version to another, in order."""
    from_version = parse_version_option(from_text, "--from")
    to_version = parse_version_option(to_text, "--to")
    doc = load_manifest(file)
    try:
        names = find_migrations(from_version, to_version, doc.migrations)
        retrieve = retrieve_list(from_version, to_version, doc.migrations)
    except RepoToolError as exc:
        raise exc.within(file) from None
    direction = "none" if from_version == to_version else ("forward" if from_version < to_version else "backward")
    if as_json:
        echo_json({"from": str(from_version), "to": str(to_version), "direction": direction,
                   "migrations": names, "retrieve": retrieve})
        return
    if not names:
        click.echo(f"no migrations from {from_version} to {to_version}", err=True)
    for name in names:
        click.echo(name)


for _command in (manifest, *manifest.commands.values()):
    _command.epilog = UPDATA_FLAGS
