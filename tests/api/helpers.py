"""Helpers of the API tests: clients of apps on a bundle, and request rows of its series."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from demandcast import bundle
from demandcast.api.app import create_app
from demandcast.api.settings import Settings

EVALUATION = {"holdout": {"smape": 20.5, "mae": 1.25}}


def serve(model_dir: Path, **settings: object) -> TestClient:
    """A client of an app serving ``model_dir``; use it as a context manager (runs startup)."""
    return TestClient(create_app(Settings(model_dir=model_dir, **settings)))


def day(meta: bundle.Meta, offset: int) -> str:
    """The ``offset``-th forecast day (0 = the day after the cutoff), as YYYY-MM-DD."""
    return str(meta.forecast_start + dt.timedelta(days=offset))


def row(meta: bundle.Meta, series: int, offset: int) -> dict:
    """A /predict row for the model's ``series``-th series and ``offset``-th day."""
    return {
        **dict(zip(meta.series_keys, meta.series[series], strict=True)),
        "date": day(meta, offset),
    }


def expected_sales(model_dir: Path) -> np.ndarray:
    """The booster's own answer for every series x day, straight from the bundle."""
    booster, meta, features = bundle.read(model_dir)
    grid = bundle.predict(booster, meta, features).reshape(len(meta.series), meta.horizon_days)
    return grid.astype(np.float64)
