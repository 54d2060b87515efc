"""Every third-party package the code imports is declared in pyproject.toml.

An undeclared import works only while something else happens to pull the package in (DVC
brought ``ruamel.yaml``); a lock re-resolved from pyproject.toml, or an image built from it,
would then break at import time.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "src" / "demandcast"


def normalize(name: str) -> str:
    """A distribution name as package indexes compare them (PEP 503, with `.` too)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    """``"uvloop>=0.19; sys_platform != 'win32'"`` -> ``"uvloop"`` (no extras, version, marker)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"pyproject.toml: cannot read the requirement {requirement!r}"
    return normalize(match[1])


def declared(pyproject: dict) -> set[str]:
    """The normalized names of every distribution in dependencies and the optional extras."""
    project = pyproject["project"]
    requirements = [*project.get("dependencies", [])]
    for extra in project.get("optional-dependencies", {}).values():
        requirements.extend(extra)
    return {requirement_name(r) for r in requirements}


def third_party_imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports in ``path`` that are neither stdlib nor ours."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "demandcast"}


def undeclared(
    modules: Iterable[Path], declared_names: set[str], providers: dict[str, list[str]]
) -> list[str]:
    """One line per module and imported package whose distribution is not declared.

    ``providers`` maps a top-level import name to the distributions that install it
    (``importlib.metadata.packages_distributions()``); a name it does not know is taken to be
    its own distribution's name.
    """
    problems = []
    for path in sorted(modules):
        for name in sorted(third_party_imports(path)):
            distributions = {normalize(d) for d in providers.get(name, [name])}
            if not distributions & declared_names:
                module = path.relative_to(ROOT).as_posix()
                problems.append(
                    f"{module} imports {name} (distribution {', '.join(sorted(distributions))}), "
                    "which pyproject.toml does not declare"
                )
    return problems


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_imported_package_is_declared() -> None:
    problems = undeclared(
        PACKAGE.rglob("*.py"),
        declared(pyproject()),
        importlib.metadata.packages_distributions(),
    )
    assert not problems, "\n".join(problems)


def test_the_check_names_the_module_and_the_package_it_does_not_find() -> None:
    names = declared(pyproject())
    names.discard("ruamel-yaml")
    problems = undeclared([PACKAGE / "feed.py"], names, importlib.metadata.packages_distributions())
    assert problems == [
        "src/demandcast/feed.py imports ruamel (distribution ruamel-yaml), "
        "which pyproject.toml does not declare"
    ]


def test_requirement_names_are_normalized() -> None:
    assert requirement_name("uvloop>=0.19; sys_platform != 'win32'") == "uvloop"
    assert requirement_name("moto[server]>=5") == "moto"
    assert requirement_name("ruamel.yaml>=0.18") == "ruamel-yaml"
    assert requirement_name("typing_extensions") == "typing-extensions"
    assert "xgboost-cpu" in declared(pyproject())  # it provides the module `xgboost`
    assert "xgboost-cpu" in {
        normalize(d) for d in importlib.metadata.packages_distributions()["xgboost"]
    }
