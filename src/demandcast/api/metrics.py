"""Prometheus metrics of the API, in a registry of its own (one per app).

* ``demandcast_http_request_duration_seconds{route,status}``: latency histogram; its
  ``_count`` is the request count. ``route`` is the route template (``unmatched`` for 404s),
  so random paths cannot blow up the label set. ``status`` 499: the client hung up before its
  answer; 408: its body stalled and the server closed it (see :class:`RequestMetrics`).
* ``demandcast_predictions_total{route}``: forecast values served.
* ``demandcast_model_info{model_version,trained_through}``: 1 for the model being served.
* ``demandcast_model_load_seconds``, ``demandcast_model_loaded_timestamp_seconds``,
  ``demandcast_model_reloads_total{outcome}``: loading and swapping.
* ``process_*``: memory, CPU and file descriptors of the API process.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import choose_encoder
from starlette.requests import ClientDisconnect
from starlette.routing import Match

from demandcast.api.errors import ApiError, BodyTooLarge
from demandcast.api.store import Model

CLIENT_CLOSED = 499  # nginx's status of a request whose client hung up before the answer
REQUEST_TIMEOUT = 408
TIMED_OUT = "demandcast.timed_out"  # scope key: the server closed the request's stalled body
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
    """ASGI middleware around every HTTP request. It

    * times and counts the request by route template and status;
    * bounds its body: a ``Content-Length`` over ``body_limit`` bytes is answered 413 before the
      app runs, and a body that turns out longer (chunked, or longer than declared) is refused
      (:class:`BodyTooLarge`, 413) as soon as the bytes read pass the limit, so no more than the
      limit (and one read) is ever buffered;
    * records a client that hangs up before its answer (``http.disconnect`` while the app reads
      the body) as 499, or 408 when the server closed a stalled body (``__main__``), without a
      traceback: never as a server error.

    One middleware for the three, as each layer costs every request a few tenths of a us.
    """

    def __init__(self, app: Any, metrics: Metrics, body_limit: int) -> None:
        self.app = app
        self.latency = metrics.latency
        self.body_limit = body_limit
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
        status = 0  # until the answer starts
        hung_up = False  # the client left before the answer started
        received = 0
        limit = self.body_limit

        async def send_and_record_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def receive_within_limit() -> dict:
            nonlocal received, hung_up
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            elif not status:
                hung_up = True
            return message

        try:
            declared = _content_length(scope["headers"])
            if declared > limit:
                scope["route"] = _route_of(scope)  # not routed: the app does not run
                await _answer(send_and_record_status, BodyTooLarge(limit, declared))
            else:
                await self.app(scope, receive_within_limit, send_and_record_status)
        except ClientDisconnect:
            if not hung_up:
                raise
        except BodyTooLarge as exc:  # read outside a route (routes answer it themselves)
            if status:
                raise
            await _answer(send_and_record_status, exc)
        except BaseException:
            hung_up = False  # a failure of the server's, whoever left
            raise
        finally:
            if hung_up:
                status = REQUEST_TIMEOUT if scope.get(TIMED_OUT) else CLIENT_CLOSED
            route = getattr(scope.get("route"), "path", "unmatched")
            self.observe(route, status or 500, time.perf_counter() - started)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    """The declared body size; 0 if none (or not a number: the server refuses those)."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def _route_of(scope: dict) -> Any:
    """The route a request not passed to the router would have matched (for its label)."""
    for route in getattr(scope.get("app"), "routes", ()):
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


async def _answer(send: Any, exc: BodyTooLarge) -> None:
    body = orjson.dumps(ApiError(exc.status_code, exc.detail).body())
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
