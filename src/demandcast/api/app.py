"""The app factory. ``create_app`` builds the API for given settings: its shared state (see
``deps``), error handlers, metrics middleware (which also bounds request bodies) and routers
(see ``routes``); ``app`` is the API configured from the environment, for
``uvicorn demandcast.api.app:app`` (see ``settings``), made on first use so that importing this
module reads no environment (``python -m demandcast.api`` reports a bad setting itself)."""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from demandcast import __version__
from demandcast.api.deps import ApiState
from demandcast.api.errors import ApiError, from_validation
from demandcast.api.metrics import RequestMetrics
from demandcast.api.routes import admin, forecast, ops, page, whatif
from demandcast.api.routes.responses import json_response
from demandcast.api.settings import Settings
from demandcast.api.store import ModelError

DESCRIPTION = """\
Daily sales forecasts of the model the demandcast pipeline trained.

Every forecast answer names the model that made it, in the body (`model_version`) and in the
`X-Model-Version` header. Forecasts are under the plan (the covariates and open days the model
was given for the horizon) unless a request gives other values: `covariates` and `open` of a
`POST /predict` row, the `scenario` of `POST /whatif` (`GET /health` lists the covariates).
Every error is `{"detail": ..., "errors": [{"loc", "msg"}]}`:
422 for a request the API cannot answer (the message says why and what is valid), 404 for an
unknown series in `GET /forecast`, 413 for a body over `DEMANDCAST_MAX_BODY_BYTES`, 503 while
no model is loaded.
"""
ROUTERS = (forecast.router, whatif.router, ops.router, admin.router, page.router)


# Starlette types every handler as taking an Exception: each narrows to its own class.
async def api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response(exc.body(), exc.status, headers=exc.headers)


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return await api_error(request, from_validation(exc.errors()))


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 and 405, in the API's error shape."""
    assert isinstance(exc, HTTPException)
    body = {"detail": exc.detail, "errors": []}
    return json_response(body, exc.status_code, headers=exc.headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    state = ApiState.create(settings or Settings.from_env())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(ModelError):  # logged; 503 until a reload succeeds
            state.reload()
        gc.freeze()  # modules and model live for good: keep them out of the GC's full passes
        yield

    app = FastAPI(
        title="demandcast",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Metrics are Prometheus (GET /metrics) and no OpenTelemetry SDK is installed, so
        # FastAPI's OpenTelemetry hooks are off, not looked up in os.environ on every request
        # (~10% of one-row /predict throughput, benchmarks/API.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state["api"] = state  # read by demandcast.api.deps
    app.add_middleware(RequestMetrics, metrics=state.metrics, body_limit=state.settings.body_limit)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    # The routers' routes join the app's own route list, not app.include_router: FastAPI keeps
    # an included router as a branch that it matches twice on every request, a fifth of the
    # app's time per one-row /predict (benchmarks/API.md). The routes read the app from the
    # request, so the same route objects serve every app; app.dependency_overrides does not
    # reach them (what varies between apps is in Settings).
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
    forecast.document_bodies(app, state.settings.max_rows)
    return app


@functools.cache
def _app_from_env() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    """``app``: the API configured from the environment, made on first use."""
    if name == "app":
        return _app_from_env()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
