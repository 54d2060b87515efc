"""The raw sales table as params.yaml configures it: read by ``prepare`` and ``drift``."""

from __future__ import annotations

import pandas as pd

from demandcast.config import Params
from demandcast.data import load, synthetic


def load_raw(params: Params) -> tuple[pd.DataFrame, str]:
    """The raw table in canonical columns, and a name for it in messages."""
    if params.data.source == "synthetic":
        cfg = params.data.synthetic
        return synthetic.generate(cfg), f"synthetic(seed={cfg.seed})"
    path = str(params.data.path)  # set: config refuses source "file" without a path
    return load.read_table(path, params.data.columns), path
