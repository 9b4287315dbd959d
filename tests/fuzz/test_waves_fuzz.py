"""Wave policies (TOML, and the same structure in YAML) that are almost right, and raw bytes.

Every policy either loads (through the CLI's ``load_policy``, which reads the file and picks the
format by suffix) and then schedules ordered waves from any start, or is refused with one line
naming the file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.instant import MAX_INSTANT, MIN_INSTANT
from repo_tool.core.waves import check_waves_ordered, policy_to_waves
from repo_tool.errors import PolicyError, RepoToolError
from repo_tool.publish.inputs import load_policy

from ..conftest import BOTTLEROCKET, REPO
from .strategies import assert_clear_error, dump_toml, dump_yaml, has_pairs, mutated, outcome, raw_inputs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

POLICY_FILES = sorted([*(REPO / "waves").glob("*.toml"), *(BOTTLEROCKET / "waves").glob("*/*.toml")])
POLICIES: list[dict[str, Any]] = [tomllib.loads(p.read_text(encoding="utf-8")) for p in POLICY_FILES]
FORMATS = ("toml-tables", "toml-inline", "yaml-block", "yaml-flow")
SUFFIX = {"toml-tables": ".toml", "toml-inline": ".toml", "yaml-block": ".yaml", "yaml-flow": ".yml"}


def render(doc: Any, form: str) -> str:
    if form.startswith("toml"):
        return dump_toml(doc, tables=form == "toml-tables")
    return dump_yaml(doc, block=form == "yaml-block")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("waves-fuzz")


def check_policy_file(path: Path, doc: Any | None, starts: list[int]) -> None:
    try:
        policy, _ = load_policy(str(path))
    except RepoToolError as exc:
        assert_clear_error(exc, str(path))
        outcome(f"refused: {type(exc).__name__}")
        return
    outcome("accepted")
    # Accepted: a member given twice is never silently resolved, and the policy is what the file says.
    if doc is not None:
        assert not has_pairs(doc), "a policy with a repeated key was accepted"
        assert [(w.start_after, w.fleet_percentage) for w in policy.waves] == [
            (w["start_after"], w["fleet_percentage"]) for w in doc["waves"]]
    assert policy.waves and all(1 <= w.fleet_percentage <= 100 for w in policy.waves)
    for start in starts:
        try:
            waves = policy_to_waves(policy, start)
        except PolicyError as exc:  # an offset past the last representable instant
            assert_clear_error(exc, "start_after")
            continue
        assert set(waves) == set(policy.seeds())
        check_waves_ordered(waves)  # validated once, ordered from every start


starts = st.lists(st.integers(MIN_INSTANT, MAX_INSTANT) | st.integers(0, 2**62), min_size=1, max_size=3)


@given(doc=st.sampled_from(POLICIES).flatmap(mutated), form=st.sampled_from(FORMATS), starts=starts)
def test_structured_wrong_policies_load_or_fail_clearly(workdir: Path, doc: Any, form: str,
                                                        starts: list[int]) -> None:
    path = workdir / f"policy{SUFFIX[form]}"
    path.write_text(render(doc, form), encoding="utf-8", errors="surrogatepass")
    check_policy_file(path, doc, starts)


@given(data=raw_inputs([p.read_bytes() for p in POLICY_FILES]), suffix=st.sampled_from([".toml", ".yaml", ".yml"]),
       starts=starts)
def test_raw_policy_bytes_load_or_fail_clearly(workdir: Path, data: bytes, suffix: str, starts: list[int]) -> None:
    path = workdir / f"raw{suffix}"
    path.write_bytes(data)
    check_policy_file(path, None, starts)


def test_the_real_policies_render_and_load_in_every_form(workdir: Path) -> None:
    """The writers above are faithful: unmutated, every real policy loads in every form."""
    for doc in POLICIES:
        for form in FORMATS:
            path = workdir / f"real{SUFFIX[form]}"
            path.write_text(render(doc, form), encoding="utf-8")
            policy, _ = load_policy(str(path))
            assert [(w.start_after, w.fleet_percentage) for w in policy.waves] == [
                (w["start_after"], w["fleet_percentage"]) for w in doc["waves"]]
