"""Review fixes on issue 17's publishing traps: --link-target tried for real, expirations already past,
the plan's initial wave, held updates when pulling, expires help, release file entries, root output."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from repo_tool.localfs import leftover_temp_files
from repo_tool.storage.base import LinkRefusedError, LocalStorage

from .clirun import Runner, assert_one_line_error
from .repohelpers import ARCH, QS, VARIANT, tree_state, write_images

# --- --link-target: the link is tried, not guessed from st_dev -----------------------------------------


def _kit(tmp_path: Path) -> Path:
    kit = tmp_path / "build" / "kmod-kit-v1.2.0.tar.xz"
    kit.parent.mkdir(parents=True, exist_ok=True)
    kit.write_bytes(b"kernel module kit\n" * 100)
    return kit


def _refuse_links_to(monkeypatch: pytest.MonkeyPatch, source: Path, code: int) -> None:
    """As the kernel does under fs.protected_hardlinks (EPERM) or across a bind mount (EXDEV):
    same st_dev, yet linking this one file fails."""
    real = os.link

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        if Path(src) == source:
            raise OSError(code, os.strerror(code), str(src), None, str(dst))
        real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", link)


@pytest.mark.parametrize("code", [errno.EPERM, errno.EXDEV])
def test_link_target_the_kernel_refuses_is_a_usage_error_before_anything_is_written(
        qs: QS, run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    kit = _kit(tmp_path)
    images = write_images(tmp_path / "img", "1.2.0")
    _refuse_links_to(monkeypatch, kit, code)
    before = tree_state(qs.dir / "repo")
    args = ("--version", "1.2.0", *images, "--link-target", str(kit))
    for extra in (("--plan",), ()):
        result = run("publish", *qs.args(*args, *extra))
        assert_one_line_error(result, 2, f"--link-target {kit}: cannot link into {qs.targets}",
                              os.strerror(code), "use --copy-target")
        assert result.err.count(str(kit)) == 1  # the path once, not twice
        assert tree_state(qs.dir / "repo") == before
        assert leftover_temp_files(qs.targets) == []


def test_link_file_refused_by_the_kernel_says_to_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _kit(tmp_path)
    store = LocalStorage(tmp_path / "targets")
    assert store.link_problem(source) is None
    _refuse_links_to(monkeypatch, source, errno.EPERM)
    assert "fs.protected_hardlinks" in str(store.link_problem(source))
    with pytest.raises(LinkRefusedError, match="use --copy-target"):
        store.link_file("abc.kit", source, source.stat().st_size, lambda info: None)
    assert list((tmp_path / "targets").iterdir()) == []


# --- an expiry already past: an input error naming where it comes from ----------------------------------


def test_expiry_in_the_past_is_an_input_error_naming_its_source(qs: QS, run: Runner, tmp_path: Path) -> None:
    before = tree_state(qs.dir / "repo")
    assert_one_line_error(run("refresh", *qs.args("--targets-expires", "2020-01-01T00:00:00Z")), 2,
                          "--targets-expires 2020-01-01T00:00:00Z is in the past")
    images = write_images(tmp_path / "img", "1.2.0")
    for extra in (("--plan",), ()):
        result = run("publish", *qs.args("--version", "1.2.0", *images, "--release-start-time", "2020-01-01T00:00:00Z",
                                         *extra))
        assert_one_line_error(result, 2, "targets would expire 2020-01-15T00:00:00Z",
                              "2w from --release-start-time 2020-01-01T00:00:00Z",
                              "pass --targets-expires or a later start")
    # An expiry given on the command line past such a start is fine.
    later = run("publish", *qs.args("--version", "1.2.0", *images, "--release-start-time", "2020-01-01T00:00:00Z",
                                    "--plan", "--targets-expires", "2099-01-01T00:00:00Z",
                                    "--snapshot-expires", "2099-01-01T00:00:00Z",
                                    "--timestamp-expires", "2099-01-01T00:00:00Z"))
    assert later.code == 0, later.err
    release = tmp_path / "release.yaml"
    release.write_text(yaml.safe_dump({"version": "1.2.0", "config": str(qs.config),
                                       "release_start_time": "2020-01-01T00:00:00Z", "release_config": images[7],
                                       "repos": [{"variant": VARIANT, "arch": ARCH, "boot_image": images[1],
                                                  "root_image": images[3], "hash_image": images[5]}]}))
    assert_one_line_error(run("publish-release", str(release), "--plan"), 2, "targets would expire",
                          f"from {release}: release_start_time 2020-01-01T00:00:00Z")
    assert tree_state(qs.dir / "repo") == before


# --- the plan's waves table: the initial wave as waves show reads it ----------------------------------


def _initial_row(text: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith("initial"))


def test_plan_reads_the_initial_wave_as_waves_show_does_even_paused(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    start = "2030-01-01T00:00:00Z"
    planned = run("publish", *qs.args("--version", "1.2.0", *images, "--release-start-time", start, "--plan",
                                      "--wave-policy", "default"))
    assert planned.code == 0, planned.err
    shown = run("waves", "show", "default", "--start", start)
    assert next(line for line in shown.out.splitlines() if line.startswith("0 ")).endswith(
        "when published (initial wave)"), shown.out
    row = _initial_row(planned.out)
    assert row.endswith("all by when published (initial wave)"), row
    assert run("publish", *qs.args("--version", "1.2.0", *images, "--release-start-time", "in 1 day")).code == 0
    paused = run("rollout", "pause", *qs.args("--plan"))
    assert paused.code == 0, paused.err
    row = _initial_row(paused.out)
    assert row.endswith("all by when published (initial wave)") and "paused" not in row, paused.out
    assert "all by paused" in paused.out, paused.out  # the waves a pause holds back still say so


# --- set-max-version: held updates are not "offered" ----------------------------------------------------


def test_set_max_version_tells_held_updates_from_offered_ones(qs: QS, run: Runner, tmp_path: Path) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    assert run("publish", *qs.args("--version", "1.2.0", *images, "--release-start-time", "in 1 day")).code == 0
    assert run("rollout", "halt", *qs.args("--version", "1.2.0")).code == 0
    result = run("set-max-version", *qs.args("--max-version", "1.0.0", "--plan", "--json"))
    assert result.code == 0, result.err
    warning = next(w for w in result.json()["warnings"] if "pulls" in w)
    assert warning.startswith("--max-version 1.0.0 pulls 2 update(s): 1.1.0 that was offered, 1.2.0 that was held "
                              "(halted: offered only to its initial wave"), warning
    assert "offered 1.0.0 instead" in warning
    # Paused: says since when.
    assert run("rollout", "reschedule", *qs.args("--version", "1.2.0", "--wave-policy", "default",
                                                 "--start", "in 1 day")).code == 0
    assert run("rollout", "pause", *qs.args("--version", "1.2.0")).code == 0
    result = run("set-max-version", *qs.args("--max-version", "1.1.0", "--plan", "--json"))
    warning = next(w for w in result.json()["warnings"] if "pulls" in w)
    assert warning.startswith("--max-version 1.1.0 pulls 1 update(s): 1.2.0 that was held (paused since "), warning


# --- the expires options' help: once, and true of the command -------------------------------------------


@pytest.mark.parametrize(("command", "start"), [
    (["publish"], "from --release-start-time (else now)"),
    (["publish-release"], "from the release file's release_start_time (else now)"),
    (["refresh"], "from now"),
    (["rollout", "pause"], "from now"),
    (["set-max-version"], "from now"),
])
def test_expires_help_is_short_and_true_of_each_command(run: Runner, command: list[str], start: str) -> None:
    text = " ".join(run(*command, "--help").out.split())
    assert text.count("an RFC 3339 time") == 1 and text.count("over the config's expiration") == 1, text
    assert f"an offset ('in 4 weeks') {start}, or an RFC 3339 time" in text
    assert "--snapshot-expires TIME The same for snapshot.json." in text
    assert "--timestamp-expires TIME The same for timestamp.json." in text
    if command != ["publish"]:
        assert "--release-start-time" not in text.split("--targets-expires")[1]


# --- publish-release: errors name the release file entry; its help shows link_targets ---------------------


def test_publish_release_names_the_entry_of_a_missing_image(qs: QS, run: Runner, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    images = write_images(tmp_path / "img", "1.2.0")
    missing = tmp_path / "nope-boot.ext4.lz4"
    kit = _kit(tmp_path)
    release = tmp_path / "RELEASE.yaml"
    entry: dict[str, Any] = {"variant": VARIANT, "arch": ARCH, "boot_image": str(missing), "root_image": images[3],
             "hash_image": images[5]}
    release.write_text(yaml.safe_dump({"version": "1.2.0", "config": str(qs.config), "release_config": images[7],
                                       "repos": [entry]}))
    assert_one_line_error(run("publish-release", str(release), "--plan"), 2,
                          f"{release}: repos[0].boot_image: {missing}: no such file")
    entry.update(boot_image=images[1], copy_targets=[str(kit), str(tmp_path / "gone.tar")])
    release.write_text(yaml.safe_dump({"version": "1.2.0", "config": str(qs.config), "release_config": images[7],
                                       "repos": [entry]}))
    assert_one_line_error(run("publish-release", str(release), "--plan"), 2,
                          f"{release}: repos[0].copy_targets[1]: {tmp_path / 'gone.tar'}: no such file")
    entry.update(copy_targets=[], link_targets=[str(kit)])
    release.write_text(yaml.safe_dump({"version": "1.2.0", "config": str(qs.config), "release_config": images[7],
                                       "repos": [entry]}))
    _refuse_links_to(monkeypatch, kit, errno.EXDEV)
    assert_one_line_error(run("publish-release", str(release), "--plan"), 2,
                          f"{release}: repos[0].link_targets[0]: {kit}: cannot link", "list it in copy_targets")
    # On the command line, the flag.
    flags = list(images)
    boot = flags.index("--boot-image") + 1
    flags[boot] = str(missing)
    assert_one_line_error(run("publish", *qs.args("--version", "1.2.0", *flags, "--plan")), 2,
                          f"--boot-image {missing}: no such file")
    text = " ".join(run("publish-release", "--help").out.split())
    assert "link_targets: [...], copy_targets: [...]" in text


# --- root remove-key and expire say what they did, as add-key and bump-version do -------------------------


def test_root_remove_key_and_expire_say_what_they_did(run: Runner, tmp_path: Path) -> None:
    from .test_rootops import _keys_and_signed_root

    root, _ = _keys_and_signed_root(run, tmp_path)
    signed = yaml.safe_load(root.read_text())["signed"]
    targets_id = signed["roles"]["targets"]["keyids"][0]
    removed = run("root", "remove-key", str(root), targets_id[:12], "snapshot")
    assert removed.code == 0, removed.err
    assert removed.out == f"{root}: removed key {targets_id} from snapshot\n"
    removed = run("root", "remove-key", str(root), targets_id[:12])
    assert removed.out == f"{root}: removed key {targets_id} from every role and the key list\n"
    expired = run("root", "expire", str(root), "2031-01-01T00:00:00Z")
    assert expired.code == 0, expired.err
    assert expired.out == f"{root}: expires 2031-01-01T00:00:00Z\n"
    again = run("root", "expire", str(root), "2031-01-01T00:00:00Z")  # unchanged: says so on stderr only
    assert again.out == "" and "changes nothing" in again.err
    assert run("root", "expire", str(root), "2032-01-01T00:00:00Z", "--json").json()["expires"] == \
        "2032-01-01T00:00:00Z"


def test_root_set_threshold_and_set_version_say_what_they_did(run: Runner, tmp_path: Path) -> None:
    from .test_rootops import _keys_and_signed_root

    root, _ = _keys_and_signed_root(run, tmp_path)
    done = run("root", "set-threshold", str(root), "targets", "2")
    assert done.code == 0 and done.out == f"{root}: targets threshold 2\n", done.err  # was silent
    done = run("root", "set-version", str(root), "7")
    assert done.code == 0 and done.out == f"{root}: version 7\n", done.err  # was silent
    again = run("root", "set-version", str(root), "7")
    assert again.out == "" and "changes nothing" in again.err
