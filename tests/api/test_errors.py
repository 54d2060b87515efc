"""Every refusal: the status, where the problem is, and a message that says what to do.

The tiny model has stores 1-2 x items 1-3, trained through 2013-04-30, 14 days ahead.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from demandcast import bundle
from demandcast.api.errors import MAX_PROBLEMS
from demandcast.api.lookup import series_issue
from demandcast.api.store import load
from tests.api.helpers import serve

GOOD = {"store": 1, "item": 2, "date": "2013-05-03"}
RANGE = "forecasts 2013-05-01 .. 2013-05-14 (14 days)"


def assert_refused(response: Response, status: int, loc: str, *fragments: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail", "errors"}
    first = body["errors"][0]
    assert first["loc"] == loc
    for fragment in fragments:
        assert fragment in first["msg"]
    assert body["detail"].startswith(f"{loc}: {first['msg']}")
    return body


def test_the_tiny_model_is_as_described(meta: bundle.Meta) -> None:
    assert meta.trained_through == "2013-04-30" and meta.horizon == 14
    assert sorted(map(tuple, meta.series)) == [(s, i) for s in (1, 2) for i in (1, 2, 3)]


@pytest.mark.parametrize(
    ("change", "loc", "fragments"),
    [
        ({"store": 9}, "rows[1].store", ["unknown store 9", "2 stores: 1, 2"]),
        ({"item": 99}, "rows[1].item", ["unknown item 99", "3 items: 1, 2, 3"]),
        ({"store": "1"}, "rows[1].store", ["unknown store '1'", "store IDs are integers"]),
        ({"date": "2013-04-30"}, "rows[1].date", ["before the first forecast day", RANGE]),
        ({"date": "2013-05-15"}, "rows[1].date", ["past the forecast horizon", RANGE]),
        ({"date": "2013-5-3"}, "rows[1].date", ["'2013-5-3' is not a date", "YYYY-MM-DD"]),
        ({"date": "20130503"}, "rows[1].date", ["YYYY-MM-DD"]),
        ({"date": "2013-05-03T00:00:00"}, "rows[1].date", ["YYYY-MM-DD"]),
        ({"date": "2013-02-30"}, "rows[1].date", ["not a calendar date"]),
        ({"date": 1367539200}, "rows[1].date", ["expected a string YYYY-MM-DD, got an integer"]),
        ({"date": None}, "rows[1].date", ["expected a string YYYY-MM-DD, got null"]),
        ({"store": 1.0}, "rows[1].store", ["expected an integer or a string, got a number"]),
        ({"item": True}, "rows[1].item", ["got a boolean"]),
        ({"store": 2**70}, "rows[1].store", ["64 bits"]),
        ({"store": None}, "rows[1].store", ["got null"]),
        ({"sku": 4}, "rows[1].sku", ["unexpected key", "store, item", "date"]),
        ({"item": ...}, "rows[1].item", ["required", "store x item"]),
        ({"store": ...}, "rows[1].store", ["required"]),
        ({"date": ...}, "rows[1].date", ["required"]),
    ],
)
def test_predict_refuses_a_bad_row(
    client: TestClient, change: dict[str, Any], loc: str, fragments: list[str]
) -> None:
    row = {k: v for k, v in {**GOOD, **change}.items() if v is not ...}
    response = client.post("/predict", json={"rows": [GOOD, row]})
    assert_refused(response, 422, loc, *fragments)


@pytest.mark.parametrize(
    ("body", "loc", "fragment"),
    [
        (b"this is not JSON", "body", "not valid JSON"),
        (b"", "body", "not valid JSON"),
        (b'{"rows": [', "body", "not valid JSON"),
        (b"[]", "body", "expected a JSON object"),
        (b"{}", "rows", "required"),
        (b'{"rows": []}', "rows", "empty: send at least one row"),
        (b'{"rows": {}}', "rows", "valid array"),
        (b'{"rows": [5]}', "rows[0]", "object"),
        (
            b'{"rows": [{"store": 1, "item": 1, "date": "2013-05-01"}], "model": "x"}',
            "model",
            "unexpected key",
        ),
    ],
)
def test_predict_refuses_a_bad_body(
    client: TestClient, body: bytes, loc: str, fragment: str
) -> None:
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert_refused(response, 422, loc, fragment)


def test_predict_refuses_an_oversized_batch(bundles: dict[str, Path]) -> None:
    with serve(bundles["store_item"], max_rows=3) as small:
        assert small.post("/predict", json={"rows": [GOOD] * 3}).status_code == 200
        response = small.post("/predict", json={"rows": [GOOD] * 4})
    assert_refused(
        response, 422, "rows", "more than 3 rows; at most 3 per request", "split the batch"
    )


def test_predict_lists_the_first_problems_and_counts_them_all(client: TestClient) -> None:
    rows = [GOOD] + [{**GOOD, "store": 7}] * 30
    body = assert_refused(client.post("/predict", json={"rows": rows}), 422, "rows[1].store")
    assert len(body["errors"]) == MAX_PROBLEMS
    assert "30 of 31 rows cannot be answered" in body["detail"]


def test_predict_reports_each_problem_of_a_row(client: TestClient) -> None:
    row = {"store": 5, "item": 1, "date": "2014-01-01"}
    body = assert_refused(client.post("/predict", json={"rows": [row]}), 422, "rows[0].store")
    assert [e["loc"] for e in body["errors"]] == ["rows[0].store", "rows[0].date"]


def test_store_only_model_refuses_an_item(store_only_client: TestClient) -> None:
    response = store_only_client.post(
        "/predict", json={"rows": [{"store": "S01", "item": 1, "date": "2013-05-01"}]}
    )
    assert_refused(response, 422, "rows[0].item", "one series per store")
    response = store_only_client.get("/forecast", params={"store": "S01", "item": "1"})
    assert_refused(response, 422, "item", "one series per store")
    response = store_only_client.get("/forecast", params={"store": "S09"})
    assert_refused(response, 404, "store", "unknown store 'S09'", "'S01', 'S02'")


def test_a_series_missing_from_the_model_is_named(bundles: dict[str, Path]) -> None:
    model = load(bundles["store_item"])
    partial = dataclasses.replace(
        model, index={k: v for k, v in model.index.items() if k != (2, 3)}
    )
    issue = series_issue(partial, {"store": 2, "item": 3})
    assert issue is not None and issue.unknown
    assert (issue.field, issue.msg) == ("item", "store 2 has no item 3 in the model")


@pytest.mark.parametrize(
    ("params", "status", "loc", "fragments"),
    [
        ({"store": "9", "item": "1"}, 404, "store", ["unknown store 9"]),
        ({"store": "1", "item": "x"}, 404, "item", ["unknown item 'x'", "IDs are integers"]),
        ({"store": "1"}, 422, "item", ["required"]),
        ({"item": "1"}, 422, "store", ["required"]),
        ({"store": "1", "item": "1", "start": "2013-04-30"}, 422, "start", ["before", RANGE]),
        ({"store": "1", "item": "1", "start": "2013-05-15"}, 422, "start", ["past", RANGE]),
        ({"store": "1", "item": "1", "start": "1367539200"}, 422, "start", ["YYYY-MM-DD"]),
        (
            {"store": "1", "item": "1", "start": "2013-05-10", "days": "6"},
            422,
            "days",
            ["6 days from 2013-05-10 go past the horizon; at most 5", RANGE],
        ),
        ({"store": "1", "item": "1", "days": "15"}, 422, "days", ["at most 14"]),
        ({"store": "1", "item": "1", "days": "0"}, 422, "days", ["greater than or equal to 1"]),
        ({"store": "1", "item": "1", "days": "two"}, 422, "days", ["integer"]),
        ({"store": "1", "itme": "1"}, 422, "itme", ["unexpected query parameter"]),
        ({"store": ["1", "2"], "item": "1"}, 422, "store", ["given more than once"]),
    ],
)
def test_forecast_refuses(
    client: TestClient, params: dict, status: int, loc: str, fragments: list[str]
) -> None:
    assert_refused(client.get("/forecast", params=params), status, loc, *fragments)


def test_without_a_model_every_model_route_answers_503(tmp_path: Path) -> None:
    with serve(tmp_path / "nothing-here") as empty:
        for response in (
            empty.get("/health"),
            empty.post("/predict", json={"rows": [GOOD]}),
            empty.get("/forecast", params={"store": "1", "item": "1"}),
            empty.get("/model"),
        ):
            assert response.status_code == 503
            detail = response.json()["detail"]
            assert detail.startswith("no model loaded: ") and "metadata.json: not found" in detail
            assert "make run" in detail
        assert empty.get("/metrics").status_code == 200
        assert "demandcast_model_info{" not in empty.get("/metrics").text


def test_a_malformed_forecast_query_is_a_422_even_without_a_model(tmp_path: Path) -> None:
    with serve(tmp_path / "nothing-here") as empty:
        assert_refused(empty.get("/forecast", params={"item": "1"}), 422, "store", "required")
        assert_refused(empty.get("/forecast", params={"store": "1", "days": "0"}), 422, "days")


def test_unknown_paths_and_methods_keep_the_error_shape(client: TestClient) -> None:
    assert client.get("/nope").json() == {"detail": "Not Found", "errors": []}
    response = client.delete("/predict")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json() == {"detail": "Method Not Allowed", "errors": []}
