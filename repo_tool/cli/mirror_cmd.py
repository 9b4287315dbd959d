"""``repo-tool mirror``: copy a verified upstream repository (metadata byte for byte, the targets it
needs) to a path or S3, incrementally and in the safe order (:mod:`repo_tool.mirror.mirror`); or, with
``--resign``, re-root it: publish upstream's releases into the config's repository, signed by the
operator's keys on the operator's waves (:mod:`repo_tool.publish.reroot`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from repo_tool.audit.anchor import read_trusted_root
from repo_tool.cli.common import aws_options, aws_settings, echo_json, expires_options, now_ns, parse_time_option
from repo_tool.cli.editing import ALLOW_EXPIRED_HELP, StartSource, already_published, location_of, output_for, report
from repo_tool.cli.options import complete_policy, config_on_command_line, config_option, repo_option
from repo_tool.cli.progress import progress_line
from repo_tool.core.instant import format_instant
from repo_tool.core.selection import LATEST
from repo_tool.core.versionspec import parse_versions
from repo_tool.errors import UsageError
from repo_tool.mirror.mirror import Location, MirrorOptions, Pair, mirror, mirror_each
from repo_tool.publish.inputs import load_policy
from repo_tool.publish.load import LoadOptions
from repo_tool.publish.load import Location as RepoLocation
from repo_tool.publish.release import AlreadyPublished
from repo_tool.publish.reroot import Rerooted, RerootOptions, Upstream, reroot, reroot_each
from repo_tool.storage import open_storage

RESIGN_ONLY = ("repo_name", "wave_policy", "start_text", "init", "allow_expired")
PLACEHOLDERS = ("{variant}", "{arch}")
EXPIRES = ("targets_expires", "snapshot_expires", "timestamp_expires")

EPILOG = """\b
Re-root (--resign): publish upstream's verified releases into the
config's repository (--config, --repo, --variant, --arch), signed by
your keys, with waves from your --wave-policy counted from
--release-start-time and your expirations; a first run into a new
repository takes --init.  --versions defaults to latest there."""


@click.command("mirror", epilog=EPILOG)
@click.option("--root", "root_path", required=True, type=click.Path(dir_okay=False),
              help="The trusted root.json the source is verified from (the one nodes ship).")
@click.option("--from-metadata-url", required=True, metavar="URL",
              help="The source's variant/arch metadata (path, file://, http(s)://, s3://); {variant} and {arch} in "
                   "it stand for each --variant and --arch, as in updog's metadata-base-url.")
@click.option("--from-targets-url", required=True, metavar="URL", help="The source's targets.")
@click.option("--to-metadata-url", default=None, metavar="URL",
              help="Where the metadata goes (path, file:// or s3://BUCKET/PREFIX/; {variant} and {arch} as in "
                   "--from-metadata-url); not with --resign.")
@click.option("--to-targets-url", default=None, metavar="URL",
              help="Where the targets go (path, file:// or s3://); not with --resign.")
@click.option("--versions", "versions_text", default=None, metavar="latest|all|SPEC",
              help="Only the targets these manifest versions need (images, manifest.json, migrations): latest, "
                   "all, or a comma list of versions and requirements such as >=1.19.0.  Default: every target "
                   "(--resign: latest).")
@click.option("--plan", is_flag=True, help="Only say what would be copied or published; write and sign nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--resign", is_flag=True,
              help="Re-root: publish upstream's releases into --config's repository with your keys and waves.")
@config_option("--resign: repo-tool.yaml (or a pubsys Infra.toml) naming the repository to publish into.")
@repo_option("--resign: repository name in the config (if several).")
@click.option("--variant", "variants", multiple=True,
              help="A variant, e.g. aws-k8s-1.28: what {variant} in the metadata URLs stands for; repeat to mirror "
                   "or re-root several (every --variant with every --arch).  --resign: the config's repository "
                   "for it.")
@click.option("--arch", "arches", multiple=True,
              help="An architecture (x86_64, aarch64): what {arch} in the metadata URLs stands for; repeatable.")
@click.option("--wave-policy", default=None, shell_complete=complete_policy,
              help="--resign: your wave policy, a file or a shipped name (default: the repo's wave_policy).")
@click.option("--release-start-time", "start_text", default=None,
              help="--resign: RFC 3339 time or offset ('in 2 hours') your waves and expirations count from "
                   "(default: now).")
@click.option("--init", is_flag=True,
              help="--resign: start the repository if it does not exist yet, or continue it if it does (a rerun of "
                   "a first run); one half made with another root is refused.")
@click.option("--allow-expired", is_flag=True, help=f"--resign: {ALLOW_EXPIRED_HELP}")
@expires_options("--release-start-time, else now (--resign only)")
@aws_options
@click.pass_context
def mirror_cmd(ctx: click.Context, root_path: str, from_metadata_url: str, from_targets_url: str,
               to_metadata_url: str | None, to_targets_url: str | None, versions_text: str | None, plan: bool,
               as_json: bool, resign: bool, config_path: str | None, repo_name: str | None, variants: tuple[str, ...],
               arches: tuple[str, ...], wave_policy: str | None, start_text: str | None, init: bool,
               allow_expired: bool) -> None:
    """Mirror a repository: verify the source as a node does, then copy what the destination lacks
    (targets, roots, snapshot and targets files, timestamp.json last).  A rerun copies nothing new.
    With --resign, publish the source's releases into your own repository instead."""
    _check_targets_urls((from_targets_url, "--from-targets-url"), (to_targets_url, "--to-targets-url"))
    if resign:
        _check_resign(to_metadata_url, to_targets_url, config_path, variants, arches)
        assert config_path is not None
        pairs = _pairs(from_metadata_url, None, variants, arches)
        _reroot(root_path, (from_metadata_url, from_targets_url), versions_text, plan, as_json,
                (config_path, repo_name, pairs), (wave_policy, start_text, init, allow_expired))
        return
    given = [name for name in (*RESIGN_ONLY, *EXPIRES) if _given(ctx, name)]
    if given or (config_path is not None and config_on_command_line(ctx)):
        flag = _flag(given[0]) if given else "--config"
        raise UsageError(f"{flag} goes with --resign (a mirror copies upstream's signed metadata as it is)")
    if to_metadata_url is None or to_targets_url is None:
        missing = "--to-metadata-url" if to_metadata_url is None else "--to-targets-url"
        raise UsageError(f"missing option {missing} (where the mirror goes; or --resign to publish into a config's "
                         "repository)")
    versions = parse_versions(versions_text) if versions_text is not None else None
    pairs = _pairs(from_metadata_url, to_metadata_url, variants, arches)
    root = read_trusted_root(root_path)
    aws = aws_settings()
    here = Path.cwd()
    options = MirrorOptions(versions, plan, root.name, progress_line(as_json))
    if not pairs:
        source = Location(open_storage(from_metadata_url, here, aws), open_storage(from_targets_url, here, aws))
        destination = Location(open_storage(to_metadata_url, here, aws), open_storage(to_targets_url, here, aws))
        result = mirror(source, destination, root.data, now_ns(), options)
        _show(result.to_json_obj(), result.text_lines(), as_json)
        return
    from_targets, to_targets = open_storage(from_targets_url, here, aws), open_storage(to_targets_url, here, aws)
    each = [Pair(variant, arch, Location(open_storage(_expand(from_metadata_url, variant, arch), here, aws),
                                         from_targets),
                 Location(open_storage(_expand(to_metadata_url, variant, arch), here, aws), to_targets))
            for variant, arch in pairs]
    many = mirror_each(each, root.data, now_ns(), options)
    _show(many.to_json_obj(), many.text_lines(), as_json)
    error = many.error()
    if error is not None:
        raise error


def _show(data: dict[str, Any], lines: list[str], as_json: bool) -> None:
    if as_json:
        echo_json(data)
    else:
        click.echo("\n".join(lines))


def _expand(url: str, variant: str, arch: str) -> str:
    """``url`` with ``{variant}`` and ``{arch}`` replaced (updog's metadata-base-url placeholders)."""
    return url.replace("{variant}", variant).replace("{arch}", arch)


def _check_targets_urls(*urls: tuple[str | None, str]) -> None:
    """Targets are shared by every variant/arch: their URLs take no placeholders."""
    for url, flag in urls:
        found = next((p for p in PLACEHOLDERS if url is not None and p in url), None)
        if found is not None:
            raise UsageError(f"{flag} {url}: targets are shared by every variant and arch; {found} goes in the "
                             "metadata URLs only")


def _pairs(from_url: str, to_url: str | None, variants: tuple[str, ...], arches: tuple[str, ...]
           ) -> list[tuple[str, str]]:
    """The variant/arch pairs of the run: none (the URLs name one repository), or every --variant with
    every --arch, which the metadata URLs then hold as ``{variant}`` and ``{arch}`` (``to_url`` None: a
    re-root, whose source names one repository without them)."""
    templated = any(p in from_url for p in PLACEHOLDERS)
    if not variants and not arches:
        if templated:
            raise UsageError("--from-metadata-url holds {variant}/{arch}: give --variant and --arch for them")
        return []
    if not variants or not arches:
        raise UsageError(f"{'--arch' if variants else '--variant'}: give both --variant and --arch (each repeatable)")
    several = len(set(variants)) > 1 or len(set(arches)) > 1
    for url, flag in ((from_url, "--from-metadata-url"), (to_url, "--to-metadata-url")):
        if url is None:
            continue
        missing = [p for p in PLACEHOLDERS if p not in url]
        if missing and (several or (flag == "--from-metadata-url" and to_url is not None)):
            raise UsageError(f"{flag} {url}: has no {missing[0]}; with --variant/--arch each repository's URL "
                             "holds {variant} and {arch} (e.g. https://updates.example/{variant}/{arch}/)")
    return [(variant, arch) for variant in dict.fromkeys(variants) for arch in dict.fromkeys(arches)]

def _given(ctx: click.Context, name: str) -> bool:
    if name in EXPIRES:
        return name.removesuffix("_expires") in ctx.meta.get("repo_tool.expires", {})
    source = ctx.get_parameter_source(name)
    return source is click.core.ParameterSource.COMMANDLINE


def _flag(name: str) -> str:
    return {"repo_name": "--repo", "start_text": "--release-start-time"}.get(name, f"--{name.replace('_', '-')}")


def _check_resign(to_metadata_url: str | None, to_targets_url: str | None, config_path: str | None,
                  variants: tuple[str, ...], arches: tuple[str, ...]) -> None:
    """The flags a re-root needs, and none that go with a mirror only."""
    if to_metadata_url is not None or to_targets_url is not None:
        flag = "--to-metadata-url" if to_metadata_url is not None else "--to-targets-url"
        raise UsageError(f"{flag}: --resign publishes into the config's repository (--config, --repo); "
                         "leave the --to-* URLs out")
    if config_path is None:
        raise UsageError("--resign needs --config (or REPO_TOOL_CONFIG)")
    for values, flag in ((variants, "--variant"), (arches, "--arch")):
        if not values:
            raise UsageError(f"--resign needs {flag}")


def _reroot(root_path: str, source: tuple[str, str], versions_text: str | None, plan: bool,
            as_json: bool, where: tuple[str, str | None, list[tuple[str, str]]],
            schedule: tuple[str | None, str | None, bool, bool]) -> None:
    """``mirror --resign``: publish upstream's chosen releases into the config's repository, for each
    variant/arch pair (their upstream metadata URL: ``source``'s with ``{variant}``/``{arch}`` filled)."""
    config_path, repo_name, pairs = where
    wave_policy, start_text, init, allow_expired = schedule
    now = now_ns()
    versions = parse_versions(versions_text if versions_text is not None else LATEST)
    locations = [location_of(config_path, repo_name, variant, arch) for variant, arch in pairs]
    policy, _ = load_policy(wave_policy or locations[0].config.wave_policy)
    start = now if start_text is None else parse_time_option(start_text, now, "--release-start-time")
    root = read_trusted_root(root_path)
    aws = aws_settings()
    here = Path.cwd()
    targets = open_storage(source[1], here, aws)
    jobs = [(location, Upstream(open_storage(_expand(source[0], location.variant, location.arch), here, aws),
                                targets, root.data, root.name)) for location in locations]
    options = RerootOptions(versions, policy, start,
                            None if start_text is None else f"--release-start-time {format_instant(start)}",
                            LoadOptions(init=init, or_continue=init, allow_expired=allow_expired))
    start_source = StartSource.of("--release-start-time", start_text, now)
    output = output_for(plan, as_json)
    if len(jobs) == 1:  # one repository: its answer as publish gives it (an error is the error)
        _show_rerooted(reroot(jobs[0][0], jobs[0][1], now, output, options), jobs[0][0], versions.text, as_json,
                       start_source, echo=True)
        return
    many = reroot_each(jobs, now, output, options)
    answers = [_show_rerooted(result, location, versions.text, as_json, start_source, echo=False)
               for location, result in many.done]
    failed = [{"variant": loc.variant, "arch": loc.arch, "error": exc.message} for loc, exc in many.failures]
    if as_json:
        echo_json({"ok": not failed, "repositories": answers, "failed": failed})
    else:
        for item in failed:
            click.echo(f"{item['variant']}/{item['arch']}: FAILED: {item['error']}")
    error = many.error()
    if error is not None:
        raise error


def _show_rerooted(result: Rerooted | AlreadyPublished, location: RepoLocation, versions: str, as_json: bool,
                   start: StartSource, echo: bool) -> dict[str, Any]:
    """Print one repository's re-root (text; JSON too if ``echo``); return its JSON answer."""
    answer: dict[str, Any] = {"variant": location.variant, "arch": location.arch, "versions": versions}
    if isinstance(result, AlreadyPublished):
        if echo or not as_json:
            already_published(result, as_json, answer)
        return {**answer, "already_published": True, "message": result.message, "warnings": list(result.warnings)}
    data = {**report(result.outcome, as_json, start), "upstream": result.upstream_json()}
    if not as_json:
        verb = "would re-root (plan)" if result.outcome.planned_only else "re-rooted"
        click.echo(f"{verb} from {result.upstream_url}: {', '.join(map(str, result.added))}")
    elif echo:
        echo_json(data)
    return data
