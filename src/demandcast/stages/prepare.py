"""prepare: load, validate and gap-fill the raw sales, check the plan -> data/prepared.parquet,
data/plan.parquet."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence

from demandcast.config import Params
from demandcast.data.covariates import read_attributes
from demandcast.data.plan import describe, make_plan
from demandcast.data.validate import prepare_table
from demandcast.files import write_json
from demandcast.stages.common import PLAN, PREPARE_REPORT, PREPARED, write_parquet
from demandcast.stages.common import main as stage_main
from demandcast.stages.raw import load_plan, load_raw

log = logging.getLogger("demandcast")


def run(params: Params, args: argparse.Namespace) -> None:
    raw, source = load_raw(params)
    log.info("prepare: read %d rows from %s", len(raw), source)
    attributes = read_attributes(params)
    prepared, summary = prepare_table(raw, source, params, attributes=attributes)
    raw_plan, plan_source = load_plan(params)
    plan, plan_summary = make_plan(raw_plan, plan_source, prepared, params, attributes)
    summary = dataclasses.replace(summary, plan=plan_summary)
    write_parquet(prepared, PREPARED)
    write_parquet(plan, PLAN)
    write_json(PREPARE_REPORT, summary.as_dict())
    log.info("prepare: %s", describe(plan_summary))
    if plan_summary.get("unseen_levels"):
        log.info(
            "prepare: the plan has category levels the sales never had (read as missing): %s",
            plan_summary["unseen_levels"],
        )
    if summary.closed:
        log.info(
            "prepare: %d closed periods (open = 0): not trained on, forecast 0", summary.closed
        )
    if summary.attributes_missing:
        log.info(
            "prepare: %d %ss have no row in the attribute file: their attributes are missing",
            summary.attributes_missing,
            params.data.attributes.key if params.data.attributes else "key",
        )
    log.info(
        "prepare: %d %s series, %s .. %s, %d rows (missing periods: %d read as no sales, "
        "%d as unknown (outages)) -> %s",
        summary.series,
        summary.frequency,
        summary.start,
        summary.end,
        summary.rows_out,
        summary.filled_zero,
        summary.outage,
        PREPARED,
    )
    if summary.negative_sales:
        log.info(
            "prepare: %d rows with negative sales (returns): %s (prepare.negative_sales)",
            summary.negative_sales,
            "counted as no sales" if summary.negative_rule == "zero" else "dropped",
        )
    if summary.series_not_evaluated:
        log.info(
            "prepare: %d series are too short for a holdout: trained on and served, not "
            "evaluated (2 x horizon + prepare.min_train_days)",
            summary.series_not_evaluated,
        )


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("prepare", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
