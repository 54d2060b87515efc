"""Shared fixtures: small synthetic configurations that run in seconds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from demandcast.config import Params
from demandcast.data import synthetic
from demandcast.data.validate import prepare_table
from demandcast.features import build

ROOT = Path(__file__).resolve().parents[1]
SMALL = {
    "horizon": 14,
    "data": {"synthetic": {"seed": 7, "stores": 3, "items": 4, "days": 420}},
    "train": {"n_estimators": 40, "max_depth": 4, "min_child_weight": 5},
}


@pytest.fixture(scope="session")
def small_params() -> Params:
    return Params.model_validate(SMALL)


@pytest.fixture(scope="session")
def small_prepared(small_params: Params) -> pd.DataFrame:
    raw = synthetic.generate(small_params.data.synthetic)
    prepared, _ = prepare_table(raw, "synthetic", small_params)
    return prepared


@pytest.fixture(scope="session")
def small_features(small_params: Params, small_prepared: pd.DataFrame) -> pd.DataFrame:
    return build(small_prepared, small_params.horizon, small_params.features)
