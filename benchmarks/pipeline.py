"""Pipeline benchmark: `dvc repro` from a clean cache, a no-op `dvc repro`, peak memory, accuracy.

Runs in a scratch copy of the repository (git + DVC initialised there), so the working copy is
untouched; the stages run the scratch copy of ``src/`` (through ``PYTHONPATH``), not the working
tree, so edits made during a long run do not leak into it.

    python benchmarks/pipeline.py              # the default data: 10 stores x 50 items x 5 years
    python benchmarks/pipeline.py --scale 10   # 50 stores x 100 items: 5,000 series, 9.1 M rows
    python benchmarks/pipeline.py --weekly     # the same sales as one row per series and week,
                                               # forecast 13 weeks ahead
    python benchmarks/pipeline.py --scale 30 --engine dask --no-noop --json benchmarks/scale.json

Scales (stores x items x days): 1 = 10 x 50 x 1,826 (913 k rows), 3 = 30 x 50 x 1,826
(2.7 M), 10 = 50 x 100 x 1,826 (9.1 M), 30 = 100 x 300 x 1,941 (M5-sized: 30,000 series,
58 M rows). ``--engine`` sets ``engine.kind`` in the scratch params.yaml.

Peak memory: a thread samples the whole process tree of the running ``dvc repro`` every 0.25 s
(psutil) and keeps the largest resident set of any single process (with its pid and command)
and the largest sum over the tree at one instant (a sum of RSS: pages shared between processes,
e.g. forked workers, are counted once per process). getrusage(RUSAGE_CHILDREN) is reported too:
the largest RSS of any waited-for descendant, exact but blind to which process it was (and to
the stages of a killed run: init reaps them, not this process). A process above
``--max-rss-gb`` kills the whole run (``dvc repro`` runs in its own process group) and the run is
reported as failed instead of letting the machine swap or run out of memory.

``--json PATH`` appends one JSON record per run (one line each; ``benchmarks/scale.py`` reads
them). The stage timings come from each stage's ``<stage>: done in X s`` log line (in the log
of the run, ``repro.log`` in the scratch directory; stages under 1 s log none).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCALES = {  # stores, items, days
    1: (10, 50, 1826),
    3: (30, 50, 1826),
    10: (50, 100, 1826),
    30: (100, 300, 1941),
}
ENGINES = ("local", "dask")
STAGES = ("prepare", "features", "train", "evaluate", "drift")
SAMPLE_SECONDS = 0.25
DONE = re.compile(r"\b(\w+): done in ([0-9.]+) s\b")
MB = 1024 * 1024


def _env(repo: Path) -> dict[str, str]:
    """dvc from this venv; the stages import the scratch copy of the package, not the tree."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "PYTHONPATH": str(repo / "src")}


def sh(cmd: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=_env(cwd), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


@dataclass
class Run:
    """One monitored ``dvc repro``: its time, exit code and the memory seen in its tree."""

    seconds: float = 0.0
    returncode: int | None = None
    peak_rss: int = 0  # bytes, the largest single process
    peak_process: str = ""  # its command, e.g. "python -m demandcast.stages.train"
    peak_pid: int = 0
    peak_total: int = 0  # bytes, the largest sum over the tree at one instant
    killed: str | None = None  # why the run was killed (over the limit), None if it was not
    killed_at: float | None = None  # seconds after the start
    samples: int = 0
    _labels: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.killed is None and self.returncode == 0


def _label(proc: psutil.Process, labels: dict[int, str]) -> str:
    """A short name for a process of the tree: its command line, shortened (cached by pid)."""
    if proc.pid not in labels:
        try:
            cmd = proc.cmdline()
            words = [Path(cmd[0]).name, *cmd[1:]] if cmd else [proc.name()]
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            words = ["?"]
        text = " ".join(words)
        labels[proc.pid] = text if len(text) <= 90 else text[:87] + "..."
    return labels[proc.pid]


def _kill(root: psutil.Process, seen: list[psutil.Process]) -> None:
    """SIGKILL the process group of ``root`` and any process of its tree outside the group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(root.pid, signal.SIGKILL)
    for proc in seen:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            proc.kill()


def monitored(cmd: list[str], cwd: Path, log: Path, max_rss: float) -> Run:
    """Run ``cmd`` in its own process group, stdout + stderr to ``log``; sample the tree's RSS.

    Killed whole (SIGKILL to the group) as soon as one process is above ``max_rss`` bytes.
    """
    run = Run()
    started = time.perf_counter()
    with open(log, "a") as out:
        child = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=_env(cwd),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole
        )
        root = psutil.Process(child.pid)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                try:
                    tree = [root, *root.children(recursive=True)]
                except psutil.NoSuchProcess:
                    tree = []
                total = 0
                for proc in tree:
                    try:
                        rss = proc.memory_info().rss
                    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                        continue
                    total += rss
                    if rss > run.peak_rss:
                        run.peak_rss, run.peak_pid = rss, proc.pid
                        run.peak_process = _label(proc, run._labels)
                    if rss > max_rss and run.killed is None:
                        run.killed_at = time.perf_counter() - started
                        run.killed = (
                            f"over {max_rss / 1024**3:g} GB: {_label(proc, run._labels)} "
                            f"(pid {proc.pid}) at {rss / MB:,.0f} MB, killed at "
                            f"{run.killed_at:.1f} s"
                        )
                        _kill(root, tree)
                run.peak_total = max(run.peak_total, total)
                run.samples += 1
                done.wait(SAMPLE_SECONDS)

        thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
        thread.start()
        try:
            run.returncode = child.wait()
        except BaseException:  # Ctrl-C: take the whole run down with us
            _kill(root, [])
            child.wait()
            raise
        finally:
            done.set()
            thread.join()
    run.seconds = time.perf_counter() - started
    return run


def stage_seconds(log: Path) -> dict[str, float]:
    """``{stage: seconds}`` from the stages' ``<stage>: done in X s`` lines, pipeline order."""
    found = {m[1]: float(m[2]) for m in DONE.finditer(log.read_text(errors="replace"))}
    order = [s for s in STAGES if s in found] + sorted(set(found) - set(STAGES))
    return {s: found[s] for s in order}


def tail(log: Path, lines: int = 15) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, choices=sorted(SCALES), default=1)
    parser.add_argument(
        "--engine", choices=ENGINES, default="local", help="engine.kind (default: %(default)s)"
    )
    parser.add_argument(
        "--weekly", action="store_true", help="weekly synthetic data, horizon 13 weeks"
    )
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=20.0,
        help="kill the run when one process is above this (default: %(default)g GB)",
    )
    parser.add_argument("--no-noop", action="store_true", help="skip the no-op dvc repro")
    parser.add_argument("--json", type=Path, help="append the run's record (one JSON line) here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch repository")
    args = parser.parse_args()

    stores, items, days = SCALES[args.scale]
    scratch = Path(tempfile.mkdtemp(prefix="demandcast-bench-"))
    repo = scratch / "repo"
    shutil.copytree(ROOT / "src", repo / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", repo)
    (repo / "data" / "raw").mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    synthetic = params["data"]["synthetic"]
    synthetic["stores"], synthetic["items"], synthetic["days"] = stores, items, days
    if args.weekly:
        synthetic["frequency"] = "weekly"
        params["horizon"] = 13
    params.setdefault("engine", {})["kind"] = args.engine
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "config", "core.analytics", "false"],
    ):
        sh(cmd, repo)

    max_rss = args.max_rss_gb * 1024**3
    log = scratch / "repro.log"
    full = monitored(["dvc", "repro"], repo, log, max_rss)
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    stages = stage_seconds(log)
    record: dict[str, Any] = {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "scale": args.scale,
        "engine": args.engine,
        "weekly": args.weekly,
        "stores": stores,
        "items": items,
        "days": days,
        "rows": stores * items * (days // 7 if args.weekly else days),  # planned; actual below
        "series": stores * items,
        "cores": os.cpu_count(),
        "seconds": round(full.seconds, 1),
        "noop_seconds": None,
        "peak_rss_mb": round(full.peak_rss / MB),
        "peak_rss_process": full.peak_process,
        "peak_rss_pid": full.peak_pid,
        "peak_rss_total_mb": round(full.peak_total / MB),
        "peak_rss_children_mb": round(children_mb),
        "stage_seconds": stages,
        "smape": None,
        "oracle_smape": None,
        "ratio": None,
        "naive_smape": None,
        "status": "ok",
        "reason": None,
        "max_rss_gb": args.max_rss_gb,
    }
    cores = f"{os.cpu_count()} cores"
    if full.ok:
        noop = None
        if not args.no_noop:
            noop_log = scratch / "noop.log"
            runs = [monitored(["dvc", "repro"], repo, noop_log, max_rss) for _ in range(3)]
            bad = next((r for r in runs if not r.ok), None)
            if bad is not None:
                record["status"] = "failed"
                record["reason"] = bad.killed or f"no-op dvc repro exited {bad.returncode}"
            else:
                noop = min(r.seconds for r in runs)
                record["noop_seconds"] = round(noop, 2)
        metrics = json.loads((repo / "reports" / "metrics.json").read_text())
        prepared = json.loads((repo / "reports" / "prepare.json").read_text())
        record.update(
            rows=prepared["rows_out"],
            series=prepared["series"],
            smape=metrics["holdout"]["smape"],
            oracle_smape=metrics["oracle"]["smape"],
            ratio=round(metrics["holdout"]["smape"] / metrics["oracle"]["smape"], 4),
            naive_smape=metrics["baselines"]["seasonal_naive"]["smape"],
        )
        print(
            f"data: {prepared['series']} series x {prepared['rows_out'] // prepared['series']} "
            f"{'weeks' if prepared['frequency'] == 'weekly' else 'days'} "
            f"= {prepared['rows_out']:,} rows; {cores}; engine {args.engine}"
        )
        print(f"dvc repro, clean cache: {full.seconds:.1f} s")
        if noop is not None:
            print(f"dvc repro, nothing changed (best of 3): {noop:.2f} s")
        elif args.no_noop:
            print("dvc repro, nothing changed: skipped (--no-noop)")
    else:
        record["status"] = "failed"
        record["reason"] = full.killed or f"dvc repro exited {full.returncode}"
        print(
            f"data: {stores * items} series x {days} days = {record['rows']:,} rows (planned); "
            f"{cores}; engine {args.engine}"
        )
        print(f"dvc repro, clean cache: FAILED after {full.seconds:.1f} s: {record['reason']}")
        print(f"last lines of {log.name}:\n{tail(log)}")
    if stages:
        print("stages: " + ", ".join(f"{s} {t:.1f} s" for s, t in stages.items()))
    print(
        f"peak memory, largest process: {full.peak_rss / MB:,.0f} MB "
        f"({full.peak_process}, pid {full.peak_pid})"
    )
    print(f"peak memory, all processes: {full.peak_total / MB:,.0f} MB (sum of RSS)")
    print(f"peak memory (largest process, getrusage): {children_mb:,.0f} MB")
    if record["ratio"] is not None:
        print(
            f"holdout SMAPE {record['smape']:.3f} | oracle {record['oracle_smape']:.3f} | "
            f"ratio {record['smape'] / record['oracle_smape']:.4f} | seasonal naive "
            f"{record['naive_smape']:.3f}"
        )
    if record["status"] != "ok" and full.ok:
        print(f"FAILED: {record['reason']}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "a") as out:
            out.write(json.dumps(record) + "\n")
        print(f"record appended to {args.json}")
    if args.keep:
        print(f"scratch repository kept: {repo} (log: {log})")
    else:
        shutil.rmtree(scratch)
    if record["status"] != "ok":
        sys.exit(1)


if __name__ == "__main__":
    main()
