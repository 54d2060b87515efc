"""train: fit the holdout and the serving XGBoost models -> models/."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from demandcast.config import Params
from demandcast.model import train_bundles
from demandcast.stages.common import FEATURES, MODELS
from demandcast.stages.common import main as stage_main


def run(params: Params, args: argparse.Namespace) -> None:
    features = pd.read_parquet(FEATURES)
    MODELS.parent.mkdir(parents=True, exist_ok=True)
    # Build the bundles beside models/ and swap the directory in whole.
    staging = Path(tempfile.mkdtemp(prefix=".models.", dir=MODELS.parent.resolve()))
    try:
        train_bundles(features, params, staging)
        staging.chmod(0o755)
        shutil.rmtree(MODELS, ignore_errors=True)
        staging.rename(MODELS)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    return stage_main("train", run, __doc__, argv)


if __name__ == "__main__":
    raise SystemExit(main())
