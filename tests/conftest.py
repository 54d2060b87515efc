"""Shared fixtures and helpers: small synthetic configurations that run in seconds, and scratch
repositories for end-to-end `dvc repro` runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from demandcast.config import Params
from demandcast.data import synthetic
from demandcast.data.plan import make_plan
from demandcast.data.validate import prepare_table
from demandcast.features import build

ROOT = Path(__file__).resolve().parents[1]
# The generator's known-in-advance drivers switched off: SMALL tests the sales structure alone
# (DRIVEN below, and the default data, have them).
NO_DRIVERS = {"promo_share": 0, "holidays": None, "closed_sundays": 0, "closed_holidays": 0}
SMALL = {
    "horizon": 14,
    "data": {"synthetic": {"seed": 7, "stores": 3, "items": 4, "days": 420, **NO_DRIVERS}},
    # max_bin 256: every feature of this small table has fewer distinct values than bins, so
    # XGBoost's bins are exact and the model does not depend on the order of its rows (with
    # fewer bins than values, the quantile sketch does: tests/test_behaviour.py relabels a store)
    "train": {"n_estimators": 40, "max_depth": 4, "min_child_weight": 5, "max_bin": 256},
}


# SMALL with the default data's known-in-advance drivers declared: open, promo, holiday, and
# the public-holiday calendar of the generator's country.
DRIVEN = {
    **SMALL,
    "data": {
        "synthetic": {"seed": 7, "stores": 3, "items": 4, "days": 420},
        "columns": {"open": "open"},
        "covariates": {"promo": "flag", "holiday": "category"},
    },
    "features": {"holidays": {"country": "DE"}},
}


@pytest.fixture(scope="session")
def driven_params() -> Params:
    return Params.model_validate(DRIVEN)


def prepared_synthetic(params: Params) -> pd.DataFrame:
    """The synthetic data of ``params``, through ``prepare``."""
    prepared, _ = prepare_table(synthetic.generate(params.data.synthetic), "synthetic", params)
    return prepared


@pytest.fixture(scope="session")
def driven_prepared(driven_params: Params) -> pd.DataFrame:
    return prepared_synthetic(driven_params)


@pytest.fixture(scope="session")
def driven_plan(driven_params: Params, driven_prepared: pd.DataFrame) -> pd.DataFrame:
    cfg = driven_params.data.synthetic
    plan, _ = make_plan(
        synthetic.plan(cfg, driven_params.horizon), "synthetic", driven_prepared, driven_params
    )
    return plan


@pytest.fixture(scope="session")
def driven_features(
    driven_params: Params, driven_prepared: pd.DataFrame, driven_plan: pd.DataFrame
) -> pd.DataFrame:
    return build(driven_prepared, driven_params.horizon, driven_params.features, plan=driven_plan)


@pytest.fixture(scope="session")
def small_params() -> Params:
    return Params.model_validate(SMALL)


@pytest.fixture(scope="session")
def small_prepared(small_params: Params) -> pd.DataFrame:
    return prepared_synthetic(small_params)


@pytest.fixture(scope="session")
def small_features(small_params: Params, small_prepared: pd.DataFrame) -> pd.DataFrame:
    return build(small_prepared, small_params.horizon, small_params.features)


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


REPLACED = frozenset({"covariates"})  # a set of declarations: an override replaces it whole


def merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` merged in, dict by dict (``REPLACED`` keys and empty dicts
    replace)."""
    out = dict(base)
    for key, value in overrides.items():
        deeper = isinstance(value, dict) and value and isinstance(base.get(key), dict)
        deeper = deeper and key not in REPLACED
        out[key] = merged(base[key], value) if deeper else value
    return out


def scratch_repo(tmp: Path, params: dict) -> Path:
    """A git + DVC repository with this project's pipeline; ``params`` override params.yaml."""
    repo = tmp / "repo"
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo / "dvc.yaml")
    (repo / "data" / "raw").mkdir(parents=True)
    (repo / "data" / "raw" / ".gitkeep").touch()
    write_params(repo, params)
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["dvc", "config", "core.analytics", "false"], repo)
    return repo


def write_params(repo: Path, overrides: dict) -> None:
    defaults = yaml.safe_load((ROOT / "params.yaml").read_text())
    (repo / "params.yaml").write_text(yaml.safe_dump(merged(defaults, overrides)))
