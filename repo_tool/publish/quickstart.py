"""A complete local setup in one directory: dev keys, a signed root, a config, sample
images, and a repository with two published releases (the README's first command).

Must not: touch a directory that is not new and empty, or publish anywhere but a new local
repository or the S3 locations it is given.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import lz4.frame

from repo_tool.aws import AwsSettings
from repo_tool.config import NewEntry, config_text, load_config
from repo_tool.core.instant import NANOS_PER_SECOND
from repo_tool.core.semver import Version
from repo_tool.core.waves import WavePolicy
from repo_tool.errors import UsageError
from repo_tool.localfs import stat_or_none, write_atomic
from repo_tool.publish.infra import create_bucket
from repo_tool.publish.live import Outcome, Write
from repo_tool.publish.load import LoadOptions, Location
from repo_tool.publish.release import AlreadyPublished, PublishOptions, ReleaseImages, publish
from repo_tool.signing.keyfiles import generate_private, write_private_key
from repo_tool.signing.rootfile import add_key, new_root, root_file_bytes, sign
from repo_tool.signing.signers import load_signer
from repo_tool.storage import open_storage
from repo_tool.storage.s3 import parse_s3_url
from repo_tool.trust.model import TOP_ROLES, parse_role

VARIANT = "aws-k8s-1.28"
ARCH = "x86_64"
VERSIONS = ("1.0.0", "1.1.0")
MIGRATION = "migrate_v1.1.0_sample-settings.lz4"
ROOT_LIFETIME = 52 * 7 * 86400 * NANOS_PER_SECOND
# Decompressed sizes; the node client's make-disk defaults are larger.
IMAGE_SIZES = {"boot": 2 * 1024 * 1024, "root": 8 * 1024 * 1024, "hash": 256 * 1024}


@dataclass
class Quickstart:
    directory: Path
    config: Path
    root: Path
    metadata_dir: Path | None  # local repos only
    targets_dir: Path | None
    keys: dict[str, Path]
    metadata_url: str = ""      # where <variant>/<arch>/ metadata and the targets ended up
    targets_url: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    variant: str = VARIANT
    arch: str = ARCH
    versions: tuple[str, ...] = VERSIONS


def sample_image(kind: str, version: str, size: int) -> bytes:
    """A recognisable, partly incompressible partition image, lz4-frame compressed."""
    header = f"bottlerocket sample {kind} image {VARIANT} {ARCH} {version}\n".encode()
    block = hashlib.sha256(header).digest() * 128  # 4 KiB of noise repeated
    body = bytearray(header)
    counter = 0
    while len(body) < size:
        body += hashlib.sha256(block + counter.to_bytes(8, "big")).digest() * 8 if counter % 4 == 0 else bytes(256)
        counter += 1
    compressed: bytes = lz4.frame.compress(bytes(body[:size]), compression_level=0)
    return compressed


def _write_images(directory: Path, version: str) -> dict[str, Path]:
    commit = hashlib.sha256(version.encode()).hexdigest()[:7]
    stem = f"bottlerocket-{VARIANT}-{ARCH}-{version}-{commit}"
    names = {"boot": f"{stem}-boot.ext4.lz4", "root": f"{stem}-root.ext4.lz4", "hash": f"{stem}-root.verity.lz4"}
    paths = {}
    for kind, name in names.items():
        path = directory / name
        write_atomic(path, sample_image(kind, version, IMAGE_SIZES[kind]))
        paths[kind] = path
    return paths


@dataclass(frozen=True)
class RepoUrls:
    """Where quickstart publishes: both URLs (``s3://``) or neither (``DIR/repo``), and the AWS
    settings for S3."""

    metadata_url: str | None = None
    targets_url: str | None = None
    aws: AwsSettings | None = None


def run(directory: Path, now: int, policy: WavePolicy, urls: RepoUrls = RepoUrls()) -> Quickstart:
    """Keys, root, config and two releases in ``directory``; the repo itself in ``directory/repo``,
    or at ``urls`` (``s3://``: buckets are created when missing)."""
    metadata_url, targets_url = urls.metadata_url, urls.targets_url
    if (metadata_url is None) != (targets_url is None):
        raise UsageError("--metadata-url and --targets-url go together")
    aws = urls.aws or AwsSettings()
    remote = [url for url in (metadata_url, targets_url) if url is not None]
    for url in remote:
        if urlparse(url).scheme != "s3":
            raise UsageError(f"{url}: quickstart publishes to a new directory or to s3://BUCKET/PREFIX/")
        open_storage(url, None, aws)  # validates the URL before anything is created
    if stat_or_none(directory) is not None:
        try:
            empty = not any(directory.iterdir())
        except OSError as exc:
            raise UsageError(f"{directory}: {exc.strerror or exc}; quickstart needs a new directory") from None
        if not empty:
            raise UsageError(f"{directory} exists and is not empty; quickstart needs a new directory")
    for bucket in dict.fromkeys(parse_s3_url(url)[0] for url in remote):
        create_bucket(aws, bucket, None, plan=False)
    directory.mkdir(parents=True, exist_ok=True)
    keys_dir = directory / "keys"
    keys = {}
    for role in TOP_ROLES:
        keys[role] = write_private_key(keys_dir / f"{role}.pem", generate_private("ed25519")).path
    os.chmod(keys_dir, 0o700)

    signed = new_root(now + ROOT_LIFETIME)
    for role in TOP_ROLES:
        add_key(signed, load_signer(str(keys[role])).entry, [role])
    unsigned = parse_role(root_file_bytes(signed), "root", "root.json")
    root_path = directory / "root.json"
    result = sign(unsigned, [load_signer(str(keys["root"]))])
    write_atomic(root_path, result.data)

    config_path = directory / "repo-tool.yaml"
    write_atomic(config_path, config_text(NewEntry(
        "dev", metadata_url or "repo/metadata", targets_url or "repo/targets", "root.json",
        {role: [f"keys/{role}.pem"] for role in TOP_ROLES}, aws=aws if remote else AwsSettings(),
    )).encode())

    images_dir = directory / "images"
    for version in VERSIONS:
        (images_dir / version).mkdir(parents=True, exist_ok=True)
    migration = images_dir / VERSIONS[1] / MIGRATION
    write_atomic(migration, lz4.frame.compress(b"#!/bin/sh\n# sample settings migration 1.0.0 -> 1.1.0\nexit 0\n"),
                 mode=0o644)

    config = load_config(config_path, None, aws)
    location = Location.of(config, VARIANT, ARCH)
    local = not remote
    qs = Quickstart(directory, config_path, root_path,
                    directory / "repo" / "metadata" / VARIANT / ARCH if local else None,
                    directory / "repo" / "targets" if local else None, keys,
                    metadata_url=location.meta.url, targets_url=location.targets.url)
    for i, version in enumerate(VERSIONS):
        paths = _write_images(images_dir / version, version)
        copy = [migration] if i == 1 else []
        migrations = {(Version.parse(VERSIONS[0]), Version.parse(version)): [MIGRATION]} if i == 1 else {}
        options = PublishOptions(Version.parse(version), policy, now, migrations, LoadOptions(init=(i == 0)))
        images = ReleaseImages(VARIANT, ARCH, paths["boot"], paths["root"], paths["hash"], copy_targets=copy)
        outcome = publish(location, now, Write(), images, options)
        if isinstance(outcome, AlreadyPublished):  # cannot be: the repository is new
            raise UsageError(outcome.message)
        qs.outcomes.append(outcome)
    return qs
