"""Fuzz every operation of the API's own OpenAPI schema, in process: no input may give a 5xx.

Schemathesis generates requests from the schema the API publishes at /openapi.json: valid ones
and, for operations that take input, invalid ones (bodies, query strings, headers). Every answer
must be below 500 and keep the schema's promises (documented status codes and shapes, invalid
input refused). One check is off: a request can match the schema and still name a store or a
date the loaded model does not have, and that is a 422/404, not a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from demandcast.api.app import create_app
from demandcast.api.settings import Settings

EXAMPLES = 60  # per operation and mode
WITH_INPUT = [
    ("POST", "/predict"),
    ("GET", "/forecast"),
    ("POST", "/admin/reload"),
    ("GET", "/series"),
    ("GET", "/history"),
]
WITHOUT_INPUT = [("GET", "/health"), ("GET", "/model"), ("GET", "/metrics")]


@pytest.fixture(scope="module", params=["store_item", "store_only"])
def api_schema(request: pytest.FixtureRequest, bundles: dict[str, Path]) -> schemathesis.BaseSchema:
    """The schema of an app serving a store x item model (integer IDs) or a store-only model
    (string IDs)."""
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
