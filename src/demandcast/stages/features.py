"""features: calendar, covariate, lag and rolling features -> data/features.parquet (a Parquet
dataset: one part per partition of series of data/prepared.parquet)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from demandcast import engine
from demandcast.config import Params
from demandcast.data.schema import series_columns, series_index
from demandcast.features import Shared, build, shared_part
from demandcast.stages.common import FEATURES, PLAN, PREPARED, dataset, part_file, parts
from demandcast.stages.common import main as stage_main

log = logging.getLogger("demandcast")


def pass_one(prepared: Path, params: Params) -> Shared:
    return shared_part(pd.read_parquet(prepared), params.horizon)


def pass_two(
    task: tuple[int, Path], params: Params, shared: Shared | None, plan: pd.DataFrame, out: Path
) -> int:
    """The features of one partition of series (all of them on the local engine) -> its part."""
    index, source = task
    prepared = pd.read_parquet(source)
    keys = series_columns(prepared)
    if shared is not None:  # a partition: its series' rows of the plan
        plan = plan.loc[series_index(plan, keys).isin(series_index(prepared, keys))]
    features = build(prepared, params.horizon, params.features, plan=plan, shared=shared)
    features.to_parquet(part_file(out, index), index=False)
    return len(features)


def run(params: Params, args: argparse.Namespace) -> None:
    plan = pd.read_parquet(PLAN)
    with engine.start(params.engine) as eng, dataset(FEATURES) as folder:
        if eng.distributed:
            inputs = parts(PREPARED)
            shared = Shared.combine(eng.map("features, pass 1", pass_one, inputs, params))
            tasks = list(enumerate(inputs))
            rows = eng.map(
                "features", pass_two, tasks, params, eng.share(shared), eng.share(plan), folder
            )
        else:  # today's path: the whole table in this process
            parts(PREPARED)
            rows = [pass_two((0, PREPARED), params, None, plan, folder)]
    log.info("features: %d rows in %d part(s) -> %s", sum(rows), len(rows), FEATURES)


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("features", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
