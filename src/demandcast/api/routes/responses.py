"""How the API answers: JSON written by orjson, the serving model named in a header, and the
error responses each route documents in OpenAPI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi.responses import Response

from demandcast.api.schemas import ErrorBody
from demandcast.api.store import Model

VERSION_HEADER = "X-Model-Version"


def json_response(
    content: Any,
    status: int = 200,
    model: Model | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``content`` as JSON; with ``model``, its version in the ``X-Model-Version`` header."""
    if model is not None:
        headers = {**(headers or {}), VERSION_HEADER: model.version}
    return Response(
        orjson.dumps(content), status, dict(headers or {}), media_type="application/json"
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer these statuses with an error body."""
    return {status: {"model": ErrorBody} for status in statuses}
