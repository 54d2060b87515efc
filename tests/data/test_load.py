"""Reading a user's file through the column map."""

import pandas as pd
import pytest

from demandcast.config import ColumnMap
from demandcast.data.load import read_table
from demandcast.errors import DataError

MAP = ColumnMap(date="Date", store="Shop", item="SKU", sales="Units")


def test_renames_and_keeps_string_ids(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text("Date,Shop,SKU,Units,Promo\n2024-01-01,S01,007,3,0\n2024-01-02,S01,007,4,1\n")
    frame = read_table(path, MAP)
    assert list(frame.columns) == ["date", "store", "item", "sales", "Promo"]
    assert frame["store"].tolist() == ["S01", "S01"] and frame["item"].tolist() == ["007", "007"]


def test_plain_integer_ids_become_ints(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text("Date,Shop,SKU,Units\n2024-01-01,1,10,3\n")
    assert read_table(path, MAP)["item"].tolist() == [10]


def test_parquet_and_store_only(tmp_path):
    path = tmp_path / "sales.parquet"
    pd.DataFrame({"day": ["2024-01-01"], "store_id": [3], "qty": [1.5]}).to_parquet(path)
    frame = read_table(path, ColumnMap(date="day", store="store_id", item=None, sales="qty"))
    assert list(frame.columns) == ["date", "store", "sales"]


def test_missing_columns_named_with_what_the_file_has(tmp_path):
    path = tmp_path / "sales.csv"
    path.write_text("Date,Shop,Units\n2024-01-01,1,3\n")
    with pytest.raises(
        DataError,
        match=r"missing required column\(s\) 'SKU' \(for item\).*"
        r"\['Date', 'Shop', 'Units'\].*data.columns",
    ):
        read_table(path, MAP)


@pytest.mark.parametrize("content", ["", "Date,Shop,SKU,Units\n"])
def test_empty_files(tmp_path, content):
    path = tmp_path / "sales.csv"
    path.write_text(content)
    if content:
        assert read_table(path, MAP).empty  # header only: `validate` refuses it, see there
    else:
        with pytest.raises(DataError, match="empty"):
            read_table(path, MAP)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        read_table(tmp_path / "nope.csv", MAP)
    (tmp_path / "sales.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"unsupported file type '\.xlsx'"):
        read_table(tmp_path / "sales.xlsx", MAP)
