"""Messy CSV bytes through the prepare path: every file is read or refused with a message.

Property: whatever bytes a user's CSV holds (a clean table mangled by encodings, a BOM, blank
lines, quoted numbers, mixed-type and extra columns, ragged rows, odd dates, random bytes),
``load_raw`` + ``prepare_table`` either succeed and the prepared table writes to Parquet, or
raise :class:`DataError` with a message naming the file. Never another exception.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demandcast.config import Params
from demandcast.data.validate import prepare_table
from demandcast.errors import DataError
from demandcast.stages.raw import load_raw

EXAMPLES = 150
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
HEADER = ["date", "store", "item", "sales"]
ODD_DATES = ["2024", "2024-01", "2024-1-5", "05/01/2024", "20240105", "2024-01-05T00:00:00Z"]
ODD_VALUES = ["0", "a", "", "1.5", "TRUE", "nan", "-3", "1e400", '"7"', "0x1f", " 4 ", "é", "\x00"]
ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]


def clean_rows(days: int, stores: int) -> list[list[str]]:
    dates = pd.date_range("2024-01-01", periods=days).strftime("%Y-%m-%d")
    return [
        [d, str(s), "1", str((i * 7 + s) % 11)]
        for s in range(1, stores + 1)
        for i, d in enumerate(dates)
    ]


def sometimes(draw: st.DrawFn, one_in: int = 3) -> bool:
    return draw(st.integers(1, one_in)) == 1


# Covariates a chain's export carries, declared in params, with the values such files hold.
COVARIATES = {"Promo": "flag", "State": "category", "Price": "number"}
COVARIATE_VALUES = {
    "Promo": ["0", "1", "TRUE", "false", "Yes", "no", ""],
    "State": ["0", "a", "b", "0.0", "", "Ä"],
    "Price": ["1.5", "2", "", '"3.25"', " 4 ", "1e3"],
    "Open": ["1", "0", "1", "true"],
}


@st.composite
def messy_csv(draw: st.DrawFn, covariates: bool = False) -> bytes:
    rows = clean_rows(draw(st.integers(10, 16)), draw(st.integers(1, 3)))
    header = list(HEADER)
    cell = st.one_of(st.sampled_from(ODD_VALUES), st.text(max_size=6))
    if covariates:  # mapped columns of each kind, mostly valid values
        for name, values in COVARIATE_VALUES.items():
            header.append(name)
            for row in rows:
                row.append(draw(st.sampled_from(values)) if not sometimes(draw, 40) else draw(cell))
    if sometimes(draw, 2):  # extra columns, of mixed types, some named like mapped ones
        for k in range(draw(st.integers(1, 3))):
            header.append(draw(st.sampled_from(["promo", "sales", "date", "", "x y", f"c{k}"])))
            for row in rows:
                row.append(draw(cell))
    if sometimes(draw):  # odd cells anywhere
        for _ in range(draw(st.integers(1, 3))):
            row = draw(st.sampled_from(rows))
            column = draw(st.integers(0, len(row) - 1))
            row[column] = draw(st.one_of(cell, st.sampled_from(ODD_DATES)))
    if sometimes(draw, 4):  # dates in an odd format
        fmt = draw(st.sampled_from(ODD_DATES))
        for row in rows[: draw(st.integers(1, len(rows)))]:
            row[0] = fmt
    if sometimes(draw):  # quoted numbers
        for row in rows:
            row[3] = f'"{row[3]}"'
    if sometimes(draw, 4):  # ragged rows: a field more or less
        row = draw(st.sampled_from(rows))
        if draw(st.booleans()):
            row.append("9")
        else:
            row.pop()
    lines = [",".join(header)] + [",".join(row) for row in rows]
    for _ in range(draw(st.integers(0, 3))):  # blank lines
        lines.insert(draw(st.integers(1, len(lines))), "")
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines) + "\n"
    encoding = draw(st.sampled_from(ENCODINGS)) if sometimes(draw) else "utf-8"
    data = text.encode(encoding, errors="replace")
    if sometimes(draw, 4):  # random bytes spliced in
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    return data


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("messy")


def prepare_bytes(
    folder: Path, data: bytes, name: str = "sales.csv", declared: dict | None = None
) -> pd.DataFrame | str:
    """The prepared table (written to Parquet, as the stage does), or the DataError message.
    ``declared``: more ``data`` params (covariates, columns.open)."""
    path = folder / name
    path.write_bytes(data)
    params = Params.model_validate(
        {
            "horizon": 3,
            "prepare": {"min_train_days": 4},
            "data": {"source": "file", "path": str(path), **(declared or {})},
        }
    )
    try:
        raw, source = load_raw(params)
        prepared, _ = prepare_table(raw, source, params)
    except DataError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and len(message) > len(str(path)) + 10, message
        return message
    prepared.to_parquet(io.BytesIO(), index=False)
    return prepared


@SETTINGS
@given(data=messy_csv())
def test_messy_csv_is_prepared_or_refused_with_a_message(folder: Path, data: bytes) -> None:
    prepare_bytes(folder, data)


@SETTINGS
@given(data=messy_csv(covariates=True))
def test_messy_csv_with_covariates_is_prepared_or_refused_with_a_message(
    folder: Path, data: bytes
) -> None:
    declared = {"covariates": COVARIATES, "columns": {"open": "Open"}}
    prepared = prepare_bytes(folder, data, declared=declared)
    if isinstance(prepared, pd.DataFrame):  # typed as declared
        assert set(prepared["Promo"].unique()) <= {0.0, 1.0}
        assert set(prepared["open"].unique()) <= {0.0, 1.0}
        assert prepared["Price"].dtype == float
        assert all(isinstance(v, str) for v in prepared["State"].dropna())


@SETTINGS
@given(
    data=st.binary(max_size=400), name=st.sampled_from(["sales.csv", "sales.csv.gz", "s.parquet"])
)
def test_random_bytes_are_refused_with_a_message(folder: Path, data: bytes, name: str) -> None:
    prepare_bytes(folder, data, name)


def test_the_clean_table_and_its_tolerated_variants_are_prepared(folder: Path) -> None:
    rows = clean_rows(12, 2)
    text = "\n".join(
        [",".join([*HEADER, "promo"])]
        + [",".join([*r, "a" if i % 3 else "0"]) for i, r in enumerate(rows)]
    )
    for data in (
        text.encode(),
        text.encode("utf-8-sig"),  # a byte-order mark
        text.replace("\n", "\r\n\n").encode(),  # Windows line ends and blank lines
    ):
        prepared = prepare_bytes(folder, data)  # not declared: dropped, whatever it holds
        assert isinstance(prepared, pd.DataFrame), prepared
        assert len(prepared) == 24 and "promo" not in prepared.columns
        prepared = prepare_bytes(folder, data, declared={"covariates": {"promo": "category"}})
        assert isinstance(prepared, pd.DataFrame), prepared
        assert set(prepared["promo"]) == {"a", "0"}  # a category: 0 and a are both levels


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("date,store,item,sales\n2024-01-01,Café,1,3\n".encode("latin-1"), "line 2 is not UTF-8"),
        (b"date,store,item,sales\n2024-01-01,1,1,3,4\n", "line 2 has 5 fields"),
        (b"date,store,item,sales\n2019,1,1,3\n", "not dates in the form YYYY-MM-DD"),
    ],
)
def test_the_prepare_stage_answers_a_bad_file_with_exit_2_and_one_message(
    tmp_path, monkeypatch, capsys, content, expected
):
    from demandcast.stages import prepare

    monkeypatch.chdir(tmp_path)
    Path("sales.csv").write_bytes(content)
    Path("params.yaml").write_text("data:\n  source: file\n  path: sales.csv\n")
    assert prepare.main(["--params", "params.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sales.csv: ") and expected in err and "Traceback" not in err
    assert not Path("data").exists()
