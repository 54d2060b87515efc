"""Covariates and open in requests: POST /predict rows that carry them, POST /whatif, and what
GET /health says of them.

The covariates model (conftest.COVARIATES) has stores 1-2 x items 1-3, trained through
2013-04-30, 14 days ahead; covariates promo (a flag) and holiday (a category of levels '0',
'a', 'b'); the plan closes every store on 2013-05-01 and 2013-05-09 (public holidays) and
promotes item 1 on some days. Rows given covariates or open must answer what the booster
answers for the frozen features with those values in place of the plan's.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from demandcast import bundle
from demandcast.api.store import Covariate
from demandcast.api.whatif import code_of
from tests.api.helpers import day, serve

FIELDS = ("sales", "p10", "p50", "p90")
JSON = {"Content-Type": "application/json"}
ROW = {"store": 1, "item": 2, "date": "2013-05-03"}  # open by the plan, no promotion
VALUED = ("sales", "p10", "p50", "p90", "plan", "scenario", "uplift", "uplift_pct")


@pytest.fixture(scope="module")
def loaded(bundles: dict[str, Path]) -> bundle.Bundle:
    return bundle.read(bundles["covariates"])


def keys_of(meta: bundle.Meta, series: int) -> dict[str, Any]:
    return dict(zip(meta.series_keys, meta.series[series], strict=True))


def booster_answer(
    loaded: bundle.Bundle,
    cells: list[tuple[int, int]],
    covariates: list[dict[str, Any]],
    is_open: list[float | None],
) -> np.ndarray:
    """What the booster answers for forecast cells (series, day) with these covariate values
    (as feature values: codes for a category) and open (None: the plan's)."""
    meta = loaded.meta
    index = np.array([s * meta.horizon + d for s, d in cells])
    features = loaded.forecast[index].copy()
    opened = loaded.open[index].copy()
    for k, (changes, shut) in enumerate(zip(covariates, is_open, strict=True)):
        for name, value in changes.items():
            features[k, meta.feature_names.index(name)] = value
        if shut is not None:
            opened[k] = shut
    periods = np.array([d for _, d in cells])
    return np.round(bundle.predict(loaded.booster, meta, features, periods, opened), 3)


def outputs(answers: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[answer[f] for f in FIELDS] for answer in answers])


# --- GET /health ---------------------------------------------------------------------------------


def test_health_lists_the_covariates(covariates_client: TestClient, loaded: bundle.Bundle) -> None:
    body = covariates_client.get("/health").json()
    assert body["covariates"] == [
        {"name": "promo", "value": "flag"},
        {"name": "holiday", "value": "category", "levels": ["0", "a", "b"]},
    ]
    assert [c["name"] for c in body["covariates"]] == [c.name for c in loaded.meta.covariates]


# --- POST /predict ------------------------------------------------------------------------------


def test_rows_without_covariates_are_the_plans_grid(
    covariates_client: TestClient, loaded: bundle.Bundle
) -> None:
    meta = loaded.meta
    rows = [
        {**keys_of(meta, s), "date": day(meta, d)}
        for s in range(len(meta.series))
        for d in range(meta.horizon)
    ]
    answers = covariates_client.post("/predict", json={"rows": rows}).json()["predictions"]
    grid = loaded.grid().reshape(-1, len(FIELDS))
    assert outputs(answers) == pytest.approx(grid, abs=6e-4)
    closed = loaded.open == 0
    assert closed.sum() == 2 * len(meta.series)  # two holidays, every store closed
    assert (outputs(answers)[closed] == 0).all()
    assert all(set(answer) == {*rows[0], *FIELDS} for answer in answers)


def test_rows_with_covariates_answer_what_the_booster_does(
    covariates_client: TestClient, loaded: bundle.Bundle
) -> None:
    meta = loaded.meta
    cases: list[tuple[int, int, dict[str, Any], dict[str, Any], Any]] = [
        # series, day, covariates as sent, as feature values, open as sent
        (0, 2, {"promo": 1}, {"promo": 1.0}, None),
        (0, 2, {"promo": 0}, {"promo": 0.0}, None),
        (1, 5, {"promo": True}, {"promo": 1.0}, None),
        (2, 6, {"holiday": "b"}, {"holiday": 2.0}, None),
        (3, 7, {"holiday": 0, "promo": 1}, {"holiday": 0.0, "promo": 1.0}, None),  # 0 is '0'
        (4, 0, {}, {}, 1),  # a day the plan closes, opened
        (5, 8, {"promo": 1, "holiday": "a"}, {"promo": 1.0, "holiday": 1.0}, True),
        (5, 13, {"promo": 1}, {"promo": 1.0}, 0),
        (1, 12, {"promo": 0.0}, {"promo": 0.0}, False),
    ]
    rows = []
    for s, d, sent, _, is_open in cases:
        row = {**keys_of(meta, s), "date": day(meta, d)}
        if sent:
            row["covariates"] = sent
        if is_open is not None:
            row["open"] = is_open
        rows.append(row)
    plain = {**keys_of(meta, 3), "date": day(meta, 4)}  # answered from the grid, in between
    response = covariates_client.post("/predict", json={"rows": [*rows[:4], plain, *rows[4:]]})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    del answers[4]
    expected = booster_answer(
        loaded,
        [(s, d) for s, d, *_ in cases],
        [features for *_, features, _ in cases],
        [None if o is None else float(o) for *_, o in cases],
    )
    assert outputs(answers) == pytest.approx(expected, abs=6e-4)
    assert [{k: v for k, v in a.items() if k not in FIELDS} for a in answers] == rows  # echoed
    assert outputs(answers)[-2:].tolist() == [[0.0] * 4, [0.0] * 4]  # closed: every output 0
    assert outputs(answers)[5].min() > 0  # a closed day of the plan, opened


def test_a_promotion_raises_the_forecast(
    covariates_client: TestClient, loaded: bundle.Bundle
) -> None:
    """The synthetic data's true uplift of a promotion is +10..60% per item."""
    meta = loaded.meta
    open_cells = [
        (s, d)
        for s in range(len(meta.series))
        for d in range(meta.horizon)
        if loaded.open[s * meta.horizon + d] == 1
    ]
    sales = {}
    for flag in (0, 1):
        rows = [
            {**keys_of(meta, s), "date": day(meta, d), "covariates": {"promo": flag}}
            for s, d in open_cells
        ]
        answers = covariates_client.post("/predict", json={"rows": rows}).json()["predictions"]
        sales[flag] = np.array([answer["sales"] for answer in answers])
    ratio = sales[1] / sales[0]
    assert (ratio > 1).all(), ratio
    assert 1.1 < ratio.mean() < 1.6


def test_closed_rows_answer_zero(covariates_client: TestClient) -> None:
    rows = [
        {**ROW, "open": 0},
        {**ROW, "open": False},
        {**ROW, "open": 0, "covariates": {"promo": 1, "holiday": "a"}},
    ]
    answers = covariates_client.post("/predict", json={"rows": rows}).json()["predictions"]
    assert outputs(answers).tolist() == [[0.0] * 4] * 3


def test_a_model_without_covariates_takes_open_only(client: TestClient) -> None:
    response = client.post("/predict", json={"rows": [{**ROW, "covariates": {"promo": 1}}]})
    assert response.status_code == 422
    problem = response.json()["errors"][0]
    assert problem["loc"] == "rows[0].covariates.promo"
    assert "trained without covariates" in problem["msg"]
    closed = client.post("/predict", json={"rows": [ROW, {**ROW, "open": 0}, {**ROW, "open": 1}]})
    assert closed.status_code == 200
    first, shut, opened = outputs(closed.json()["predictions"])
    assert shut.tolist() == [0.0] * 4 and opened.tolist() == first.tolist()
    response = client.post(
        "/whatif", json={"series": [{"store": 1, "item": 1}], "scenario": {"promo": 1}}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "scenario.promo"
    response = client.post("/whatif", json={"series": [{"store": 1, "item": 1}], "scenario": {}})
    assert response.json()["errors"][0]["msg"] == (
        "empty: give open (the model has no covariates) to change on those dates"
    )


LEVELS = "its levels are '0', 'a', 'b'"


@pytest.mark.parametrize(
    ("extra", "loc", "fragments"),
    [
        ({"covariates": {"Promo": 1}}, "covariates.Promo", ["unknown covariate", "'promo'?"]),
        (
            {"covariates": {"price": 1}},
            "covariates.price",
            ["unknown covariate 'price'", "promo (flag: 0 or 1), holiday (category: '0', 'a'"],
        ),
        ({"covariates": {"promo": 2}}, "covariates.promo", ["expected 0 or 1", "got 2"]),
        ({"covariates": {"promo": 0.5}}, "covariates.promo", ["expected 0 or 1", "got 0.5"]),
        ({"covariates": {"promo": "1"}}, "covariates.promo", ["got the string '1'"]),
        ({"covariates": {"promo": None}}, "covariates.promo", ["got null"]),
        ({"covariates": {"promo": [1]}}, "covariates.promo", ["got an array"]),
        ({"covariates": {"holiday": "x"}}, "covariates.holiday", ["'x' is not a level", LEVELS]),
        ({"covariates": {"holiday": "A"}}, "covariates.holiday", ["not a level", LEVELS]),
        ({"covariates": {"holiday": 1}}, "covariates.holiday", ["1 is not a level", LEVELS]),
        ({"covariates": {"holiday": 0.0}}, "covariates.holiday", ["0.0 is not a level"]),
        ({"covariates": {"holiday": True}}, "covariates.holiday", ["got true", LEVELS]),
        ({"covariates": {"holiday": {}}}, "covariates.holiday", ["got an object", LEVELS]),
        ({"open": 2}, "open", ["expected 0 (closed) or 1 (open), or false/true", "got 2"]),
        ({"open": "1"}, "open", ["got the string '1'"]),
        ({"open": None}, "open", ["got null"]),
        ({"covariates": 1}, "covariates", ["expected a JSON object", "got an integer"]),
        ({"covariates": []}, "covariates", ["expected a JSON object", "got an array"]),
        ({"covariates": None}, "covariates", ["expected a JSON object", "got null"]),
    ],
)
def test_an_invalid_value_is_named_with_what_is_valid(
    covariates_client: TestClient, extra: dict, loc: str, fragments: list[str]
) -> None:
    rows = [ROW, {**ROW, **extra}]
    response = covariates_client.post("/predict", json={"rows": rows})
    assert response.status_code == 422, response.text
    body = response.json()
    problem = body["errors"][0]
    assert problem["loc"] == f"rows[1].{loc}"
    for fragment in fragments:
        assert fragment in problem["msg"], problem["msg"]
    assert body["detail"].startswith(f"rows[1].{loc}: {problem['msg']}")


def test_non_finite_numbers_are_refused(covariates_client: TestClient) -> None:
    for literal in (b"NaN", b"Infinity", b"1e400"):
        body = b'{"rows": [{"store": 1, "item": 2, "date": "2013-05-03", "covariates": {"promo": '
        response = covariates_client.post(
            "/predict", content=body + literal + b"}}]}", headers=JSON
        )
        assert response.status_code == 422, literal
        assert response.json()["errors"][0]["loc"] == "rows[0].covariates.promo"


def test_every_invalid_row_is_counted(covariates_client: TestClient) -> None:
    rows = [{**ROW, "covariates": {"promo": 5, "holiday": "z"}} for _ in range(30)] + [ROW]
    body = covariates_client.post("/predict", json={"rows": rows}).json()
    assert len(body["errors"]) == 20
    assert body["detail"].endswith("30 of 31 rows cannot be answered; errors lists the first 20")


def test_a_repeated_covariate_is_refused(covariates_client: TestClient) -> None:
    body = (
        b'{"rows": [{"store": 1, "item": 2, "date": "2013-05-03", '
        b'"covariates": {"promo": 1, "holiday": "a", "promo": 0}}]}'
    )
    response = covariates_client.post("/predict", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == "rows[0].covariates.promo"
    fine = (
        b'{"rows": [{"store": 1, "item": 2, "date": "2013-05-03", "covariates": {"holiday": "a"}}]}'
    )
    assert covariates_client.post("/predict", content=fine, headers=JSON).status_code == 200


def test_rows_with_covariates_count_once_against_the_row_limit(bundles: dict[str, Path]) -> None:
    """A row's covariates are an object of its own: the early row count must not take it for a
    row (10 rows with covariates are 21 objects), and must still refuse 11 rows."""
    rows = [{**ROW, "covariates": {"promo": 1}, "open": 1}] * 10
    with serve(bundles["covariates"], max_rows=10) as small:
        assert small.post("/predict", json={"rows": rows}).status_code == 200
        response = small.post("/predict", json={"rows": [*rows, ROW]})
        assert response.json()["errors"] == [
            {"loc": "rows", "msg": "more than 10 rows; at most 10 per request: split the batch"}
        ]


# --- POST /whatif -------------------------------------------------------------------------------


def test_whatif_totals_and_uplift_match_predict(
    covariates_client: TestClient, loaded: bundle.Bundle
) -> None:
    meta = loaded.meta
    series = [keys_of(meta, 0), keys_of(meta, 4), keys_of(meta, 2)]
    dates = [day(meta, d) for d in (3, 0, 9, 10)]  # day 0 is closed by the plan
    request = {"series": series, "dates": dates, "scenario": {"promo": 1, "holiday": "a"}}
    response = covariates_client.post("/whatif", json=request)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == meta.model_version
    assert body["scenario"] == {"promo": 1, "holiday": "a"}
    rows = body["rows"]
    assert [(r["store"], r["item"], r["date"]) for r in rows] == [
        (s["store"], s["item"], d) for s in series for d in dates
    ]
    grid = [{**s, "date": d} for s in series for d in dates]
    plan = covariates_client.post("/predict", json={"rows": grid}).json()["predictions"]
    changed = [{**row, "covariates": request["scenario"]} for row in grid]
    scenario = covariates_client.post("/predict", json={"rows": changed}).json()["predictions"]
    for row, under_plan, under_scenario in zip(rows, plan, scenario, strict=True):
        assert row["plan"] == under_plan["sales"]
        assert row["scenario"] == under_scenario["sales"]
        assert row["uplift"] == pytest.approx(row["scenario"] - row["plan"], abs=1e-9)
        if row["plan"]:
            assert row["uplift_pct"] == pytest.approx(100 * row["uplift"] / row["plan"], abs=0.01)
        else:
            assert row["uplift_pct"] is None and row["date"] == dates[1]  # closed
    total = body["total"]
    assert total["plan"] == pytest.approx(sum(r["plan"] for r in rows), abs=1e-6)
    assert total["scenario"] == pytest.approx(sum(r["scenario"] for r in rows), abs=1e-6)
    assert total["uplift"] == pytest.approx(total["scenario"] - total["plan"], abs=1e-6)
    assert total["uplift_pct"] == pytest.approx(100 * total["uplift"] / total["plan"], abs=0.01)
    assert total["uplift"] > 0


def test_whatif_defaults_to_the_whole_horizon(
    covariates_client: TestClient, loaded: bundle.Bundle
) -> None:
    meta = loaded.meta
    body = covariates_client.post(
        "/whatif", json={"series": [keys_of(meta, 1)], "scenario": {"promo": 1}}
    ).json()
    assert [row["date"] for row in body["rows"]] == [day(meta, d) for d in range(meta.horizon)]
    expected = booster_answer(
        loaded,
        [(1, d) for d in range(meta.horizon)],
        [{"promo": 1.0}] * meta.horizon,
        [None] * meta.horizon,
    )
    assert [row["scenario"] for row in body["rows"]] == pytest.approx(expected[:, 0], abs=6e-4)
    grid = loaded.grid()[1, :, 0]
    assert [row["plan"] for row in body["rows"]] == pytest.approx(grid, abs=6e-4)


def test_whatif_closing_and_opening(covariates_client: TestClient, loaded: bundle.Bundle) -> None:
    meta = loaded.meta
    dates = [day(meta, 0), day(meta, 1)]  # closed, then open by the plan
    shut = covariates_client.post(
        "/whatif", json={"series": [keys_of(meta, 0)], "dates": dates, "scenario": {"open": 0}}
    ).json()
    assert [r["scenario"] for r in shut["rows"]] == [0.0, 0.0]
    assert [r["uplift_pct"] for r in shut["rows"]] == [None, -100.0]
    opened = covariates_client.post(
        "/whatif", json={"series": [keys_of(meta, 0)], "dates": dates, "scenario": {"open": 1}}
    ).json()
    first, second = opened["rows"]
    assert first["plan"] == 0 and first["scenario"] > 0 and first["uplift_pct"] is None
    assert second["uplift"] == 0


def test_whatif_on_a_store_only_model(store_only_client: TestClient) -> None:
    body = store_only_client.post(
        "/whatif",
        json={"series": [{"store": "S02"}], "dates": ["2013-05-03"], "scenario": {"open": 0}},
    ).json()
    assert body["rows"][0]["store"] == "S02" and "item" not in body["rows"][0]
    assert body["rows"][0]["scenario"] == 0 and body["rows"][0]["plan"] > 0


@pytest.mark.parametrize(
    ("request_body", "loc", "fragments"),
    [
        ({"scenario": {"promo": 2}}, "scenario.promo", ["expected 0 or 1", "got 2"]),
        ({"scenario": {"holiday": "x"}}, "scenario.holiday", ["not a level", LEVELS]),
        ({"scenario": {"PROMO": 1}}, "scenario.PROMO", ["unknown covariate", "'promo'?"]),
        ({"scenario": {"open": 3}}, "scenario.open", ["expected 0 (closed) or 1 (open)"]),
        ({"scenario": {}}, "scenario", ["empty: give a covariate (promo, holiday) or open"]),
        ({"scenario": [1]}, "scenario", ["expected a JSON object, got an array"]),
        ({"scenario": None}, "scenario", ["expected a JSON object, got null"]),
        ({"series": [{"store": 9, "item": 1}]}, "series[0].store", ["unknown store 9"]),
        ({"series": [{"store": 1}]}, "series[0].item", ["required"]),
        ({"series": [{"store": 1, "item": 1, "date": "x"}]}, "series[0].date", ["a series has"]),
        ({"series": [{"store": 1, "item": 1}] * 2}, "series[1]", ["the same series as series[0]"]),
        ({"series": []}, "series", ["empty: send at least one series"]),
        ({"dates": []}, "dates", ["empty", "leave dates out for the whole horizon"]),
        ({"dates": ["2013-05-15"]}, "dates[0]", ["past the forecast horizon", "2013-05-14"]),
        ({"dates": ["2013-05-02", "2013-05-02"]}, "dates[1]", ["2013-05-02 again (dates[0])"]),
        ({"dates": ["5/2/2013"]}, "dates[0]", ["YYYY-MM-DD"]),
        ({"horizon": 3}, "horizon", ['unexpected key: the body is {"series"']),
    ],
)
def test_whatif_refusals_name_the_field(
    covariates_client: TestClient, request_body: dict, loc: str, fragments: list[str]
) -> None:
    body = {"series": [{"store": 1, "item": 1}], "scenario": {"promo": 1}, **request_body}
    response = covariates_client.post("/whatif", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()["errors"][0]
    assert problem["loc"] == loc
    for fragment in fragments:
        assert fragment in problem["msg"], problem["msg"]


def test_whatif_lists_every_problem(covariates_client: TestClient) -> None:
    body = {
        "series": [{"store": 9, "item": 1}, {"store": 1, "item": 1}],
        "dates": ["2013-04-30"],
        "scenario": {"promo": "yes", "price": 3},
    }
    answer = covariates_client.post("/whatif", json=body).json()
    assert [p["loc"] for p in answer["errors"]] == [
        "series[0].store",
        "dates[0]",
        "scenario.promo",
        "scenario.price",
    ]
    assert answer["detail"].endswith("; 4 problems")


def test_whatif_is_bounded_by_the_row_limit(bundles: dict[str, Path]) -> None:
    series = [{"store": s, "item": i} for s in (1, 2) for i in (1, 2, 3)]
    with serve(bundles["covariates"], max_rows=20) as small:
        ok = small.post("/whatif", json={"series": series[:1], "scenario": {"promo": 1}})
        assert ok.status_code == 200 and len(ok.json()["rows"]) == 14
        response = small.post("/whatif", json={"series": series[:2], "scenario": {"promo": 1}})
        assert response.status_code == 422
        problem = response.json()["errors"][0]
        assert problem == {
            "loc": "series",
            "msg": "2 series x 14 dates = 28 rows; at most 20 per request (DEMANDCAST_MAX_ROWS): "
            "ask for fewer series or dates",
        }
        dates = ["2013-05-01", "2013-05-02", "2013-05-03", "2013-05-04"]
        request = {"series": series, "dates": dates, "scenario": {"promo": 1}}
        assert small.post("/whatif", json=request).json()["errors"][0]["loc"] == "dates"
        request["dates"] = dates[:3]
        assert len(small.post("/whatif", json=request).json()["rows"]) == 18


def test_whatif_series_over_the_limit_are_counted_without_copying(
    bundles: dict[str, Path],
) -> None:
    body = orjson.dumps({"series": [{"store": 1, "item": 1}] * 200_000, "scenario": {"promo": 1}})
    with serve(bundles["covariates"], max_rows=10, max_body_bytes=len(body)) as small:
        tracemalloc.start()
        try:
            response = small.post("/whatif", content=body, headers=JSON)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.json()["errors"] == [
        {"loc": "series", "msg": "more than 10 series; at most 10 per request: split the batch"}
    ]
    assert peak < 20_000_000, f"{peak:,} bytes of Python objects"


def test_whatif_repeated_keys_are_refused(covariates_client: TestClient) -> None:
    body = b'{"series": [{"store": 1, "item": 1, "item": 2}], "scenario": {"promo": 1}}'
    response = covariates_client.post("/whatif", content=body, headers=JSON)
    assert response.json()["errors"][0]["loc"] == "series[0].item"
    body = b'{"series": [{"store": 1, "item": 1}], "scenario": {"promo": 1, "promo": 0}}'
    response = covariates_client.post("/whatif", content=body, headers=JSON)
    assert response.json()["errors"][0]["loc"] == "scenario.promo"


def test_whatif_is_documented_and_counted(bundles: dict[str, Path]) -> None:
    with serve(bundles["covariates"], max_rows=77) as app:
        schema = app.get("/openapi.json").json()
        app.post("/whatif", json={"series": [{"store": 1, "item": 1}], "scenario": {"promo": 1}})
        metrics = app.get("/metrics").text
    operation = schema["paths"]["/whatif"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WhatIfRequest"
    }
    assert {"200", "413", "422", "503"} <= operation["responses"].keys()
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WhatIfResponse"
    }
    components = schema["components"]["schemas"]
    assert components["WhatIfRequest"]["properties"]["series"]["maxItems"] == 77
    assert {"covariates", "open"} <= components["Row"]["properties"].keys()
    assert 'demandcast_predictions_total{route="/whatif"} 14.0' in metrics


# --- reading one value ---------------------------------------------------------------------------

NUMBER = Covariate("price", "number", (), 0, {})
CATEGORY = Covariate.of(bundle.FeatureSpec("size", "covariate", False, "category", ["1", "L"]), 3)


@pytest.mark.parametrize(
    ("covariate", "value", "code"),
    [
        (NUMBER, 3, 3.0),
        (NUMBER, -2.5, -2.5),
        (NUMBER, 0, 0.0),
        (CATEGORY, "1", 0.0),
        (CATEGORY, 1, 0.0),  # a number matches the level of its text
        (CATEGORY, "L", 1.0),
    ],
)
def test_values_are_read_as_their_codes(covariate: Covariate, value: Any, code: float) -> None:
    assert code_of(covariate, value) == code


@pytest.mark.parametrize(
    ("covariate", "value", "fragment"),
    [
        (NUMBER, "3", "expected a number for price, got a string"),
        (NUMBER, True, "expected a number for price, got a boolean"),
        (NUMBER, None, "got null"),
        (NUMBER, float("nan"), "expected a finite number"),
        (NUMBER, float("inf"), "expected a finite number"),
        (NUMBER, 1e39, "at most 3.403e+38 in size"),
        (NUMBER, 10**400, "an integer of over 40 digits"),
        (CATEGORY, 1.0, "1.0 is not a level of size"),
        (CATEGORY, "l", "its levels are '1', 'L'"),
        (CATEGORY, 10**400, "is not a level"),
    ],
)
def test_invalid_values_say_what_is_valid(covariate: Covariate, value: Any, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        code_of(covariate, value)
    assert fragment in str(caught.value)
