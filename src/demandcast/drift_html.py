"""``reports/drift.html``: the drift stage's verdict first, then the model's error, then the
data-drift detail from Evidently. A page for a person; it works offline (no external assets).

It opens with exactly what ``drift.json`` says (the flag, each reason, the deployed model, the
windows compared), then the deployed model's error on the new sales period by period against
the evaluation baseline and the threshold that raises the flag, the totals of sales and
forecast, the new series, and Evidently's regression-quality and data-drift presets.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import pandas as pd

from demandcast.drift import Assessment

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2733}
.dc{max-width:1100px;margin:0 auto;padding:24px}
.verdict{padding:16px 20px;border-radius:8px;margin:16px 0;font-size:1.1rem}
.verdict.drift{background:#fde8e8;border:2px solid #c0392b}
.verdict.clean{background:#e8f6ec;border:2px solid #2e8b57}
.verdict h2{margin:0 0 8px 0}
table.dc-t{border-collapse:collapse;margin:8px 0 16px}
table.dc-t td,table.dc-t th{border:1px solid #d5dbe1;padding:4px 10px;text-align:left}
figure{margin:12px 0 24px}
figcaption{font-size:.9rem;color:#4a5663}
.note{color:#4a5663}
"""


def render(assessment: Assessment, evidently_body: str) -> str:
    """The whole page; ``evidently_body`` is Evidently's ``get_html_str(as_iframe=False)``."""
    report = assessment.report
    parts = [_verdict(report), _windows(report), _error(report, assessment.by_period)]
    parts.append(_new_series(assessment.new_series))
    body = evidently_body.strip()
    if body.startswith("<body>"):
        body = body[len("<body>") :]
    if body.endswith("</body>"):
        body = body[: -len("</body>")]
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>demandcast drift report: {_e(_headline(report))}</title>"
        f"<style>{STYLE}</style></head>\n<body>\n<div class='dc'>\n<h1>Drift report</h1>\n"
        + "\n".join(parts)
        + "\n<h2>Detail from Evidently: regression quality and data drift</h2>\n"
        "<p class='note'>Current: the new sales; reference: the reference window above "
        "(the model's own training rows, so its error there is in-sample).</p>\n</div>\n"
        + body
        + "\n</body></html>\n"
    )


def _e(text: Any) -> str:
    return html.escape(str(text))


def _headline(report: dict[str, Any]) -> str:
    return "drift detected" if report["drift_detected"] else "no drift"


def _verdict(report: dict[str, Any]) -> str:
    drift = report["drift_detected"]
    model = report["model"]
    reasons = "".join(f"<li class='reason'>{_e(r)}</li>" for r in report["reasons"])
    notes = "".join(f"<li class='note'>{_e(n)}</li>" for n in report["notes"])
    return (
        f"<section class='verdict {'drift' if drift else 'clean'}' id='verdict'>"
        f"<h2 id='headline'>{'Drift detected' if drift else 'No drift'}</h2>"
        f"<p>Deployed model <code>{_e(model['version'])}</code>, trained through "
        f"{_e(model['trained_through'])}.</p>"
        + (f"<p>Reasons to retrain:</p><ul id='reasons'>{reasons}</ul>" if reasons else "")
        + (f"<ul id='notes'>{notes}</ul>" if notes else "")
        + "</section>"
    )


def _windows(report: dict[str, Any]) -> str:
    cur, ref = report["current"], report["reference"]
    return (
        "<table class='dc-t' id='windows'><tr><th></th><th>from</th><th>to</th><th>rows</th>"
        "<th></th></tr>"
        f"<tr><td>current</td><td>{_e(cur['start'])}</td><td>{_e(cur['end'])}</td>"
        f"<td>{cur['rows']}</td><td>{_e(cur['source'])}, scored by "
        f"<code>{_e(cur['scored_by'])}</code></td></tr>"
        f"<tr><td>reference</td><td>{_e(ref['start'])}</td><td>{_e(ref['end'])}</td>"
        f"<td>{ref['rows']}</td><td>{_e(ref['kind'])}</td></tr></table>"
    )


def _error(report: dict[str, Any], by_period: pd.DataFrame) -> str:
    concept = report["concept_drift"]
    limit = concept["baseline_smape"] * (1 + concept["threshold"])
    rows = [
        ("SMAPE %", concept["smape"], concept["baseline_smape"], f"above {limit:.2f}"),
        ("MAE", concept["mae"], concept["baseline_mae"], "reported, does not flag"),
    ]
    if "range_coverage" in concept:
        floor = concept["range_nominal"] - concept["range_threshold"]
        rows.append(
            (
                "range coverage %",
                concept["range_coverage"],
                concept["range_nominal"],
                f"below {floor:g}",
            )
        )
    table = "".join(
        f"<tr><td>{name}</td><td>{now:.2f}</td><td>{then:.2f}</td><td>{flag}</td></tr>"
        for name, now, then, flag in rows
    )
    dates = [str(d.date()) for d in pd.to_datetime(by_period["date"])]
    return (
        "<h2>The model's error on the new sales</h2>"
        "<table class='dc-t' id='error'><tr><th></th><th>new sales</th><th>at evaluation</th>"
        f"<th>flags when</th></tr>{table}</table>"
        + _chart(
            "smape-chart",
            "SMAPE per period on the new sales, against the evaluation SMAPE and the threshold",
            dates,
            {"SMAPE": by_period["smape"].tolist()},
            {"evaluation": concept["baseline_smape"], "threshold": limit},
        )
        + _chart(
            "totals-chart",
            "Total sales and total forecast per period, every series of the model",
            dates,
            {"actual": by_period["actual"].tolist(), "forecast": by_period["forecast"].tolist()},
            {},
        )
    )


def _new_series(series: list[dict[str, Any]]) -> str:
    if not series:
        return "<h2>New series</h2><p id='new-series'>None: the model knows every series.</p>"
    shown = ", ".join(" ".join(f"{k}={v}" for k, v in s.items()) for s in series[:50])
    more = f" and {len(series) - 50} more" if len(series) > 50 else ""
    return (
        f"<h2>New series</h2><p id='new-series'>{len(series)} series the model has never seen "
        f"(a retrain forecasts them): {_e(shown)}{more}.</p>"
    )


COLORS = ("#1f6fb2", "#e07b16", "#2e8b57", "#c0392b")


def _chart(
    ident: str,
    caption: str,
    labels: Sequence[str],
    lines: dict[str, list[float]],
    levels: dict[str, float],
    width: int = 900,
    height: int = 260,
) -> str:
    """A small inline SVG line chart: ``lines`` over ``labels``, dashed horizontal ``levels``."""
    values = [v for vs in lines.values() for v in vs] + list(levels.values())
    if not labels or not values:
        return ""
    top, bottom = max(values) * 1.08 or 1.0, min(0.0, min(values))
    left, right, pad_top, pad_bottom = 56, 12, 12, 36
    n = max(len(labels) - 1, 1)

    def x(i: int) -> float:
        return left + (width - left - right) * i / n

    def y(v: float) -> float:
        return pad_top + (height - pad_top - pad_bottom) * (1 - (v - bottom) / (top - bottom))

    svg = [
        f"<svg id='{ident}' role='img' aria-label='{_e(caption)}' viewBox='0 0 {width} {height}' "
        f"width='100%' preserveAspectRatio='xMidYMid meet'>"
    ]
    for k in range(5):
        v = bottom + (top - bottom) * k / 4
        svg.append(
            f"<line x1='{left}' x2='{width - right}' y1='{y(v):.1f}' y2='{y(v):.1f}' "
            f"stroke='#e3e7eb'/><text x='{left - 6}' y='{y(v) + 4:.1f}' font-size='11' "
            f"text-anchor='end'>{v:.1f}</text>"
        )
    for i in sorted({0, n // 2, n}):
        svg.append(
            f"<text x='{x(i):.1f}' y='{height - 12}' font-size='11' text-anchor='middle'>"
            f"{_e(labels[i])}</text>"
        )
    legend = []
    for c, (name, v) in enumerate(levels.items()):
        color = COLORS[(c + len(lines)) % len(COLORS)]
        svg.append(
            f"<line class='level' data-name='{_e(name)}' data-value='{v:.4f}' x1='{left}' "
            f"x2='{width - right}' y1='{y(v):.1f}' y2='{y(v):.1f}' stroke='{color}' "
            "stroke-dasharray='6 4'/>"
        )
        legend.append((name, color))
    for c, (name, vs) in enumerate(lines.items()):
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs))
        svg.append(
            f"<polyline class='series' data-name='{_e(name)}' fill='none' "
            f"stroke='{COLORS[c]}' stroke-width='2' points='{points}'/>"
        )
        legend.append((name, COLORS[c]))
    svg.append("</svg>")
    keys = " ".join(
        f"<span style='color:{color}'>&#9632; {_e(name)}</span>" for name, color in legend
    )
    return f"<figure>{''.join(svg)}<figcaption>{_e(caption)} &middot; {keys}</figcaption></figure>"
