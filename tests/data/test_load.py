"""Reading a user's file through the column map; every unreadable file is a message."""

import gzip
import io
import os

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


GOOD = b"Date,Shop,SKU,Units\n2024-01-01,1,10,3\n"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("random.csv", bytes(range(256)) * 2, "not a CSV text file: it holds binary data"),
        (
            "latin1.csv",
            "Date,Shop,SKU,Units\n2024-01-01,Café,10,3\n".encode("latin-1"),
            r"line 2 is not UTF-8 text \(byte 0xe9.*Save it as UTF-8",
        ),
        ("utf16.csv", "Date,Shop,SKU,Units\n".encode("utf-16"), "UTF-16 .*Save it as UTF-8"),
        ("workbook.csv", b"PK\x03\x04" + bytes(64), "Excel workbook: export the sheet as CSV"),
        (
            "ragged.csv",
            GOOD + b"2024-01-02,1,10,3,9\n",
            r"line 3 has 5 fields, the header has 4\. Quote values",
        ),
        (  # one field more on the first row: not read as an index, shifting the columns
            "first_ragged.csv",
            b"Date,Shop,SKU,Units\n2024-01-01,1,10,3,9\n2024-01-02,1,10,3\n",
            r"line 2 has 5 fields, the header has 4",
        ),
        (
            "quote.csv",
            GOOD + b'2024-01-02,"1,10,3\n',
            r"quoted value is never closed \(from line 3\)",
        ),
        ("garbage.parquet", b"not parquet at all", r"not a readable Parquet file .*save it as CSV"),
        ("fake.csv.gz", GOOD, r"not a readable gzip file .*Compress it again"),
        ("cut.csv.gz", gzip.compress(GOOD * 20)[:-12], r"not a readable gzip file"),
    ],
)
def test_every_unreadable_file_is_a_message_naming_it(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=expected) as info:
        read_table(path, MAP)
    assert str(info.value).startswith(str(path))


def test_a_folder_or_an_unreadable_file_is_a_message(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path / "dir.csv", MAP)
    locked = tmp_path / "locked.csv"
    locked.write_bytes(GOOD)
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):  # root reads anything
            pytest.skip("running as root: every file is readable")
        with pytest.raises(DataError, match="cannot be read: Permission denied"):
            read_table(locked, MAP)
    finally:
        locked.chmod(0o644)


def test_a_byte_order_mark_and_gzip_are_read(tmp_path):
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + GOOD)
    (tmp_path / "sales.csv.gz").write_bytes(gzip.compress(GOOD))
    for name in ("bom.csv", "sales.csv.gz"):
        assert read_table(tmp_path / name, MAP)["sales"].tolist() == [3]


def test_a_carried_column_of_mixed_types_is_read_as_text_and_writes_to_parquet(tmp_path):
    # pandas infers CSV types per block of rows (2**18 rows for 5 columns): a column that is
    # numbers in one block and text in another comes out as a mix of ints and strs, which
    # pyarrow cannot write ("Conversion failed for column Promo with type object").
    rows = 2**18 + 10
    body = "2024-01-01,1,10,3,0\n" * (rows - 1) + "2024-01-01,1,10,3,a\n"
    path = tmp_path / "big.csv"
    path.write_text("Date,Shop,SKU,Units,Promo\n" + body)
    frame = read_table(path, MAP)
    assert set(frame["Promo"].map(type)) == {str} and set(frame["Promo"]) == {"0", "a"}
    frame.to_parquet(io.BytesIO(), index=False)


def test_a_delimiter_at_the_end_of_every_row_is_tolerated(tmp_path):
    path = tmp_path / "trailing.csv"
    path.write_bytes(b"Date,Shop,SKU,Units\n2024-01-01,1,10,3,\n2024-01-02,1,10,4,\n")
    frame = read_table(path, MAP)
    assert frame["date"].tolist() == ["2024-01-01", "2024-01-02"]
    assert frame["sales"].tolist() == [3, 4]
