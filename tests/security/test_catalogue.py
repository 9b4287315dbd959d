"""Every attack of the catalogue (``catalogue.py``) against the node client and the auditor.

For each scenario: (1) the node refuses with exit 1 and one error line holding the scenario's words
(or, for the recovery scenarios, applies the update); (2) no partition set is made bootable: the
active set's flags are unchanged and the inactive set is neither valid nor prioritised; (3) nothing
outside the node's metadata cache, migrations dir, state dir and the inactive partitions changed:
the whole work tree (names, sizes, sha256, modes), the disk image around the inactive set and the
server's document root are compared before and after; (4) the auditor, on the repository as
stored, exits 1 with a finding holding the scenario's words, or exits 0 where the attack lives
only in transport or in a node's memory.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import lz4.frame
import pytest

from repo_tool.core.gptprio import Flags
from repo_tool.node import updog as node
from repo_tool.node.gpt import Disk
from repo_tool.storage.transport import Transport
from tests.repohelpers import VARIANT
from tests.security.catalogue import CATALOGUE, RECOVERED, Attack, Scenario, describe_audit, describe_node, images
from tests.security.conftest import Victim
from tests.security.harness import disk_digest, names_under, tree_snapshot

NOT_BOOTABLE = Flags(priority=0, tries_left=0, successful=False)
NEXT_BOOT = Flags(priority=2, tries_left=1, successful=False)  # upgrade_to_inactive
README = Path(__file__).with_name("README.md")


def _partition(v: Victim, kind: str, length: int) -> bytes:
    part = getattr(Disk.open(v.disk).sets["B"], kind)
    with v.disk.open("rb") as handle:
        handle.seek(part.offset)
        return handle.read(length)


def _check_refused(v: Victim, scenario: Scenario, err: str, code: int, before: tuple[Flags, Flags]) -> None:
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if not line.startswith("Starting update to ")]
    assert len(errors) == 1 and errors[0].startswith("repo-tool: error: "), err
    for word in scenario.node:
        assert word in errors[0], errors[0]
    a, b = v.flags()
    assert a == before[0]
    assert b == NOT_BOOTABLE and not b.will_boot
    assert v("status", "--json").json()["next"] == "A"


def _check_recovered(v: Victim, out: str, err: str, code: int, before: tuple[Flags, Flags]) -> None:
    assert code == 0, err
    assert out == f"Update applied: {VARIANT} 1.1.0\n"
    a, b = v.flags()
    assert a == before[0] and b == NEXT_BOOT
    for kind, name in images(v).items():  # exactly the listed images, decompressed
        expected = lz4.frame.decompress(v.target_path(name).read_bytes())
        assert _partition(v, kind, len(expected)) == expected, kind


def _audit(v: Victim, scenario: Scenario, attack: Attack) -> None:
    targets = attack.audit_targets or v.qs.targets
    result = v.run("audit", "--metadata-url", str(v.qs.meta), "--targets-url", str(targets),
                   "--root", str(attack.audit_root or v.qs.root), "--json")
    assert "Traceback" not in result.err
    report = json.loads(result.out)
    errors = [f"{f['check']}: {f['file']}: {f['message']}" for f in report["findings"] if f["severity"] == "error"]
    if isinstance(scenario.audit, str):  # nothing to see in storage: the repository audits clean
        assert result.code == 0 and not errors, errors
        return
    assert result.code == 1, report["findings"]
    assert any(all(word in e for word in scenario.audit) for e in errors), errors


@pytest.mark.long
@pytest.mark.parametrize("scenario", CATALOGUE, ids=[s.id for s in CATALOGUE])
def test_attack(scenario: Scenario, victim: Victim, monkeypatch: pytest.MonkeyPatch,
                tmp_path_factory: pytest.TempPathFactory) -> None:
    v = victim
    if scenario.short_timeouts:  # updog's 30 s / 10 s would make a stalled server cost two minutes
        monkeypatch.setattr(node, "Transport", functools.partial(Transport, timeout=1.0, connect_timeout=1.0))
    attack = scenario.setup(v) or Attack()

    recovered = scenario.node == RECOVERED
    before = v.flags()
    own = (v.dir / "cache", v.dir / "migrations", v.state_dir)
    tree = tree_snapshot(v.dir, (*own, v.disk))
    docroot = tree_snapshot(v.qs.dir / "repo")
    disk = disk_digest(v.disk, gpt=not recovered)
    base = tmp_path_factory.getbasetemp()
    names = names_under(base) if attack.outside else set()

    result = v(*attack.args, state=scenario.state)
    assert "Traceback" not in result.err
    if recovered:
        _check_recovered(v, result.out, result.err, result.code, before)
    else:
        _check_refused(v, scenario, result.err, result.code, before)

    assert tree_snapshot(v.dir, (*own, v.disk)) == tree
    assert tree_snapshot(v.qs.dir / "repo") == docroot
    assert disk_digest(v.disk, gpt=not recovered) == disk
    if attack.outside:
        allowed = [p.relative_to(base) for p in own]
        appeared = sorted(n for n in names_under(base) - names if not any(Path(n).is_relative_to(a) for a in allowed))
        assert appeared == [], appeared
        for path in attack.outside:
            assert not path.exists(), path
    if attack.after is not None:
        attack.after()

    _audit(v, scenario, attack)
    if scenario.state:  # updog keeps no state: the same repository without --state-dir is accepted
        plain = v("check-update", "-n")
        assert plain.code == 0, plain.err


def readme_rows() -> list[str]:
    """The README table, as the catalogue says it (paste it there when the catalogue changes)."""
    rows = []
    for s in CATALOGUE:
        node_text = describe_node(s) + (f"; with `--state-dir` ({s.stateless})" if s.state else "")
        rows.append(f"| `{s.id}` | {s.attack} | {s.does} | {node_text} | {describe_audit(s)} | `{s.test_name}` |")
    return rows


def test_readme_lists_exactly_the_catalogue() -> None:
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip().strip("`") for row in rows] == [s.id for s in CATALOGUE]
    for row, scenario in zip(rows, CATALOGUE):
        for text in (describe_node(scenario), describe_audit(scenario), scenario.test_name):
            assert text in row, (scenario.id, text)


def test_the_before_and_after_checks_can_fail(victim: Victim) -> None:
    """The snapshots used above see what they guard (and ignore what the node may write)."""
    v = victim
    own = (v.dir / "cache", v.dir / "migrations", v.state_dir, v.disk)
    tree = tree_snapshot(v.dir, own)
    (v.dir / "cache").mkdir()
    (v.dir / "cache" / "timestamp.json").write_text("{}")
    assert tree_snapshot(v.dir, own) == tree
    v.updog_toml.chmod(0o600)
    assert tree_snapshot(v.dir, own) != tree
    v.updog_toml.chmod(0o644)
    (v.dir / "stray").write_text("")
    assert tree_snapshot(v.dir, own) != tree

    disk, no_gpt = disk_digest(v.disk), disk_digest(v.disk, gpt=False)
    sets = Disk.open(v.disk).sets
    with v.disk.open("r+b") as handle:
        handle.seek(sets["B"].root.offset + 4096)
        handle.write(b"staged")
    assert disk_digest(v.disk) == disk
    Disk.open(v.disk).write_flags({"B": NEXT_BOOT})
    assert disk_digest(v.disk) != disk and disk_digest(v.disk, gpt=False) == no_gpt
    with v.disk.open("r+b") as handle:
        handle.seek(sets["A"].root.offset + 4096)
        handle.write(b"active")
    assert disk_digest(v.disk, gpt=False) != no_gpt
