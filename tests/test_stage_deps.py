"""dvc.yaml's code deps of each stage are exactly the package files its module imports.

A stage whose cmd is ``python -m demandcast.stages.X`` runs that module; the files it executes
are the module, the files it imports (anywhere in a file, also inside functions), transitively,
and the ``__init__.py`` of every package on the way. A file missing from the deps means an edit
there does not re-run the stage (a stale output); an extra one re-runs it for nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

PACKAGE = "demandcast"
STAGE_CMD = re.compile(r"python -m (demandcast\.stages\.\w+)")


def module_file(name: str, src: Path) -> Path | None:
    """The file of module ``name`` under ``src`` (a module or a package), if there is one."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, src: Path) -> set[str]:
    """Every dotted name ``path`` imports, relative imports resolved.

    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a module or a name in
    ``a.b``: the caller keeps the names that are files).
    """
    parts = list(path.relative_to(src).with_suffix("").parts)
    package = parts[:-1]  # a module's package; for a package's __init__, the package itself
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            names.add(target)
            names.update(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def imported_files(module: str, src: Path) -> set[Path]:
    """The files under ``src/demandcast`` that ``python -m <module>`` executes, transitively."""
    files: set[Path] = set()
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        dotted = name.split(".")
        if dotted[0] != PACKAGE:
            continue
        for depth in range(1, len(dotted) + 1):  # the packages on the way, then the module
            prefix = ".".join(dotted[:depth])
            if prefix in seen:
                continue
            seen.add(prefix)
            file = module_file(prefix, src)
            if file is not None:
                files.add(file)
                todo.extend(imported_names(file, src))
    return files


def dep_problems(dvc_yaml: Path, root: Path) -> list[str]:
    """Each mismatch between a stage's ``src/`` deps and the files its module imports."""
    problems = []
    for stage, spec in yaml.safe_load(dvc_yaml.read_text())["stages"].items():
        match = STAGE_CMD.fullmatch(spec["cmd"].strip())
        if match is None:
            continue
        module = match[1]
        if module_file(module, root / "src") is None:
            problems.append(f"stage {stage}: runs {module}, which has no file under src/")
            continue
        imported = {f.relative_to(root).as_posix() for f in imported_files(module, root / "src")}
        deps = {str(dep) for dep in spec.get("deps", []) if str(dep).startswith("src/")}
        for dep in sorted(deps):
            if (root / dep).is_dir():
                problems.append(f"stage {stage}: dep {dep} is a directory; list its files")
            elif dep not in imported:
                problems.append(f"stage {stage}: dep {dep} is not imported by {module}")
        for file in sorted(imported - deps):
            problems.append(f"stage {stage}: {module} imports {file}, which is not in its deps")
    return problems


# --- the real pipeline ------------------------------------------------------------------------


def test_every_stage_runs_its_own_stage_module() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert set(stages) == {"prepare", "features", "train", "evaluate", "drift"}
    for stage, spec in stages.items():
        assert spec["cmd"] == f"python -m demandcast.stages.{stage}", stage


def test_stage_code_deps_are_exactly_what_the_stage_imports() -> None:
    problems = dep_problems(ROOT / "dvc.yaml", ROOT)
    assert not problems, "dvc.yaml code deps are wrong:\n" + "\n".join(problems)


def test_a_stage_does_not_depend_on_cli_or_another_stage() -> None:
    """Editing the gate, the report or another stage re-runs nothing."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for stage, spec in stages.items():
        code = {str(dep) for dep in spec["deps"] if str(dep).startswith("src/")}
        assert "src/demandcast/cli.py" not in code and "src/demandcast/gate.py" not in code
        others = {f"src/demandcast/stages/{name}.py" for name in stages} - {
            f"src/demandcast/stages/{stage}.py"
        }
        assert not code & others, stage


# --- the check fails when the deps are wrong --------------------------------------------------


def edited_dvc_yaml(tmp_path: Path, stage: str, remove: str | None, add: str | None) -> Path:
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    deps = pipeline["stages"][stage]["deps"]
    if remove is not None:
        deps.remove(remove)
    if add is not None:
        deps.append(add)
    path = tmp_path / "dvc.yaml"
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False))
    return path


def test_the_check_fails_when_an_imported_file_is_missing_from_the_deps(tmp_path) -> None:
    broken = edited_dvc_yaml(tmp_path, "features", remove="src/demandcast/data/schema.py", add=None)
    assert dep_problems(broken, ROOT) == [
        "stage features: demandcast.stages.features imports src/demandcast/data/schema.py, "
        "which is not in its deps"
    ]


def test_the_check_fails_when_a_dep_is_not_imported(tmp_path) -> None:
    broken = edited_dvc_yaml(tmp_path, "train", remove=None, add="src/demandcast/gate.py")
    assert dep_problems(broken, ROOT) == [
        "stage train: dep src/demandcast/gate.py is not imported by demandcast.stages.train"
    ]


def test_the_check_fails_on_a_directory_dep(tmp_path) -> None:
    broken = edited_dvc_yaml(
        tmp_path, "prepare", remove="src/demandcast/data/load.py", add="src/demandcast/data"
    )
    problems = dep_problems(broken, ROOT)
    assert "stage prepare: dep src/demandcast/data is a directory; list its files" in problems
    assert any("imports src/demandcast/data/load.py" in p for p in problems)


# --- the import walk itself -------------------------------------------------------------------


@pytest.fixture
def toy_src(tmp_path: Path) -> Path:
    """A toy package: relative imports, an import inside a function, a name vs a module."""
    files = {
        "demandcast/__init__.py": "",
        "demandcast/base.py": "import json\n",
        "demandcast/unused.py": "",
        "demandcast/sub/__init__.py": "from .. import base\n",
        "demandcast/sub/leaf.py": "X = 1\n",
        "demandcast/sub/mod.py": "from .leaf import X\n",
        "demandcast/stages/__init__.py": "",
        "demandcast/stages/run.py": (
            "from demandcast.base import json\n"  # a name in base, not a module
            "def main():\n"
            "    from demandcast.sub import mod\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_the_walk_follows_relative_and_function_level_imports(toy_src: Path) -> None:
    found = {
        f.relative_to(toy_src).as_posix() for f in imported_files("demandcast.stages.run", toy_src)
    }
    assert found == {
        "demandcast/__init__.py",
        "demandcast/stages/__init__.py",
        "demandcast/stages/run.py",
        "demandcast/base.py",
        "demandcast/sub/__init__.py",
        "demandcast/sub/mod.py",
        "demandcast/sub/leaf.py",
    }
