"""Each refusal of `prepare`, with the message a person needs, and the gap rule."""

import pandas as pd
import pytest

from demandcast.data.validate import fill_gaps, prepare_table, validate
from demandcast.errors import DataError

MIN_DAYS = 10


def table(days: int = 12, stores=(1, 2), items=(1,)) -> pd.DataFrame:
    dates = pd.date_range("2024-01-01", periods=days).strftime("%Y-%m-%d")
    rows = [(d, s, i, 5.0) for s in stores for i in items for d in dates]
    return pd.DataFrame(rows, columns=["date", "store", "item", "sales"])


def refusal(frame: pd.DataFrame) -> str:
    with pytest.raises(DataError) as info:
        validate(frame, "sales.csv", MIN_DAYS)
    return str(info.value)


def test_clean_table_passes():
    out = validate(table(), "sales.csv", MIN_DAYS)
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


def test_negative_sales():
    frame = table()
    frame.loc[[1, 2, 9], "sales"] = -1
    msg = refusal(frame)
    assert "3 of 24 rows are negative" in msg and "row 2" in msg


def test_duplicate_series_dates():
    frame = pd.concat([table(), table().iloc[[4]]], ignore_index=True)
    msg = refusal(frame)
    assert "store+item+date" in msg and "2 of 25 rows are duplicates" in msg


def test_missing_series_key():
    frame = table()
    frame["store"] = frame["store"].astype(object)
    frame.loc[0, "store"] = None
    assert "'store': 1 of 24 rows are empty" in refusal(frame)


def test_series_with_too_little_history():
    frame = pd.concat([table(days=20, stores=(1,)), table(days=20, stores=(2,)).iloc[15:]])
    msg = refusal(frame)
    assert "1 of 2 series have less than 10 days" in msg and "store=2, item=1 with 5 days" in msg


def test_time_of_day_refused():
    frame = table()
    frame.loc[0, "date"] = "2024-01-01 13:00"
    assert "time of day" in refusal(frame)


def test_gap_rule_fills_missing_days_with_zero_until_the_last_date():
    frame = validate(table(days=12), "t", MIN_DAYS)
    holes = frame.drop(index=[2, 3]).drop(index=frame.index[(frame["store"] == 2)][-2:])
    full, filled = fill_gaps(holes)
    assert filled == 4 and len(full) == len(frame)
    assert full.loc[full["sales"] == 0, "date"].dt.day.tolist() == [3, 4, 11, 12]


def test_store_only_table_and_summary():
    frame = table().drop(columns="item")
    prepared, summary = prepare_table(frame, "t", MIN_DAYS)
    assert list(prepared.columns) == ["date", "store", "sales"]
    assert summary.series == 2 and summary.start == "2024-01-01" and summary.end == "2024-01-12"
    assert summary.days_filled == 0 and summary.rows_in == summary.rows_out == 24
