"""train: fit the holdout and the serving XGBoost models -> models/."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from demandcast import engine
from demandcast.config import Params
from demandcast.files import aside_prefix, leftovers, private_prefix, remove_leftovers, replace_dir
from demandcast.model import train_bundles
from demandcast.stages.common import FEATURES, MODELS, parts
from demandcast.stages.common import main as stage_main

log = logging.getLogger("demandcast")
STAGING = f".{MODELS.name}."  # + pid + random: the folder the next models/ is built in


def clean_up(models: Path = MODELS) -> None:
    """Undo what an interrupted run left beside ``models``: if it was killed between moving
    the old ``models`` aside and moving the new one in, put the old one back; then remove the
    staging and set-aside folders of runs that are no longer running."""
    parent = models.parent
    aside = leftovers(parent, aside_prefix(models))
    if aside and not models.exists() and not models.is_symlink():
        newest = max(aside, key=lambda p: p.stat().st_mtime)
        os.rename(newest, models)
        log.info("train: restored %s from %s, left by an interrupted run", models, newest)
    remove_leftovers(parent, aside_prefix(models))
    remove_leftovers(parent, STAGING)


def run(params: Params, args: argparse.Namespace) -> None:
    """Build both bundles in a staging folder beside ``models/`` and swap it in whole only when
    both are complete: a failed or killed run leaves ``models/`` as it was."""
    MODELS.parent.mkdir(parents=True, exist_ok=True)
    clean_up(MODELS)
    parts(FEATURES)
    staging = Path(tempfile.mkdtemp(prefix=private_prefix(STAGING), dir=MODELS.parent))
    try:
        with engine.start(params.engine) as eng:
            if eng.client is None:  # today's path: the whole table in this process
                train_bundles(pd.read_parquet(FEATURES), params, staging)
            else:  # one dask partition per part file, read by the workers
                import dask.dataframe as dd

                features = dd.read_parquet(str(FEATURES.resolve()))
                log.info("train: %d partitions on the dask cluster", features.npartitions)
                train_bundles(features, params, staging, eng.client)
        staging.chmod(0o755)
        replace_dir(staging, MODELS)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("train", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
