"""Scaling benchmark: the pipeline's cost curve, local vs dask, from 0.9 M to 58 M rows.

Runs ``benchmarks/pipeline.py`` once per scale and engine, each in its own process, appending
its record (one JSON line) to the results file, then rewrites the report from ALL the records
of that file (the latest per scale and engine), so the runs can be made one at a time, on
different days:

    python benchmarks/scale.py                              # scales 1 3 10 30 x local, dask
    python benchmarks/scale.py --scales 30 --engines dask --no-noop
    python benchmarks/scale.py --report                     # only rewrite the report

Writes ``benchmarks/SCALE.md`` (a table, dask / local ratios and two Mermaid ``xychart-beta``
charts: time and peak memory of the largest process vs rows) and the charts alone to
``benchmarks/scale_chart.md`` (beside ``--out``), for the README. Mermaid's line charts have no
legend: the first line is local, the second dask (said under each chart). A failed run (e.g.
killed over ``--max-rss-gb``) has no point: it is plotted as 0 and named under the chart.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline import SCALES as SIZES  # benchmarks/pipeline.py: scale -> stores, items, days

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "benchmarks" / "pipeline.py"
SCALES = tuple(sorted(SIZES))
ENGINES = ("local", "dask")
STAGES = ("prepare", "features", "train", "evaluate", "drift")

Record = dict[str, Any]


def load(results: Path) -> list[Record]:
    """The records of ``results`` (one JSON object per line), in the order they were run."""
    if not results.exists():
        return []
    lines = results.read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def latest(records: list[Record]) -> dict[tuple[int, str], Record]:
    """The last record per (scale, engine), daily data only (``--weekly`` runs are left out)."""
    chosen: dict[tuple[int, str], Record] = {}
    for record in records:
        if not record.get("weekly"):
            chosen[(record["scale"], record["engine"])] = record
    return dict(sorted(chosen.items(), key=lambda kv: (kv[0][0], ENGINES.index(kv[0][1]))))


def ok(record: Record | None) -> bool:
    return record is not None and record.get("status") == "ok"


def millions(rows: int) -> str:
    return f"{rows / 1e6:.1f}" if rows < 9.95e6 else f"{rows / 1e6:.0f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:,.0f} s" + (f" ({seconds / 60:.0f} min)" if seconds >= 600 else "")


def megabytes(mb: float | None) -> str:
    if mb is None:
        return "-"
    return f"{mb:,.0f} MB" if mb < 10240 else f"{mb / 1024:.1f} GB"


def ceiling(value: float) -> float:
    """A round axis maximum above ``value``: 1, 2, 2.5 or 5 x 10^k."""
    if value <= 0:
        return 1
    top = value * 1.1
    power = 10 ** math.floor(math.log10(top))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= top)


def number(value: float) -> str:
    return f"{value:g}"


def chart(
    title: str,
    y_axis: str,
    by_scale: dict[int, dict[str, Record]],
    rows: dict[int, int],
    value: Callable[[Record], float],
) -> tuple[str, list[str]]:
    """A Mermaid xychart-beta block (one line per engine that has a record) and its notes."""
    scales = sorted(rows)
    engines = [e for e in ENGINES if any(e in runs for runs in by_scale.values())]
    lines, notes, top = [], [], 0.0
    for engine in engines:
        points = []
        for scale in scales:
            record = by_scale[scale].get(engine)
            if ok(record):
                points.append(value(record))
            else:
                points.append(0)
                what = f"failed ({record.get('reason')})" if record is not None else "not run yet"
                notes.append(f"{engine} at {millions(rows[scale])} M rows: {what}; plotted as 0.")
        top = max(top, *points)
        lines.append(f"  line [{', '.join(number(p) for p in points)}]")
    if engines:
        names = ", ".join(f"{n} = {e}" for n, e in zip(("first", "second"), engines, strict=False))
        notes.insert(0, f"Lines (Mermaid draws no legend): {names}.")
    for engine in ENGINES:
        if engine not in engines:
            notes.append(f"No {engine} run yet: no {engine} line.")
    categories = ", ".join(f'"{millions(rows[s])}"' for s in scales)  # quoted: text, not numbers
    block = "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'  title "{title}"',
            f'  x-axis "rows (M)" [{categories}]',
            f'  y-axis "{y_axis}" 0 --> {number(ceiling(top))}',
            *lines,
            "```",
        ]
    )
    return block, notes


def ratios(by_scale: dict[int, dict[str, Record]]) -> list[tuple[int, float, float]]:
    """(scale, time dask / local, peak RSS of the largest process dask / local), both ok."""
    out = []
    for scale, runs in by_scale.items():
        local, dask = runs.get("local"), runs.get("dask")
        if ok(local) and ok(dask):
            assert local is not None and dask is not None
            out.append(
                (
                    scale,
                    dask["seconds"] / local["seconds"],
                    dask["peak_rss_mb"] / max(local["peak_rss_mb"], 1),
                )
            )
    return out


def report(results: Path, out: Path, chart_out: Path) -> None:
    records = load(results)
    chosen = latest(records)
    by_scale: dict[int, dict[str, Record]] = {}
    for (scale, engine), record in chosen.items():
        by_scale.setdefault(scale, {})[engine] = record
    # the x value of a scale: the rows of a run that finished, else the planned rows
    rows = {scale: max(runs.values(), key=ok)["rows"] for scale, runs in sorted(by_scale.items())}
    cores = sorted({r.get("cores") for r in chosen.values() if r.get("cores")})

    md = [
        "# Scaling: the pipeline from 0.9 M to 58 M rows, local vs dask",
        "",
        f"Written by `python benchmarks/scale.py --report` from `{results.name}` "
        f"({len(records)} record{'s' * (len(records) != 1)}; the latest per scale and engine "
        "is shown). Do not edit: "
        "run `python benchmarks/scale.py --scales S --engines E` to add a run.",
        "",
        "Each run is `benchmarks/pipeline.py --scale S --engine E`: a clean `dvc repro` of the "
        "synthetic data in a scratch repository, on "
        + (", ".join(f"{c} cores" for c in cores) or "this machine")
        + ". Scales (stores x items x days): 1 = 10 x 50 x 1,826; 3 = 30 x 50 x 1,826; "
        "10 = 50 x 100 x 1,826; 30 = 100 x 300 x 1,941 (M5-sized). Peak memory is sampled "
        "every 0.25 s over the whole process tree of `dvc repro`: the largest single process, "
        "and the largest sum of RSS over all processes at one instant (shared pages counted "
        "once per process). A run is killed when one process goes above `--max-rss-gb`.",
        "",
        "| scale | rows | series | engine | `dvc repro` | no-op | peak RSS, largest process "
        "| peak RSS, all processes | SMAPE / oracle | status | run |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for (scale, engine), r in chosen.items():
        good = ok(r)
        noop = r.get("noop_seconds")
        cells = [
            str(scale),
            f"{r['rows']:,}" + ("" if good else " (planned)"),
            f"{r['series']:,}",
            engine,
            duration(r.get("seconds")),
            "-" if noop is None else f"{noop:.2f} s",
            megabytes(r.get("peak_rss_mb")),
            megabytes(r.get("peak_rss_total_mb")),
            f"{r['ratio']:.4f}" if good else "-",
            "ok" if good else f"**failed**: {r.get('reason')}",
            str(r.get("date", ""))[:10],
        ]
        md.append("| " + " | ".join(cells) + " |")
    md += [
        "",
        "Stage times (seconds, from each stage's `done in` log line; stages under 1 s log "
        "none) and the run's largest process:",
        "",
        "| scale | engine | " + " | ".join(STAGES) + " | largest process |",
        "|---:|---|" + "---:|" * len(STAGES) + "---|",
    ]
    for (scale, engine), r in chosen.items():
        stages = r.get("stage_seconds") or {}
        cells = [f"{stages[s]:,.1f}" if s in stages else "-" for s in STAGES]
        md.append(
            f"| {scale} | {engine} | "
            + " | ".join(cells)
            + f" | `{r.get('peak_rss_process') or '-'}` |"
        )

    md += ["", "## dask / local", ""]
    pairs = ratios(by_scale)
    if pairs:
        md += [
            "| scale | rows | time dask / local | peak RSS (largest process) dask / local |",
            "|---:|---:|---:|---:|",
        ]
        md += [f"| {s} | {millions(rows[s])} M | {t:.2f} | {m:.2f} |" for s, t, m in pairs]
    else:
        md.append("No scale has a finished run of both engines yet.")

    charts = []
    if rows:
        for heading, title, y_axis, value in (
            (
                "Time vs rows",
                "dvc repro, clean cache (seconds)",
                "seconds",
                lambda r: round(r["seconds"]),
            ),
            (
                "Peak memory vs rows",
                "peak RSS, largest process (GB)",
                "GB",
                lambda r: round(r["peak_rss_mb"] / 1024, 2),
            ),
        ):
            block, notes = chart(title, y_axis, by_scale, rows, value)
            charts.append(f"### {heading}\n\n{block}\n\n")
            charts[-1] += "".join(f"{n}  \n" for n in notes[:-1]) + (notes[-1] if notes else "")
    md += ["", "## Charts", "", *(c.rstrip() + "\n" for c in charts)]
    out.write_text("\n".join(md).rstrip() + "\n")
    chart_out.write_text("\n".join(c.rstrip() + "\n" for c in charts))

    print(f"{len(records)} record(s) in {results}; {len(chosen)} scale x engine shown")
    for (scale, engine), r in chosen.items():
        seconds, peak = duration(r.get("seconds")), megabytes(r.get("peak_rss_mb"))
        total = megabytes(r.get("peak_rss_total_mb"))
        result = f"ratio {r['ratio']:.4f}" if ok(r) else f"FAILED: {r.get('reason')}"
        print(
            f"  scale {scale:>2} {engine:<5} {r['rows']:>12,} rows  {seconds:>16}"
            f"  peak {peak:>9} (all {total})  {result}"
        )
    for scale, t, m in pairs:
        print(f"  dask / local at scale {scale}: time {t:.2f}, peak RSS (largest process) {m:.2f}")
    print(f"wrote {out} and {chart_out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", choices=SCALES, default=list(SCALES))
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--report", action="store_true", help="only rewrite the report")
    parser.add_argument(
        "--results",
        type=Path,
        default=ROOT / "benchmarks" / "scale.json",
        help="the records, one JSON line per run, appended (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "SCALE.md", help="(default: %(default)s)"
    )
    parser.add_argument(
        "--chart", type=Path, help="the charts alone (default: scale_chart.md beside --out)"
    )
    parser.add_argument(
        "--max-rss-gb", type=float, default=20.0, help="per process (default: %(default)g)"
    )
    parser.add_argument("--no-noop", action="store_true", help="skip the no-op dvc repro")
    args = parser.parse_args()
    chart_out = args.chart or args.out.parent / "scale_chart.md"

    if not args.report:
        for scale in args.scales:
            for engine in args.engines:
                before = len(load(args.results))
                cmd = [
                    sys.executable,
                    str(PIPELINE),
                    f"--scale={scale}",
                    f"--engine={engine}",
                    f"--json={args.results}",
                    f"--max-rss-gb={args.max_rss_gb}",
                    *(["--no-noop"] if args.no_noop else []),
                ]
                print(f"== scale {scale}, engine {engine}: {' '.join(cmd[1:])}", flush=True)
                code = subprocess.run(cmd, cwd=ROOT).returncode
                if len(load(args.results)) == before:  # it died before writing its record
                    stores, items, days = SIZES[scale]
                    record = {
                        "scale": scale,
                        "engine": engine,
                        "rows": stores * items * days,
                        "series": stores * items,
                        "status": "failed",
                        "reason": f"benchmarks/pipeline.py exited {code} without a record",
                    }
                    with open(args.results, "a") as out:
                        out.write(json.dumps(record) + "\n")
    report(args.results, args.out, chart_out)


if __name__ == "__main__":
    main()
