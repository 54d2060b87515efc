"""One entry point: ``python -m demandcast <command>`` (or ``demandcast <command>``).

The DVC stages (prepare, features, train, evaluate, drift) live in ``demandcast.stages``, one
thin module each, which dvc.yaml runs as ``python -m demandcast.stages.<name>``; here they are
subcommands that hand their arguments to that module, imported only when it runs. The other
commands (report, generate, append, gate) live here. This is the I/O edge: files are read and
written here and in ``stages``, and data errors become a message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
from pathlib import Path

import pandas as pd

from demandcast.config import Params
from demandcast.errors import DataError
from demandcast.files import atomic_path, write_json
from demandcast.stages.common import (
    FEATURES,
    METRICS,
    MODELS,
    PREPARED,
    Command,
    params_option,
    run,
)

log = logging.getLogger("demandcast")

# The DVC stages: module demandcast.stages.<name> runs each (see run_stage).
STAGES: dict[str, str] = {
    "prepare": "load, validate and gap-fill the raw sales -> data/prepared.parquet",
    "features": "calendar, lag and rolling features -> data/features.parquet",
    "train": "fit the holdout and the serving XGBoost models -> models/",
    "evaluate": "holdout metrics, baselines, oracle -> reports/metrics.json",
    "drift": "drift of the deployed model on new sales -> reports/drift.json",
}


def run_stage(name: str, argv: list[str]) -> int:
    """Run the stage module ``demandcast.stages.<name>``, imported only now, on ``argv``."""
    stage = importlib.import_module(f"demandcast.stages.{name}")
    return stage.main(argv)


def cmd_report(params: Params, args: argparse.Namespace) -> None:
    """Print the last evaluation (reports/metrics.json) as a table."""
    from demandcast.evaluate import summary_table
    from demandcast.metrics import Metrics

    print(summary_table(Metrics.read(METRICS)))


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
            ("frequency", args.frequency),
        )
        if v is not None
    }
    cfg = type(params.data.synthetic).model_validate(
        {**params.data.synthetic.model_dump(), **overrides}
    )
    frame = synthetic.generate(cfg, with_true_mean=args.with_true_mean)
    _write_table(frame, Path(args.out))
    log.info("generate: %d rows, %d series -> %s", len(frame), cfg.stores * cfg.items, args.out)
    if args.plan:
        plan = synthetic.plan(cfg, params.horizon)
        _write_table(plan, Path(args.plan))
        log.info(
            "generate: the plan of the %d periods after the data -> %s", params.horizon, args.plan
        )


def _write_table(frame: pd.DataFrame, out: Path) -> None:
    with atomic_path(out) as tmp:
        if out.suffix == ".csv":
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%d")
        else:
            frame.to_parquet(tmp, index=False)


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
    """Promotion gate: the candidate recipe vs the production model on rows neither trained on,
    and the candidate's holdout against the seasonal-naive baseline -> reports/gate.json and
    reports/gate.md; exit 4 (GATE_REFUSED) when it is refused. ``--bootstrap`` (nothing deployed
    yet) judges a first model on the baseline rule alone."""
    from demandcast import bundle, gate
    from demandcast.metrics import Metrics

    production = None if args.production is None else Path(args.production)
    needed: tuple[Path, ...] = (MODELS / "serving", METRICS)
    if production is not None:
        needed = (production, MODELS / "serving", MODELS / "eval", PREPARED, FEATURES, METRICS)
    for path in needed:
        if not path.exists():
            fetch = " and fetch the production model (scripts/deployed_model.sh)"
            raise DataError(
                f"{path}: not found; run the pipeline (dvc repro)"
                + ("" if production is None else fetch)
                + " first"
            )
    if production is None:
        verdict = gate.judge_bootstrap(
            Metrics.read(METRICS), bundle.read_meta(MODELS / "serving"), params.gate.tolerance
        )
    else:
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
                Metrics.read(args.production_metrics) if args.production_metrics else None
            ),
            candidate_metrics=Metrics.read(METRICS),
            candidate_eval=bundle.read_meta(MODELS / "eval"),
        )
    write_json(GATE_REPORT, verdict.as_dict())
    with atomic_path(GATE_SUMMARY) as tmp:
        tmp.write_text(verdict.markdown())
    print(verdict.markdown(), end="")
    return None if verdict.passed else GATE_REFUSED


def _gate_arguments(cmd: argparse.ArgumentParser) -> None:
    against = cmd.add_mutually_exclusive_group(required=True)
    against.add_argument("--production", help="the production model bundle (its models/serving)")
    against.add_argument(
        "--bootstrap",
        action="store_true",
        help="nothing is deployed yet: promote this first model only if it beats the "
        "seasonal-naive baseline on its holdout (without this, no comparison = refused)",
    )
    cmd.add_argument(
        "--production-metrics",
        help="production's reports/metrics.json; used when there are no sales after its cutoff",
    )


COMMANDS: dict[str, tuple[Command, str]] = {
    "report": (cmd_report, "print the last evaluation table (reports/metrics.json)"),
    "generate": (cmd_generate, "write synthetic sales to a CSV/Parquet file"),
    "append": (cmd_append, "append the next N days of synthetic sales (edits params.yaml)"),
    "gate": (cmd_gate, "promotion gate: candidate vs production model -> reports/gate.json"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="demandcast", description=__doc__.splitlines()[0])
    params_option(top)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in STAGES.items():
        # The stage's own parser reads its options (and answers --help): they pass through.
        sub.add_parser(name, help=help_text, description=help_text, add_help=False)
    for name, (_, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        if name == "generate":
            cmd.add_argument("--out", required=True, help="output .csv or .parquet")
            for opt in ("seed", "stores", "items", "days"):
                cmd.add_argument(f"--{opt}", type=int, help=f"override data.synthetic.{opt}")
            cmd.add_argument(
                "--frequency",
                choices=("daily", "weekly"),
                help="override data.synthetic.frequency: one row per series and day or week",
            )
            cmd.add_argument(
                "--with-true-mean", action="store_true", help="also write the true_mean column"
            )
            cmd.add_argument(
                "--plan",
                help="also write the plan (open, promo, holiday) of the horizon after the data",
            )
        if name == "append":
            _append_arguments(cmd)
        if name == "gate":
            _gate_arguments(cmd)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    args, rest = top.parse_known_args(argv)
    if args.command in STAGES:
        return run_stage(args.command, ["--params", args.params, *rest])
    if rest:
        top.error(f"unrecognized arguments: {' '.join(rest)}")
    return run(args.command, COMMANDS[args.command][0], args)
