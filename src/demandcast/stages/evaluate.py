"""evaluate: holdout metrics, baselines, oracle -> reports/metrics.json, reports/plots/."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pandas as pd

from demandcast import bundle
from demandcast.config import Params
from demandcast.evaluate import holdout_frame, plot_tables, report
from demandcast.files import atomic_path, write_text
from demandcast.stages.common import METRICS, MODELS, PLOTS, PREPARED
from demandcast.stages.common import main as stage_main

log = logging.getLogger("demandcast")


def run(params: Params, args: argparse.Namespace) -> None:
    prepared = pd.read_parquet(PREPARED)
    model = bundle.read(MODELS / "eval")
    frame = holdout_frame(prepared, model)
    metrics = report(frame, model.meta.series_keys, params.evaluate.intermittent_zero_share)
    importance = model.booster.get_score(importance_type="total_gain")
    for name, table in plot_tables(frame, importance, params.evaluate.plot_top_features).items():
        with atomic_path(PLOTS / name) as tmp:
            table.to_csv(tmp, index=False)
    write_text(METRICS, metrics.to_json())
    log.info(
        "evaluate: holdout SMAPE %.3f -> %s (`python -m demandcast report` prints the table)",
        metrics.holdout.smape,
        METRICS,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("evaluate", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
