"""Apps are layers: a lower app never imports a higher one, not even inside a function.

The order below is the only place it is written (README "Architecture" points here). Every module
of every app is parsed (migrations, tests and bench excepted); both module-level and function-local
imports count, ``if TYPE_CHECKING:`` blocks do not (they are never executed). String references
in ForeignKeys (``"appointments.Visit"``) and reverse relations are not imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Low → high. A module belongs to the layer with the longest matching prefix.
LAYERS: tuple[str, ...] = (
    "core",
    "accounts",
    "clinics.tenancy",
    "audit",
    "clinics",
    "patients",
    "notifications",
    "messaging",
    "appointments",
    "promotions",
    "analytics",
    "clinic_crm",
)

SKIPPED_DIRS = {"migrations", "tests", "bench", ".venv", "node_modules", "static", "templates", "locale"}


def layer_of(module: str) -> int | None:
    """Index of the layer a dotted module name belongs to, or None for third-party code."""
    matches = [(len(prefix), index) for index, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_modules(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str, str]]:
    """(line, module shown, name judged) for every import the module executes, at any depth."""
    tree = ast.parse(source)
    package = module if is_package else module.rsplit(".", 1)[0]
    found: list[tuple[int, str, str]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from clinics import tenancy` reaches clinics.tenancy, a layer of its own, so each
            # imported name is judged as `module.name` (longest prefix wins); the module is shown.
            found.extend((node.lineno, target, f"{target}.{alias.name}") for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def upward_imports(source: str, module: str, path: str, *, is_package: bool = False) -> list[str]:
    """Every import in `source` that reaches a layer above the one `module` is in."""
    own = layer_of(module)
    if own is None:
        return []
    problems: list[str] = []
    seen: set[tuple[int, str]] = set()
    for line, target, judged in imported_modules(source, module, is_package=is_package):
        other = layer_of(judged)
        if other is not None and other > own and (line, LAYERS[other]) not in seen:
            seen.add((line, LAYERS[other]))
            problems.append(f"{path}:{line} {module} -> {target}")
    return problems


def app_modules() -> list[tuple[Path, str]]:
    modules: list[tuple[Path, str]] = []
    for top in sorted({layer.split(".")[0] for layer in LAYERS}):
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if SKIPPED_DIRS.intersection(relative.parts):
                continue
            dotted = ".".join(relative.with_suffix("").parts)
            modules.append((relative, dotted.removesuffix(".__init__")))
    return modules


# Upward imports whose move belongs to other work in progress, as "module -> imported module".
# Each must still exist (the test below says when one is gone): the list only shrinks.
PENDING: frozenset[str] = frozenset()  # upward imports known and on their way out: none left


def _all_upward_imports() -> list[str]:
    return [
        problem
        for relative, module in app_modules()
        for problem in upward_imports((ROOT / relative).read_text(), module, str(relative), is_package=relative.name == "__init__.py")
    ]


def test_no_app_imports_a_higher_layer() -> None:
    problems = [problem for problem in _all_upward_imports() if problem.split(" ", 1)[1] not in PENDING]
    assert not problems, "upward imports (order is LAYERS in tests/platform/test_layers.py):\n" + "\n".join(problems)


def test_every_pending_upward_import_still_exists() -> None:
    left = {problem.split(" ", 1)[1] for problem in _all_upward_imports()}
    assert not PENDING - left, f"moved meanwhile, strike from PENDING: {sorted(PENDING - left)}"


def test_every_app_is_in_the_order() -> None:
    apps = {path.parent.name for path in ROOT.glob("*/apps.py")}
    assert apps <= {layer.split(".")[0] for layer in LAYERS}


def test_the_walk_sees_modules_of_every_layer() -> None:
    layers_seen = {layer_of(module) for _path, module in app_modules()}
    assert set(range(len(LAYERS))) - {None} <= layers_seen | {LAYERS.index("analytics")}


@pytest.mark.parametrize(
    ("source", "module", "flagged"),
    [
        ("from messaging.models import Thread\n", "notifications.services", ["x.py:1 notifications.services -> messaging.models"]),
        (
            "def f():\n    from appointments import services\n",
            "patients.selectors",
            ["x.py:2 patients.selectors -> appointments"],
        ),
        ("import clinics.models\n", "clinics.tenancy", ["x.py:1 clinics.tenancy -> clinics.models"]),
        ("from clinics import tenancy\n", "clinics.tenancy.api", []),
        ("from ..models import Doctor\n", "clinics.tenancy.api", ["x.py:1 clinics.tenancy.api -> clinics.models"]),
        ("from . import services\n", "clinics.admin", []),
        ("from clinics.tenancy import has_role\n", "audit.services", []),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from patients.models import Patient\n", "clinics.tenancy", []),
        ("from promotions.models import Promotion\n", "clinic_crm.urls", []),
        ("import django.db\n", "core.pool", []),
    ],
)
def test_an_upward_import_is_flagged(source: str, module: str, flagged: list[str]) -> None:
    assert upward_imports(source, module, "x.py") == flagged


def test_a_relative_import_in_a_package_init_is_resolved() -> None:
    assert upward_imports("from ..models import Doctor\n", "clinics.tenancy", "x.py", is_package=True) == [
        "x.py:1 clinics.tenancy -> clinics.models",
    ]
