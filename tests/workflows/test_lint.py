"""Linters of what `make lint` does not cover: the workflows (actionlint, with shellcheck on
their `run:` steps), the Dockerfile (hadolint), the scripts (shellcheck, ruff)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the dev dependencies (make test does)")
    return found


def lint(*cmd: str) -> None:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout}\n{done.stderr}"


def test_actionlint_passes_on_every_workflow():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert len(workflows) >= 5
    lint(tool("actionlint"), "-shellcheck", tool("shellcheck"), *map(str, workflows))


def test_hadolint_passes_on_the_dockerfile():
    if not (ROOT / "Dockerfile").exists():
        pytest.skip("no Dockerfile yet")
    lint(tool("hadolint"), "--failure-threshold", "warning", "Dockerfile")


def test_shellcheck_passes_on_the_scripts():
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.sh"))
    lint(tool("shellcheck"), "--external-sources", "--source-path=SCRIPTDIR", *scripts)


def test_ruff_passes_on_the_python_scripts():
    scripts = sorted(str(p) for p in (ROOT / "scripts").glob("*.py"))
    lint(tool("ruff"), "check", *scripts)
    lint(tool("ruff"), "format", "--check", *scripts)
