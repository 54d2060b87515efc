"""Fuzz every operation of the API's own OpenAPI schema, in process: no input may give a 5xx.

Schemathesis generates requests from the schema the API publishes at /openapi.json: valid ones
and, for operations that take input, invalid ones (bodies, query strings, headers). Every answer
must be below 500 and keep the schema's promises (documented status codes and shapes, invalid
input refused). One check is off: a request can match the schema and still name a store, a
date or a covariate the loaded model does not have, and that is a 422/404, not a failure.

The schema cannot know the model's series and covariates, so few generated requests reach the
computed path (POST /predict rows with covariates, POST /whatif). ``test_what_ifs_never_fail``
therefore sends requests of the covariates model's own series, dates and covariate names with
values of every JSON kind, valid or not.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from demandcast import bundle
from demandcast.api.app import create_app
from demandcast.api.settings import Settings
from tests.api.helpers import day

EXAMPLES = 60  # per operation and mode
WITH_INPUT = [
    ("POST", "/predict"),
    ("POST", "/whatif"),
    ("GET", "/forecast"),
    ("POST", "/admin/reload"),
    ("GET", "/series"),
    ("GET", "/history"),
]
WITHOUT_INPUT = [("GET", "/health"), ("GET", "/model"), ("GET", "/metrics")]


@pytest.fixture(scope="module", params=["store_item", "store_only", "covariates"])
def api_schema(request: pytest.FixtureRequest, bundles: dict[str, Path]) -> schemathesis.BaseSchema:
    """The schema of an app serving a store x item model (integer IDs), a store-only model
    (string IDs) or a model with covariates (a flag and a category) and closed days."""
    app = create_app(Settings(model_dir=bundles[request.param], reload_token="fuzz-reload-token"))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_every_operation_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {(op.method.upper(), op.path) for op in operations} == {*WITH_INPUT, *WITHOUT_INPUT}


@pytest.mark.parametrize(
    ("method", "path", "mode"),
    [(*op, GenerationMode.POSITIVE) for op in WITH_INPUT + WITHOUT_INPUT]
    + [(*op, GenerationMode.NEGATIVE) for op in WITH_INPUT],
)
def test_no_input_makes_a_server_error(
    api_schema: schemathesis.BaseSchema, method: str, path: str, mode: GenerationMode
) -> None:
    @given(case=api_schema[path][method].as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        assert response.status_code < 500, response.text

    check()


# --- the computed path, with the covariates model's own names -----------------------------------

VALID = st.sampled_from([0, 1, True, False, 0.0, 1.0, "0", "a", "b"])  # for promo or holiday
SCALARS = st.one_of(
    st.sampled_from([2, -1, "1", "", None, float("nan"), float("inf")]),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
JSON_VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.text(max_size=3), SCALARS, max_size=2),
)


def covariates_of(names: list[str], min_size: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """Covariates objects: mostly the model's names, with values of any JSON kind (valid ones
    of either covariate half of the time)."""
    name = st.one_of(
        st.sampled_from(names),
        st.sampled_from(names),
        st.sampled_from(names),
        st.sampled_from(["Promo", "open", ""]),
        st.text(max_size=4),
    )
    values = st.one_of(VALID, VALID, VALID, JSON_VALUES)
    return st.dictionaries(name, values, min_size=min_size, max_size=3)


@pytest.fixture(scope="module")
def covariates_app(bundles: dict[str, Path]) -> Any:
    with TestClient(create_app(Settings(model_dir=bundles["covariates"], max_rows=50))) as client:
        yield client


def test_what_ifs_never_fail(covariates_app: TestClient, bundles: dict[str, Path]) -> None:
    meta = bundle.read_meta(bundles["covariates"])
    names = [spec.name for spec in meta.covariates]
    series = st.sampled_from([dict(zip(meta.series_keys, s, strict=True)) for s in meta.series])
    dates = st.integers(min_value=-1, max_value=meta.horizon).map(lambda d: day(meta, d))
    maybe = st.one_of(st.none(), st.none(), st.sampled_from([0, 1, True, False]), JSON_VALUES)

    def with_extras(keys: dict[str, Any], date: str, covariates: Any, is_open: Any) -> dict:
        row = {**keys, "date": date}
        if covariates is not None:
            row["covariates"] = covariates
        if is_open is not None:
            row["open"] = is_open
        return row

    rows = st.builds(with_extras, series, dates, st.one_of(st.none(), covariates_of(names)), maybe)
    predict = st.builds(lambda r: {"rows": r}, st.lists(rows, min_size=1, max_size=6))
    whatif = st.fixed_dictionaries(
        {
            "series": st.lists(series, min_size=1, max_size=4, unique_by=str),
            "scenario": covariates_of(names, min_size=1),
        },
        optional={"dates": st.lists(dates, min_size=1, max_size=4, unique=True)},
    )

    @given(
        body=st.one_of(predict.map(lambda b: ("/predict", b)), whatif.map(lambda b: ("/whatif", b)))
    )
    @settings(
        max_examples=300,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(body: tuple[str, dict]) -> None:
        path, content = body
        text = json.dumps(content)  # NaN and Infinity as Python writes them (invalid JSON)
        response = covariates_app.post(
            path, content=text, headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (200, 422), response.text
        answer = response.json()
        if response.status_code == 422:
            assert answer["errors"] and answer["detail"]
            return
        numbers = [
            value
            for row in answer["predictions" if path == "/predict" else "rows"]
            for key, value in row.items()
            if key in ("sales", "p10", "p50", "p90", "plan", "scenario")
        ]
        assert all(math.isfinite(x) and x >= 0 for x in numbers), answer

    check()
