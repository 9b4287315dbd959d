"""``keys generate|import-kms`` and ``root init|add-key|remove-key|set-threshold|expire|set-version|bump-version|
sign|cross-sign|verify|show`` (tuftool ``root`` semantics, SPEC §10.5)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import click

from repo_tool.aws import ServiceError
from repo_tool.cli.common import aws_options, aws_settings, echo_json, now_ns, parse_time_option, warn
from repo_tool.core.instant import format_whole_seconds
from repo_tool.errors import ConfigError, UsageError, VerificationError
from repo_tool.localfs import stat_or_none, write_atomic
from repo_tool.publish.infra import describe_key, signing_key_problem
from repo_tool.signing.keyfiles import generate_private, write_private_key
from repo_tool.signing.rootfile import (
    ROOT_EXPIRY_DEFAULT,
    SignResult,
    add_key,
    check_root_keys,
    describe,
    load_public_entry,
    new_root,
    read_root_file,
    remove_key,
    root_file_bytes,
    set_threshold,
    sign,
)
from repo_tool.signing.signers import KeySigner, load_signer, normalize_source
from repo_tool.trust.metadata import TOP_ROLES, RoleFile
from repo_tool.trust.verifier import verify_next_root, verify_trusted_root

ROLE_CHOICE = click.Choice(TOP_ROLES)
_KEY_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@click.group("keys")
def keys_group() -> None:
    """Signing keys."""


@keys_group.command("generate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--type", "keytype", type=click.Choice(["ed25519", "ecdsa", "rsa"]), default="ed25519",
              show_default=True, help="ecdsa = P-256; rsa = 3072 bits, rsassa-pss-sha256.")
@click.option("--passphrase-env", default=None, metavar="VAR",
              help="Encrypt the private key with the passphrase in environment variable VAR.")
@click.option("--public", "public_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the public key (PEM) here, for key holders who sign elsewhere.")
@click.option("--json", "as_json", is_flag=True, help="Print the key ID and public key entry as JSON.")
def generate(path: Path, keytype: str, passphrase_env: str | None, public_path: Path | None, as_json: bool) -> None:
    """Generate a private key at PATH (mode 0600) and print its TUF key ID."""
    import os

    passphrase = None
    if passphrase_env:
        value = os.environ.get(passphrase_env)
        if not value:
            raise UsageError(f"--passphrase-env: environment variable {passphrase_env} is not set")
        passphrase = value.encode()
    private = generate_private(keytype)
    generated = write_private_key(path, private, passphrase)
    if public_path is not None:
        from cryptography.hazmat.primitives import serialization

        pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        try:
            write_atomic(public_path, pem, mode=0o644)
        except OSError as exc:  # the new private key goes too: no key half-made
            path.unlink()
            raise UsageError(f"--public {public_path}: cannot write: {exc.strerror or exc}") from None
    if as_json:
        echo_json({"path": str(path), "keyid": generated.keyid, "key": generated.entry})
    else:
        click.echo(generated.keyid)


@keys_group.command("import-kms")
@click.argument("key", metavar="KEY-ID-OR-ALIAS")
@click.option("--root", "root_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also add the key to this root.json, for the --role(s) given.")
@click.option("-r", "--role", "roles", multiple=True, type=ROLE_CHOICE,
              help="Role to list the key for in --root (repeatable; required with --root).")
@click.option("--json", "as_json", is_flag=True, help="Print the key ID, source and key entry as JSON.")
@aws_options
def import_kms(key: str, root_path: Path | None, roles: tuple[str, ...], as_json: bool) -> None:
    """Read the public key of an AWS KMS key (key ID, ARN, alias/NAME or just NAME, awskms:KEY or
    aws-kms://[PROFILE]/KEY); print its TUF key ID and the signer source for repo-tool.yaml."""
    if root_path is None and roles:
        raise UsageError("--role needs --root (the root.json to add the key to)")
    if root_path is not None and not roles:
        raise UsageError("--root needs at least one --role")
    if not key.strip():
        raise UsageError("KEY-ID-OR-ALIAS is empty")
    source = key if key.startswith(("awskms:", "aws-kms://")) else f"awskms:{_kms_key_id(key)}"
    if root_path is not None:
        read_root_file(root_path)  # a bad root fails before any AWS call
    signer = _load_kms_key(source)
    entry = signer.entry
    info: dict[str, object] = {"keyid": signer.keyid, "source": source, "keytype": entry["keytype"],
                               "scheme": entry["scheme"], "key": entry}
    if root_path is not None:
        root, signed = _edit(root_path)  # read again: the file as it is after the AWS calls
        keyid = add_key(signed, dict(entry), list(roles))
        changed = _save(root_path, root, signed, "import-kms", say_unchanged=False)  # said below
        info.update({"root": str(root_path), "roles": list(roles), "root_keyid": keyid, "root_changed": changed})
    if as_json:
        echo_json(info)
        return
    click.echo(f"keyid: {signer.keyid}")
    click.echo(f"source: {source}  (a key source for the signers of repo-tool.yaml)")
    click.echo(f"keytype: {entry['keytype']}, scheme: {entry['scheme']}")
    if root_path is not None:
        listed = f"key {info['root_keyid']} for {', '.join(roles)}"
        if info["root_changed"]:
            click.echo(f"{root_path}: added {listed}; the root needs signing again (repo-tool root sign)")
        else:
            click.echo(f"{root_path}: already lists {listed}; unchanged")


def _kms_key_id(key: str) -> str:
    """A key ID, key ARN, alias ARN or alias/NAME as is; a bare NAME is the alias NAME (as in infra create-keys)."""
    if key.startswith(("alias/", "arn:", "mrk-")) or _KEY_UUID.match(key):
        return key
    return f"alias/{key}"


def _load_kms_key(source: str) -> KeySigner:
    """The KMS key's signer, after GetPublicKey and, to explain what it cannot tell (a disabled
    key, the wrong key usage), DescribeKey."""
    failure: ConfigError | None = None
    try:
        signer: KeySigner | None = load_signer(source, None, aws_settings())
    except ConfigError as exc:  # GetPublicKey answered, but the key is no TUF key
        signer, failure = None, exc
    key_id = normalize_source(source)[len("awskms:"):]
    profile = (source[len("aws-kms://"):].partition("/")[0] or None) if source.startswith("aws-kms://") else None
    try:
        meta = describe_key(aws_settings(), key_id, source, profile)
    except ServiceError:
        meta = None  # not allowed to describe (kms:DescribeKey): GetPublicKey's answer stands
    problem = signing_key_problem(meta) if meta is not None else None
    if problem:
        raise ServiceError(f"key {source}: AWS KMS DescribeKey: {problem}")
    if failure is not None:
        raise failure
    assert signer is not None
    return signer


@click.group("root")
def root_group() -> None:
    """Create, edit, sign and verify root.json (an edit that changes the root clears its signatures)."""


def _edit(path: Path) -> tuple[RoleFile, dict[str, Any]]:
    """The root at ``path`` and a copy of its ``signed`` to edit (then :func:`_save` both)."""
    root = read_root_file(path)
    return root, copy.deepcopy(root.signed)


def _save(path: Path, root: RoleFile, signed: dict[str, Any], change: str, say_unchanged: bool = True) -> bool:
    """Write the edited ``signed`` (unsigned: the signatures no longer match) if the edit changed it,
    and only then warn that the signatures are gone; an edit that changes nothing leaves the file, and
    its signatures, as they were.  Return whether the file was written."""
    if signed == root.signed:
        if say_unchanged:
            kept = f"; its {len(root.signatures)} signature(s) kept" if root.signatures else ""
            click.echo(f"repo-tool: {path}: {change} changes nothing; file unchanged{kept}", err=True)
        return False
    _write(path, root_file_bytes(signed))
    if root.signatures:
        warn(f"{path}: {change} clears the {len(root.signatures)} existing signature(s); sign again")
    return True


def _write(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data, mode=0o644)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None


@root_group.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--expires", "expires_text", default=ROOT_EXPIRY_DEFAULT, show_default=True,
              help="RFC 3339 time or offset from now.")
@click.option("--threshold", type=click.IntRange(min=1), default=1, show_default=True,
              help="Initial threshold of every role (tuftool uses a 1507 placeholder; set each with set-threshold).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: Path, version: int, expires_text: str, threshold: int, force: bool) -> None:
    """Write a new, unsigned root: consistent snapshots, spec 1.0.0, no keys."""
    if stat_or_none(path) is not None and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    expires = parse_time_option(expires_text, now_ns(), "--expires")
    _write(path, root_file_bytes(new_root(expires, version, threshold)))
    click.echo(f"{path}: root version {version}, expires {format_whole_seconds(expires)}")


@root_group.command("add-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--key", "sources", multiple=True, required=True,
              help="Key source (private key path, file:, envvar:, awskms:) or a public key PEM file.")
@click.option("-r", "--role", "roles", multiple=True, required=True, type=ROLE_CHOICE)
def add_key_cmd(path: Path, sources: tuple[str, ...], roles: tuple[str, ...]) -> None:
    """Add public keys to the root and list them for ROLEs; print each key ID."""
    root, signed = _edit(path)
    ids = [add_key(signed, load_public_entry(source), list(roles)) for source in sources]
    _save(path, root, signed, "add-key")
    for keyid in ids:
        click.echo(keyid)


@root_group.command("remove-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("keyid")
@click.argument("role", required=False, type=ROLE_CHOICE)
def remove_key_cmd(path: Path, keyid: str, role: str | None) -> None:
    """Remove KEYID (a unique prefix is enough) from ROLE, or from every role and the key list."""
    root, signed = _edit(path)
    remove_key(signed, keyid, role)
    _save(path, root, signed, "remove-key")


@root_group.command("set-threshold")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("role", type=ROLE_CHOICE)
@click.argument("threshold", type=click.IntRange(min=1))
def set_threshold_cmd(path: Path, role: str, threshold: int) -> None:
    """Set how many of ROLE's keys must sign."""
    root, signed = _edit(path)
    set_threshold(signed, role, threshold)
    _save(path, root, signed, "set-threshold")


@root_group.command("expire")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("time_text", metavar="TIME")
def expire_cmd(path: Path, time_text: str) -> None:
    """Set expires: RFC 3339 or 'in N hours|days|weeks' (whole seconds)."""
    root, signed = _edit(path)
    signed["expires"] = format_whole_seconds(parse_time_option(time_text, now_ns(), "TIME"))
    _save(path, root, signed, "expire")


@root_group.command("set-version")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("version", type=click.IntRange(min=1))
def set_version_cmd(path: Path, version: int) -> None:
    """Set the root version."""
    root, signed = _edit(path)
    signed["version"] = version
    _save(path, root, signed, "set-version")


@root_group.command("bump-version")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--expires", "expires_text", default=None,
              help="Also set expires (RFC 3339 or offset from now), e.g. 'in 52 weeks'.")
def bump_version_cmd(path: Path, expires_text: str | None) -> None:
    """Version + 1: the start of a root rotation (then edit keys, sign, cross-sign)."""
    root, signed = _edit(path)
    signed["version"] = int(str(signed["version"])) + 1
    if expires_text:
        signed["expires"] = format_whole_seconds(parse_time_option(expires_text, now_ns(), "--expires"))
    _save(path, root, signed, "bump-version")
    click.echo(f"{path}: version {signed['version']}")


def _sign(path: Path, sources: tuple[str, ...], old_root: Path | None, ignore_threshold: bool) -> None:
    root = read_root_file(path)
    cross = read_root_file(old_root).signed if old_root else None
    if cross is not None and int(cross["version"]) + 1 != root.version:
        raise UsageError(f"{old_root} is version {cross['version']}; {path} must be version {cross['version']} + 1")
    signers = [load_signer(source) for source in sources]
    # Every key must be able to sign before any does: a wrong key is an error, not a silent no-op.
    if cross is not None:
        check_root_keys(signers, cross, str(old_root), root.signed, str(path))
    else:
        check_root_keys(signers, root.signed, str(path))
    result = sign(root, signers, cross)
    if result.dropped:
        warn(f"{path}: dropped {result.dropped} signature(s) that no longer verify")
    already = len(signers) - len(result.added) - len(result.skipped)
    if not result.added:
        did = "no new signature needed (every key given has signed already)"
    else:
        did = f"added {len(result.added)} signature(s)" + (f" ({already} key(s) had signed already)" if already else "")
    if result.missing and not ignore_threshold:
        short = "; ".join(f"{what}: {have} of {need}" for what, (have, need) in result.missing.items())
        if any(what.endswith("keys") for what in result.missing):
            raise VerificationError(f"{path}: thresholds cannot be met ({short}); nothing written")
        _write_if_changed(path, result)
        click.echo(f"{path}: {did}; still short: {short}")
        warn(f"{path} is not valid yet: the next key holder signs it with 'root sign'")
        return
    if result.missing:
        warn(f"{path}: thresholds not met: {result.missing}")
    _write_if_changed(path, result)
    click.echo(f"{path}: {did}; thresholds met")


def _write_if_changed(path: Path, result: SignResult) -> None:
    """Write the signed root, unless signing added and dropped nothing (a rerun leaves the file alone)."""
    if result.added or result.dropped:
        _write(path, result.data)


@root_group.command("sign")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--key", "sources", multiple=True, required=True, help="Key source to sign with (repeatable).")
@click.option("-c", "--cross-sign", "old_root", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Sign with keys of this previous root instead (rotation).")
@click.option("-i", "--ignore-threshold", is_flag=True, help="Write even if a role's key list is below threshold.")
def sign_cmd(path: Path, sources: tuple[str, ...], old_root: Path | None, ignore_threshold: bool) -> None:
    """Append signatures (kept across runs, so holders can sign one after another, offline)."""
    _sign(path, sources, old_root, ignore_threshold)


@root_group.command("cross-sign")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--old-root", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The root being replaced (version N-1).")
@click.option("-k", "--key", "sources", multiple=True, required=True, help="A root key of the old root.")
def cross_sign_cmd(path: Path, old_root: Path, sources: tuple[str, ...]) -> None:
    """Rotation: sign new root PATH (version N) with root keys of OLD root (N-1)."""
    _sign(path, sources, old_root, False)


@root_group.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--previous", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The root it replaces: PATH must be its version + 1 and signed by its root keys too.")
@click.option("--check-expiry", is_flag=True, help="Also fail if the root has expired.")
def verify_cmd(path: Path, previous: Path | None, check_expiry: bool) -> None:
    """Verify a root: tough's parsing rules, its own thresholds, and (with --previous) the rotation."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not raw:
        raise UsageError(f"{path}: empty file")
    if previous is not None:
        old = verify_trusted_root(read_root_file(previous).raw, str(previous))
        root = verify_next_root(old, raw, str(path))
    else:
        root = verify_trusted_root(raw, str(path))
    for role in TOP_ROLES:
        role_def = root.signed["roles"][role]
        if role_def["threshold"] > len(role_def["keyids"]):
            raise VerificationError(f"{path}: {role} threshold {role_def['threshold']} exceeds its "
                                    f"{len(role_def['keyids'])} keys")
    if check_expiry and root.expires <= now_ns():
        raise VerificationError(f"{path}: expired at {root.signed['expires']}")
    click.echo(f"{path}: root version {root.version} verifies")


@root_group.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def show_cmd(path: Path, as_json: bool) -> None:
    """Summarise a root: version, expiry, keys per role, who signed."""
    info = describe(read_root_file(path))
    if as_json:
        echo_json(info)
        return
    click.echo(f"root version {info['version']}, expires {info['expires']}, spec {info['spec_version']}")
    keys = info["keys"]
    assert isinstance(keys, dict)
    roles = info["roles"]
    assert isinstance(roles, dict)
    for role, role_info in roles.items():
        click.echo(f"{role}: threshold {role_info['threshold']} of {len(role_info['keyids'])}")
        for keyid in role_info["keyids"]:
            kind = keys.get(keyid, {}).get("keytype", "MISSING")
            click.echo(f"  {keyid}  {kind}")
    valid = info["valid_root_signatures"]
    assert isinstance(valid, list)
    click.echo(f"signatures: {len(info['signatures'])} ({len(valid)} valid root signatures)")

