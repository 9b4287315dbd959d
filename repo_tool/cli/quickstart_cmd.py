"""``repo-tool quickstart DIR``: everything needed to try the tool, in one directory.

The work is :mod:`repo_tool.publish.quickstart`'s; this module only prints what it made.
"""

from __future__ import annotations

from pathlib import Path

import click

from repo_tool.cli.common import aws_options, aws_settings, echo_json, now_ns
from repo_tool.cli.options import complete_policy
from repo_tool.core.manifest import MANIFEST_NAME
from repo_tool.publish import quickstart
from repo_tool.publish.inputs import load_policy


@click.command("quickstart")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--wave-policy", default="default", show_default=True, shell_complete=complete_policy,
              help="Policy for both sample releases.")
@click.option("--json", "as_json", is_flag=True, help="Print paths and versions as JSON.")
@click.option("--metadata-url", default=None, metavar="s3://BUCKET/PREFIX/",
              help="Publish the repo to S3 instead of DIR/repo (with --targets-url; buckets created if missing).")
@click.option("--targets-url", default=None, metavar="s3://BUCKET/targets/", help="Shared targets location in S3.")
@aws_options
def quickstart_cmd(directory: Path, wave_policy: str, as_json: bool, metadata_url: str | None,
                   targets_url: str | None) -> None:
    """Dev keys, a signed root, a config, sample images and a repo with two releases (local or S3)."""
    policy, _ = load_policy(wave_policy)
    qs = quickstart.run(directory, now_ns(), policy, quickstart.RepoUrls(metadata_url, targets_url, aws_settings()))
    if as_json:
        echo_json({
            "directory": str(qs.directory.resolve()),
            "config": str(qs.config.resolve()),
            "root": str(qs.root.resolve()),
            "metadata_url": qs.metadata_url,
            "targets_url": qs.targets_url,
            "metadata_dir": str(qs.metadata_dir.resolve()) if qs.metadata_dir else None,
            "targets_dir": str(qs.targets_dir.resolve()) if qs.targets_dir else None,
            "keys": {role: str(path.resolve()) for role, path in qs.keys.items()},
            "variant": qs.variant,
            "arch": qs.arch,
            "versions": list(qs.versions),
        })
        return
    d = qs.directory
    last = qs.outcomes[-1].plan.versions
    manifest_object = next(t.object_name for t in qs.outcomes[-1].plan.targets if t.name == MANIFEST_NAME)
    manifest_hint = (f"  repo-tool manifest show {qs.targets_dir}/{manifest_object}\n" if qs.targets_dir else "")
    repo_at = qs.metadata_dir or qs.metadata_url
    click.echo(f"""repo-tool quickstart in {d}:
  keys (0600, dev only)   {d}/keys/{{root,targets,snapshot,timestamp}}.pem
  trusted root            {qs.root}
  config                  {qs.config}  (repo 'dev')
  repository              {repo_at}  (targets v{last['targets']}, snapshot v{last['snapshot']})
  shared targets          {qs.targets_dir or qs.targets_url}
  published               {qs.variant} {qs.arch}: {', '.join(qs.versions)} (waves: {wave_policy})

Next:
{manifest_hint}  repo-tool rollout pause --config {qs.config} --variant {qs.variant} --arch {qs.arch} --plan
  repo-tool refresh --config {qs.config} --variant {qs.variant} --arch {qs.arch}
  repo-tool publish --config {qs.config} --variant {qs.variant} --arch {qs.arch} --version 1.2.0 \\
      --boot-image B --root-image R --hash-image H --plan""")
