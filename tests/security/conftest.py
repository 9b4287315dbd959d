"""Fixtures for the attack catalogue: one quickstart repository made per session and copied per
test, served by :func:`tests.security.harness.attack_server`, with a fresh ``make-disk`` image and
node paths (``tests/test_node.py``'s :class:`Node`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from repo_tool.node import gpt
from tests.clirun import Runner
from tests.repohelpers import QS, copy_quickstart
from tests.security.harness import AttackServer, Forger, attack_server
from tests.test_node import Node

MIB = 1 << 20


@dataclass
class Victim(Node):
    """A node under attack: its paths under ``dir``, its repository served by ``server``."""

    server: AttackServer | None = None

    @property
    def forger(self) -> Forger:
        return Forger(self.qs)

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    def use_targets_url(self, url: str) -> None:
        """Point ``targets_base_url`` elsewhere (a mirror)."""
        lines = self.updog_toml.read_text().splitlines(keepends=True)
        self.updog_toml.write_text("".join(f'targets_base_url = "{url}"\n' if line.startswith("targets_base_url")
                                           else line for line in lines))

    def make_disk(self, root_size: int = 16 * MIB) -> None:
        gpt.make_disk(self.disk, gpt.DiskLayout(boot_size=4 * MIB, root_size=root_size, hash_size=MIB,
                                                private_size=MIB))


@pytest.fixture
def victim(template: QS, tmp_path: Path, run: Runner) -> Iterator[Victim]:
    qs = copy_quickstart(template, tmp_path / "qs")
    with attack_server(qs.dir / "repo") as server:
        made = Victim(tmp_path, qs, server.url, [], run, server)
        made.configure()
        made.make_disk()
        yield made
