"""Small real bundles, trained once per session by the pipeline's own code (tests may import
training code; the API may not), and clients of apps serving them."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from demandcast import bundle
from demandcast.config import Params
from demandcast.data import synthetic
from demandcast.data.plan import make_plan
from demandcast.data.validate import prepare_table
from demandcast.features import build
from demandcast.model import fit
from tests.api.helpers import EVALUATION, serve

TINY = {
    "horizon": 14,
    "data": {"synthetic": {"seed": 3, "stores": 2, "items": 3, "days": 120}},
    "train": {"n_estimators": 20, "max_depth": 3, "min_child_weight": 5, "nthread": 1},
}


# With covariates (a promotion flag, a holiday category) and closed days, as the default data
# has them: the forecast window (2013-05-01 .. 05-14) holds two holidays on which every store is
# closed by the plan and promotions of items 1 (every store). Enough trees to learn the promotion.
COVARIATES = {
    "horizon": 14,
    "data": {
        "synthetic": {
            "seed": 3,
            "stores": 2,
            "items": 3,
            "days": 120,
            "promo_share": 0.2,
            "closed_sundays": 0.5,
        },
        "columns": {"open": "open"},
        "covariates": {"promo": "flag", "holiday": "category"},
    },
    "train": {
        "n_estimators": 40,
        "learning_rate": 0.2,
        "max_depth": 3,
        "min_child_weight": 5,
        "nthread": 1,
    },
}


def train_bundle(
    raw: pd.DataFrame, params: Params, directory: Path, plan: pd.DataFrame | None = None
) -> Path:
    """The pipeline's prepare -> features -> train (serving model), written to ``directory``;
    ``plan``: the rows of the forecast window (open and covariates), as the generator gives them."""
    prepared, _ = prepare_table(raw, "test", params)
    if plan is not None:
        plan, _ = make_plan(plan, "synthetic", prepared, params)
    features = build(prepared, params.horizon, params.features, plan=plan)
    cutoff = features.loc[features["sales"].notna(), "date"].max()
    # ranges as train makes them: a negative-binomial first week, Poisson the second
    bundle.write(directory, fit(features, cutoff, params, dispersion=[8.0, None]))
    return directory


def tiny_params(**train: int) -> Params:
    return Params.model_validate({**TINY, "train": {**TINY["train"], **train}})


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Bundles by name: ``store_item`` (int keys), ``retrained`` (same series, another model),
    ``reseeded`` (same series and shapes, other sales: every file differs), ``store_only``
    (string store IDs, no item), ``covariates`` (see COVARIATES) and broken copies of
    ``store_item``."""
    root = tmp_path_factory.mktemp("bundles")
    params = tiny_params()
    raw = synthetic.generate(params.data.synthetic, with_true_mean=False)
    reseeded = synthetic.generate(
        params.data.synthetic.model_copy(update={"seed": 4}), with_true_mean=False
    )
    by_store = raw.groupby(["store", "date"], as_index=False)["sales"].sum()
    by_store["store"] = by_store["store"].map(lambda s: f"S{s:02d}")
    made = {
        "store_item": train_bundle(raw, params, root / "store_item"),
        "retrained": train_bundle(raw, tiny_params(n_estimators=7), root / "retrained"),
        "reseeded": train_bundle(reseeded, params, root / "reseeded"),
        "store_only": train_bundle(by_store, params, root / "store_only"),
    }
    with_covariates = Params.model_validate(COVARIATES)
    cfg = with_covariates.data.synthetic
    made["covariates"] = train_bundle(
        synthetic.generate(cfg, with_true_mean=False),
        with_covariates,
        root / "covariates",
        plan=synthetic.plan(cfg, with_covariates.horizon),
    )
    for name, damage in BREAKAGES.items():
        made[name] = shutil.copytree(made["store_item"], root / name)
        damage(made[name])
    return made


def _truncate_model(directory: Path) -> None:
    path = directory / bundle.MODEL_FILE
    path.write_bytes(path.read_bytes()[:1000])


def _future_format(directory: Path) -> None:
    path = directory / bundle.META_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 99}))


def _short_forecast(directory: Path) -> None:
    path = directory / bundle.FORECAST_FILE
    path.write_bytes(path.read_bytes()[:-1024])


BREAKAGES = {
    "truncated_model": _truncate_model,
    "future_format": _future_format,
    "short_forecast": _short_forecast,
    "no_metadata": lambda directory: (directory / bundle.META_FILE).unlink(),
}


@pytest.fixture(scope="session")
def evaluation_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "metrics.json"
    path.write_text(json.dumps(EVALUATION))
    return path


@pytest.fixture(scope="module")
def client(bundles: dict[str, Path], evaluation_file: Path) -> Iterator[TestClient]:
    with serve(bundles["store_item"], metrics_path=evaluation_file) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def store_only_client(bundles: dict[str, Path]) -> Iterator[TestClient]:
    with serve(bundles["store_only"], metrics_path=None) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def covariates_client(bundles: dict[str, Path]) -> Iterator[TestClient]:
    with serve(bundles["covariates"], metrics_path=None) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def meta(bundles: dict[str, Path]) -> bundle.Meta:
    return bundle.read_meta(bundles["store_item"])
