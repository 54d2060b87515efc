"""evaluate: holdout metrics, baselines, oracle -> reports/metrics.json, reports/plots/."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from demandcast import bundle, engine
from demandcast.config import Params
from demandcast.data.validate import evaluable_series
from demandcast.errors import DataError
from demandcast.evaluate import holdout_frame, plot_tables, report
from demandcast.files import atomic_path, write_text
from demandcast.stages.common import METRICS, MODELS, PLOTS, PREPARED, parts
from demandcast.stages.common import main as stage_main

log = logging.getLogger("demandcast")


def holdout_part(
    source: Path, model: bundle.Bundle, params: Params, carry: tuple[str, ...]
) -> pd.DataFrame | None:
    """The scored holdout rows of the evaluable series of one partition (or of the whole
    table); None when it has none."""
    prepared = pd.read_parquet(source)
    if carry and carry[0] not in prepared.columns:
        raise DataError(
            f"evaluate.weight.column {carry[0]!r} is not a column of the data; it has "
            f"{list(prepared.columns)}"
        )
    series = evaluable_series(prepared, params)
    if series.empty:
        return None
    try:
        return holdout_frame(prepared, model, series, carry)
    except ValueError as exc:  # no known sales in this partition's holdout
        if "nothing to score" in str(exc):
            return None
        raise DataError(f"evaluate: {exc}") from None


def run(params: Params, args: argparse.Namespace) -> None:
    model = bundle.read(MODELS / "eval")
    weight = params.evaluate.weight
    carry = (weight.column,) if weight is not None else ()
    with engine.start(params.engine) as eng:
        if eng.distributed:  # per partition of series, on the workers
            sources = parts(PREPARED)
            found = eng.map("evaluate", holdout_part, sources, eng.share(model), params, carry)
        else:  # today's path: the whole table in this process
            parts(PREPARED)
            found = [holdout_part(PREPARED, model, params, carry)]
    frames = [frame for frame in found if frame is not None]
    if not frames:
        raise DataError("evaluate: no holdout row has known sales: nothing to score")
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    try:
        zero_share = params.evaluate.intermittent_zero_share
        metrics = report(frame, model.meta.series_keys, zero_share, weight, model.meta)
    except ValueError as exc:  # a weight column not a flag
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
