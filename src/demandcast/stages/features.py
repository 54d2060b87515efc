"""features: calendar, covariate, lag and rolling features -> data/features.parquet."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pandas as pd

from demandcast.config import Params
from demandcast.features import build
from demandcast.stages.common import FEATURES, PLAN, PREPARED, write_parquet
from demandcast.stages.common import main as stage_main

log = logging.getLogger("demandcast")


def run(params: Params, args: argparse.Namespace) -> None:
    prepared = pd.read_parquet(PREPARED)
    plan = pd.read_parquet(PLAN)
    features = build(prepared, params.horizon, params.features, plan=plan)
    write_parquet(features, FEATURES)
    log.info("features: %d rows x %d columns -> %s", *features.shape, FEATURES)


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("features", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
