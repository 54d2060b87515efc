"""Drift check on the default data: no false alarm on clean days, the flag on a level shift.

For each seed, in a scratch copy of the repository (git + DVC initialised there, so the working
copy is untouched): the default params.yaml with that seed, `dvc repro` (trains the deployed
model), then for each scenario - N clean days, N days of +30% demand from the first new day -
params.yaml is restored, `python -m demandcast append` adds the days, and the drift stage runs
twice, timed: its command alone (`python -m demandcast drift`) and as the monitor runs it
(`dvc repro --single-item drift`). The table is read from reports/drift.json.

    python benchmarks/drift_check.py                     # seeds 1..5, 28 days, +30%
    python benchmarks/drift_check.py --seeds 1 2 --days 7 --shift 0.3 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def sh(cmd: list[str], cwd: Path) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def scratch_repo(scratch: Path, seed: int) -> Path:
    repo = scratch / f"seed{seed}"
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo)
    (repo / "data" / "raw").mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"]["synthetic"]["seed"] = seed
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
    ):
        sh(cmd, repo)
    return repo


def scenario(repo: Path, trained: str, days: int, shift: float) -> dict:
    (repo / "params.yaml").write_text(trained)
    append = [sys.executable, "-m", "demandcast", "append", "--days", str(days)]
    sh(append + (["--level-shift", str(shift)] if shift else []), repo)
    stage = sh([sys.executable, "-m", "demandcast", "drift"], repo)
    monitor = sh(["dvc", "repro", "--single-item", "drift"], repo)
    report = json.loads((repo / "reports" / "drift.json").read_text())
    return {"report": report, "stage_s": stage, "monitor_s": monitor}


def row(seed: int, name: str, result: dict) -> str:
    r = result["report"]
    data, concept = r["data_drift"], r["concept_drift"]
    flag = "FLAG" if r["drift_detected"] else "-"
    why = ",".join(reason.split(":")[0] for reason in r["reasons"]) or "-"
    drifted = ",".join(data["drifted_columns"]) or "-"
    return (
        f"| {seed} | {name} | {flag} | {why} | {data['share_drifted']:.2f} | {drifted} | "
        f"{concept['smape']:.2f} | {concept['baseline_smape']:.2f} | "
        f"{concept['relative_change']:+.1%} | {concept.get('oracle_smape', float('nan')):.2f} | "
        f"{result['stage_s']:.1f} | {result['monitor_s']:.1f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--shift", type=float, default=0.3)
    parser.add_argument("--keep", action="store_true", help="keep the scratch repositories")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="demandcast-drift-"))
    print(f"{os.cpu_count()} cores; {args.days} new days; shift {args.shift:+.0%}", flush=True)
    print(
        "| seed | new days | flag | reasons | share drifted | drifted columns | SMAPE | "
        "eval SMAPE | change | oracle SMAPE | drift cmd s | dvc repro -s drift s |"
    )
    print("|" + "---|" * 12, flush=True)
    failures = []
    for seed in args.seeds:
        repo = scratch_repo(scratch, seed)
        sh(["dvc", "repro"], repo)
        trained = (repo / "params.yaml").read_text()
        for name, shift in (("clean", 0.0), (f"{args.shift:+.0%}", args.shift)):
            result = scenario(repo, trained, args.days, shift)
            print(row(seed, name, result), flush=True)
            if result["report"]["drift_detected"] != bool(shift):
                failures.append(f"seed {seed} {name}")
        if not args.keep:
            shutil.rmtree(repo)
    print("all as expected" if not failures else f"UNEXPECTED: {', '.join(failures)}")
    if args.keep:
        print(f"scratch repositories kept in {scratch}")
    else:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
