"""The API stands apart from training: no training code, no pandas, no YAML (so no params.yaml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import demandcast.api

API_DIR = Path(demandcast.api.__file__).parent
# The package root and the bottom layer the API may use: the bundle format (and the frequency it
# records), the typed evaluation report, the error classes. Never config (params.yaml) or training.
ALLOWED = {
    "demandcast",
    "demandcast.bundle",
    "demandcast.errors",
    "demandcast.frequency",
    "demandcast.metrics",
}
TRAINING = ("pandas", "pyarrow", "yaml", "sklearn", "evidently", "dvc")


def test_api_modules_import_only_the_bundle_format() -> None:
    paths = sorted(API_DIR.rglob("*.py"))
    assert API_DIR / "routes" / "forecast.py" in paths  # subpackages are checked too
    for path in paths:
        name = path.relative_to(API_DIR)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{name}: a relative import; import demandcast.api..."
                modules = [node.module or ""]
                # ``from demandcast import config`` imports the module demandcast.config
                modules += [
                    f"{node.module}.{alias.name}"
                    for alias in node.names
                    if node.module == "demandcast" and find_spec(f"demandcast.{alias.name}")
                ]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                if module.startswith("demandcast") and not module.startswith("demandcast.api"):
                    assert module in ALLOWED, f"{name} imports {module}"
                assert module.split(".")[0] not in TRAINING, f"{name} imports {module}"


def test_importing_the_app_pulls_in_no_training_code() -> None:
    code = (
        "import sys, demandcast.api.app\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {TRAINING!r}\n"
        "             or m in ('demandcast.config', 'demandcast.features', 'demandcast.model',\n"
        "                      'demandcast.cli', 'demandcast.evaluate', 'demandcast.data'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
