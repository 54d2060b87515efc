#!/usr/bin/env python3
"""The evaluation as a chart for a pull-request comment: SMAPE by horizon day, base vs head.

    scripts/horizon_chart.py HEAD_CSV [--base BASE_CSV] [--base-label main]

Reads ``reports/plots/horizon.csv`` of each revision (columns ``horizon_day, model,
seasonal_naive[, oracle]``: SMAPE % of the holdout by horizon day) and prints a Mermaid
``xychart-beta`` block, which GitHub renders in comments and Markdown files: the head's
seasonal-naive baseline as grey bars, the base's model as a blue line and the head's model as an
orange line, then one line saying so (a Mermaid xy chart has no legend). Without a usable base
file, the head alone. Standard library only.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

COLORS = {"bars": "#b0b0b0", "base": "#1f77b4", "head": "#ff7f0e"}


def read(path: Path) -> dict[str, list[float]]:
    """The file's columns by name, as numbers, in horizon-day order."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "horizon_day" not in rows[0] or "model" not in rows[0]:
        raise ValueError(f"{path}: expected the columns horizon_day, model, seasonal_naive")
    rows.sort(key=lambda row: int(row["horizon_day"]))
    return {name: [float(row[name]) for row in rows] for name in rows[0]}


def numbers(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def chart(head: dict[str, list[float]], base: dict[str, list[float]] | None, label: str) -> str:
    days = [int(d) for d in head["horizon_day"]]
    naive = head.get("seasonal_naive")
    plotted = [head["model"], naive or [], base["model"][: len(days)] if base else []]
    top = max(v for values in plotted for v in values)
    palette = [COLORS["bars"]] if naive else []
    palette += [COLORS["base"]] if base else []
    palette.append(COLORS["head"])
    lines = [
        "```mermaid",
        "---",
        "config:",
        "  themeVariables:",
        "    xyChart:",
        f'      plotColorPalette: "{", ".join(palette)}"',
        "---",
        "xychart-beta",
        '  title "Holdout SMAPE % by horizon day (lower is better)"',
        f'  x-axis "horizon day" [{", ".join(map(str, days))}]',
        f'  y-axis "SMAPE %" 0 --> {math.ceil(top * 1.1)}',
    ]
    if naive:
        lines.append(f"  bar {numbers(naive)}")
    if base:
        lines.append(f"  line {numbers(base['model'][: len(days)])}")
    lines += [f"  line {numbers(head['model'])}", "```"]
    key = ["grey bars: seasonal-naive baseline (this revision)"] if naive else []
    if base:
        key.append(f"blue line: the model of `{label}`")
    key.append("orange line: this revision's model")
    caption = "; ".join(key)
    return "\n".join(lines) + "\n\n" + caption[0].upper() + caption[1:] + ".\n"


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("head", type=Path, help="this revision's reports/plots/horizon.csv")
    cli.add_argument("--base", type=Path, help="the base revision's horizon.csv")
    cli.add_argument("--base-label", default="main", help="what to call the base in the key")
    args = cli.parse_args(argv)
    try:
        head = read(args.head)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    base = None
    if args.base is not None:
        try:
            base = read(args.base)
        except (OSError, ValueError) as exc:  # an older base revision: chart the head alone
            print(f"note: base not charted: {exc}", file=sys.stderr)
        if base is not None and len(base["model"]) < len(head["model"]):
            print("note: base not charted: it has a shorter horizon", file=sys.stderr)
            base = None
    print(chart(head, base, args.base_label), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
