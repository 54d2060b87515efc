"""One entry point: ``python -m demandcast <stage>`` (or ``demandcast <stage>``).

Each DVC stage is one subcommand. This module is the I/O edge: it reads params.yaml (through
``config``), reads and writes files atomically, logs progress, and turns data errors into a
message and exit code 2. Everything it calls takes data and returns data.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from demandcast.config import Params, load_params
from demandcast.errors import ConfigError, DataError
from demandcast.files import atomic_path, write_json

log = logging.getLogger("demandcast")

PREPARED = Path("data/prepared.parquet")
PREPARE_REPORT = Path("reports/prepare.json")
FEATURES = Path("data/features.parquet")
MODELS = Path("models")
METRICS = Path("reports/metrics.json")
PLOTS = Path("reports/plots")
DRIFT_REPORT = Path("reports/drift.json")
DRIFT_HTML = Path("reports/drift.html")
DRIFT_EXIT = 3  # `drift --exit-code` when drift is detected


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def load_raw(params: Params) -> tuple[pd.DataFrame, str]:
    """The raw table in canonical columns, and a name for it in messages."""
    from demandcast.data import load, synthetic

    if params.data.source == "synthetic":
        cfg = params.data.synthetic
        return synthetic.generate(cfg), f"synthetic(seed={cfg.seed})"
    return load.read_table(params.data.path, params.data.columns), str(params.data.path)


def cmd_prepare(params: Params, args: argparse.Namespace) -> None:
    from demandcast.data.validate import prepare_table

    raw, source = load_raw(params)
    log.info("prepare: read %d rows from %s", len(raw), source)
    prepared, summary = prepare_table(raw, source, params.min_history_days, params.data.date_format)
    _write_parquet(prepared, PREPARED)
    write_json(PREPARE_REPORT, summary.as_dict())
    log.info(
        "prepare: %d series, %s .. %s, %d rows (%d missing days filled with 0) -> %s",
        summary.series,
        summary.start,
        summary.end,
        summary.rows_out,
        summary.days_filled,
        PREPARED,
    )


def cmd_features(params: Params, args: argparse.Namespace) -> None:
    from demandcast.features import build

    prepared = pd.read_parquet(PREPARED)
    features = build(prepared, params.horizon, params.features)
    _write_parquet(features, FEATURES)
    log.info("features: %d rows x %d columns -> %s", *features.shape, FEATURES)


def cmd_train(params: Params, args: argparse.Namespace) -> None:
    from demandcast.model import train_bundles

    features = pd.read_parquet(FEATURES)
    MODELS.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".models.", dir=MODELS.parent.resolve()))
    try:
        train_bundles(features, params, staging)
        staging.chmod(0o755)
        shutil.rmtree(MODELS, ignore_errors=True)
        staging.rename(MODELS)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cmd_evaluate(params: Params, args: argparse.Namespace) -> None:
    from demandcast import bundle
    from demandcast.evaluate import holdout_frame, plot_tables, report

    prepared = pd.read_parquet(PREPARED)
    booster, meta, forecast = bundle.read(MODELS / "eval")
    frame = holdout_frame(prepared, booster, meta, forecast)
    metrics = report(frame)
    importance = booster.get_score(importance_type="total_gain")
    for name, table in plot_tables(frame, importance, params.evaluate.plot_top_features).items():
        with atomic_path(PLOTS / name) as tmp:
            table.to_csv(tmp, index=False)
    write_json(METRICS, metrics)
    log.info(
        "evaluate: holdout SMAPE %.3f -> %s (`python -m demandcast report` prints the table)",
        metrics["holdout"]["smape"],
        METRICS,
    )


def cmd_report(params: Params, args: argparse.Namespace) -> None:
    """Print the last evaluation (reports/metrics.json) as a table."""
    import json

    from demandcast.evaluate import summary_table

    if not METRICS.exists():
        raise DataError(f"{METRICS}: not found; run the pipeline first (make run, or dvc repro)")
    print(summary_table(json.loads(METRICS.read_text())))


def cmd_generate(params: Params, args: argparse.Namespace) -> None:
    """Write the synthetic data as a user-style file (for trying the file source at any size)."""
    from demandcast.data import synthetic

    overrides = {
        k: v
        for k, v in (
            ("seed", args.seed),
            ("stores", args.stores),
            ("items", args.items),
            ("days", args.days),
        )
        if v is not None
    }
    cfg = type(params.data.synthetic).model_validate(
        {**params.data.synthetic.model_dump(), **overrides}
    )
    frame = synthetic.generate(cfg, with_true_mean=args.with_true_mean)
    out = Path(args.out)
    with atomic_path(out) as tmp:
        if out.suffix == ".csv":
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%d")
        else:
            frame.to_parquet(tmp, index=False)
    log.info("generate: %d rows, %d series -> %s", len(frame), cfg.stores * cfg.items, out)


def cmd_drift(params: Params, args: argparse.Namespace) -> int | None:
    """Judge the deployed model on the sales after its cutoff -> reports/drift.{json,html}."""
    import json

    from demandcast import bundle, drift
    from demandcast.data.validate import prepare_table

    for path in (MODELS / "serving", MODELS / "eval", METRICS):
        if not path.exists():
            raise DataError(f"{path}: not found; run the pipeline first (dvc repro)")
    raw, source = load_raw(params)
    # Today's data, not data/prepared.parquet (that is the last training's). No minimum
    # history: a series too new to train on is reported as new, not refused.
    prepared, _ = prepare_table(raw, source, 1, params.data.date_format)
    deployed, evaluation = (drift.Model(*bundle.read(MODELS / n)) for n in ("serving", "eval"))
    baseline = json.loads(METRICS.read_text())["holdout"]
    report, run = drift.assess(prepared, deployed, evaluation, baseline, params)
    with atomic_path(DRIFT_HTML) as tmp:
        run.save_html(str(tmp))
    write_json(DRIFT_REPORT, report)
    print(drift.summary(report))
    return DRIFT_EXIT if args.exit_code and report["drift_detected"] else None


def cmd_append(params: Params, args: argparse.Namespace) -> None:
    """Append the next N days of synthetic sales: an edit of params.yaml (see feed.py)."""
    from demandcast import feed

    path = Path(args.params)
    injection = feed.Injection(
        level_shift=args.level_shift,
        weekly_pattern=args.weekly_pattern,
        stores=args.stores,
        new_items=args.new_items,
    )
    text, appended = feed.append_days(path.read_text(), args.days, injection)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        shutil.copymode(path, tmp)
    log.info("append: %d days, %s -> %s", args.days, appended.describe(), path)
    log.info("append: next `dvc repro -s drift` judges drift, `dvc repro` retrains")


def _append_arguments(cmd: argparse.ArgumentParser) -> None:
    from demandcast.feed import float_list, int_list

    cmd.add_argument("--days", type=int, required=True, help="how many days to append")
    cmd.add_argument(
        "--level-shift", type=float, default=0.0, help="demand change, e.g. 0.3 for +30%%"
    )
    cmd.add_argument(
        "--weekly-pattern", type=float_list, help="new weekday profile: 7 numbers, Monday first"
    )
    cmd.add_argument("--stores", type=int_list, help="apply the change to these stores: 1,2")
    cmd.add_argument(
        "--new-items", type=int, default=0, help="items that start selling in every store"
    )


GATE_REPORT = Path("reports/gate.json")
GATE_SUMMARY = Path("reports/gate.md")
GATE_REFUSED = 4  # `gate` exit code when the candidate is refused (2: bad input, 1: a bug)


def cmd_gate(params: Params, args: argparse.Namespace) -> int | None:
    """Promotion gate: the candidate recipe vs the production model on rows neither trained on
    -> reports/gate.json and reports/gate.md; exit 4 (GATE_REFUSED) when it is refused."""
    import json

    from demandcast import bundle, gate

    production = Path(args.production)
    for path in (production, MODELS / "serving", MODELS / "eval", PREPARED, FEATURES, METRICS):
        if not path.exists():
            raise DataError(
                f"{path}: not found; run the pipeline (dvc repro) and fetch the production "
                "model first (scripts/deployed_model.sh)"
            )
    try:
        production_bundle = bundle.read(production)
    except (OSError, ValueError) as exc:
        raise DataError(f"{production}: not a readable model bundle: {exc}") from None
    verdict = gate.judge(
        pd.read_parquet(PREPARED),
        pd.read_parquet(FEATURES),
        production_bundle,
        bundle.read_meta(MODELS / "serving"),
        params,
        production_metrics=(
            json.loads(Path(args.production_metrics).read_text())
            if args.production_metrics
            else None
        ),
        candidate_metrics=json.loads(METRICS.read_text()),
        candidate_eval=bundle.read_meta(MODELS / "eval"),
    )
    write_json(GATE_REPORT, verdict.as_dict())
    with atomic_path(GATE_SUMMARY) as tmp:
        tmp.write_text(verdict.markdown())
    print(verdict.markdown(), end="")
    return None if verdict.passed else GATE_REFUSED


def _gate_arguments(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--production", required=True, help="the production model bundle (its models/serving)"
    )
    cmd.add_argument(
        "--production-metrics",
        help="production's reports/metrics.json; used when there are no sales after its cutoff",
    )


STAGES: dict[str, tuple[Callable[[Params, argparse.Namespace], int | None], str]] = {
    "prepare": (cmd_prepare, "load, validate and gap-fill the raw sales -> data/prepared.parquet"),
    "features": (cmd_features, "calendar, lag and rolling features -> data/features.parquet"),
    "train": (cmd_train, "fit the holdout and the serving XGBoost models -> models/"),
    "evaluate": (cmd_evaluate, "holdout metrics, baselines, oracle -> reports/metrics.json"),
    "report": (cmd_report, "print the last evaluation table (reports/metrics.json)"),
    "generate": (cmd_generate, "write synthetic sales to a CSV/Parquet file"),
    "drift": (cmd_drift, "drift of the deployed model on new sales -> reports/drift.json"),
    "append": (cmd_append, "append the next N days of synthetic sales (edits params.yaml)"),
    "gate": (cmd_gate, "promotion gate: candidate vs production model -> reports/gate.json"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="demandcast", description=__doc__.splitlines()[0])
    top.add_argument(
        "--params", default="params.yaml", help="parameters file (default: %(default)s)"
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in STAGES.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == "generate":
            cmd.add_argument("--out", required=True, help="output .csv or .parquet")
            for opt in ("seed", "stores", "items", "days"):
                cmd.add_argument(f"--{opt}", type=int, help=f"override data.synthetic.{opt}")
            cmd.add_argument(
                "--with-true-mean", action="store_true", help="also write the true_mean column"
            )
        if name == "drift":
            cmd.add_argument(
                "--exit-code",
                action="store_true",
                help=f"exit {DRIFT_EXIT} when drift is detected (default: 0 either way)",
            )
        if name == "append":
            _append_arguments(cmd)
        if name == "gate":
            _gate_arguments(cmd)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    try:
        params = load_params(args.params)
        code = STAGES[args.command][0](params, args) or 0
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    if elapsed > 1:
        log.info("%s: done in %.1f s", args.command, elapsed)
    return code
