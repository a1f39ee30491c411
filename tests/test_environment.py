"""environment.yml (for conda users) stays in step with pyproject.toml.

conda is not needed here: the file is read as YAML and compared with pyproject.toml, so
a dependency or an extra added to one and not the other fails this test.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
EDITABLE = re.compile(r"^-e\s+\.(?:\[(?P<extras>[^\]]*)\])?$")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _environment() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def _conda_deps(env: dict) -> list[str]:
    return [d for d in env["dependencies"] if isinstance(d, str)]


def _pip_deps(env: dict) -> list[str]:
    sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "environment.yml needs exactly one pip: section"
    return [str(line).strip() for line in sections[0]]


def _key(requirement: str) -> tuple:
    """What must match between the two files: name, extras, bounds, markers."""
    r = Requirement(requirement)
    return (canonicalize_name(r.name), tuple(sorted(r.extras)), str(r.specifier),
            str(r.marker or ""))


def test_python_version_is_one_pyproject_allows():
    pins = [d for d in _conda_deps(_environment()) if re.match(r"python\b", d)]
    assert len(pins) == 1, f"one python pin expected, got {pins}"
    version = re.fullmatch(r"python\s*=+\s*(\d+\.\d+)", pins[0])
    assert version, f"pin python to a minor version (python=3.X), got {pins[0]!r}"
    requires = SpecifierSet(_pyproject()["requires-python"])
    assert requires.contains(version.group(1)), (
        f"environment.yml's python {version.group(1)} is outside requires-python {requires}")


def test_pip_is_there_to_install_the_rest():
    assert "pip" in _conda_deps(_environment())


def test_every_pyproject_dependency_is_listed_with_the_same_bounds():
    project = _pyproject()
    wanted = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    listed = {_key(line) for line in _pip_deps(_environment()) if not line.startswith("-")}
    missing = [req for req in wanted if _key(req) not in listed]
    assert not missing, f"in pyproject.toml but not in environment.yml: {missing}"


def test_nothing_listed_that_pyproject_lacks():
    project = _pyproject()
    wanted = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        wanted += extra
    known = {_key(req) for req in wanted}
    extra_lines = [line for line in _pip_deps(_environment())
                   if not line.startswith("-") and _key(line) not in known]
    assert not extra_lines, f"in environment.yml but not in pyproject.toml: {extra_lines}"


def test_opswb_itself_is_installed_with_every_extra():
    editable = [m for m in map(EDITABLE.match, _pip_deps(_environment())) if m]
    assert len(editable) == 1, "environment.yml installs opswb once: `-e .[extras]`"
    extras = {e.strip() for e in (editable[0]["extras"] or "").split(",") if e.strip()}
    assert extras == set(_pyproject().get("optional-dependencies", {})), (
        "environment.yml's `-e .[...]` must name every extra of pyproject.toml")
