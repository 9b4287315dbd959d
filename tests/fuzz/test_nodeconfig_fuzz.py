"""A node's two input files, read as the node reads them (``node.read_inputs``): updog.toml mutated
from the one Bottlerocket writes, os-release mutated line by line from a real one, and raw bytes
for both.  Each is refused with one line naming the file, or gives exactly the values written.

(tests/test_nodeconfig.py feeds random text to the parsers; this feeds near-misses and bytes to
the file reader.)"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from repo_tool.core.semver import Version
from repo_tool.errors import RepoToolError, VersionError
from repo_tool.node.updog import NodePaths, read_inputs

from .strategies import INTERESTING_STRINGS, assert_clear_error, dump_toml, has_pairs, mutated, outcome, raw_inputs

UPDOG = {
    "metadata_base_url": "https://updates.bottlerocket.aws/2020-07-07/aws-k8s-1.28/x86_64/",
    "targets_base_url": "https://updates.bottlerocket.aws/targets/",
    "seed": 1487,
    "version_lock": "latest",
    "ignore_waves": False,
    "https_proxy": "proxy.local:3128",
    "no_proxy": ["localhost", ".internal"],
}
OS_RELEASE = [
    ("NAME", "Bottlerocket"),
    ("ID", "bottlerocket"),
    ("VERSION", '"1.19.2 (aws-k8s-1.28)"'),
    ("PRETTY_NAME", '"Bottlerocket OS 1.19.2 (aws-k8s-1.28)"'),
    ("VARIANT_ID", "aws-k8s-1.28"),
    ("VERSION_ID", "1.19.2"),
    ("BUILD_ID", "29cc92cc"),
    ("HOME_URL", '"https://github.com/bottlerocket-os/bottlerocket"'),
]
GOOD_UPDOG = dump_toml(UPDOG).encode()
GOOD_OS_RELEASE = "".join(f"{k}={v}\n" for k, v in OS_RELEASE).encode()


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> NodePaths:
    directory = tmp_path_factory.mktemp("nodeconfig-fuzz")
    return NodePaths(config=directory / "updog.toml", os_release=directory / "os-release")


def read(paths: NodePaths, config: bytes, os_release: bytes) -> tuple[Any, Any] | None:
    paths.config.write_bytes(config)
    paths.os_release.write_bytes(os_release)
    try:
        result = read_inputs(paths)
    except RepoToolError as exc:
        assert_clear_error(exc, one_of=(str(paths.config), str(paths.os_release)))
        outcome(f"refused: {'updog.toml' if str(paths.config) in str(exc) else 'os-release'}")
        return None
    outcome("accepted")
    return result


@given(doc=mutated(UPDOG, max_ops=3))
def test_structured_mutations_of_updog_toml(paths: NodePaths, doc: Any) -> None:
    result = read(paths, dump_toml(doc).encode("utf-8", "surrogatepass"), GOOD_OS_RELEASE)
    if result is None:
        return
    config, _ = result
    assert not has_pairs(doc)
    assert (config.metadata_base_url, config.targets_base_url, config.seed, config.version_lock,
            config.ignore_waves) == tuple(doc[k] for k in
                                          ("metadata_base_url", "targets_base_url", "seed", "version_lock",
                                           "ignore_waves"))
    assert 0 <= config.seed <= 2047
    assert config.https_proxy == (doc.get("https_proxy") or None)
    assert config.no_proxy == tuple(doc.get("no_proxy", []))


# One os-release line: a plain value, no line breaks (those are the raw test's business).
values = st.text(st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]), max_size=20) | st.sampled_from(
    [s for s in INTERESTING_STRINGS if not any(c in s for c in "\x00\t\u2028")])


@st.composite
def os_release_lines(draw: st.DrawFn) -> list[str]:
    lines = [f"{k}={v}" for k, v in OS_RELEASE]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(lines) - 1)) if lines else 0
        op = draw(st.sampled_from(("drop", "value", "quote", "half-quote", "key-case", "comment", "junk",
                                   "duplicate", "blank", "indent", "swap")))
        if not lines or op == "junk":
            lines.insert(at, draw(values.filter(lambda v: "=" not in v and not v.strip().startswith("#"))))
            continue
        key, sep, value = lines[at].partition("=")
        if op == "drop":
            del lines[at]
        elif op == "value":
            lines[at] = f"{key}={draw(values)}"
        elif op == "quote":
            lines[at] = f'{key}="{value}"'
        elif op == "half-quote":
            lines[at] = f'{key}="{value}' if draw(st.booleans()) else f'{key}={value}"'
        elif op == "key-case":
            lines[at] = f"{key.lower()}{sep}{value}"
        elif op == "comment":
            lines[at] = "#" + lines[at]
        elif op == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), f"{key}={draw(values)}")
        elif op == "blank":
            lines.insert(at, draw(st.sampled_from(["", " ", "\t"])))
        elif op == "indent":
            lines[at] = "  " + lines[at] + " "
        elif op == "swap" and len(lines) > 1:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
    return lines


def os_release_model(lines: list[str]) -> dict[str, str] | None:
    """The format as SPEC §9.1 describes it: KEY=value, '#' lines and blank lines skipped, one pair of
    surrounding double quotes stripped, the last of a repeated key wins; None if a line is malformed."""
    found: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            return None
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        found[key] = value
    return found


@given(lines=os_release_lines(), crlf=st.booleans())
def test_line_mutations_of_os_release(paths: NodePaths, lines: list[str], crlf: bool) -> None:
    text = ("\r\n" if crlf else "\n").join(lines) + "\n"
    result = read(paths, GOOD_UPDOG, text.encode("utf-8"))
    model = os_release_model(lines)
    expected: Version | None = None
    if model is not None and model.get("VERSION_ID") and model.get("VARIANT_ID"):
        with contextlib.suppress(VersionError):
            expected = Version.parse(model["VERSION_ID"])
    if result is None:
        assert expected is None, f"refused, but it holds VERSION_ID {model and model['VERSION_ID']!r}"
        return
    _, release = result
    assert model is not None and release.version_id == expected
    assert release.variant_id == model["VARIANT_ID"]
    assert release.pretty_name == model.get("PRETTY_NAME") and release.build_id == model.get("BUILD_ID")


@given(config=raw_inputs([GOOD_UPDOG]) | st.just(GOOD_UPDOG), os_release=raw_inputs([GOOD_OS_RELEASE]))
def test_raw_bytes_in_both_files(paths: NodePaths, config: bytes, os_release: bytes) -> None:
    read(paths, config, os_release)


def test_the_unmutated_inputs_load(paths: NodePaths) -> None:
    result = read(paths, GOOD_UPDOG, GOOD_OS_RELEASE)
    assert result is not None
    config, release = result
    assert config.seed == 1487 and config.no_proxy == ("localhost", ".internal")
    assert str(release.version_id) == "1.19.2" and release.pretty_name == "Bottlerocket OS 1.19.2 (aws-k8s-1.28)"
