"""Prometheus metrics of the API, in a registry of its own (one per app).

* ``demandcast_http_request_duration_seconds{route,status}``: latency histogram; its
  ``_count`` is the request count. ``route`` is the route template (``unmatched`` for 404s),
  so random paths cannot blow up the label set.
* ``demandcast_predictions_total{route}``: forecast values served.
* ``demandcast_model_info{model_version,trained_through}``: 1 for the model being served.
* ``demandcast_model_load_seconds``, ``demandcast_model_loaded_timestamp_seconds``,
  ``demandcast_model_reloads_total{outcome}``: loading and swapping.
* ``process_*``: memory, CPU and file descriptors of the API process.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder

from demandcast.api.store import Model

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.latency = Histogram(
            "demandcast_http_request_duration_seconds",
            "HTTP requests by route and status: latency (its _count is the request count)",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "demandcast_predictions", "Forecast values served", ["route"], registry=self.registry
        )
        self.model_info = Gauge(
            "demandcast_model_info",
            "The model being served (value 1)",
            ["model_version", "trained_through"],
            registry=self.registry,
        )
        self.load_seconds = Gauge(
            "demandcast_model_load_seconds",
            "Time to read, check and precompute the serving model",
            registry=self.registry,
        )
        self.loaded_at = Gauge(
            "demandcast_model_loaded_timestamp_seconds",
            "When the serving model was loaded (unix time)",
            registry=self.registry,
        )
        self.reloads = Counter(
            "demandcast_model_reloads",
            "Model loads by outcome (ok, or refused: the previous model kept serving)",
            ["outcome"],
            registry=self.registry,
        )

    def model_loaded(self, model: Model) -> None:
        self.model_info.clear()
        self.model_info.labels(model.version, model.meta.trained_through).set(1)
        self.load_seconds.set(model.load_seconds)
        self.loaded_at.set(model.loaded_at)
        self.reloads.labels("ok").inc()

    def model_refused(self) -> None:
        self.reloads.labels("refused").inc()

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition in the format the scraper's ``Accept`` header asks for, and its type."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type


class RequestMetrics:
    """ASGI middleware: time every HTTP request and count it by route template and status."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.latency = metrics.latency
        self.children: dict[tuple[str, int], Any] = {}  # (route, status) -> histogram child

    def observe(self, route: str, status: int, seconds: float) -> None:
        child = self.children.get((route, status))
        if child is None:  # routes are templates, so the set of pairs stays small
            child = self.children[route, status] = self.latency.labels(route, str(status))
        child.observe(seconds)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering

        async def send_and_record_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.observe(route, status, time.perf_counter() - started)
