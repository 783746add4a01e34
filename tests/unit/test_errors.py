"""Every exception class is in the ``DP3Error`` tree, or ``dp3.errors`` names it among those outside, with why."""

from __future__ import annotations

import ast
from pathlib import Path

import dp3.errors
from tests.conftest import REPO

SOURCES = ("libs/dp3/src", "services/*/src", "field/src")
BUILTIN = {"Exception", "ValueError", "RuntimeError", "OSError", "LookupError", "TypeError", "KeyError"}


def exception_classes() -> dict[str, list[str]]:
    """Each exception class of the sources, by name, with its bases' names (resolved across modules)."""
    classes = [
        node
        for pattern in SOURCES
        for root in REPO.glob(pattern)
        for path in Path(root).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    ]
    found: dict[str, list[str]] = {}
    grew = True
    while grew:
        grew = False
        for node in classes:
            bases = [ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases]
            if node.name not in found and any(base in BUILTIN or base in found for base in bases):
                found[node.name] = bases
                grew = True
    return found


def in_tree(name: str, classes: dict[str, list[str]]) -> bool:
    return name == "DP3Error" or any(base in classes and in_tree(base, classes) for base in classes.get(name, []))


def test_every_exception_is_in_the_tree_or_named_outside_it() -> None:
    classes = exception_classes()
    assert {"DP3Error", "ConfigError", "InvalidEvent"} <= set(classes)
    doc = dp3.errors.__doc__ or ""
    outside = doc.split("Outside the tree", 1)[1]
    unexplained = sorted(
        name
        for name, bases in classes.items()
        if not in_tree(name, classes)
        and f"``{name}``" not in outside
        and f".{name}``" not in outside
        and not any(base in classes and not in_tree(base, classes) for base in bases)  # a named tree's member
    )
    assert not unexplained, f"neither in the DP3Error tree nor named in dp3.errors' docstring: {unexplained}"
