"""Packaging: one version, the licence texts, py.typed, every package in the wheel, hints naming the
distribution, and the lock covering pyproject.toml; read from the files and the installed metadata
(no build, no network: .ci/dist builds the wheel and checks what it holds, .ci/lock --check
re-resolves)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import repo_tool
from tests.clirun import Runner

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT: dict[str, Any] = PYPROJECT["project"]
DIST: str = PROJECT["name"]
LOCK = ROOT / "requirements-dev.txt"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def test_the_distribution_name_is_publishable_and_the_command_keeps_its_name() -> None:
    # PyPI refuses a name equal to a taken one once case and '-', '_', '.' are dropped: "repo-tool"
    # would be "repotool", which is taken.
    assert re.sub(r"[-_.]", "", DIST.lower()) != "repotool"
    assert DIST == "bottlerocket-repo-tool"
    assert PROJECT["scripts"] == {"repo-tool": "repo_tool.cli:main"}
    assert f"{DIST}[plot]" in PROJECT["optional-dependencies"]["test"]


def test_the_version_has_one_source(run: Runner) -> None:
    assert "version" not in PROJECT and PROJECT["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "repo_tool.__version__"}
    assert metadata.version(DIST) == repo_tool.__version__, "reinstall: pip install --no-deps -e ."
    result = run("--version")
    assert result.code == 0 and result.out == f"repo-tool, version {metadata.version(DIST)}\n"


def test_the_installed_command_prints_the_distribution_version() -> None:
    (script,) = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "repo-tool"]
    assert script.value == "repo_tool.cli:main" and script.dist is not None and script.dist.name == DIST
    path = Path(sys.executable).parent / "repo-tool"
    if not path.exists():
        pytest.skip(f"no repo-tool script beside {sys.executable}")
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out == f"repo-tool, version {metadata.version(DIST)}\n"


def test_the_licence_texts_exist_and_ship() -> None:
    assert PROJECT["license"] == "MIT OR Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE-MIT", "LICENSE-APACHE"]
    assert "Permission is hereby granted, free of charge" in (ROOT / "LICENSE-MIT").read_text(encoding="utf-8")
    apache = (ROOT / "LICENSE-APACHE").read_text(encoding="utf-8")
    assert "Version 2.0, January 2004" in apache and "END OF TERMS AND CONDITIONS" in apache
    info = metadata.metadata(DIST)
    assert info["License-Expression"] == PROJECT["license"]
    assert info.get_all("License-File") == PROJECT["license-files"]
    # No licence classifier beside an SPDX expression (PEP 639: build backends refuse both).
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]


def test_py_typed_ships_and_the_classifiers_say_so() -> None:
    assert (ROOT / "repo_tool" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["repo_tool"]
    classifiers = PROJECT["classifiers"]
    assert "Typing :: Typed" in classifiers
    python = r"Programming Language :: Python :: (3\.\d+)"
    versions = [m.group(1) for m in (re.fullmatch(python, c) for c in classifiers) if m]
    assert versions == PYTHONS
    assert PROJECT["requires-python"] == f">={PYTHONS[0]}"
    # Only real addresses (no public home yet: no guessed Homepage/Source); each an https URL.
    assert PROJECT["urls"] and all(url.startswith("https://") for url in PROJECT["urls"].values())
    assert not {"Homepage", "Source", "Issues", "Changelog"} & set(PROJECT["urls"])
    assert all(len(label) <= 32 for label in PROJECT["urls"])  # core metadata's limit for a Project-URL label


def test_every_package_is_in_the_wheel() -> None:
    """A package missing from [tool.setuptools] packages is missing from the wheel, though the tests,
    run from the checkout, import it fine."""
    setuptools: dict[str, Any] = PYPROJECT["tool"]["setuptools"]
    on_disk = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "repo_tool").rglob("__init__.py")}
    mapped = setuptools["package-dir"]
    assert set(setuptools["packages"]) == on_disk | set(mapped)
    for package, directory in mapped.items():
        assert list((ROOT / directory).glob("*.toml")), package


def test_install_hints_name_the_distribution() -> None:
    """``pip install 'X[extra]'`` in a message must name the distribution, not the command."""
    hints = {
        (str(path.relative_to(ROOT)), name)
        for path in (ROOT / "repo_tool").rglob("*.py")
        for name in re.findall(r"pip install '([^'\[]+)", path.read_text(encoding="utf-8"))
    }
    assert hints and {name for _, name in hints} == {DIST}, hints


def _pins() -> list[tuple[Requirement, bool]]:
    """Each pin of the lock, and whether it has a hash."""
    body = "\n".join(line for line in LOCK.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
    pins = []
    for entry in re.split(r"\n(?=[A-Za-z0-9])", body.strip()):
        first = entry.split(" \\\n")[0]
        pins.append((Requirement(first), "--hash=sha256:" in entry))
    return pins


def _direct() -> list[Requirement]:
    group = [r for r in PYPROJECT["dependency-groups"]["dev"] if isinstance(r, str)]
    extras = [r for name in ("plot", "hsm", "test") for r in PROJECT["optional-dependencies"][name]]
    return [Requirement(r) for r in [*PROJECT["dependencies"], *extras, *group]]


@pytest.mark.parametrize("python", PYTHONS)
def test_the_lock_pins_every_requirement_with_hashes(python: str) -> None:
    """Offline half of `.ci/lock --check`: on each supported Python, every direct requirement has
    exactly one hashed pin in requirements-dev.txt, and the pin satisfies pyproject.toml's range."""
    env = {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
           "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
           "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    pins: dict[str, list[Version]] = {}
    for pin, hashed in _pins():
        assert hashed, f"{pin} has no hash"
        if pin.marker is None or pin.marker.evaluate(env):
            (spec,) = pin.specifier
            assert spec.operator == "==", pin
            pins.setdefault(canonicalize_name(pin.name), []).append(Version(spec.version))
    assert all(len(versions) == 1 for versions in pins.values()), pins
    for requirement in _direct():
        name = canonicalize_name(requirement.name)
        if name == canonicalize_name(DIST) or (requirement.marker and not requirement.marker.evaluate(env)):
            continue
        assert name in pins, f"{requirement} is not in {LOCK.name}: run bash .ci/lock"
        assert requirement.specifier.contains(pins[name][0], prereleases=True), \
            f"{LOCK.name} pins {name}=={pins[name][0]}, outside {requirement}: run bash .ci/lock"
