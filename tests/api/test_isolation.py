"""The API stands apart from training: no training code, no pandas, no YAML (so no params.yaml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import demandcast.api

API_DIR = Path(demandcast.api.__file__).parent
ALLOWED = {"demandcast", "demandcast.bundle"}  # the package root, and the bundle format
TRAINING = ("pandas", "pyarrow", "yaml", "sklearn", "evidently", "dvc")


def test_api_modules_import_only_the_bundle_format() -> None:
    for path in sorted(API_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("demandcast") and not name.startswith("demandcast.api"):
                    assert name in ALLOWED, f"{path.name} imports {name}"
                assert name.split(".")[0] not in TRAINING, f"{path.name} imports {name}"


def test_importing_the_app_pulls_in_no_training_code() -> None:
    code = (
        "import sys, demandcast.api.app\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {TRAINING!r}\n"
        "             or m in ('demandcast.config', 'demandcast.features', 'demandcast.model',\n"
        "                      'demandcast.cli', 'demandcast.evaluate', 'demandcast.data'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
