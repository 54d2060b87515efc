import numpy as np
import pandas as pd

from demandcast.config import Synthetic
from demandcast.data import synthetic
from demandcast.data.schema import TRUE_MEAN

# The structure without the known-in-advance drivers (promotions, holidays, closed days) ...
CFG = Synthetic(
    seed=3,
    stores=4,
    items=5,
    days=3 * 364,
    yearly_growth=0.1,
    promo_share=0,
    holidays=None,
    closed_sundays=0,
    closed_holidays=0,
)
# ... and with them, as the default data has them.
DRIVEN = Synthetic(seed=3, stores=10, items=5, days=2 * 364)


def test_deterministic_from_seed():
    a, b = synthetic.generate(CFG), synthetic.generate(CFG)
    pd.testing.assert_frame_equal(a, b)
    other = synthetic.generate(CFG.model_copy(update={"seed": 4}))
    assert not np.array_equal(a["sales"], other["sales"])


def test_shape_and_contract():
    frame = synthetic.generate(CFG)
    assert len(frame) == 4 * 5 * 3 * 364
    columns = ["date", "store", "item", "sales", "open", "promo", "holiday", TRUE_MEAN]
    assert list(frame.columns) == columns
    assert (frame["sales"] >= 0).all() and frame["sales"].dtype.kind == "i"
    assert not frame.duplicated(["store", "item", "date"]).any()


def test_extending_days_keeps_every_earlier_value():
    short = synthetic.generate(CFG)
    longer = synthetic.generate(CFG.model_copy(update={"days": CFG.days + 30}))
    merged = short.merge(longer, on=["store", "item", "date"], suffixes=("", "_long"))
    assert len(merged) == len(short)
    assert (merged["sales"] == merged["sales_long"]).all()


def test_true_mean_is_multiplicative():
    frame = synthetic.generate(CFG)
    mean = frame[TRUE_MEAN]
    # store x item separability: the ratio of two stores' means is the same for every item and day
    wide = frame.pivot_table(index=["item", "date"], columns="store", values=TRUE_MEAN)
    ratio = wide[2] / wide[1]
    assert np.allclose(ratio, ratio.iloc[0])
    # weekday profile: within one series and one week of one month, means follow WEEKDAY exactly
    one = frame[(frame["store"] == 1) & (frame["item"] == 1)].set_index("date")[TRUE_MEAN]
    week = one["2013-07-08":"2013-07-14"]  # Monday..Sunday, all July
    growth = (1 + CFG.yearly_growth) ** ((week.index - week.index[0]).days / 365.25)
    profile = week.to_numpy() / growth
    assert np.allclose(profile / profile[0], synthetic.WEEKDAY / synthetic.WEEKDAY[0])
    # yearly growth: same day one year (52 weeks) later, same weekday and month
    later = one.shift(-364).dropna()
    assert np.allclose(
        (later / one.loc[later.index]).loc["2013-03-10":"2013-03-20"],
        (1 + CFG.yearly_growth) ** (364 / 365.25),
    )
    # Poisson noise: the sales' mean and variance around the true mean agree
    resid = frame["sales"] - mean
    assert abs(resid.mean()) < 0.05 * mean.mean()
    assert 0.9 < (resid**2).mean() / mean.mean() < 1.1


def test_changes_and_new_items_apply_from_their_start():
    changed = Synthetic.model_validate(
        {
            **CFG.model_dump(),
            "changes": [{"start": "2015-01-01", "level_shift": 0.3, "stores": [2]}],
            "new_items": 2,
            "new_items_start": "2015-06-01",
        }
    )
    base = synthetic.generate(CFG).set_index(["store", "item", "date"])[TRUE_MEAN]
    frame = synthetic.generate(changed).set_index(["store", "item", "date"])[TRUE_MEAN]
    common = frame.reindex(base.index)
    ratio = common / base
    dates = ratio.index.get_level_values("date")
    stores = ratio.index.get_level_values("store")
    shifted = (dates >= "2015-01-01") & (stores == 2)
    assert np.allclose(ratio[shifted], 1.3) and np.allclose(ratio[~shifted], 1.0)
    new = frame.loc[frame.index.get_level_values("item") > CFG.items]
    assert new.index.get_level_values("date").min() == pd.Timestamp("2015-06-01")
    assert new.index.get_level_values("item").nunique() == 2


def test_drivers_move_the_true_mean_as_documented():
    frame = synthetic.generate(DRIVEN)
    plain = synthetic.generate(
        DRIVEN.model_copy(
            update={"promo_share": 0, "holidays": None, "closed_sundays": 0, "closed_holidays": 0}
        )
    )
    ratio = frame[TRUE_MEAN] / plain[TRUE_MEAN]
    closed = frame["open"] == 0
    assert (frame.loc[closed, TRUE_MEAN] == 0).all() and (frame.loc[closed, "sales"] == 0).all()
    sundays = frame["date"].dt.dayofweek == 6
    closed_on_sunday = frame[sundays & (frame["holiday"] == "0")].groupby("store")["open"].max()
    assert 0 < (closed_on_sunday == 0).sum() < DRIVEN.stores  # some stores, not all
    assert set(frame["holiday"]) == {"0", "a", "b", "c"}  # Germany: public, Easter, Christmas
    assert 0.07 < frame["promo"].mean() < 0.13  # about promo_share of the item-days
    # promotion days: the item's own uplift, within promo_uplift
    before = synthetic.before_holiday(DRIVEN, pd.DatetimeIndex(frame["date"]))
    promo = (frame["promo"] == 1) & ~closed & ~before
    uplift = (ratio[promo] - 1).groupby(frame.loc[promo, "item"]).agg(["min", "max"])
    assert np.allclose(uplift["min"], uplift["max"])  # one uplift per item
    truth = synthetic.promo_uplift(DRIVEN.seed, uplift.index.to_numpy(), DRIVEN)
    assert np.allclose(uplift["min"], truth) and ((truth >= 0.1) & (truth <= 0.6)).all()
    # the rest: 1 (or the pre-holiday uplift on the two days before a holiday)
    rest = (frame["promo"] == 0) & ~closed
    assert np.allclose(ratio[rest], np.where(before[rest.to_numpy()], synthetic.PRE_HOLIDAY, 1))


def test_plan_continues_the_drivers_after_the_data():
    longer = synthetic.generate(DRIVEN.model_copy(update={"days": DRIVEN.days + 30}))
    after = longer[longer["date"] > longer["date"].max() - pd.Timedelta(days=30)]
    plan = synthetic.plan(DRIVEN, 30)
    merged = plan.merge(after, on=["date", "store", "item"], suffixes=("", "_data"))
    assert len(merged) == len(plan) == DRIVEN.stores * DRIVEN.items * 30
    for column in ("open", "promo", "holiday"):
        assert (merged[column] == merged[f"{column}_data"]).all()
