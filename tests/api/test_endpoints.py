"""Every endpoint on a real (tiny) bundle: answers, their order, and the model that gave them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from demandcast import bundle
from demandcast.api.routes.forecast import PlainRoute
from demandcast.api.routes.responses import VERSION_HEADER
from tests.api.helpers import EVALUATION, day, expected_sales, row, serve


def test_health(client: TestClient, meta: bundle.Meta) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model_version": meta.model_version,
        "trained_through": meta.trained_through,
        "frequency": "day",
        "horizon": 14,
        "horizon_days": 14,
        "outputs": ["sales", "p10", "p50", "p90"],
        "covariates": [],
    }
    assert response.headers[VERSION_HEADER] == meta.model_version


def test_predict_answers_every_row_in_order(
    client: TestClient, bundles: dict[str, Path], meta: bundle.Meta
) -> None:
    grid = expected_sales(bundles["store_item"])
    cells = [(5, 13), (0, 0), (3, 7), (0, 0), (5, 0)]  # (series, day), a repeat included
    rows = [row(meta, s, d) for s, d in cells]
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == response.headers[VERSION_HEADER] == meta.model_version
    assert [{k: p[k] for k in ("store", "item", "date")} for p in body["predictions"]] == rows
    sales = [p["sales"] for p in body["predictions"]]
    assert sales == pytest.approx([grid[s, d] for s, d in cells], abs=6e-4)


def test_predict_store_only_model_with_string_ids(
    store_only_client: TestClient, bundles: dict[str, Path]
) -> None:
    meta = bundle.read_meta(bundles["store_only"])
    assert meta.series_keys == ["store"] and meta.series[0] == ["S01"]
    rows = [{"store": "S02", "date": day(meta, 13)}, {"store": "S01", "date": day(meta, 0)}]
    response = store_only_client.post("/predict", json={"rows": rows})
    assert response.status_code == 200
    grid = expected_sales(bundles["store_only"])
    assert [p["sales"] for p in response.json()["predictions"]] == pytest.approx(
        [grid[1, 13], grid[0, 0]], abs=6e-4
    )


def test_forecast_defaults_to_the_whole_horizon(
    client: TestClient, bundles: dict[str, Path], meta: bundle.Meta
) -> None:
    store, item = meta.series[4]
    response = client.get("/forecast", params={"store": store, "item": item})
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == response.headers[VERSION_HEADER] == meta.model_version
    assert (body["store"], body["item"]) == (store, item)
    assert [f["date"] for f in body["forecast"]] == [day(meta, d) for d in range(14)]
    expected = expected_sales(bundles["store_item"])[4]
    assert [f["sales"] for f in body["forecast"]] == pytest.approx(expected, abs=6e-4)


def test_forecast_window_matches_predict(client: TestClient, meta: bundle.Meta) -> None:
    store, item = meta.series[2]
    window = client.get(
        "/forecast", params={"store": store, "item": item, "start": day(meta, 10), "days": 4}
    ).json()["forecast"]
    assert [f["date"] for f in window] == [day(meta, d) for d in range(10, 14)]
    rows = [{"store": store, "item": item, "date": f["date"]} for f in window]
    predicted = client.post("/predict", json={"rows": rows}).json()["predictions"]
    assert [p["sales"] for p in predicted] == [f["sales"] for f in window]


def test_forecast_store_only(store_only_client: TestClient) -> None:
    response = store_only_client.get("/forecast", params={"store": "S01", "days": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["store"] == "S01" and "item" not in body and len(body["forecast"]) == 3


def test_model_shows_metadata_and_evaluation(client: TestClient, meta: bundle.Meta) -> None:
    response = client.get("/model")
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == response.headers[VERSION_HEADER] == meta.model_version
    assert body["metadata"] == meta.as_dict()
    assert body["evaluation"] == EVALUATION
    assert body["load_seconds"] > 0


def test_model_without_an_evaluation_report(
    store_only_client: TestClient, bundles: dict[str, Path], tmp_path: Path
) -> None:
    assert store_only_client.get("/model").json()["evaluation"] is None  # DEMANDCAST_METRICS=""
    (tmp_path / "bad.json").write_text("[1, 2")
    for missing_or_bad in (tmp_path / "none.json", tmp_path / "bad.json"):
        with serve(bundles["store_only"], metrics_path=missing_or_bad) as other:
            assert other.get("/model").json()["evaluation"] is None


def test_metrics_count_requests_predictions_and_model(
    bundles: dict[str, Path], meta: bundle.Meta
) -> None:
    with serve(bundles["store_item"]) as fresh:
        first = row(meta, 0, 0)
        fresh.post("/predict", json={"rows": [first, first, first]})
        fresh.post("/predict", json={"rows": []})
        fresh.get("/forecast", params={"store": first["store"], "item": first["item"], "days": 5})
        fresh.get("/no/such/page")
        response = fresh.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for line in (
        'demandcast_http_request_duration_seconds_count{route="/predict",status="200"} 1.0',
        'demandcast_http_request_duration_seconds_count{route="/predict",status="422"} 1.0',
        'demandcast_http_request_duration_seconds_count{route="/forecast",status="200"} 1.0',
        'demandcast_http_request_duration_seconds_count{route="unmatched",status="404"} 1.0',
        'demandcast_predictions_total{route="/predict"} 3.0',
        'demandcast_predictions_total{route="/forecast"} 5.0',
        f'demandcast_model_info{{model_version="{meta.model_version}",'
        f'trained_through="{meta.trained_through}"}} 1.0',
        'demandcast_model_reloads_total{outcome="ok"} 1.0',
    ):
        assert line in text
    assert 'demandcast_http_request_duration_seconds_bucket{le="0.005",route="/predict"' in text
    assert "demandcast_model_load_seconds " in text
    assert "process_resident_memory_bytes " in text


def test_docs_and_openapi(bundles: dict[str, Path]) -> None:
    with serve(bundles["store_item"], max_rows=123) as small:
        assert small.get("/docs").status_code == 200
        schema = small.get("/openapi.json").json()
    predict_body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert predict_body["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictRequest"
    }
    rows = schema["components"]["schemas"]["PredictRequest"]["properties"]["rows"]
    assert (rows["minItems"], rows["maxItems"]) == (1, 123)
    assert schema["components"]["schemas"]["Row"]["additionalProperties"] is False
    assert {"/health", "/predict", "/forecast", "/model", "/metrics", "/admin/reload"} <= set(
        schema["paths"]
    )


def test_predict_is_a_plain_route_in_the_apps_own_route_list(client: TestClient) -> None:
    """The fast path: no dependency injection per request (PlainRoute) and no included-router
    branch to match first (benchmarks/API.md)."""
    routes = {getattr(route, "path", None): route for route in client.app.router.routes}
    assert isinstance(routes["/predict"], PlainRoute)
    assert {"/forecast", "/health", "/model", "/metrics", "/admin/reload"} <= routes.keys()


def test_forecasts_carry_their_range(client: TestClient, bundles: dict[str, Path]) -> None:
    """/forecast and /predict answer p10, p50, p90 beside the mean: the bundle's grid."""
    loaded = bundle.read(bundles["store_item"])
    grid = loaded.grid()
    meta = loaded.meta
    body = client.get("/forecast", params={"store": 1, "item": 2}).json()
    assert body["frequency"] == "day"
    s = meta.series.index([1, 2])
    for d, answer in enumerate(body["forecast"]):
        assert answer["p10"] <= answer["p50"] <= answer["p90"]
        assert answer["p10"] < answer["sales"] < answer["p90"]
        expected = grid[s, d, 1:]
        assert [answer["p10"], answer["p50"], answer["p90"]] == pytest.approx(expected, abs=6e-4)
    # the first week is wider (dispersion 8) than a Poisson range of the same mean
    first = body["forecast"][0]
    poisson = bundle.count_quantiles(np.array([first["sales"]]), np.array([np.inf]), [0.1, 0.9])
    assert first["p90"] - first["p10"] > poisson[0, 1] - poisson[0, 0]
    rows = [row(meta, s, 0), row(meta, s, 13)]
    predicted = client.post("/predict", json={"rows": rows}).json()["predictions"]
    assert [p["p90"] for p in predicted] == pytest.approx(
        [body["forecast"][0]["p90"], body["forecast"][13]["p90"]], abs=1e-9
    )
