"""What the routes of one app share, and how they get it.

``create_app`` puts one :class:`ApiState` on ``app.state["api"]``: the settings, the model
store, the Prometheus metrics, the parsers of POST /predict and POST /whatif bodies and the
predictions counter of each forecast route. One object, read once per request, by item:
``app.state.api`` costs three times as much (Starlette's ``State`` finds attributes only after
a failed normal lookup), which the one-row /predict path would feel.

Routes that use dependency injection declare ``Depends(deps.serving)`` and the like; the fast
path (``PlainRoute``, no injection) awaits them with its request. They are coroutines so that
FastAPI runs them on the event loop, not in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import Counter
from pydantic import TypeAdapter
from starlette.requests import Request

from demandcast.api.errors import ApiError
from demandcast.api.metrics import Metrics
from demandcast.api.schemas import PredictRequest, WhatIfRequest, predict_request, whatif_request
from demandcast.api.settings import Settings
from demandcast.api.store import Model, ModelError, ModelStore

FORECAST_ROUTES = ("/predict", "/forecast", "/whatif")


@dataclass(frozen=True, eq=False)
class ApiState:
    settings: Settings
    models: ModelStore
    metrics: Metrics
    predict_request: TypeAdapter[PredictRequest]  # parses a POST /predict body (raw JSON)
    # and refuses more than settings.max_rows rows while it parses
    whatif_request: TypeAdapter[WhatIfRequest]  # parses a POST /whatif body (raw JSON)
    predictions: dict[str, Counter]  # forecast values served, by route: call .inc(n)

    @classmethod
    def create(cls, settings: Settings) -> ApiState:
        """The state of a new app: no model loaded yet (see :meth:`reload`)."""
        metrics = Metrics()
        return cls(
            settings=settings,
            models=ModelStore(settings.model_dir, settings.metrics_path),
            metrics=metrics,
            predict_request=TypeAdapter(predict_request(settings.max_rows)),
            whatif_request=TypeAdapter(whatif_request(settings.max_rows)),
            predictions={route: metrics.predictions.labels(route) for route in FORECAST_ROUTES},
        )

    def serving(self) -> Model:
        """The model to answer with; ApiError(503) with the reason while there is none."""
        model = self.models.current  # one read: the whole request uses this model, even mid-swap
        if model is None:
            raise ApiError(503, f"no model loaded: {self.models.problem}")
        return model

    def reload(self) -> Model:
        """Load the bundle again and serve it, counting the outcome; raises :class:`ModelError`
        (the current model, if any, keeps serving). Blocking: run it in a worker thread."""
        try:
            model = self.models.reload()
        except ModelError:
            self.metrics.model_refused()
            raise
        self.metrics.model_loaded(model)
        return model


async def state(request: Request) -> ApiState:
    """Everything the routes of this request's app share."""
    return request.app.state["api"]


async def serving(request: Request) -> Model:
    """The model that answers this request, or ApiError(503)."""
    return request.app.state["api"].serving()


async def metrics(request: Request) -> Metrics:
    return request.app.state["api"].metrics
