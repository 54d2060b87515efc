"""The raw tables as params.yaml configures them: read by ``prepare`` and ``drift``."""

from __future__ import annotations

import pandas as pd

from demandcast.config import Params
from demandcast.data import load, synthetic


def load_raw(params: Params) -> tuple[pd.DataFrame, str]:
    """The raw sales table in canonical columns, and a name for it in messages."""
    if params.data.source == "synthetic":
        cfg = params.data.synthetic
        return synthetic.generate(cfg), f"synthetic(seed={cfg.seed})"
    path = str(params.data.path)  # set: config refuses source "file" without a path
    return load.read_table(path, params.data.columns), path


def load_plan(params: Params) -> tuple[pd.DataFrame | None, str | None]:
    """The raw plan of the forecast window (``data.future_path``, or the generator's for
    synthetic data) and its name; (None, None) when there is none: defaults apply."""
    if params.data.future_path is not None:
        path = params.data.future_path
        return load.read_table(path, params.data.columns, without_sales=True), path
    if params.data.source == "synthetic":
        cfg = params.data.synthetic
        return synthetic.plan(cfg, params.horizon), f"synthetic(seed={cfg.seed})"
    return None, None
