"""Covariates, closed days, attributes, holidays and the plan (issue 10's data contract):
known-in-advance columns are used for the day they describe and never leak; closed days are
not demand; the plan is validated like the sales file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demandcast.config import Params
from demandcast.data import synthetic
from demandcast.data.covariates import read_attributes
from demandcast.data.load import read_table
from demandcast.data.plan import DEFAULTS, make_plan
from demandcast.data.schema import NONE_LEVEL
from demandcast.data.validate import prepare_table
from demandcast.errors import DataError
from demandcast.evaluate import flag_uplift
from demandcast.features import add_encodings, build, declared, holiday_features, trainable
from demandcast.model import fit
from tests.conftest import DRIVEN, merged


def test_covariates_are_declared_typed_features(driven_features):
    specs = {spec.name: spec for spec in declared(driven_features)}
    assert specs["promo"].kind == "covariate" and specs["promo"].value == "flag"
    holiday = specs["holiday"]
    assert holiday.kind == "covariate" and holiday.value == "category"
    assert holiday.levels == ["0", "a", "b", "c"]  # sorted text levels; codes are positions
    assert set(driven_features["holiday"].dropna().unique()) <= {0.0, 1.0, 2.0, 3.0}
    assert {"public_holiday", "days_to_holiday", "days_since_holiday", "lift_promo"} <= set(specs)


def test_a_holdout_days_covariates_change_only_that_days_inputs(
    driven_params, driven_prepared, driven_plan, driven_features
):
    """Flip the promotion and the holiday of one holdout day of one series: every input of
    every other row up to the end of the holdout stays the same; that row's covariates move."""
    h = driven_params.horizon
    cutoff = driven_prepared["date"].max() - pd.Timedelta(days=h)
    day = cutoff + pd.Timedelta(days=5)
    changed = driven_prepared.copy()
    row = (changed["store"] == 1) & (changed["item"] == 2) & (changed["date"] == day)
    changed.loc[row, "promo"] = 1 - changed.loc[row, "promo"]
    changed.loc[row, "holiday"] = "c"
    changed.attrs = driven_prepared.attrs
    after = build(changed, h, driven_params.features, plan=driven_plan)
    before = driven_features
    window = (before["date"] <= cutoff + pd.Timedelta(days=h)).to_numpy()
    cols = [spec.name for spec in declared(before)]
    target = ((before["store"] == 1) & (before["item"] == 2) & (before["date"] == day)).to_numpy()
    pd.testing.assert_frame_equal(
        before.loc[window & ~target, cols], after.loc[window & ~target, cols]
    )
    moved = [c for c in cols if before.loc[target, c].item() != after.loc[target, c].item()]
    assert sorted(moved) == ["holiday", "promo"]


def test_closed_days_are_not_demand(driven_params, driven_prepared, driven_features, driven_plan):
    closed = (driven_prepared["open"] == 0).to_numpy()
    assert closed.any()
    features = driven_features
    cutoff = features.loc[features["sales"].notna(), "date"].max()
    rows = trainable(features, cutoff)
    assert not rows[(features["open"] == 0).to_numpy()].any()  # not trained on
    # NaN, not zero, in every window: a closed day's sales move no input of any row
    loud = driven_prepared.copy()
    loud.loc[closed, "sales"] = 10_000.0
    loud.attrs = driven_prepared.attrs
    again = build(loud, driven_params.horizon, driven_params.features, plan=driven_plan)
    cols = [spec.name for spec in declared(features)]
    pd.testing.assert_frame_equal(features[cols], again[cols])
    # and their forecast is exactly 0, every output
    trained = fit(features, cutoff, driven_params, dispersion=[5.0, 5.0]).loaded()
    grid = trained.grid().reshape(-1, len(trained.meta.outputs))
    assert (trained.open == 0).any() and (grid[trained.open == 0] == 0).all()
    assert (grid[trained.open == 1, 0] > 0).all()


def test_the_forecast_window_uses_the_plan(driven_params, driven_plan, driven_features):
    ahead = driven_features[
        driven_features["sales"].isna()
        & driven_features["date"].gt(
            driven_features.loc[driven_features["sales"].notna(), "date"].max()
        )
    ]
    plan = driven_plan.set_index(["store", "item", "date"])
    index = pd.MultiIndex.from_frame(ahead[["store", "item", "date"]])
    assert len(ahead) == len(driven_plan)
    assert (ahead["promo"].to_numpy() == plan["promo"].reindex(index).to_numpy()).all()
    assert (ahead["open"].to_numpy() == plan["open"].reindex(index).to_numpy()).all()


def test_without_a_plan_the_defaults_are_used_and_reported(driven_params, driven_prepared):
    plan, summary = make_plan(None, None, driven_prepared, driven_params)
    assert summary["source"] == "defaults"
    assert summary["defaults"] == {
        "open": DEFAULTS["open"],
        "promo": DEFAULTS["flag"],
        "holiday": DEFAULTS["category"],
    }
    assert (plan["promo"] == 0).all()
    assert set(plan["holiday"]) == {"0"}  # no "none" level here: the most common one
    # open: the same weekday 52 weeks earlier, per series
    year_before = plan.assign(date=plan["date"] - pd.Timedelta(days=364))
    known = driven_prepared.set_index(["store", "item", "date"])["open"]
    expected = known.reindex(pd.MultiIndex.from_frame(year_before[["store", "item", "date"]]))
    assert (plan["open"].to_numpy() == expected.to_numpy()).all()
    assert NONE_LEVEL == "none"


def write_plan(tmp_path: Path, params: Params, change=None) -> tuple[Path, Params]:
    plan = synthetic.plan(params.data.synthetic, params.horizon)
    plan = plan.rename(columns={"promo": "Promo", "open": "Open", "store": "Shop"})
    if change is not None:
        plan = change(plan)
    path = tmp_path / "plan.csv"
    plan.to_csv(path, index=False)
    data = {
        **DRIVEN["data"],
        "columns": {"store": "Shop", "open": "Open"},
        "covariates": {"Promo": "flag", "holiday": "category"},
        "future_path": str(path),
    }
    return path, Params.model_validate({**DRIVEN, "data": data})


def plan_from_file(tmp_path: Path, change=None) -> tuple[pd.DataFrame, dict]:
    path, params = write_plan(tmp_path, Params.model_validate(DRIVEN), change)
    raw = synthetic.generate(params.data.synthetic).rename(columns={"promo": "Promo"})
    prepared, _ = prepare_table(raw, "sales", params)
    plan_raw = read_table(path, params.data.columns, without_sales=True)
    return make_plan(plan_raw, str(path), prepared, params)


def test_a_complete_plan_file_is_read(tmp_path):
    plan, summary = plan_from_file(tmp_path)
    assert summary == {"source": str(tmp_path / "plan.csv"), "rows_outside_window": 0}
    assert set(plan.columns) >= {"store", "item", "date", "open", "Promo", "holiday"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda p: p.iloc[1:], "1 of 168 series x periods of the forecast window"),
        (
            lambda p: p.assign(Shop=p["Shop"].where(p.index != 3, 99)),
            "column 'Shop+item': 1 of 168 rows name series that are not in the sales table; "
            "first at row 4",
        ),
        (
            lambda p: p.assign(Promo=p["Promo"].astype(object).where(p.index != 5, "2")),
            "column 'Promo': 1 of 168 rows are not of kind flag; first at row 6",
        ),
        (
            lambda p: pd.concat([p, p.iloc[[7]]]),
            "rows repeat another row's series and date",
        ),
        (lambda p: p.drop(columns="Open"), "missing required column(s) 'Open' (for open)"),
        (lambda p: p.drop(columns="Promo"), "no column 'Promo'"),
        (
            lambda p: p.assign(date=p["date"].astype(str).where(p.index != 0, "2024/1/1")),
            "column 'date': 1 of 168 rows are not dates",
        ),
    ],
)
def test_a_bad_plan_is_refused_naming_file_column_count_and_row(tmp_path, change, expected):
    with pytest.raises(DataError) as refused:
        plan_from_file(tmp_path, change)
    message = str(refused.value)
    assert message.startswith(str(tmp_path / "plan.csv")) and expected in message, message


def test_an_unseen_category_level_is_missing_and_reported(tmp_path, driven_params, driven_prepared):
    plan, summary = plan_from_file(
        tmp_path, lambda p: p.assign(holiday=np.where(p.index % 10 == 0, "z", p["holiday"]))
    )
    assert summary["unseen_levels"] == {"holiday": int((plan["holiday"] == "z").sum())}
    plan = plan.rename(columns={"Promo": "promo"})
    features = build(driven_prepared, driven_params.horizon, driven_params.features, plan=plan)
    ahead = features["date"] > driven_prepared["date"].max()
    coded = features.loc[ahead, "holiday"]
    assert coded.isna().sum() == summary["unseen_levels"]["holiday"]  # missing, not a crash
    cutoff = driven_prepared["date"].max()
    trained = fit(features, cutoff, driven_params).loaded()
    assert np.isfinite(trained.grid()).all()


def test_attributes_join_per_store_and_refuse_repeated_keys(tmp_path):
    path = tmp_path / "stores.csv"
    path.write_text("Store,StoreType,Distance,Promo2\n1,a,120.5,1\n2,c,,0\n1,a,3,0\n")
    spec = {
        "path": str(path),
        "key": "store",
        "column": "Store",
        "columns": {"StoreType": "category", "Distance": "number", "Promo2": "flag"},
    }
    params = Params.model_validate(merged(DRIVEN, {"data": {"attributes": spec}}))
    with pytest.raises(DataError, match="repeat another row's key; first at row 1"):
        read_attributes(params)
    path.write_text("Store,StoreType,Distance,Promo2,Ignored\n1,a,120.5,1,x\n2,c,,0,7\n")
    attributes = read_attributes(params)
    raw = synthetic.generate(params.data.synthetic)
    prepared, summary = prepare_table(raw, "sales", params, attributes=attributes)
    assert summary.attributes_missing == 1  # store 3 has no row: its attributes are missing
    one = prepared[prepared["store"] == 1].iloc[0]
    assert (one["StoreType"], one["Distance"], one["Promo2"]) == ("a", 120.5, 1.0)
    three = prepared[prepared["store"] == 3].iloc[0]
    assert pd.isna(three["StoreType"]) and np.isnan(three["Distance"]) and three["Promo2"] == 0
    assert "Ignored" not in prepared.columns
    features = build(prepared, params.horizon, params.features)
    kinds = {spec.name: spec.kind for spec in declared(features)}
    assert kinds["StoreType"] == kinds["Distance"] == kinds["Promo2"] == "attribute"


def test_holiday_features_count_days_to_and_since(driven_params):
    dates = pd.Series(pd.to_datetime(["2017-12-23", "2017-12-25", "2017-12-27", "2017-07-01"]))
    got = holiday_features(dates, driven_params.features.holidays)
    assert got["public_holiday"].tolist() == [0, 1, 0, 0]
    assert got["days_to_holiday"].tolist() == [2, 0, 5, 15]  # New Year; July: capped
    assert got["days_since_holiday"][2] == 1  # the 26th
    weekly = holiday_features(
        pd.Series(pd.to_datetime(["2017-12-25"])),
        driven_params.features.holidays,
        freq=synthetic_week(),
    )
    assert weekly["public_holiday"].tolist() == [2]  # both Christmas days in that week


def synthetic_week():
    from demandcast.frequency import WEEK

    return WEEK


def test_the_model_recovers_each_items_promotion_uplift():
    """Forecast with the plan vs with promotions off, per item, against the generator's true
    uplift of each item: within 3 points on average over the items."""
    params = Params.model_validate(
        merged(
            DRIVEN,
            {
                "horizon": 84,
                "data": {"synthetic": {"seed": 11, "stores": 10, "items": 20, "days": 1092}},
                "train": {"n_estimators": 200, "max_depth": 6, "min_child_weight": 20},
            },
        )
    )
    raw = synthetic.generate(params.data.synthetic)
    prepared, _ = prepare_table(raw, "synthetic", params)
    features = build(prepared, params.horizon, params.features)
    cutoff = prepared["date"].max() - pd.Timedelta(days=params.horizon)  # the holdout's plan
    model = fit(features, cutoff, params).loaded()
    table = flag_uplift(model, "promo", by="item")
    truth = synthetic.promo_uplift(
        params.data.synthetic.seed, table.index.to_numpy(), params.data.synthetic
    )
    error = table["uplift"].to_numpy() - truth
    print(
        f"{len(table)} items, mean error {error.mean():.4f}, mean |error| "
        f"{np.abs(error).mean():.4f}"
    )
    assert len(table) >= 10
    assert abs(error.mean()) < 0.03, error
    assert np.abs(error).mean() < 0.05, error
    assert np.corrcoef(table["uplift"], truth)[0, 1] > 0.8


def test_encodings_ignore_closed_rows_too(driven_features):
    cutoff = driven_features.loc[driven_features["sales"].notna(), "date"].max()
    rows = trainable(driven_features, cutoff)
    encoded = add_encodings(driven_features, rows)
    assert np.isfinite(encoded["store_enc"]).all()


def test_closure_features_count_periods_to_the_next_and_since_the_last_closure(
    driven_features,
):
    one = driven_features[(driven_features["store"] == 1) & (driven_features["item"] == 1)]
    closed = np.flatnonzero(one["open"].to_numpy() == 0)
    assert len(closed) > 5
    to_closed, since = one["to_closed"].to_numpy(), one["since_closed"].to_numpy()
    for position in range(closed[0] + 1, closed[-1]):
        after = closed[closed > position]
        before = closed[closed < position]
        assert to_closed[position] == min(after[0] - position, 15)
        assert since[position] == min(position - before[-1], 15)


def test_an_outage_is_not_planned_open_from_a_year_earlier(driven_params, driven_prepared):
    """The default plan copies `open` from 52 weeks earlier; where that day was inside an
    outage (unknown), it takes the same weekday's last known value instead."""
    prepared = driven_prepared.copy()
    end = prepared["date"].max()
    year_before = (
        end + pd.Timedelta(days=1) - pd.Timedelta(days=364),
        end - pd.Timedelta(days=300),
    )
    outage = prepared["store"].eq(1) & prepared["date"].between(*year_before)
    prepared.loc[outage, ["sales", "open"]] = np.nan
    prepared.attrs = driven_prepared.attrs
    plan, _ = make_plan(None, None, prepared, driven_params)
    store_one = plan[plan["store"] == 1]
    last = (
        driven_prepared[driven_prepared["store"] == 1]
        .groupby(driven_prepared["date"].dt.dayofweek)["open"]
        .last()
    )
    expected = last.reindex(store_one["date"].dt.dayofweek).to_numpy()
    early = store_one["date"] < store_one["date"].min() + pd.Timedelta(days=60)
    assert (store_one.loc[early, "open"].to_numpy() == expected[early.to_numpy()]).all()
