"""Run the CLI in-process and check its one-line error contract."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from repo_tool.cli import main


class Run:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> Any:
        return json.loads(self.out)


Runner = Callable[..., Run]


def make_runner(capsys: pytest.CaptureFixture[str]) -> Runner:
    def invoke(*args: str) -> Run:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return invoke


def assert_one_line_error(result: Run, code: int, *needles: str) -> None:
    assert result.code == code, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("repo-tool: error: ")
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]
