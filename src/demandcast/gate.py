"""The promotion gate: is a retrained model at least as good as the one in production?

A retrained model is fitted on data that includes the newest days, so no unseen data is left
to score it on; scoring it against production on production's holdout would flatter it. The
gate therefore judges the **recipe** (code + params) that made it, on rows that neither side
has trained on:

1. The production model P was trained through its cutoff ``c``. The candidate recipe is fitted
   at the same cutoff ``c`` on today's data (``model.fit``): the same situation as P, with the
   new code and params. Both forecast the ``horizon`` days after ``c`` from history known at
   ``c`` (their frozen forecast rows, exactly what the served model answers).
2. Both are scored with ``evaluate.score`` on the days after ``c`` that now have sales (at most
   ``horizon`` of them), on the same rows: the intersection of what both forecast.
3. The candidate passes if its SMAPE <= P's SMAPE x (1 + ``gate.tolerance``).

When no sales after ``c`` exist yet (a params-only change on the same data), the two evaluation
models are compared instead on their shared holdout (``reports/metrics.json`` of production's
revision and of the candidate); only when both holdouts cover the same dates. Anything else is
refused: a model is never promoted on a comparison that could not be made.

Whatever the comparison, the candidate must also beat the seasonal-naive baseline on its own
evaluation holdout (``holdout.smape`` < ``baselines.seasonal_naive.smape`` in its
``reports/metrics.json``): a corrupted batch of new data can make production and candidate
equally bad, and no model worse than repeating last week is worth deploying.

With nothing deployed yet there is nothing to compare with, and the gate fails closed: only an
explicit bootstrap (``judge_bootstrap``, ``python -m demandcast gate --bootstrap``) promotes a
first model, on the baseline rule alone.

Everything here takes data and returns data; ``cli.cmd_gate`` does the I/O.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from demandcast import bundle
from demandcast.config import Params
from demandcast.data.schema import DATE, SALES
from demandcast.errors import DataError
from demandcast.evaluate import holdout_frame, score
from demandcast.metrics import Metrics
from demandcast.model import fit

AFTER_CUTOFF, HOLDOUT, BOOTSTRAP = "after_cutoff", "holdout", "bootstrap"
BASELINE = "seasonal_naive"  # the baseline every promoted model must beat on its holdout
METRICS = ("smape", "mae", "rmse")
REFERENCE_LABELS = {"seasonal_naive": "seasonal naive (baseline)", "oracle": "oracle (true mean)"}


@dataclass(frozen=True)
class Scored:
    """One model's error on the compared rows."""

    label: str
    model_version: str
    trained_through: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    method: str  # AFTER_CUTOFF, HOLDOUT or BOOTSTRAP
    tolerance: float
    reason: str
    production: Scored | None = None
    candidate: Scored | None = None
    deploy: dict[str, str] = field(default_factory=dict)  # the model that would be deployed
    rows: dict[str, Any] = field(default_factory=dict)  # count, start, end of the compared rows
    references: dict[str, float] = field(default_factory=dict)  # baselines/oracle, for context
    # the candidate's holdout SMAPE against the seasonal-naive baseline's (see baseline_check)
    baseline: dict[str, Any] = field(default_factory=dict)

    @property
    def threshold(self) -> float | None:
        if self.production is None:
            return None
        return self.production.metrics["smape"] * (1 + self.tolerance)

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["threshold_smape"] = None if self.threshold is None else round(self.threshold, 4)
        return out

    def markdown(self) -> str:
        """The verdict for a job summary or a PR: a headline, the table, the rule."""
        mark = "PASSED ✅" if self.passed else "REFUSED ❌"
        bootstrap = " (bootstrap: first model)" if self.method == BOOTSTRAP else ""
        lines = [f"### Promotion gate: {mark}{bootstrap}", ""]
        if self.method == BOOTSTRAP:
            lines += [
                "No model is deployed yet, so there is nothing to compare with: the first "
                "model is promoted only on the baseline rule below (an explicit bootstrap).",
                "",
            ]
        if self.rows:
            where = {
                AFTER_CUTOFF: "the days after the production model's cutoff",
                HOLDOUT: "the evaluation holdout both models' eval twins were scored on",
                BOOTSTRAP: "the candidate's evaluation holdout",
            }[self.method]
            lines += [
                f"Compared on {self.rows['count']} rows, {self.rows['start']} .. "
                f"{self.rows['end']} ({where}); neither model trained on them.",
                "",
            ]
        scored = [s for s in (self.production, self.candidate) if s is not None]
        if scored:
            lines += [
                "| model | version | trained through | SMAPE % | MAE | RMSE |",
                "|---|---|---|---:|---:|---:|",
            ]
            for s in scored:
                cells = " | ".join(_num(s.metrics.get(k)) for k in METRICS)
                lines.append(f"| {s.label} | `{s.model_version}` | {s.trained_through} | {cells} |")
            for name, smape in self.references.items():
                lines.append(f"| {REFERENCE_LABELS.get(name, name)} | | | {_num(smape)} | | |")
            lines.append("")
            prod, cand = self.production, self.candidate
            if prod and cand and prod.model_version == cand.model_version:
                lines += [
                    "The recipe is unchanged: at the same cutoff it rebuilds the production "
                    "model exactly.",
                    "",
                ]
        if self.threshold is not None and self.candidate is not None:
            sign = "<=" if self.candidate.metrics["smape"] <= self.threshold else ">"
            lines.append(
                f"Rule: candidate SMAPE {_num(self.candidate.metrics['smape'])} {sign} "
                f"production SMAPE x (1 + {self.tolerance:g}) = {_num(self.threshold)}."
            )
        if self.baseline:
            b = self.baseline
            sign = "<" if b["passed"] else "is not below"
            lines.append(
                f"Baseline: candidate holdout SMAPE {_num(b['candidate_smape'])} {sign} "
                f"seasonal naive {_num(b['seasonal_naive_smape'])} (its evaluation holdout)."
            )
        lines.append(f"{'Passed' if self.passed else 'Refused'}: {self.reason}")
        if self.deploy:
            lines += [
                "",
                f"Model to deploy: `{self.deploy['model_version']}` (the candidate recipe refit "
                f"through {self.deploy['trained_through']}).",
            ]
        return "\n".join(lines) + "\n"


def _num(value: float | None) -> str:
    return (
        "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"
    )


def judge(
    prepared: pd.DataFrame,
    features: pd.DataFrame,
    production: bundle.Bundle,
    deployable: bundle.Meta,
    params: Params,
    production_metrics: Metrics | None = None,
    candidate_metrics: Metrics | None = None,
    candidate_eval: bundle.Meta | None = None,
) -> Verdict:
    """The gate's verdict on the candidate recipe (``params`` and this code, which made
    ``deployable`` from ``features``) against the ``production`` bundle.

    ``prepared``/``features``: today's data and features (the pipeline's outputs). The metrics
    and ``candidate_eval`` (the candidate's eval model) are needed only when there are no sales
    after production's cutoff, for the holdout comparison.
    """
    prod_meta = production.meta
    cutoff = pd.Timestamp(prod_meta.cutoff)
    last = prepared.loc[prepared[SALES].notna(), DATE].max()
    if last < cutoff:
        raise DataError(
            f"today's data ends {last.date()}, before the production model's cutoff "
            f"{cutoff.date()}: is this the right data?"
        )
    if last > cutoff:
        try:
            trained = fit(features, cutoff, params)
        except ValueError as exc:
            raise DataError(
                f"cannot fit the candidate recipe at the production cutoff {cutoff.date()}: {exc}"
            ) from None
        candidate = trained.loaded()
        cand_meta = candidate.meta
        verdict = compare_after_cutoff(
            forecast_frame(prepared, production),
            forecast_frame(prepared, candidate),
            prod_meta,
            cand_meta,
            prod_meta.series_keys,
            params.gate.tolerance,
        )
    else:
        if production_metrics is None or candidate_metrics is None or candidate_eval is None:
            raise DataError(
                f"no sales after the production cutoff {cutoff.date()}: the eval models are "
                "compared instead, and that needs production's reports/metrics.json "
                "(--production-metrics)"
            )
        verdict = compare_holdouts(
            production_metrics, candidate_metrics, prod_meta, candidate_eval, params.gate.tolerance
        )
    if candidate_metrics is not None:
        verdict = with_baseline(verdict, candidate_metrics)
    return with_deployable(verdict, deployable)


def judge_bootstrap(
    candidate_metrics: Metrics, deployable: bundle.Meta, tolerance: float
) -> Verdict:
    """The verdict on a first model, when nothing is deployed to compare with: it passes only if
    its evaluation beats the seasonal-naive baseline (``baseline_check``). Asked for explicitly
    (``gate --bootstrap``); without it the gate refuses to promote with no comparison."""
    holdout = candidate_metrics.holdout
    rows = {"count": holdout.rows, "start": holdout.start, "end": holdout.end}
    verdict = Verdict(
        True,
        BOOTSTRAP,
        tolerance,
        "nothing deployed to compare with; promoted on the baseline rule (bootstrap)",
        rows=rows,
        references=_references(candidate_metrics),
    )
    return with_deployable(with_baseline(verdict, candidate_metrics), deployable)


def baseline_check(metrics: Metrics) -> dict[str, Any]:
    """Does the evaluation model beat the seasonal-naive baseline on its holdout? Its SMAPE must
    be strictly below the baseline's; a report without that baseline (or with a SMAPE that is not
    a number) fails the check."""
    naive = metrics.baselines.get(BASELINE)
    model_smape = metrics.holdout.smape
    naive_smape = None if naive is None else naive.smape
    passed = (
        naive_smape is not None
        and math.isfinite(model_smape)
        and math.isfinite(naive_smape)
        and model_smape < naive_smape
    )
    return {"candidate_smape": model_smape, "seasonal_naive_smape": naive_smape, "passed": passed}


def with_baseline(verdict: Verdict, metrics: Metrics) -> Verdict:
    """The verdict with the baseline rule applied: refused, whatever the comparison said, when
    the candidate does not beat the seasonal-naive baseline on its evaluation holdout."""
    check = baseline_check(metrics)
    if check["passed"]:
        return dataclasses.replace(verdict, baseline=check)
    if check["seasonal_naive_smape"] is None:
        why = (
            f"the candidate's evaluation has no {BASELINE} baseline to check it against "
            "(reports/metrics.json: baselines.seasonal_naive)"
        )
    else:
        why = (
            f"the candidate's holdout SMAPE {_num(check['candidate_smape'])} is not below the "
            f"seasonal-naive baseline's {_num(check['seasonal_naive_smape'])}: is the new data "
            "right? (a broken batch makes every model look alike)"
        )
    reason = why if verdict.passed else f"{verdict.reason}; and {why}"
    return dataclasses.replace(verdict, passed=False, reason=reason, baseline=check)


def forecast_frame(prepared: pd.DataFrame, model: bundle.Bundle) -> pd.DataFrame:
    """The model's frozen forecast of the periods after its cutoff that have sales in
    ``prepared``, with the actuals and the baselines: ``evaluate.holdout_frame`` on those
    periods. Empty when no period after the cutoff has sales yet."""
    meta = model.meta
    cutoff = pd.Timestamp(meta.cutoff)
    last = prepared.loc[prepared[SALES].notna(), DATE].max()
    periods = min(meta.horizon, max((last - cutoff).days // meta.frequency.days, 0))
    if periods == 0:
        return pd.DataFrame()
    n = len(meta.series)
    rows = model.forecast.reshape(n, meta.horizon, -1)[:, :periods].reshape(n * periods, -1)
    is_open = model.open.reshape(n, meta.horizon)[:, :periods].reshape(-1)
    seen = dataclasses.replace(
        model, meta=dataclasses.replace(meta, horizon=periods), forecast=rows, open=is_open
    )
    try:
        return holdout_frame(prepared, seen)
    except ValueError as exc:  # a series of the model no longer in the data
        raise DataError(
            f"model {meta.model_version}: cannot score it on today's data: {exc}"
        ) from None


def compare_after_cutoff(
    production: pd.DataFrame,
    candidate: pd.DataFrame,
    production_meta: bundle.Meta,
    candidate_meta: bundle.Meta,
    keys: list[str],
    tolerance: float,
) -> Verdict:
    """Score both forecast frames (``forecast_frame``) on the rows both have and judge."""
    on = [*keys, DATE]
    if production.empty or candidate.empty:
        return Verdict(False, AFTER_CUTOFF, tolerance, "no forecast row to compare")
    both = production.merge(
        candidate[[*on, "predicted"]], on=on, how="inner", suffixes=("", "_candidate")
    )
    if both.empty:
        return Verdict(False, AFTER_CUTOFF, tolerance, "the two models forecast no row in common")
    prod = Scored(
        "production",
        production_meta.model_version,
        production_meta.trained_through,
        _rounded(score(both["actual"], both["predicted"])),
    )
    cand = Scored(
        "candidate recipe at the same cutoff",
        candidate_meta.model_version,
        candidate_meta.trained_through,
        _rounded(score(both["actual"], both["predicted_candidate"])),
    )
    references = {
        name: round(score(both["actual"], both[name])["smape"], 4)
        for name in ("seasonal_naive", "oracle")
        if name in both.columns
    }
    rows = {
        "count": len(both),
        "start": str(both[DATE].min().date()),
        "end": str(both[DATE].max().date()),
    }
    return _judge(AFTER_CUTOFF, prod, cand, tolerance, rows, references)


def compare_holdouts(
    production_metrics: Metrics,
    candidate_metrics: Metrics,
    production_meta: bundle.Meta,
    candidate_meta: bundle.Meta,
    tolerance: float,
) -> Verdict:
    """Compare the evaluation models' holdout errors (``reports/metrics.json`` of each side);
    refused unless both holdouts cover the same days."""
    prod_h = production_metrics.holdout.model_dump()
    cand_h = candidate_metrics.holdout.model_dump()
    span = {k: (prod_h[k], cand_h[k]) for k in ("start", "end", "rows")}
    if any(a is None or a != b for a, b in span.values()):
        return Verdict(
            False,
            HOLDOUT,
            tolerance,
            "no sales after the production model's cutoff, and the two evaluations cover "
            "different holdouts ("
            + ", ".join(f"{k}: {a} vs {b}" for k, (a, b) in span.items())
            + "): the models cannot be compared; wait for new sales",
        )
    prod = Scored(
        "production (eval model)",
        production_meta.model_version,
        production_meta.trained_through,
        {k: prod_h[k] for k in METRICS},
    )
    cand = Scored(
        "candidate (eval model)",
        candidate_meta.model_version,
        candidate_meta.trained_through,
        {k: cand_h[k] for k in METRICS},
    )
    rows = {"count": cand_h["rows"], "start": cand_h["start"], "end": cand_h["end"]}
    return _judge(HOLDOUT, prod, cand, tolerance, rows, _references(candidate_metrics))


def _references(metrics: Metrics) -> dict[str, float]:
    """The seasonal-naive baseline and (synthetic data) the oracle of an evaluation, for context."""
    references = {
        name: metrics.baselines[name].smape for name in (BASELINE,) if name in metrics.baselines
    }
    if metrics.oracle is not None:
        references["oracle"] = metrics.oracle.smape
    return references


def _judge(
    method: str,
    prod: Scored,
    cand: Scored,
    tolerance: float,
    rows: dict[str, Any],
    references: dict[str, float],
) -> Verdict:
    limit = prod.metrics["smape"] * (1 + tolerance)
    passed = cand.metrics["smape"] <= limit
    change = cand.metrics["smape"] / prod.metrics["smape"] - 1 if prod.metrics["smape"] else 0.0
    reason = (
        f"candidate SMAPE is {change:+.2%} relative to production "
        f"({'within' if passed else 'beyond'} the tolerance of {tolerance:+.2%})"
    )
    return Verdict(passed, method, tolerance, reason, prod, cand, {}, rows, references)


def with_deployable(verdict: Verdict, meta: bundle.Meta) -> Verdict:
    """The verdict naming the model that would be deployed (the recipe refit on all data)."""
    deploy = {"model_version": meta.model_version, "trained_through": meta.trained_through}
    return dataclasses.replace(verdict, deploy=deploy)


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(metrics[k], 4) for k in METRICS}
