"""Helpers of the API tests: clients of apps on a bundle, request rows of its series, and the
reload token and model symlink of hot-swap tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient

from demandcast import bundle
from demandcast.api.app import create_app
from demandcast.api.settings import Settings

EVALUATION = {  # a reports/metrics.json, as GET /model shows it (see demandcast.metrics)
    "holdout": {
        "smape": 20.5,
        "mae": 1.25,
        "rmse": 2.5,
        "rows": 84,
        "start": "2013-05-01",
        "end": "2013-05-14",
    },
    "baselines": {},
}
TOKEN = "s3cret-reload-token"  # DEMANDCAST_RELOAD_TOKEN of the apps that reload (>= 16 chars)


def serve(model_dir: Path, **settings: object) -> TestClient:
    """A client of an app serving ``model_dir``; use it as a context manager (runs startup)."""
    return TestClient(create_app(Settings(model_dir=model_dir, **settings)))


def point(link: Path, target: Path) -> None:
    """Repoint ``link`` at ``target`` atomically, as a deploy that renames a directory does."""
    new = link.with_name(f"{link.name}.new")
    new.symlink_to(target)
    os.replace(new, link)


def day(meta: bundle.Meta, offset: int) -> str:
    """The first day of the ``offset``-th forecast period (0 = the one after the cutoff), as
    YYYY-MM-DD."""
    return str(meta.forecast_start + meta.frequency.step(offset))


def row(meta: bundle.Meta, series: int, offset: int) -> dict:
    """A /predict row for the model's ``series``-th series and ``offset``-th day."""
    return {
        **dict(zip(meta.series_keys, meta.series[series], strict=True)),
        "date": day(meta, offset),
    }


def expected_sales(model_dir: Path) -> np.ndarray:
    """The booster's own answer for every series x day, straight from the bundle."""
    loaded = bundle.read(model_dir)
    grid = loaded.grid()[:, :, loaded.meta.outputs.index(bundle.MEAN)]
    return grid.astype(np.float64)


def page_app(model_dir: Path, **settings: object) -> FastAPI:
    """The API serving ``model_dir``, as an app (the page's tests drive it in a real browser
    too; /series and /history are fuzzed with the other routes in test_fuzz.py)."""
    return create_app(Settings(model_dir=model_dir, **settings))  # type: ignore[arg-type]
