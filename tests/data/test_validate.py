"""Each refusal of `prepare`, with the message a person needs, and the gap rule."""

import pandas as pd
import pytest

from demandcast.config import Params
from demandcast.data.schema import frequency_of
from demandcast.data.validate import (
    detect_frequency,
    evaluable_series,
    fill_gaps,
    prepare_table,
    validate,
)
from demandcast.errors import DataError
from demandcast.frequency import DAY, WEEK

# a series is evaluated from 2 x 3 + 4 = 10 days of history
PARAMS = Params.model_validate({"horizon": 3, "prepare": {"min_train_days": 4}})


def params(**prepare) -> Params:
    return Params.model_validate({"horizon": 3, "prepare": {"min_train_days": 4, **prepare}})


def table(days: int = 12, stores=(1, 2), items=(1,)) -> pd.DataFrame:
    dates = pd.date_range("2024-01-01", periods=days).strftime("%Y-%m-%d")
    rows = [(d, s, i, 5.0) for s in stores for i in items for d in dates]
    return pd.DataFrame(rows, columns=["date", "store", "item", "sales"])


def refusal(frame: pd.DataFrame, p: Params = PARAMS) -> str:
    with pytest.raises(DataError) as info:
        prepare_table(frame, "sales.csv", p)
    return str(info.value)


def test_clean_table_passes():
    out, negative = validate(table(), "sales.csv")
    assert negative == 0
    assert out["date"].dtype == "datetime64[ns]" and out["sales"].dtype == "float64"


def test_empty_table():
    assert "no rows" in refusal(table().iloc[:0])


def test_unparsable_dates_name_column_count_and_row():
    frame = table()
    frame.loc[[3, 7], "date"] = ["2024-02-30", "yesterday"]
    msg = refusal(frame)
    assert "sales.csv" in msg and "'date'" in msg and "2 of 24 rows" in msg
    assert "row 4" in msg and "2024-02-30" in msg


def test_non_numeric_sales():
    frame = table()
    frame["sales"] = frame["sales"].astype(object)
    frame.loc[5, "sales"] = "n/a"
    msg = refusal(frame)
    assert "'sales'" in msg and "1 of 24 rows are not numbers" in msg and "'n/a'" in msg


def test_negative_sales_are_refused_by_default_naming_the_option():
    frame = table()
    frame.loc[[1, 2, 9], "sales"] = -1
    msg = refusal(frame)
    assert "3 of 24 rows are negative" in msg and "row 2" in msg
    assert "prepare.negative_sales" in msg


def test_negative_sales_counted_as_zero_or_dropped():
    frame = table()
    frame.loc[[1, 2, 9], "sales"] = -1
    zeroed, summary = prepare_table(frame, "t", params(negative_sales="zero"))
    assert summary.negative_sales == 3 and summary.negative_rule == "zero"
    assert len(zeroed) == 24 and (zeroed["sales"] >= 0).all() and (zeroed["sales"] == 0).sum() == 3
    dropped, summary = prepare_table(frame, "t", params(negative_sales="drop", gaps="zero"))
    # the dropped rows are gaps inside their series now: no sales those days
    assert summary.negative_sales == 3 and summary.filled_zero == 3 and len(dropped) == 24


def test_duplicate_series_dates():
    frame = pd.concat([table(), table().iloc[[4]]], ignore_index=True)
    msg = refusal(frame)
    assert "store+item+date" in msg and "2 of 25 rows are duplicates" in msg


def test_missing_series_key():
    frame = table()
    frame["store"] = frame["store"].astype(object)
    frame.loc[0, "store"] = None
    assert "'store': 1 of 24 rows are empty" in refusal(frame)


def test_short_series_are_kept_and_counted_not_refused():
    frame = pd.concat([table(days=20, stores=(1,)), table(days=20, stores=(2,)).iloc[15:]])
    prepared, summary = prepare_table(frame, "t", PARAMS)
    assert summary.series == 2 and summary.series_not_evaluated == 1
    assert prepared.groupby("store").size().to_dict() == {1: 20, 2: 5}
    assert evaluable_series(prepared, PARAMS)["store"].tolist() == [1]


def test_refused_only_when_no_series_can_be_evaluated():
    msg = refusal(table(days=9))
    assert "no series has the 10 days of history" in msg and "longest has 9" in msg


def test_time_of_day_refused():
    frame = table()
    frame.loc[0, "date"] = "2024-01-01 13:00"
    assert "time of day" in refusal(frame)


def test_gap_rule_fills_missing_days_with_zero_until_the_last_date():
    frame, _ = validate(table(days=12), "t")
    holes = frame.drop(index=[2, 3]).drop(index=frame.index[(frame["store"] == 2)][-2:])
    full, zero, unknown = fill_gaps(holes, DAY, "auto", outage_periods=28)
    assert (zero, unknown) == (4, 0) and len(full) == len(frame)
    assert full.loc[full["sales"] == 0, "date"].dt.day.tolist() == [3, 4, 11, 12]


def test_a_long_run_of_missing_days_inside_a_series_is_an_outage():
    frame, _ = validate(table(days=60, stores=(1, 2)), "t")  # rows 0..59: store 1
    # store 1: days 11..40 (30 days) missing: an outage; 45..46: no sales; 59..60: trailing
    holes = frame.drop(index=[*range(10, 40), 44, 45, 58, 59])
    full, zero, unknown = fill_gaps(holes, DAY, "auto", outage_periods=28)
    assert (zero, unknown) == (4, 30)
    store_1 = full[full["store"] == 1]
    day = store_1.set_index(store_1["date"].dt.dayofyear)["sales"]
    assert day.loc[11:40].isna().all() and day.loc[[45, 46, 59, 60]].eq(0).all()
    assert day.drop(index=range(11, 41)).notna().all()
    # a run one day shorter than outage_periods is read as days without sales
    _, zero, unknown = fill_gaps(holes, DAY, "auto", outage_periods=31)
    assert (zero, unknown) == (34, 0)
    # gaps: zero reads every gap as no sales; gaps: missing every gap as unknown
    assert fill_gaps(holes, DAY, "zero", 28)[1:] == (34, 0)
    assert fill_gaps(holes, DAY, "missing", 28)[1:] == (0, 34)


def test_prepare_reports_each_kind_of_gap():
    frame = table(days=60, stores=(1, 2))
    holes = frame.drop(index=[*range(10, 40), 44])
    prepared, summary = prepare_table(holes, "t", PARAMS)
    assert (summary.filled_zero, summary.outage) == (1, 30)
    assert prepared["sales"].isna().sum() == 30


def weekly(weeks: int = 30, stores=(1, 2)) -> pd.DataFrame:
    dates = pd.date_range("2024-01-05", periods=weeks, freq="7D").strftime("%Y-%m-%d")  # Fridays
    rows = [(d, s, 100.0) for s in stores for d in dates]
    return pd.DataFrame(rows, columns=["date", "store", "sales"])


def test_weekly_table_is_detected_and_gap_filled_in_weeks():
    frame = weekly().drop(index=[3, 4])
    prepared, summary = prepare_table(frame, "t", PARAMS)
    assert summary.frequency == "weekly" and frequency_of(prepared) == WEEK
    assert summary.filled_zero == 2 and len(prepared) == 60  # 2 missing weeks, not 14 days
    assert (prepared["date"].dt.dayofweek == 4).all()
    _, daily = prepare_table(table(), "t", PARAMS)
    assert daily.frequency == "daily"


def test_weekly_forced_on_daily_dates_is_refused():
    msg = refusal(
        table(),
        params().model_copy(
            update={"data": params().data.model_copy(update={"frequency": "weekly"})}
        ),
    )
    assert "data.frequency is weekly" in msg and "7 different weekdays" in msg


def test_store_only_table_and_summary():
    frame = table().drop(columns="item")
    prepared, summary = prepare_table(frame, "t", PARAMS)
    assert list(prepared.columns) == ["date", "store", "sales"]
    assert summary.series == 2 and summary.start == "2024-01-01" and summary.end == "2024-01-12"
    assert summary.filled_zero == 0 and summary.rows_in == summary.rows_out == 24


@pytest.mark.parametrize("date", ["2024", "2024-01", "2024-1-5", "20240105", "05/01/2024"])
def test_only_iso_dates_without_a_date_format(date):
    frame = table()
    frame.loc[4, "date"] = date
    msg = refusal(frame)
    assert "'date': 1 of 24 rows are not dates in the form YYYY-MM-DD" in msg
    assert f"row 5: date={date!r}" in msg and "data.date_format" in msg


def test_iso_dates_with_a_midnight_time_and_parsed_dates_are_read():
    frame = table()
    frame["date"] = frame["date"] + "T00:00:00"
    assert validate(frame, "t")[0]["date"].dt.day.tolist()[:2] == [1, 2]
    frame["date"] = pd.to_datetime(frame["date"])  # a Parquet date column
    assert validate(frame, "t")[0]["date"].dt.day.tolist()[:2] == [1, 2]


def test_a_date_format_must_match_exactly():
    frame = table()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%d/%m/%Y")
    day_first = params().model_copy(
        update={"data": params().data.model_copy(update={"date_format": "%d/%m/%Y"})}
    )
    out, _ = prepare_table(frame, "t", day_first)
    assert out["date"].min() == pd.Timestamp("2024-01-01")
    frame.loc[2, "date"] = "2024-01-03"
    msg = refusal(frame, day_first)
    assert "1 of 24 rows do not match data.date_format '%d/%m/%Y'" in msg and "row 3" in msg


def test_mixed_time_zone_offsets_are_refused():
    frame = table()
    frame.loc[0, "date"] = "2024-01-01T00:00:00+01:00"
    frame.loc[1, "date"] = "2024-01-02T00:00:00+02:00"
    assert "mix time zone offsets" in refusal(frame)


def dated(dates: list[str], stores=(1, 2)) -> pd.DataFrame:
    rows = [(d, s, 1, 5.0) for s in stores for d in dates]
    return pd.DataFrame(rows, columns=["date", "store", "item", "sales"])


def with_frequency_param(frequency: str) -> Params:
    return params().model_copy(
        update={"data": params().data.model_copy(update={"frequency": frequency})}
    )


def test_a_monthly_table_is_refused_not_filled_with_zeros():
    months = pd.date_range("2022-01-01", periods=24, freq="MS").strftime("%Y-%m-%d").tolist()
    msg = refusal(dated(months))
    assert "consecutive dates are 31 days apart" in msg and "2022-01-01, 2022-02-01" in msg
    assert "monthly or irregular tables are not supported" in msg
    assert "daily or weekly" in msg and "data.frequency" not in msg
    # setting the frequency does not make a monthly table daily
    with pytest.raises(DataError, match="31 days apart"):
        detect_frequency(pd.to_datetime(pd.Series(months)), "daily", "t")


@pytest.mark.parametrize(
    ("dates", "step"),
    [
        (pd.date_range("2024-01-05", periods=20, freq="14D"), 14),  # biweekly, same weekday
        (pd.date_range("2024-01-01", periods=30, freq="3D"), 3),  # every third day
        (
            pd.DatetimeIndex(
                ["2024-01-01", "2024-01-03", "2024-01-07", "2024-01-08", "2024-01-12", "2024-01-14"]
            ),
            2,
        ),
    ],
)
def test_irregular_dates_are_refused(dates, step):
    msg = refusal(dated(dates.strftime("%Y-%m-%d").tolist()))
    assert f"consecutive dates are {step} days apart" in msg


def test_a_file_without_its_zero_sales_periods_reads_with_the_frequency_set():
    # one series with a sale every other day (the days without sales are left out)
    odd_days = pd.date_range("2024-01-01", periods=12, freq="2D")
    sparse = dated(odd_days.strftime("%Y-%m-%d").tolist(), stores=(1,))
    msg = refusal(sparse)
    assert "2 days apart" in msg and "set data.frequency: daily" in msg
    _, summary = prepare_table(sparse, "t", with_frequency_param("daily"))
    assert summary.frequency == "daily" and summary.filled_zero == 11
    # two such series that together cover the calendar need no setting
    even_days = (odd_days + pd.Timedelta(days=1)).strftime("%Y-%m-%d").tolist()
    both = pd.concat([sparse, dated(even_days, stores=(2,))], ignore_index=True)
    _, summary = prepare_table(both, "t", PARAMS)
    assert summary.frequency == "daily" and summary.filled_zero == 12 + 11  # + a trailing day


def test_a_weekly_table_read_as_daily_is_refused():
    with pytest.raises(DataError, match="7 days apart"):
        detect_frequency(pd.to_datetime(weekly()["date"]), "daily", "t")
    assert detect_frequency(pd.to_datetime(weekly()["date"]), "weekly", "t") == WEEK


def test_refusals_name_the_users_own_columns():
    mapped = Params.model_validate(
        {
            "horizon": 3,
            "prepare": {"min_train_days": 4},
            "data": {
                "columns": {"date": "Day", "store": "Shop", "item": "Article", "sales": "Units"}
            },
        }
    )
    frame = table()
    frame.loc[4, "sales"] = -1
    msg = refusal(frame, mapped)
    assert "column 'Units': 1 of 24 rows are negative" in msg
    assert "Day='2024-01-05', Shop=1, Article=1, Units=-1" in msg
