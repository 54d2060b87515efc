"""Why the data-drift defaults: the reference window and the per-column test, on clean data.

Data drift needs no model, so this runs in seconds per case, in memory: the default synthetic
data (10 stores x 50 items x 5 years) for each seed, extended by 1, 7 or 28 days either as is
or with a +30% level shift from the first new day; the model's monitored inputs (features.py,
without calendar columns and encodings) and the target in the new days are compared by
Evidently's DataDriftPreset with the reference and per-column test of each variant.

A good variant never reaches the flag (share drifted >= 0.5) on clean data, and the target
column, the one input a fresh level shift reaches within the horizon, separates clean from
shifted days.

    python benchmarks/drift_calibration.py                 # seeds 1..5, windows 1, 7, 28 days
"""

from __future__ import annotations

import argparse
import datetime as dt
import warnings
from collections import defaultdict

import pandas as pd

from demandcast import drift
from demandcast.config import Change, DriftParams, Params
from demandcast.data import synthetic
from demandcast.data.schema import DATE, SALES
from demandcast.data.validate import prepare_table
from demandcast.features import build, feature_columns

VARIANTS = {  # name: (reference, method, per-column threshold; None = Evidently's default)
    "recent, wasserstein 0.1 (Evidently default)": ("recent", "wasserstein", None),
    "season, wasserstein 0.1 (Evidently default)": ("season", "wasserstein", None),
    "season, wasserstein 0.2 (demandcast default)": ("season", "wasserstein", 0.2),
    "season, psi 0.1": ("season", "psi", None),
    "season, jensenshannon 0.1": ("season", "jensenshannon", None),
}


def features_after(
    params: Params, seed: int, days: int, shift: float
) -> tuple[pd.DataFrame, pd.Timestamp]:
    cfg = params.data.synthetic.model_copy(update={"seed": seed})
    first_new = synthetic.last_day(cfg) + dt.timedelta(days=1)
    changes = [Change(start=first_new, level_shift=shift)] if shift else []
    longer = cfg.model_copy(update={"days": cfg.days + days, "changes": changes})
    prepared, _ = prepare_table(
        synthetic.generate(longer), "synthetic", params, require_evaluable=False
    )
    return build(prepared, params.horizon, params.features), prepared[DATE].min()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 7, 28])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # Evidently's deprecation chatter

    params = Params()
    cutoff = pd.Timestamp(synthetic.last_day(params.data.synthetic))
    stats: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for seed in args.seeds:
        for shift in (0.0, 0.3):
            features, start = features_after(params, seed, max(args.windows), shift)
            columns = [c for c in feature_columns(features) if c not in drift.NOT_MONITORED]
            for days in args.windows:
                current_days = drift.Window(
                    cutoff + pd.Timedelta(days=1), cutoff + pd.Timedelta(days=days)
                )
                current = features[current_days.contains(features[DATE])]
                for name, (kind, method, threshold) in VARIANTS.items():
                    ref_days, _ = drift.reference_window(
                        current_days, cutoff, start, params.horizon, kind
                    )
                    reference = features[ref_days.contains(features[DATE])]
                    test = DriftParams(stattest=method, stattest_threshold=threshold)
                    data, _ = drift.data_drift(reference, current, [*columns, SALES], test)
                    case = "shift" if shift else "clean"
                    stats[name][f"{case} share"].append(data["share_drifted"])
                    stats[name][f"{case} target"].append(data["scores"][SALES])
                    stats[name][f"{case} target drifted"].append(SALES in data["drifted_columns"])
            print(f"seed {seed} shift {shift:+.0%} done", flush=True)

    n = len(args.seeds) * len(args.windows)
    print(f"\n{n} cases per row: seeds {args.seeds} x windows {args.windows} days\n")
    print(
        "| reference, test | clean: max share | clean: flagged | clean: target drifted | "
        "+30%: target drifted | target score clean max / +30% min |"
    )
    print("|---|---|---|---|---|---|")
    for name, s in stats.items():
        print(
            f"| {name} | {max(s['clean share']):.2f} | "
            f"{sum(x >= 0.5 for x in s['clean share'])}/{n} | "
            f"{sum(s['clean target drifted'])}/{n} | {sum(s['shift target drifted'])}/{n} | "
            f"{max(s['clean target']):.3f} / {min(s['shift target']):.3f} |"
        )


if __name__ == "__main__":
    main()
