"""drift: the deployed model judged on the sales after its cutoff -> reports/drift.{json,html}."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from demandcast import bundle, drift, drift_html, engine
from demandcast.config import Params
from demandcast.data.covariates import read_attributes
from demandcast.data.validate import prepare_table
from demandcast.errors import DataError
from demandcast.features import Shared
from demandcast.files import atomic_path, write_json
from demandcast.frequency import Frequency
from demandcast.metrics import Holdout, Metrics
from demandcast.stages.common import DRIFT_HTML, DRIFT_REPORT, METRICS, MODELS, part_file, parts
from demandcast.stages.common import main as stage_main
from demandcast.stages.raw import RawPart, load_raw, raw_partitions

DRIFT_EXIT = 3  # `--exit-code` when drift is detected


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--exit-code",
        action="store_true",
        help=f"exit {DRIFT_EXIT} when drift is detected (default: 0 either way)",
    )


def run(params: Params, args: argparse.Namespace) -> int | None:
    for path in (MODELS / "serving", MODELS / "eval", METRICS):
        if not path.exists():
            raise DataError(f"{path}: not found; run the pipeline first (dvc repro)")
    # Today's data, not data/prepared.parquet (that is the last training's). No minimum
    # history: a series too new to train on is reported as new, not refused.
    attributes = read_attributes(params)
    deployed, evaluation = (bundle.read(MODELS / name) for name in ("serving", "eval"))
    baseline = Metrics.read(METRICS).open_days_holdout()  # closed days are not scored now
    with engine.start(params.engine) as eng:
        if eng.distributed:
            assessment = _partitioned(eng, params, attributes, deployed, evaluation, baseline)
        else:  # today's path: the whole table in this process
            raw, source = load_raw(params)
            prepared, _ = prepare_table(
                raw, source, params, require_evaluable=False, attributes=attributes
            )
            assessment = drift.assess(prepared, deployed, evaluation, baseline, params)
    report = assessment.report
    page = drift_html.render(assessment, assessment.run.get_html_str(as_iframe=False))
    with atomic_path(DRIFT_HTML) as tmp:
        tmp.write_text(page, encoding="utf-8")
    write_json(DRIFT_REPORT, report)
    print(drift.summary(report))
    return DRIFT_EXIT if args.exit_code and report["drift_detected"] else None


def survey_part(
    part: tuple[int, RawPart],
    source: str,
    params: Params,
    attributes: pd.DataFrame | None,
    calendar: tuple[Frequency, pd.Timestamp],
    horizon: int,
    folder: Path,
) -> drift.Survey:
    """Pass 1 on one partition: prepare today's rows (kept in ``folder`` for pass 2)."""
    index, raw = part
    prepared, _ = prepare_table(
        raw.load(params),
        source,
        params,
        require_evaluable=False,
        attributes=attributes,
        calendar=calendar,
    )
    prepared.to_parquet(part_file(folder, index), index=False)
    return drift.Survey.of(prepared, horizon)


def rows_part(path: Path, chosen: drift.Plan, params: Params, shared: Shared) -> drift.Rows:
    """Pass 2 on one partition: the rows judged."""
    return drift.Rows.of(pd.read_parquet(path), chosen, params, shared)


def _partitioned(
    eng: engine.Engine,
    params: Params,
    attributes: pd.DataFrame | None,
    deployed: bundle.Bundle,
    evaluation: bundle.Bundle,
    baseline: Holdout,
) -> drift.Assessment:
    """:func:`drift.assess` in partitions of series on the dask workers; today's prepared
    partitions live in a scratch folder beside the pipeline's data until the end."""
    raws, _, calendar, source = raw_partitions(params, eng)
    with engine.scratch("drift") as folder:
        horizon = deployed.meta.horizon
        surveys = eng.map(
            "drift, pass 1",
            survey_part,
            list(enumerate(raws)),
            source,
            params,
            attributes,
            calendar,
            horizon,
            folder,
        )
        survey = drift.Survey.combine(surveys)
        chosen = drift.plan(survey, deployed, evaluation, baseline, params)
        rows = eng.map(
            "drift, pass 2",
            rows_part,
            parts(folder),
            eng.share(chosen),
            params,
            eng.share(survey.shared),
        )
    return drift.judge(drift.Rows.combine(rows), chosen, deployed, baseline, params)


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("drift", run, __doc__, argv, arguments)


if __name__ == "__main__":
    raise SystemExit(main())
