"""Pipeline benchmark: `dvc repro` from a clean cache, a no-op `dvc repro`, peak memory, accuracy.

Runs in a scratch copy of the repository (git + DVC initialised there), so the working copy is
untouched. Peak memory is the largest resident set of any single process of the run (the stage
processes run one at a time), from getrusage(RUSAGE_CHILDREN).

    python benchmarks/pipeline.py              # the default data: 10 stores x 50 items x 5 years
    python benchmarks/pipeline.py --scale 10   # 50 stores x 100 items: 5,000 series, 9.1 M rows
    python benchmarks/pipeline.py --weekly     # the same sales as one row per series and week,
                                               # forecast 13 weeks ahead
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCALES = {1: (10, 50), 10: (50, 100)}  # stores x items


def sh(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, choices=sorted(SCALES), default=1)
    parser.add_argument(
        "--weekly", action="store_true", help="weekly synthetic data, horizon 13 weeks"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch repository")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="demandcast-bench-"))
    repo = scratch / "repo"
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo)
    (repo / "data" / "raw").mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["synthetic"]["stores"], params["data"]["synthetic"]["items"] = SCALES[args.scale]
    if args.weekly:
        params["data"]["synthetic"]["frequency"] = "weekly"
        params["horizon"] = 13
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
    ):
        sh(cmd, repo)

    full = sh(["dvc", "repro"], repo)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    noop = min(sh(["dvc", "repro"], repo) for _ in range(3))
    metrics = json.loads((repo / "reports" / "metrics.json").read_text())
    prepared = json.loads((repo / "reports" / "prepare.json").read_text())
    ratio = metrics["holdout"]["smape"] / metrics["oracle"]["smape"]
    print(
        f"data: {prepared['series']} series x {prepared['rows_out'] // prepared['series']} "
        f"{'weeks' if prepared['frequency'] == 'weekly' else 'days'} "
        f"= {prepared['rows_out']:,} rows; {os.cpu_count()} cores"
    )
    print(f"dvc repro, clean cache: {full:.1f} s")
    print(f"dvc repro, nothing changed (best of 3): {noop:.2f} s")
    print(f"peak memory (largest process): {peak_mb:,.0f} MB")
    print(
        f"holdout SMAPE {metrics['holdout']['smape']:.3f} | oracle {metrics['oracle']['smape']:.3f}"
        f" | ratio {ratio:.4f} | seasonal naive "
        f"{metrics['baselines']['seasonal_naive']['smape']:.3f}"
    )
    if args.keep:
        print(f"scratch repository kept: {repo}")
    else:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
