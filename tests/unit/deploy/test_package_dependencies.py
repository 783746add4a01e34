"""Each package declares what it imports.

The development venv holds every package at once, so a service that imports a
library only another service declares works here and breaks in its own image
(the dispatcher imported Pillow undeclared, found by the first image build).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.rabbit import REPO_ROOT

PACKAGES = {
    "dp3": REPO_ROOT / "libs" / "dp3",
    "dp3-field": REPO_ROOT / "field",
    **{f"dp3-{path.name}": path for path in sorted((REPO_ROOT / "services").iterdir()) if path.is_dir()},
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(project: Path) -> set[str]:
    """The distributions a package may import: its own dependencies and extras, and dp3's when it depends on dp3.

    An extra (``dp3[render]``) is what a module of the package needs beyond the base install; whoever
    imports that module installs the extra (the field agent declares Pillow itself).
    """
    project_table = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    dependencies = list(project_table["dependencies"])
    for extra in project_table.get("optional-dependencies", {}).values():
        dependencies += extra
    names = {normalized(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in dependencies}
    if "dp3" in names:
        names |= declared(PACKAGES["dp3"])
    return names


def imported_modules(project: Path) -> set[str]:
    found: set[str] = set()
    for source in (project / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    first_party = {"dp3"} | {path.name for path in (REPO_ROOT / "services").iterdir()}
    return {
        name
        for name in found
        if name not in sys.stdlib_module_names and name not in first_party and not name.startswith("dp3_")
    }


def undeclared(project: Path) -> list[str]:
    distributions = packages_distributions()
    allowed = declared(project)
    missing = []
    for module in sorted(imported_modules(project)):
        providers = {normalized(name) for name in distributions.get(module, [module])}
        if not providers & allowed:
            missing.append(f"{module} (from {', '.join(sorted(providers))})")
    return missing


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_imported_library_is_a_declared_dependency(package: str) -> None:
    assert undeclared(PACKAGES[package]) == []


def test_the_check_sees_an_undeclared_import(tmp_path: Path) -> None:
    (tmp_path / "src" / "demo").mkdir(parents=True)
    (tmp_path / "src" / "demo" / "__init__.py").write_text("import os\nfrom PIL import Image\nimport pika\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\ndependencies = ["pika"]\n')
    assert undeclared(tmp_path) == ["PIL (from pillow)"]
