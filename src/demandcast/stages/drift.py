"""drift: the deployed model judged on the sales after its cutoff -> reports/drift.{json,html}."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from demandcast import bundle, drift, drift_html
from demandcast.config import Params
from demandcast.data.covariates import read_attributes
from demandcast.data.validate import prepare_table
from demandcast.errors import DataError
from demandcast.files import atomic_path, write_json
from demandcast.metrics import Metrics
from demandcast.stages.common import DRIFT_HTML, DRIFT_REPORT, METRICS, MODELS
from demandcast.stages.common import main as stage_main
from demandcast.stages.raw import load_raw

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
    raw, source = load_raw(params)
    # Today's data, not data/prepared.parquet (that is the last training's). No minimum
    # history: a series too new to train on is reported as new, not refused.
    attributes = read_attributes(params)
    prepared, _ = prepare_table(raw, source, params, require_evaluable=False, attributes=attributes)
    deployed, evaluation = (bundle.read(MODELS / name) for name in ("serving", "eval"))
    baseline = Metrics.read(METRICS).open_days_holdout()  # closed days are not scored now
    assessment = drift.assess(prepared, deployed, evaluation, baseline, params)
    report = assessment.report
    page = drift_html.render(assessment, assessment.run.get_html_str(as_iframe=False))
    with atomic_path(DRIFT_HTML) as tmp:
        tmp.write_text(page, encoding="utf-8")
    write_json(DRIFT_REPORT, report)
    print(drift.summary(report))
    return DRIFT_EXIT if args.exit_code and report["drift_detected"] else None


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("drift", run, __doc__, argv, arguments)


if __name__ == "__main__":
    raise SystemExit(main())
