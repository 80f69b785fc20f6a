"""The package's imports run one way through its layers (the README's architecture section).

Every ``import``/``from … import`` in ``src/anisoada`` — at module level or inside a function —
is read with :mod:`ast`; an import from a module of one layer into a module of a higher layer, or
between two modules of the same layer that are meant to be independent, fails the test. This is
the contract import-linter expresses for large codebases, written out in a few lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "anisoada"

#: Lowest first. A unit may import from units of lower layers only; units sharing a layer are
#: independent of each other. A unit is a top-level module or subpackage of ``anisoada``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "_io", "schema"),
    ("problems", "optim", "theory"),
    ("data", "models"),
    ("train",),
    ("measure",),
    ("experiments",),
    ("advice",),
    ("reproduce",),
    ("report",),
    ("cli",),
    ("__main__",),
)
RANK = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def _unit(module: str) -> str:
    """``anisoada.experiments.runs.base`` → ``experiments``; ``anisoada`` → ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path, root: Path = SOURCE) -> str:
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = SOURCE) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every anisoada import in a file (relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from anisoada import x`` imports the unit ``x`` when it is a subpackage.
            if module == "anisoada":
                found += [
                    (node.lineno, f"anisoada.{alias.name}")
                    for alias in node.names
                    if alias.name in RANK
                ]
    return [(line, name) for line, name in found if name.split(".")[0] == "anisoada"]


def _files() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


def test_every_unit_of_the_package_has_a_layer():
    units = {path.relative_to(SOURCE).parts[0].removesuffix(".py") for path in _files()}
    assert units <= set(RANK), f"give these a layer in LAYERS: {sorted(units - set(RANK))}"


def _violations(path: Path, root: Path = SOURCE) -> list[str]:
    source_unit = _unit(_module_name(path, root))
    violations = []
    for line, module in _imports(path, root):
        target = _unit(module)
        if target == source_unit or target == "__init__":
            continue
        if RANK[target] >= RANK[source_unit]:
            violations.append(
                f"{path.relative_to(root)}:{line} imports {module} "
                f"(layer {RANK[target]} '{target}') from layer {RANK[source_unit]} '{source_unit}'"
            )
    return violations


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_imports_run_down_the_layers(path):
    violations = _violations(path)
    assert not violations, "\n".join(violations)


def test_the_checker_finds_upward_and_sideways_imports(tmp_path):
    # The test above must be able to fail: in a planted file of the data layer, an upward
    # import (function-level), a sideways relative one and a sideways ``from anisoada import``
    # are all found; imports within the unit and from lower layers are not.
    root = tmp_path / "anisoada"
    planted = root / "data" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(
        "from anisoada.problems import logistic\n"
        "from .libsvm import load_libsvm\n"
        "from ..models import gpt2\n"
        "from anisoada import models\n"
        "def f():\n"
        "    from anisoada.experiments import run_sweep\n"
    )
    found = _violations(planted, root)
    assert [entry.split(" imports ")[1].split(" ")[0] for entry in found] == [
        "anisoada.models",
        "anisoada.models",
        "anisoada.experiments",
    ]
