"""``keys generate|import-kms|import-hsm`` and ``root init|add-key|remove-key|set-threshold|expire|set-version|
bump-version|sign|cross-sign|verify|show`` (tuftool ``root`` semantics, SPEC §10.5).

Root files and key files are read, edited, signed, verified and written by
:mod:`repo_tool.signing.rootops` (and ``rootfile``), KMS keys named by :mod:`repo_tool.signing.kms`, PKCS#11
keys by :mod:`repo_tool.signing.hsm`;
this module parses options and prints what those return.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from repo_tool.cli.common import aws_options, aws_settings, echo_json, now_ns, parse_time_option, warn
from repo_tool.cli.options import json_option, json_verdict
from repo_tool.core.instant import format_whole_seconds
from repo_tool.errors import UsageError
from repo_tool.signing import hsm
from repo_tool.signing.kms import key_source
from repo_tool.signing.rootfile import (
    ROOT_EXPIRY_DEFAULT,
    add_key,
    describe,
    load_public_entry,
    read_root_file,
    remove_key,
    set_threshold,
)
from repo_tool.signing.rootops import (
    RootEdit,
    bump_version,
    describe_text,
    edit_root_file,
    generate_key_files,
    init_root_file,
    refuse_overwrite,
    set_expires,
    set_version,
    sign_root_file,
    verify_root_file,
)
from repo_tool.signing.signers import KeySigner, load_kms_signer, load_signer
from repo_tool.trust.model import TOP_ROLES

T = TypeVar("T")
ROLE_CHOICE = click.Choice(TOP_ROLES)
# tuftool's short flags, each as the help says it; a command's epilog names those it has.
TUFTOOL_SHORT = {"-k": "-k/--key (a key source)", "-r": "-r/--role", "-c": "-c/--cross-sign",
                 "-i": "-i/--ignore-threshold"}
EDIT_JSON = "Print {path, changed, signatures_cleared, ...} as JSON."


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
    passphrase = None
    if passphrase_env:
        value = os.environ.get(passphrase_env)
        if not value:
            raise UsageError(f"--passphrase-env: environment variable {passphrase_env} is not set")
        passphrase = value.encode()
    generated = generate_key_files(path, keytype, passphrase, public_path)
    if as_json:
        echo_json({"path": str(path), "keyid": generated.keyid, "key": generated.entry})
    else:
        click.echo(generated.keyid)


@keys_group.command("import-kms")
@click.argument("key", metavar="KEY-ID-OR-ALIAS")
@click.option("--root", "root_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also add the key to this root.json, for the --role(s) given.")
@click.option("-r", "--role", "roles", multiple=True, type=ROLE_CHOICE,
              help="Role to list the key for in --root (repeatable; required with --root; tuftool's -r/--role).")
@click.option("--json", "as_json", is_flag=True, help="Print the key ID, source and key entry as JSON.")
@aws_options
def import_kms(key: str, root_path: Path | None, roles: tuple[str, ...], as_json: bool) -> None:
    """Read the public key of an AWS KMS key (key ID, ARN, alias/NAME or just NAME, awskms:KEY or
    aws-kms://[PROFILE]/KEY); print its TUF key ID and the signer source for repo-tool.yaml."""
    _import_roles(root_path, roles)
    if not key.strip():
        raise UsageError("KEY-ID-OR-ALIAS is empty")
    source = key_source(key)
    if root_path is not None:
        read_root_file(root_path)  # a bad root fails before any AWS call
    signer = load_kms_signer(source, aws_settings())
    _imported(signer, source, root_path, roles, as_json, "import-kms")


@keys_group.command("import-hsm")
@click.argument("key", metavar="[KEY]", default=hsm.SOURCE_PREFIX)
@click.option("--token", default=None, metavar="LABEL",
              help="The token's label (as ?label=LABEL in the source); needed when the module offers several.")
@click.option("--root", "root_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also add the key to this root.json, for the --role(s) given.")
@click.option("-r", "--role", "roles", multiple=True, type=ROLE_CHOICE,
              help="Role to list the key for in --root (repeatable; required with --root).")
@click.option("--json", "as_json", is_flag=True, help="Print the key ID, source and key entry as JSON.")
def import_hsm(key: str, token: str | None, root_path: Path | None, roles: tuple[str, ...], as_json: bool) -> None:
    """Read the public key of a key on a PKCS#11 token (KEY: hsm:[KEYID][?label=TOKEN], or just the KEYID,
    the key's CKA_ID in decimal; default 2); print its TUF key ID and the signer source for repo-tool.yaml
    and root sign.  The module is the file PYKCS11LIB names; the PIN comes from REPO_TOOL_HSM_PIN or is
    asked on the terminal.  Only ECDSA P-256 keys (what tough accepts) are taken."""
    _import_roles(root_path, roles)
    if not key.strip():
        raise UsageError("KEY is empty")
    source = hsm.key_source(key, token)
    if root_path is not None:
        read_root_file(root_path)  # a bad root fails before the token is opened
    signer = load_signer(source)
    _imported(signer, hsm.source_of(signer.signer, source), root_path, roles, as_json, "import-hsm")


def _import_roles(root_path: Path | None, roles: tuple[str, ...]) -> None:
    if root_path is None and roles:
        raise UsageError("--role needs --root (the root.json to add the key to)")
    if root_path is not None and not roles:
        raise UsageError("--root needs at least one --role")


def _imported(signer: KeySigner, source: str, root_path: Path | None, roles: tuple[str, ...], as_json: bool,
              command: str) -> None:
    """What ``keys import-kms|import-hsm`` do once the key is read: add it to ``root_path`` for ``roles``
    (if given) and print its key ID, source and type."""
    entry = signer.entry
    info: dict[str, object] = {"keyid": signer.keyid, "source": source, "keytype": entry["keytype"],
                               "scheme": entry["scheme"], "key": entry}
    if root_path is not None:
        # read again: the file as it is after the AWS or token calls
        keyid, edit = edit_root_file(root_path, lambda signed: add_key(signed, dict(entry), list(roles)))
        changed = _said(root_path, edit, command, say_unchanged=False)  # said below
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


@click.group("root")
def root_group() -> None:
    """Create, edit, sign and verify root.json (an edit that changes the root clears its signatures)."""


def _said(path: Path, edit: RootEdit, change: str, say_unchanged: bool = True) -> bool:
    """Say what an edit did: nothing (the file and its signatures as they were), or the signatures
    it cleared.  Return whether the file was written."""
    if not edit.written:
        if say_unchanged:
            kept = f"; its {edit.signatures} signature(s) kept" if edit.signatures else ""
            click.echo(f"repo-tool: {path}: {change} changes nothing; file unchanged{kept}", err=True)
        return False
    if edit.signatures:
        warn(f"{path}: {change} clears the {edit.signatures} existing signature(s); sign again")
    return True


def _edit(path: Path, change: Callable[[dict[str, Any]], T], name: str, as_json: bool = False,
          shown: Callable[[T], dict[str, Any]] = lambda value: {}, done: Callable[[T], str] | None = None) -> T:
    """Edit the root at ``path``, say what it did, and with ``as_json`` print that and ``shown(value)``
    (else, if it was written, the line ``done(value)``)."""
    value, edit = edit_root_file(path, change)
    written = _said(path, edit, name)
    if written and done is not None and not as_json:
        click.echo(f"{path}: {done(value)}")
    if as_json:
        echo_json({"path": str(path), **shown(value), "changed": edit.written,
                   "signatures_cleared": edit.signatures if edit.written else 0})
    return value


@root_group.command("init")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", type=click.IntRange(min=1), default=1, show_default=True,
              help="The root's metadata version (an integer; not repo-tool's --version).")
@click.option("--expires", "expires_text", default=ROOT_EXPIRY_DEFAULT, show_default=True,
              help="RFC 3339 time or offset from now.")
@click.option("--threshold", type=click.IntRange(min=1), default=1, show_default=True,
              help="Initial threshold of every role (tuftool uses a 1507 placeholder; set each with set-threshold).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@json_option("Print {path, version, expires} as JSON.")
def init(path: Path, version: int, expires_text: str, threshold: int, force: bool, as_json: bool) -> None:
    """Write a new, unsigned root: consistent snapshots, spec 1.0.0, no keys."""
    refuse_overwrite(path, force)  # before the time is read, as a refusal comes first
    expires = parse_time_option(expires_text, now_ns(), "--expires")
    init_root_file(path, expires, version, threshold, force)
    if as_json:
        echo_json({"path": str(path), "version": version, "expires": format_whole_seconds(expires)})
        return
    click.echo(f"{path}: root version {version}, expires {format_whole_seconds(expires)}")


@root_group.command("add-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--key", "sources", multiple=True, required=True,
              help="Key source (private key path, file:, envvar:, awskms:, hsm:) or a public key PEM file.")
@click.option("-r", "--role", "roles", multiple=True, required=True, type=ROLE_CHOICE,
              help="Role to list the keys for (repeatable).")
@json_option("Print {path, keyids, roles, changed, signatures_cleared} as JSON.")
def add_key_cmd(path: Path, sources: tuple[str, ...], roles: tuple[str, ...], as_json: bool) -> None:
    """Add public keys to the root and list them for ROLEs; print each key ID."""
    ids = _edit(path, lambda signed: [add_key(signed, load_public_entry(source), list(roles)) for source in sources],
                "add-key", as_json, lambda keyids: {"keyids": keyids, "roles": list(roles)})
    if not as_json:
        for keyid in ids:
            click.echo(keyid)


@root_group.command("remove-key")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("keyid")
@click.argument("role", required=False, type=ROLE_CHOICE)
@json_option(EDIT_JSON)
def remove_key_cmd(path: Path, keyid: str, role: str | None, as_json: bool) -> None:
    """Remove KEYID (a unique prefix is enough) from ROLE, or from every role and the key list."""
    _edit(path, lambda signed: remove_key(signed, keyid, role), "remove-key", as_json,
          lambda _: {"keyid": keyid, "role": role},
          lambda full: f"removed key {full} from " + (role or "every role and the key list"))


@root_group.command("set-threshold")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("role", type=ROLE_CHOICE)
@click.argument("threshold", type=click.IntRange(min=1))
@json_option(EDIT_JSON)
def set_threshold_cmd(path: Path, role: str, threshold: int, as_json: bool) -> None:
    """Set how many of ROLE's keys must sign."""
    _edit(path, lambda signed: set_threshold(signed, role, threshold), "set-threshold", as_json,
          lambda _: {"role": role, "threshold": threshold}, lambda _: f"{role} threshold {threshold}")


@root_group.command("expire")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("time_text", metavar="TIME")
@json_option("Print {path, expires, changed, signatures_cleared} as JSON.")
def expire_cmd(path: Path, time_text: str, as_json: bool) -> None:
    """Set expires: RFC 3339 or 'in N hours|days|weeks' (whole seconds)."""
    def expire(signed: dict[str, Any]) -> str:
        # the time is read after the file, as every edit reads the file first
        expires = parse_time_option(time_text, now_ns(), "TIME")
        set_expires(signed, expires)
        return format_whole_seconds(expires)

    _edit(path, expire, "expire", as_json, lambda expires: {"expires": expires}, lambda expires: f"expires {expires}")


@root_group.command("set-version")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("version", type=click.IntRange(min=1))
@json_option("Print {path, version, changed, signatures_cleared} as JSON.")
def set_version_cmd(path: Path, version: int, as_json: bool) -> None:
    """Set the root version."""
    _edit(path, lambda signed: set_version(signed, version), "set-version", as_json, lambda _: {"version": version},
          lambda _: f"version {version}")


@root_group.command("bump-version")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--expires", "expires_text", default=None,
              help="Also set expires (RFC 3339 or offset from now), e.g. 'in 52 weeks'.")
@json_option("Print {path, version, changed, signatures_cleared} as JSON.")
def bump_version_cmd(path: Path, expires_text: str | None, as_json: bool) -> None:
    """Version + 1: the start of a root rotation (then edit keys, sign, cross-sign)."""
    def bump(signed: dict[str, Any]) -> int:
        return bump_version(signed, parse_time_option(expires_text, now_ns(), "--expires") if expires_text else None)

    version = _edit(path, bump, "bump-version", as_json, lambda version: {"version": version})
    if not as_json:
        click.echo(f"{path}: version {version}")


def _sign(path: Path, sources: tuple[str, ...], old_root: Path | None, ignore_threshold: bool, as_json: bool) -> None:
    signing = sign_root_file(path, sources, old_root)
    result = signing.result
    if result.dropped:
        warn(f"{path}: dropped {result.dropped} signature(s) that no longer verify")
    if result.missing and ignore_threshold:
        warn(f"{path}: thresholds not met: {result.missing}")
    signing.save(ignore_threshold)
    if as_json:
        echo_json({"path": str(path), "signed_with": None if old_root is None else str(old_root),
                   "added": list(result.added), "dropped": result.dropped, "thresholds_met": not result.missing,
                   "missing": {what: {"have": have, "need": need} for what, (have, need) in result.missing.items()},
                   "changed": bool(result.added or result.dropped)})
        if result.missing and not ignore_threshold:
            warn(f"{path} is not valid yet: the next key holder signs it with 'root sign'")
        return
    if result.missing and not ignore_threshold:
        click.echo(f"{path}: {signing.summary}; still short: {signing.shortfall}")
        warn(f"{path} is not valid yet: the next key holder signs it with 'root sign'")
        return
    click.echo(f"{path}: {signing.summary}; thresholds met")


@root_group.command("sign")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-k", "--key", "sources", multiple=True, required=True, help="Key source to sign with (repeatable).")
@click.option("-c", "--cross-sign", "old_root", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Sign with keys of this previous root instead (rotation).")
@click.option("-i", "--ignore-threshold", is_flag=True, help="Write even if a role's key list is below threshold.")
@json_option("Print {path, added (key IDs), dropped, thresholds_met, missing, changed} as JSON.")
def sign_cmd(path: Path, sources: tuple[str, ...], old_root: Path | None, ignore_threshold: bool,
             as_json: bool) -> None:
    """Append signatures (kept across runs, so holders can sign one after another, offline)."""
    _sign(path, sources, old_root, ignore_threshold, as_json)


@root_group.command("cross-sign")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--old-root", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The root being replaced (version N-1).")
@click.option("-k", "--key", "sources", multiple=True, required=True, help="A root key of the old root.")
@json_option("Print {path, added (key IDs), dropped, thresholds_met, missing, changed} as JSON.")
def cross_sign_cmd(path: Path, old_root: Path, sources: tuple[str, ...], as_json: bool) -> None:
    """Rotation: sign new root PATH (version N) with root keys of OLD root (N-1)."""
    _sign(path, sources, old_root, False, as_json)


@root_group.command("verify")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--previous", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The root it replaces: PATH must be its version + 1 and signed by its root keys too.")
@click.option("--check-expiry", is_flag=True, help="Also fail if the root has expired.")
@json_option("Print {path, ok, result, version, expires, previous, expiry_checked}, or {path, ok: false, "
             "result: fail, error} when it does not verify (exit 1 still, and the error line on stderr).")
def verify_cmd(path: Path, previous: Path | None, check_expiry: bool, as_json: bool) -> None:
    """Verify a root: tough's parsing rules, its own thresholds, and (with --previous) the rotation."""
    with json_verdict(as_json, path=str(path), file=str(path)):  # file: as manifest validate's verdict
        root = verify_root_file(path, previous, now_ns() if check_expiry else None)
    if as_json:
        echo_json({"path": str(path), "file": str(path), "ok": True, "result": "pass", "version": root.version,
                   "expires": root.signed["expires"],
                   "previous": None if previous is None else str(previous), "expiry_checked": check_expiry})
        return
    click.echo(f"{path}: root version {root.version} verifies")


@root_group.command("show")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def show_cmd(path: Path, as_json: bool) -> None:
    """Summarise a root: version, expiry, keys per role, who signed."""
    info = describe(read_root_file(path))
    if as_json:
        echo_json(info)
        return
    click.echo("\n".join(describe_text(info)))


def tuftool_epilog(command: click.Command) -> str:
    """What the help of a ``root``/``keys`` command says about tuftool's flags: those it has (a group:
    all of its commands'), and that ``-r`` is ``--role`` only where it has ``-r``."""
    commands = list(command.commands.values()) if isinstance(command, click.Group) else [command]
    opts = {opt for c in commands for param in c.params for opt in param.opts}
    shorts = [text for flag, text in TUFTOOL_SHORT.items() if flag in opts]
    text = "Arguments and flags follow tuftool root where it has the command"
    text += f": {', '.join(shorts)}." if shorts else "."
    if "-r" in opts:
        where = "in its commands" if isinstance(command, click.Group) else "here"
        text += f" So -r is --role {where}, not 'manifest add-update's -r/--root (a root image)."
    return text


for _command in (root_group, *root_group.commands.values(), keys_group, *keys_group.commands.values()):
    _command.epilog = tuftool_epilog(_command)
