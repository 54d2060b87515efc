"""evaluate: holdout metrics, baselines, oracle -> reports/metrics.json, reports/plots/."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import pandas as pd

from demandcast import bundle
from demandcast.config import Params
from demandcast.data.validate import evaluable_series
from demandcast.errors import DataError
from demandcast.evaluate import holdout_frame, plot_tables, report
from demandcast.files import atomic_path, write_text
from demandcast.stages.common import METRICS, MODELS, PLOTS, PREPARED
from demandcast.stages.common import main as stage_main

log = logging.getLogger("demandcast")


def run(params: Params, args: argparse.Namespace) -> None:
    prepared = pd.read_parquet(PREPARED)
    model = bundle.read(MODELS / "eval")
    weight = params.evaluate.weight
    if weight is not None and weight.column not in prepared.columns:
        raise DataError(
            f"evaluate.weight.column {weight.column!r} is not a column of the data; it has "
            f"{list(prepared.columns)}"
        )
    series = evaluable_series(prepared, params)
    carry = (weight.column,) if weight is not None else ()
    try:
        frame = holdout_frame(prepared, model, series, carry)
        zero_share = params.evaluate.intermittent_zero_share
        metrics = report(frame, model.meta.series_keys, zero_share, weight, model.meta)
    except ValueError as exc:  # no known sales in the holdout; a weight column not a flag
        raise DataError(f"evaluate: {exc}") from None
    importance = model.booster.get_score(importance_type="total_gain")
    for name, table in plot_tables(
        frame, importance, params.evaluate.plot_top_features, metrics
    ).items():
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
