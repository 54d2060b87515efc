"""prepare: load, validate and gap-fill the raw sales, check the plan -> data/prepared.parquet
(a Parquet dataset: one part per partition of series), data/plan.parquet."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from demandcast import engine
from demandcast.config import Params
from demandcast.data import synthetic
from demandcast.data.covariates import join_attributes, read_attributes
from demandcast.data.plan import (
    category_levels,
    describe,
    make_plan,
    refuse_unknown_series,
    unseen_levels,
)
from demandcast.data.validate import Summary, prepare_table
from demandcast.errors import DataError
from demandcast.files import write_json
from demandcast.frequency import Frequency
from demandcast.stages.common import (
    PLAN,
    PREPARE_REPORT,
    PREPARED,
    dataset,
    part_file,
    write_parquet,
)
from demandcast.stages.common import main as stage_main
from demandcast.stages.raw import PART, RawPart, load_plan, load_raw, raw_partitions

log = logging.getLogger("demandcast")


@dataclass(frozen=True)
class Part:
    """One partition's task: its raw rows (or the generator's series), its plan rows."""

    index: int
    raw: RawPart
    source: str
    plan: pd.DataFrame | None  # the plan as read, this partition's rows; None: see plan_source
    plan_source: str | None
    calendar: tuple[Frequency, pd.Timestamp] | None  # the whole table's; None: one partition
    folder: str  # the dataset's staging folder


@dataclass(frozen=True)
class Done:
    summary: Summary
    plan: pd.DataFrame
    plan_summary: dict[str, Any]
    levels: dict[str, set[str]]


def prepare_part(part: Part, params: Params, attributes: pd.DataFrame | None) -> Done:
    """Prepare one partition of whole series and write its part file; on the local engine the
    one partition is the whole table."""
    raw = part.raw.load(params)
    whole = part.calendar is None
    prepared, summary = prepare_table(
        raw,
        part.source,
        params,
        require_evaluable=whole,
        attributes=attributes,
        calendar=part.calendar,
    )
    raw_plan = part.plan
    if raw_plan is None and part.plan_source is not None:  # the generator's, for these series
        raw_plan = synthetic.plan(params.data.synthetic, params.horizon, part.raw.series)
    plan, plan_summary = make_plan(raw_plan, part.plan_source, prepared, params, attributes)
    prepared.to_parquet(part_file(part.folder, part.index), index=False)
    return Done(summary, plan, plan_summary, category_levels(prepared, params))


def run(params: Params, args: argparse.Namespace) -> None:
    attributes = read_attributes(params)
    with engine.start(params.engine) as eng, dataset(PREPARED) as folder:
        if eng.distributed:
            raws, keys, calendar, source = raw_partitions(params, eng)
            plan_source, plans = _plan_parts(params, keys, raws)
        else:
            raw, source = load_raw(params)
            log.info("prepare: read %d rows from %s", len(raw), source)
            raws, calendar = [RawPart(frame=raw)], None
            raw_plan, plan_source = load_plan(params)
            plans = [raw_plan]
        tasks = [
            Part(i, raw, source, plans[i], plan_source, calendar, str(folder))
            for i, raw in enumerate(raws)
        ]
        done = eng.map("prepare", prepare_part, tasks, params, attributes)
        summary, plan, plan_summary = _combine(done, calendar is not None, source)
        if eng.distributed:
            _, missing = join_attributes(keys.drop(columns=PART), attributes, params)
            summary = dataclasses.replace(summary, attributes_missing=missing)
        write_parquet(plan, PLAN)
    write_json(PREPARE_REPORT, summary.as_dict())
    _log(summary, plan_summary, params, len(done))


def _plan_parts(
    params: Params, keys: pd.DataFrame, raws: list[RawPart]
) -> tuple[str | None, list[pd.DataFrame | None]]:
    """The plan as read, split by partition (the generator's is made in each task)."""
    if params.data.future_path is None:
        generated = f"synthetic(seed={params.data.synthetic.seed})"
        return (generated if params.data.source == "synthetic" else None), [None] * len(raws)
    raw_plan, source = load_plan(params)
    assert raw_plan is not None and source is not None
    key_names = [c for c in keys.columns if c != PART]
    # as check_plan says it, before the plan is split by partition
    names = params.data.columns.mapped()
    refuse_unknown_series(raw_plan, raw_plan[key_names], keys[key_names], source, names)
    known = pd.MultiIndex.from_frame(keys[key_names])
    plan_keys = pd.MultiIndex.from_frame(raw_plan[key_names])
    where = pd.Series(keys[PART].to_numpy(), index=known).reindex(plan_keys).to_numpy()
    return source, [raw_plan.loc[where == i].reset_index(drop=True) for i in range(len(raws))]


def _combine(
    done: list[Done], partitioned: bool, source: str
) -> tuple[Summary, pd.DataFrame, dict[str, Any]]:
    """The report, the plan and its section of the report, of all partitions."""
    if not partitioned:
        only = done[0]
        return (
            dataclasses.replace(only.summary, plan=only.plan_summary),
            only.plan,
            only.plan_summary,
        )
    summary = Summary.combine([d.summary for d in done])
    if summary.series_not_evaluated == summary.series:
        raise DataError(
            f"{source}: no series has the history an evaluation needs (2 x horizon + "
            "prepare.min_train_days). Lower horizon or prepare.min_train_days, or add history."
        )
    plan = pd.concat([d.plan for d in done], ignore_index=True)
    plan.attrs = done[0].plan.attrs
    plan_summary = dict(done[0].plan_summary)
    if "rows_outside_window" in plan_summary:
        plan_summary["rows_outside_window"] = sum(
            d.plan_summary["rows_outside_window"] for d in done
        )
    levels = {c: set().union(*(d.levels[c] for d in done)) for c in done[0].levels}
    plan_summary.pop("unseen_levels", None)
    if unseen := unseen_levels(plan, levels):
        plan_summary["unseen_levels"] = unseen
    return dataclasses.replace(summary, plan=plan_summary), plan, plan_summary


def _log(summary: Summary, plan_summary: dict[str, Any], params: Params, partitions: int) -> None:
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
        "%d as unknown (outages)) -> %s (%d part%s)",
        summary.series,
        summary.frequency,
        summary.start,
        summary.end,
        summary.rows_out,
        summary.filled_zero,
        summary.outage,
        PREPARED,
        partitions,
        "" if partitions == 1 else "s",
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
