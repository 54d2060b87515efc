"""For the operator: GET /health (readiness), GET /model (what is served) and GET /metrics
(Prometheus)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from demandcast.api import deps
from demandcast.api.metrics import Metrics
from demandcast.api.routes.responses import error_responses, json_response
from demandcast.api.schemas import Health, ModelInfo
from demandcast.api.store import Model

router = APIRouter()
Serving = Annotated[Model, Depends(deps.serving)]


@router.get("/health", response_model=Health, responses=error_responses(503))
async def health(model: Serving) -> Response:
    """Ready when a model is loaded; 503 with the reason otherwise. Says what the model
    forecasts (period, horizon, outputs) and which covariates a request may change."""
    meta = model.meta
    body = {
        "status": "ok",
        "model_version": model.version,
        "trained_through": meta.trained_through,
        "frequency": meta.frequency.name,
        "horizon": model.horizon,
        "horizon_days": model.horizon * model.step,  # periods x days per period
        "outputs": model.output_fields,
        "covariates": [covariate.as_dict() for covariate in model.covariates.values()],
    }
    return json_response(body, model=model)


@router.get("/model", response_model=ModelInfo, responses=error_responses(503))
async def model_info(model: Serving) -> Response:
    """The serving model's metadata and the pipeline's evaluation of it."""
    body = {
        "model_version": model.version,
        "source": model.source,
        "loaded_at": dt.datetime.fromtimestamp(model.loaded_at, dt.UTC),
        "load_seconds": round(model.load_seconds, 3),
        "metadata": model.meta.as_dict(),
        "evaluation": model.evaluation,
    }
    return json_response(body, model=model)


@router.get("/metrics", responses={200: {"content": {"text/plain": {}}}})
async def prometheus(
    request: Request, metrics: Annotated[Metrics, Depends(deps.metrics)]
) -> Response:
    """Prometheus exposition: requests, latency, predictions, the model served."""
    body, content_type = metrics.render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
