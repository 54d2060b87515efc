"""The routes. ``create_app`` builds the API for given settings; ``app`` is the API configured
from the environment, for ``uvicorn demandcast.api.app:app`` (see ``settings``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hmac
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any

import anyio
import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException

from demandcast import __version__
from demandcast.api.errors import ApiError, from_validation, invalid, problem
from demandcast.api.lookup import locate_days, locate_rows, locate_series
from demandcast.api.metrics import Metrics, RequestMetrics
from demandcast.api.schemas import (
    ErrorBody,
    ForecastResponse,
    Health,
    IsoDate,
    ModelInfo,
    PredictRequest,
    PredictResponse,
    Reloaded,
)
from demandcast.api.settings import Settings
from demandcast.api.store import Model, ModelError, ModelStore

VERSION_HEADER = "X-Model-Version"
REF = "#/components/schemas/{model}"
FORECAST_PARAMS = frozenset({"store", "item", "start", "days"})
BEARER = HTTPBearer(auto_error=False, description="the DEMANDCAST_RELOAD_TOKEN")
PREDICT_BODY = {  # the route parses its body itself: see document_predict_body
    "required": True,
    "content": {"application/json": {"schema": {"$ref": REF.format(model="PredictRequest")}}},
}
DESCRIPTION = """\
Daily sales forecasts of the model the demandcast pipeline trained.

Every forecast answer names the model that made it, in the body (`model_version`) and in the
`X-Model-Version` header. Every error is `{"detail": ..., "errors": [{"loc", "msg"}]}`:
422 for a request the API cannot answer (the message says why and what is valid), 404 for an
unknown series in `GET /forecast`, 503 while no model is loaded.
"""


class PlainRoute(APIRoute):
    """A route whose endpoint takes the Request and returns the Response itself. FastAPI still
    documents it (signature, response_model, responses) but skips dependency injection and
    response serialization on every request. For the hot path, POST /predict: it makes the
    difference between about 75% and 100% of a bare endpoint's throughput (benchmarks/API.md).
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        return self.endpoint


def json_response(
    content: Any,
    status: int = 200,
    model: Model | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if model is not None:
        headers = {**(headers or {}), VERSION_HEADER: model.version}
    return Response(orjson.dumps(content), status, headers, media_type="application/json")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


async def api_error(request: Request, exc: ApiError) -> Response:
    return json_response(exc.body(), exc.status, headers=exc.headers)


async def validation_error(request: Request, exc: RequestValidationError) -> Response:
    return await api_error(request, from_validation(exc.errors()))


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own 404 and 405, in the API's error shape."""
    body = {"detail": exc.detail, "errors": []}
    return json_response(body, exc.status_code, headers=exc.headers)


def check_query(request: Request, allowed: frozenset[str]) -> None:
    """Refuse unknown and repeated query parameters (a typo must not be silently ignored)."""
    counts = Counter(name for name, _ in request.query_params.multi_items())
    problems = [
        problem(name, f"unexpected query parameter; use {', '.join(sorted(allowed))}")
        for name in sorted(counts.keys() - allowed)
    ]
    problems += [problem(name, "given more than once") for name, n in counts.items() if n > 1]
    if problems:
        raise invalid(problems)


def document_predict_body(app: FastAPI, max_rows: int) -> None:
    """Add the /predict body to the OpenAPI schema: the route parses it by hand (one strict,
    fast pass over the raw bytes), so FastAPI does not see it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            body = PredictRequest.model_json_schema(ref_template=REF)
            body["properties"]["rows"]["maxItems"] = max_rows
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                body.pop("$defs"), PredictRequest=body
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    models = ModelStore(settings.model_dir, settings.metrics_path)
    metrics = Metrics()
    predictions = {route: metrics.predictions.labels(route) for route in ("/predict", "/forecast")}
    parse_request = TypeAdapter(PredictRequest).validate_json

    def reload() -> Model:
        try:
            model = models.reload()
        except ModelError:
            metrics.model_refused()
            raise
        metrics.model_loaded(model)
        return model

    def serving() -> Model:
        model = models.current  # one read: the whole request uses this model, even mid-swap
        if model is None:
            raise ApiError(503, f"no model loaded: {models.problem}")
        return model

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(ModelError):  # logged; 503 until a reload succeeds
            reload()
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
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)

    async def predict(request: Request) -> Response:
        """Expected sales of each row's series and date, in the order of the rows."""
        model = serving()
        try:
            rows = parse_request(await request.body()).rows
        except ValidationError as exc:
            raise from_validation(exc.errors()) from None
        if len(rows) > settings.max_rows:
            msg = f"{len(rows)} rows; at most {settings.max_rows} per request: split the batch"
            raise invalid([problem("rows", msg)])
        sales = model.sales.take(locate_rows(model, rows)).tolist()  # take: of the flat grid
        predictions["/predict"].inc(len(rows))
        answers = [{**row, "sales": value} for row, value in zip(rows, sales, strict=True)]
        return json_response({"model_version": model.version, "predictions": answers}, model=model)

    app.router.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        route_class_override=PlainRoute,
        response_model=PredictResponse,
        responses=_errors(422, 503),
        openapi_extra={"requestBody": PREDICT_BODY},
    )

    @app.get("/health", response_model=Health, responses=_errors(503))
    async def health() -> Response:
        """Ready when a model is loaded; 503 with the reason otherwise."""
        model = serving()
        meta = model.meta
        body = {
            "status": "ok",
            "model_version": model.version,
            "trained_through": meta.trained_through,
            "horizon_days": meta.horizon_days,
        }
        return json_response(body, model=model)

    @app.get("/forecast", response_model=ForecastResponse, responses=_errors(404, 422, 503))
    async def forecast(
        request: Request,
        store: Annotated[str, Query(description="store ID", examples=["1"])],
        item: Annotated[str | None, Query(description="item ID (store x item models)")] = None,
        start: Annotated[IsoDate | None, Query(description="default: the first day")] = None,
        days: Annotated[int | None, Query(ge=1, description="default: to the horizon")] = None,
    ) -> Response:
        """The daily forecast of one series, from ``start`` (default: the day after the
        cutoff) for ``days`` days (default: to the end of the horizon)."""
        model = serving()
        check_query(request, FORECAST_PARAMS)
        row = locate_series(model, store, item)
        columns = locate_days(model, start, days)
        sales = model.sales[row, columns.start : columns.stop].tolist()
        predictions["/forecast"].inc(len(sales))
        dates = [dt.date.fromordinal(model.first_day + day) for day in columns]
        body = {
            "model_version": model.version,
            **dict(zip(model.meta.series_keys, model.meta.series[row], strict=True)),
            "forecast": [{"date": d, "sales": s} for d, s in zip(dates, sales, strict=True)],
        }
        return json_response(body, model=model)

    @app.get("/model", response_model=ModelInfo, responses=_errors(503))
    async def model_info() -> Response:
        """The serving model's metadata and the pipeline's evaluation of it."""
        model = serving()
        body = {
            "model_version": model.version,
            "source": model.source,
            "loaded_at": dt.datetime.fromtimestamp(model.loaded_at, dt.UTC),
            "load_seconds": round(model.load_seconds, 3),
            "metadata": asdict(model.meta),
            "evaluation": model.evaluation,
        }
        return json_response(body, model=model)

    @app.get("/metrics", responses={200: {"content": {"text/plain": {}}}})
    async def prometheus(request: Request) -> Response:
        """Prometheus exposition: requests, latency, predictions, the model served."""
        body, content_type = metrics.render(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    @app.post("/admin/reload", response_model=Reloaded, responses=_errors(401, 403, 409))
    async def admin_reload(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
    ) -> Response:
        """Load the bundle in DEMANDCAST_MODEL_DIR again and swap it in atomically. A bundle
        that is corrupt or incompatible is refused (409) and the current model keeps serving."""
        if settings.reload_token is None:
            raise ApiError(403, "reload is disabled: start the API with DEMANDCAST_RELOAD_TOKEN")
        given = credentials.credentials if credentials else ""
        if not hmac.compare_digest(given.encode(), settings.reload_token.encode()):
            msg = "send the header Authorization: Bearer <DEMANDCAST_RELOAD_TOKEN>"
            raise ApiError(401, msg, headers={"WWW-Authenticate": "Bearer"})
        previous = models.current
        try:
            model = await anyio.to_thread.run_sync(reload)
        except ModelError as exc:
            still = previous.version if previous else "nothing"
            raise ApiError(409, f"new model refused, still serving {still}: {exc}") from None
        body = {
            "status": "reloaded",
            "model_version": model.version,
            "previous_version": previous.version if previous else None,
        }
        return json_response(body, model=model)

    document_predict_body(app, settings.max_rows)
    return app


app = create_app()
