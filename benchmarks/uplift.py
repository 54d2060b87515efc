"""Promotion uplift recovery: does the evaluation model know what a promotion adds, item by item?

Reads the pipeline's outputs (run `make run` first): the eval model forecasts the holdout under
its plan, and again with the promotion flag off; per item, uplift = ratio - 1 over the open
holdout days the plan puts on promotion. Compared with the generator's true uplift of each item
(synthetic data only).

    python benchmarks/uplift.py              # flag `promo`, per item
"""

from __future__ import annotations

import argparse

import numpy as np

from demandcast import bundle
from demandcast.config import load_params
from demandcast.data import synthetic
from demandcast.evaluate import flag_uplift


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flag", default="promo")
    parser.add_argument("--models", default="models/eval")
    args = parser.parse_args()
    params = load_params()
    cfg = params.data.synthetic
    model = bundle.read(args.models)
    table = flag_uplift(model, args.flag, by="item")
    table["true"] = synthetic.promo_uplift(cfg.seed, table.index.to_numpy(), cfg)
    error = 100 * (table["uplift"] - table["true"])
    print(f"{len(table)} items with promotion days in the holdout")
    print(
        f"mean uplift: model {100 * table['uplift'].mean():.1f}%, "
        f"true {100 * table['true'].mean():.1f}% ({error.mean():+.2f} points)"
    )
    print(
        f"per item: mean |model - true| {error.abs().mean():.2f} points, "
        f"correlation {np.corrcoef(table['uplift'], table['true'])[0, 1]:.3f}"
    )


if __name__ == "__main__":
    main()
