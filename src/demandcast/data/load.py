"""Read a user's long-format daily sales file (CSV or Parquet) into the canonical columns.

Every way a file can fail to read (not UTF-8, a row with more fields than the header, an
unclosed quote, a damaged Parquet or gzip file, no permission) is a :class:`DataError` naming
the file, the line where it is known, and what to do.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import warnings
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import pandas as pd
import pyarrow as pa

from demandcast.config import ColumnMap
from demandcast.data.schema import DATE, ITEM, OPEN, SALES, STORE
from demandcast.errors import DataError

if TYPE_CHECKING:
    import dask.dataframe as dd

READERS = {".csv": "csv", ".txt": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
ENCODING = "utf-8"  # CSV files are read as UTF-8 (a byte-order mark is allowed)
SAVE_AS_UTF8 = "Save it as UTF-8 (in Excel: Save As > 'CSV UTF-8 (Comma delimited)')."
# What the first bytes of a file say it is, when it does not read as CSV text.
SIGNATURES = {
    b"PAR1": "a Parquet file: name it .parquet",
    b"\x1f\x8b": "gzip-compressed: name it .csv.gz",
    b"PK\x03\x04": "a ZIP archive or an Excel workbook: export the sheet as CSV (UTF-8)",
    b"\xff\xfe": "UTF-16 text (Excel's 'Unicode Text'). " + SAVE_AS_UTF8,
    b"\xfe\xff": "UTF-16 text. " + SAVE_AS_UTF8,
}


def read_file(path: Path | str, text: dict[str, type] | None = None) -> pd.DataFrame:
    """A CSV or Parquet file as it is (``text``: columns read as text from a CSV), or a
    :class:`DataError` saying what is wrong with it."""
    path = Path(path)
    read_file_head(path)
    kind = READERS[path.suffix.lower()]
    return _read_csv(path, text or {}) if kind == "csv" else _read_parquet(path)


def read_table(
    path: Path | str, columns: ColumnMap, *, without_sales: bool = False
) -> pd.DataFrame:
    """Load ``path`` and rename the mapped columns to the canonical names; values are untouched.
    ``without_sales``: a plan file (the days to forecast have no sales yet).

    Key columns are read as text from CSV, then turned into integers only when every value is a
    plain integer without leading zeros, so IDs like ``"007"`` survive. Other columns keep the
    type pandas infers for the whole column; one whose values still mix types (text in some
    rows, numbers in others) is read as text, so that it is carried along whatever it holds.
    """
    wanted = columns.mapped()
    if without_sales:
        wanted.pop(SALES, None)
    keys: dict[str, type] = {wanted[k]: str for k in (STORE, ITEM) if k in wanted}
    frame = read_file(path, keys)
    missing = [
        f"{theirs!r} (for {canonical})"
        for canonical, theirs in wanted.items()
        if theirs not in frame.columns
    ]
    if missing:
        raise DataError(
            f"{path}: missing required column(s) {', '.join(missing)}; the file has "
            f"{list(frame.columns)}. Fix data.columns in params.yaml to name your columns."
        )
    clash = [
        c
        for c in (DATE, STORE, ITEM, SALES, OPEN)
        if c in frame.columns and c not in wanted.values() and c in wanted
    ]
    frame = frame.drop(columns=clash).rename(columns={v: k for k, v in wanted.items()})
    for key in (STORE, ITEM):
        if key in frame.columns and frame[key].dtype == object:
            frame[key] = int_if_plain(frame[key])
    for name in frame.columns:
        if name not in (DATE, STORE, ITEM, SALES) and _mixed(frame[name]):
            frame[name] = _as_text(frame[name])
    return frame


BLOCK = 64 * 2**20  # bytes of CSV per dask partition read


def read_table_lazily(path: Path | str, columns: ColumnMap) -> dd.DataFrame:
    """:func:`read_table` for a table too large for one process: a dask DataFrame in blocks
    of rows, the mapped columns renamed to the canonical names. A CSV's columns are all read
    as text (typed per partition by ``prepare_table``, as mixed columns are here); the key
    columns are left as text (see ``stages/raw.py``)."""
    import dask.dataframe as dd

    path = Path(path)
    read_file_head(path)  # the file's own errors, as read_table says them
    wanted = columns.mapped()
    if READERS[path.suffix.lower()] == "csv":
        frame = dd.read_csv(  # absolute: read by the workers
            path.resolve(), dtype=str, keep_default_na=True, encoding=ENCODING, blocksize=BLOCK
        )
    else:
        frame = dd.read_parquet(path.resolve())
    missing = [f"{v!r} (for {k})" for k, v in wanted.items() if v not in frame.columns]
    if missing:
        raise DataError(
            f"{path}: missing required column(s) {', '.join(missing)}; the file has "
            f"{list(frame.columns)}. Fix data.columns in params.yaml to name your columns."
        )
    clash = [c for c in (DATE, STORE, ITEM, SALES, OPEN) if c in frame.columns and c in wanted]
    clash = [c for c in clash if c not in wanted.values()]
    frame = frame.drop(columns=clash).rename(columns={v: k for k, v in wanted.items()})
    for key in (STORE, ITEM):
        if key in frame.columns:
            frame[key] = frame[key].astype("string").str.strip().astype(object)
    return frame


def read_file_head(path: Path) -> None:
    """Refuse a file :func:`read_file` would refuse for what it is (missing, a folder, an
    unsupported type, not text), without reading it whole."""
    if not path.exists():
        raise DataError(f"{path}: file not found (check the path in params.yaml)")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a file (check the path in params.yaml)")
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")
    if kind == "csv":
        _sniff(path)


def _read_csv(path: Path, keys: dict[str, type]) -> pd.DataFrame:
    try:
        with warnings.catch_warnings(record=True) as caught:
            # mixed types in a column: handled by read_table (read as text), not the user's task
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            warnings.simplefilter("always", pd.errors.ParserWarning)
            # index_col=False: a first row with one field more than the header must not turn
            # the first column into the index (shifting every column); the extra fields are
            # dropped, and checked to be empty below
            frame = pd.read_csv(
                path, dtype=keys, keep_default_na=True, encoding=ENCODING, index_col=False
            )
        if any("Length of header" in str(w.message) for w in caught):
            _check_extra_fields(path, len(frame.columns))
        return frame
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty (no header, no rows)") from None
    except UnicodeError:
        raise _not_text(path) from None
    except pd.errors.ParserError as exc:
        raise _unparsable(path, exc) from None
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise DataError(
            f"{path}: not a readable gzip file ({exc}). Compress it again with gzip, or save "
            "it uncompressed as .csv."
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _check_extra_fields(path: Path, width: int) -> None:
    """Rows have more fields than the header: accept it only when every extra field is empty (a
    delimiter at the end of each line), else refuse naming the first line with a value there."""
    with _open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        try:
            next(reader, None)
            extra = next((row for row in reader if any(x.strip() for x in row[width:])), None)
        except csv.Error as exc:
            raise DataError(f"{path}: line {reader.line_num} is not readable CSV: {exc}") from None
        if extra is not None:
            raise DataError(
                f"{path}: line {reader.line_num} has {len(extra)} fields, the header has "
                f'{width}. Quote values that contain a comma ("1,5"), or remove the extra '
                "fields from that row."
            )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (pa.ArrowException, ValueError, TypeError, NotImplementedError) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DataError(
            f"{path}: not a readable Parquet file ({detail}). Export it again, or save it as "
            "CSV (UTF-8) with a .csv name."
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def _open_binary(path: Path) -> BinaryIO:
    if path.suffix.lower() == ".gz":
        return cast(BinaryIO, gzip.open(path, "rb"))
    return path.open("rb")


def _sniff(path: Path) -> None:
    """Refuse a file that is plainly not CSV text (by its first bytes) before parsing it."""
    try:
        with _open_binary(path) as f:
            head = f.read(8192)
    except (OSError, EOFError, zlib.error):
        return  # read_csv says what is wrong with it
    for magic, what in SIGNATURES.items():
        if head.startswith(magic):
            raise DataError(f"{path}: not a CSV text file: it looks like {what}")
    if b"\x00" in head:
        try:
            codecs.getincrementaldecoder(ENCODING)().decode(head)
        except UnicodeDecodeError:
            raise DataError(
                f"{path}: not a CSV text file: it holds binary data. Export the table as CSV "
                "(UTF-8)."
            ) from None


def _not_text(path: Path) -> DataError:
    """The file is not UTF-8 text: the first line that is not."""
    try:
        with _open_binary(path) as f:
            decoder = codecs.getincrementaldecoder(ENCODING)()
            line = 0
            for line, raw in enumerate(f, start=1):
                try:
                    decoder.decode(raw)
                except UnicodeDecodeError as exc:
                    return _bad_line(path, line, raw, exc.start)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                return _bad_line(path, line, b"", None)
    except (OSError, EOFError, zlib.error):
        pass
    return DataError(f"{path}: not {ENCODING.upper()} text. {SAVE_AS_UTF8}")


def _bad_line(path: Path, line: int, raw: bytes, start: int | None) -> DataError:
    where = ""
    if start is not None and start < len(raw):
        where = f"byte 0x{raw[start]:02x} at position {start + 1}; "
    return DataError(
        f"{path}: line {line} is not {ENCODING.upper()} text ({where}the file may be Latin-1 or "
        f"Windows-1252). {SAVE_AS_UTF8}"
    )


def _unparsable(path: Path, exc: pd.errors.ParserError) -> DataError:
    text = str(exc).strip()
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        expected, line, saw = fields.groups()
        return DataError(
            f"{path}: line {line} has {saw} fields, the header has {expected}. Quote values "
            'that contain a comma ("1,5"), or remove the extra fields from that row.'
        )
    if "EOF inside string" in text:
        row = re.search(r"row (\d+)", text)
        where = f" (from line {int(row[1]) + 1})" if row else ""
        return DataError(
            f'{path}: a quoted value is never closed{where}: every opening " needs a closing '
            "one. Fix that row."
        )
    return DataError(
        f"{path}: not a readable CSV file ({text.removeprefix('Error tokenizing data. ')}). "
        "Fix the row it names; values that contain a comma or a quote must be quoted."
    )


def _mixed(values: pd.Series) -> bool:
    """An object column whose values are of different types (text and numbers, say)."""
    return values.dtype == object and pd.api.types.infer_dtype(values, skipna=True).startswith(
        "mixed"
    )


def _as_text(values: pd.Series) -> pd.Series:
    """Every value as text; missing values stay missing."""
    return values.map(str, na_action="ignore").astype(object)


def int_if_plain(values: pd.Series) -> pd.Series:
    """IDs as integers when every one is a plain integer (no leading zeros), else as text."""
    text = values.astype("string").str.strip()
    plain = text.str.fullmatch(r"0|-?[1-9][0-9]{0,17}")
    if len(text) and bool(plain.fillna(False).all()):
        return text.astype("int64")
    return text.astype(object).where(text.notna(), None)
