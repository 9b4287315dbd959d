"""The README's ten-minute tour, run as written: every ``sh`` block between ``<!-- tour:start -->`` and
``<!-- tour:end -->``, in order, in one ``bash -e`` in an empty directory with the installed
``repo-tool`` first on PATH, so the tour cannot rot.

Must not: rewrite or skip any command of the tour (what runs is what a reader pastes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from repo_tool.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- tour:start -->", "<!-- tour:end -->"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def tour_blocks(text: str) -> list[str]:
    """The ``sh`` blocks of the tour, in order (other blocks, e.g. ``text`` output, are not run)."""
    if text.count(START) != 1 or text.count(END) != 1 or text.index(START) > text.index(END):
        raise ValueError(f"README.md must hold exactly one {START} ... {END} section")
    tour = text[text.index(START) + len(START):text.index(END)]
    return [body for lang, body in FENCE.findall(tour) if lang == "sh"]


def test_tour_blocks_are_found() -> None:
    """The parser itself: ``sh`` blocks only, in order; a README without the markers is an error."""
    text = f"x\n{START}\n```sh\necho a\n```\n```text\nout\n```\n```sh\necho b\n```\n{END}\n```sh\necho c\n```\n"
    assert tour_blocks(text) == ["echo a\n", "echo b\n"]
    with pytest.raises(ValueError, match="tour:start"):
        tour_blocks("```sh\necho a\n```\n")


def test_the_tour_covers_the_whole_job() -> None:
    """Publish, roll out, update a node and audit: the steps the issue asks the tour to show."""
    script = "\n".join(tour_blocks(README.read_text(encoding="utf-8")))
    for step in ("repo-tool quickstart", "repo-tool publish ", "--plan", "repo-tool waves show", "rollout pause",
                 "rollout resume", "manifest select", "node make-disk", "update -n", "repo-tool audit ",
                 "repo-tool audit-diff", "repo-tool check-expirations"):
        assert step in script, step


def test_every_command_of_the_tour_counts() -> None:
    """``bash -e`` ignores a failure on the left of ``&&`` or ``||``: the tour keeps one command a line."""
    for block in tour_blocks(README.read_text(encoding="utf-8")):
        for line in block.splitlines():
            code = line.split(" #")[0]
            assert "&&" not in code and "||" not in code, line


def test_the_readme_tour_runs(tmp_path: Path) -> None:
    bindir = Path(sys.executable).parent
    if shutil.which("repo-tool", path=str(bindir)) is None:
        pytest.fail(f"repo-tool is not installed next to {sys.executable} (pip install -e '.[test]')")
    bash = shutil.which("bash")
    assert bash is not None, "the tour needs bash"
    script = "\n".join(tour_blocks(README.read_text(encoding="utf-8")))
    (tmp_path / "tour.sh").write_text(script, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("REPO_TOOL_", "AWS_")) and name not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    result = subprocess.run([bash, "-e", "-o", "pipefail", "-x", str(tmp_path / "tour.sh")], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    # -x traces each command to stderr, so a failure shows the command that failed last.
    assert result.returncode == 0, f"the tour failed (exit {result.returncode}):\n{result.stderr[-4000:]}"
    out = result.stdout
    # Key outputs, in the order the tour's comments promise them.
    expected = [
        "repo-tool quickstart in qs",
        "would publish (plan: nothing written or signed)",
        "(1.1.0, 1.2.0)",
        "published",
        "wave not reached",
        "update: aws-k8s-1.28 1.2.0",
        "seed 0 is in the initial wave",
        "no update",
        "update: aws-k8s-1.28 1.2.0",
        "Update applied: aws-k8s-1.28 1.2.0",
        "Next: Set B",
        "GRUB boots set B",
        "Active: Set B",
        "PASS: 0 error(s)",
        "changes found",
        "1 ok",
    ]
    position = 0
    for needle in expected:
        found = out.find(needle, position)
        assert found >= 0, f"{needle!r} not found after offset {position} in the tour's output:\n{out}"
        position = found + len(needle)
    assert "seed 0 (the initial wave) is still offered the update" in result.stderr
    assert "Traceback" not in result.stderr
    assert (work / "audit.md").read_text(encoding="utf-8").count("**PASS**") == 1
    assert (work / "disk.img").is_file() and (work / "fetched" / "manifest.json").is_file()


# --- the reference: every `repo-tool ...` command line in the README names real commands and flags ---

CODE_SPAN = re.compile(r"`([^`\n]+)`")
STRIP = "[](){},`\"'"
STOP = {"&&", "||", ";", "|", "<", ">", "#", "&"}
FLAG = re.compile(r"--?[a-z][a-z0-9-]*")
FLAG_IN_TEXT = re.compile(r"(?<![\w-])--?[a-z][a-z0-9-]*")


def readme_command_lines(text: str) -> list[str]:
    """Every ``repo-tool ...`` command line: code block lines (continuations joined) and inline code
    spans, with or without the leading ``repo-tool`` (a table cell's second form: `root show PATH`)."""
    found = []
    for _lang, body in FENCE.findall(text):
        found += [line for line in body.replace("\\\n", " ").splitlines() if "repo-tool " in line]
    spans = CODE_SPAN.findall(FENCE.sub("", text))
    found += [span for span in spans if "repo-tool " in span]
    lines = [line[line.index("repo-tool ") + len("repo-tool "):].replace("\\|", "|") for line in found]
    top = set(cli.list_commands(click.Context(cli)))
    return lines + [span.replace("\\|", "|") for span in spans if span.split(" ")[0] in top and " " in span]


def _known_flags(command: click.Command, parents: list[click.Command]) -> set[str]:
    flags = {"--help"}
    for cmd in [command, *parents]:
        for param in cmd.params:
            flags.update(param.opts + param.secondary_opts)
    return flags


def check_command_line(line: str) -> list[str]:
    """What in one README command line the CLI does not have (empty if everything exists)."""
    problems: list[str] = []
    commands: list[tuple[click.Command, list[click.Command]]] = [(cli, [])]
    tokens = [token.strip(STRIP) for token in line.split()]
    rest = tokens
    while rest and all(isinstance(cmd, click.Group) for cmd, _ in commands):
        names = rest[0].split("|")
        group_cmds = [(cmd, parents) for cmd, parents in commands if isinstance(cmd, click.Group)]
        subs = [(cmd, parents, cmd.get_command(click.Context(cmd), name)) for cmd, parents in group_cmds
                for name in names]
        if not any(sub is not None for _, _, sub in subs):
            break
        problems += [f"{name}: no such command" for (_, _, sub), name in zip(subs, names * len(group_cmds))
                     if sub is None]
        commands = [(sub, [cmd, *parents]) for cmd, parents, sub in subs if sub is not None]
        rest = rest[1:]
    for cmd, parents in commands:
        # `node` parses updog's flags itself, and lists them in its help
        known = _known_flags(cmd, parents) | set(FLAG_IN_TEXT.findall(cmd.help or ""))
        for token in rest:
            if token in STOP or token.startswith("#"):
                break
            for part in re.split(r"[|/]", token):
                flag = part.split("=")[0].rstrip(".")
                if FLAG.fullmatch(flag) and flag not in known:
                    problems.append(f"{cmd.name}: no option {flag}")
    return problems


def test_every_command_and_flag_in_the_readme_exists() -> None:
    lines = readme_command_lines(README.read_text(encoding="utf-8"))
    assert len(lines) > 40, lines  # the parser finds the reference's command lines
    problems = [f"repo-tool {line}: {problem}" for line in lines for problem in check_command_line(line)]
    assert not problems, "\n".join(problems)


def test_the_reference_check_finds_what_is_missing() -> None:
    assert check_command_line("rollout pause|resume --config F --plan [--json]") == []
    assert check_command_line("node --disk d.img check-update -n --log-level debug") == []
    assert check_command_line("audit --no-such-flag") == ["audit: no option --no-such-flag"]
    assert check_command_line("node --disk d.img make-disk --disk-size 1G") == ["node: no option --disk-size"]
    assert check_command_line("root sign -x/--cross-sign") == ["sign: no option -x"]
    assert check_command_line("root init|frobnicate PATH") == ["frobnicate: no such command"]
    assert check_command_line("waves show POLICY --start T  # --not-checked after a comment") == []
