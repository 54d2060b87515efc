"""The edge every stage shares: ``--params``, logging, errors -> exit 2, timing, file outputs.

Every stage depends on this module (an edit here re-runs the whole pipeline): keep it small.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from demandcast.config import Params, load_params
from demandcast.errors import ConfigError, DataError
from demandcast.files import (
    aside_prefix,
    atomic_path,
    private_prefix,
    remove_leftovers,
    replace_dir,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("demandcast")

# The pipeline's outputs (dvc.yaml), relative to the repository root.
PREPARED = Path("data/prepared.parquet")
PREPARE_REPORT = Path("reports/prepare.json")
PLAN = Path("data/plan.parquet")
FEATURES = Path("data/features.parquet")
MODELS = Path("models")
METRICS = Path("reports/metrics.json")
PLOTS = Path("reports/plots")
DRIFT_REPORT = Path("reports/drift.json")
DRIFT_HTML = Path("reports/drift.html")

Command = Callable[[Params, argparse.Namespace], int | None]


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` to ``path`` atomically: the file appears whole or not at all."""
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


# The prepared and feature tables are Parquet datasets: a folder of part files, one per
# partition of whole series, in key order (one part on the local engine). pandas reads the
# folder as one table (pd.read_parquet(folder)); dask reads one partition per part. Paths given
# to the engine's tasks are absolute: a cluster's workers have their own working directory.
def part_file(folder: Path | str, index: int) -> Path:
    return Path(folder) / f"part-{index:05d}.parquet"


def parts(folder: Path) -> list[Path]:
    """The part files of a dataset, in order (a single Parquet file is one part)."""
    if folder.is_file():
        return [folder.resolve()]
    found = sorted(folder.resolve().glob("part-*.parquet")) if folder.is_dir() else []
    if not found:
        raise DataError(f"{folder}: not found or empty; run the stage that writes it (dvc repro)")
    return found


@contextmanager
def dataset(path: Path) -> Iterator[Path]:
    """A staging folder beside ``path`` for the part files (written by the engine's tasks),
    swapped in whole when the block ends without an error: a failed or killed run leaves
    ``path`` as it was. Leftovers of killed runs are removed."""
    made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path.parent, f".{path.name}.", ".tmp")
    remove_leftovers(path.parent, aside_prefix(path))
    staging = Path(
        tempfile.mkdtemp(prefix=private_prefix(f".{path.name}."), suffix=".tmp", dir=path.parent)
    ).resolve()  # absolute: the engine's workers may run elsewhere (the same files, shared)
    try:
        yield staging
        staging.chmod(0o755)
        replace_dir(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in made:  # a failed run leaves no folder it made (empty ones only)
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()


def params_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", default="params.yaml", help="parameters file (default: %(default)s)"
    )


def run(name: str, command: Command, args: argparse.Namespace) -> int:
    """Run ``command`` with the params of ``args.params``: a user's error -> message, exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    try:
        code = command(load_params(args.params), args) or 0
    except (ConfigError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    if elapsed > 1:
        log.info("%s: done in %.1f s", name, elapsed)
    return code


def main(
    name: str,
    command: Command,
    description: str,
    argv: Sequence[str] | None = None,
    arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """A stage's ``main``: parse ``argv`` (``--params`` and the stage's own ``arguments``), run."""
    parser = argparse.ArgumentParser(
        prog=f"python -m demandcast.stages.{name}", description=description
    )
    params_option(parser)
    if arguments is not None:
        arguments(parser)
    return run(name, command, parser.parse_args(argv))
