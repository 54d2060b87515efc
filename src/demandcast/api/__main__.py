"""``python -m demandcast.api``: serve the API with uvicorn, one worker.

``DEMANDCAST_HOST`` (default 127.0.0.1) and ``PORT`` (default 8000) say where; the model and
the rest come from the ``DEMANDCAST_*`` variables (see ``settings``). A variable the API cannot
use stops it before it listens, with a one-line message and exit code 2.

Connections are guarded where uvicorn has no setting for it (:class:`GuardedHttp`, uvicorn's
httptools protocol with deadlines): a request's headers must arrive within
``DEMANDCAST_READ_TIMEOUT`` seconds of the connection opening (or of the request's first byte on
a kept-alive connection) and be at most :data:`MAX_HEADER_BYTES` long (431), and its body may
not pause longer than that (408). So a socket that never sends a byte is closed after
``DEMANDCAST_READ_TIMEOUT`` seconds; an idle kept-alive one after
``DEMANDCAST_KEEP_ALIVE_TIMEOUT`` (uvicorn's ``timeout_keep_alive``). uvicorn's
``h11_max_incomplete_event_size`` bounds headers only for its h11 protocol, not httptools.
"""

from __future__ import annotations

import http
import logging
import sys
from typing import Any

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from demandcast.api.app import create_app
from demandcast.api.metrics import TIMED_OUT
from demandcast.api.settings import READ_TIMEOUT, Settings, SettingsError

MAX_HEADER_BYTES = 64 * 1024  # request line and headers (h11's default is 16 KiB)


def _response(status: int, detail: str) -> bytes:
    """A whole HTTP response in the API's error shape, after which the connection closes."""
    body = orjson.dumps({"detail": detail, "errors": []})
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline on every request that is not all there:

    * headers: due within ``read_timeout`` seconds of the connection opening or, on a kept-alive
      connection, of the request's first byte; longer than ``max_header_bytes``: 431;
    * body: a pause longer than ``read_timeout`` closes it, answering 408 if the app has not
      answered yet (``/metrics`` counts a 408 too: the request's scope carries ``TIMED_OUT``);
    * answered before its body arrived (a 413): the rest is read and dropped for at most
      ``read_timeout`` seconds, so that a client still sending can read the answer.

    A request that arrives in one piece (most do) arms no timer.
    """

    read_timeout: float = 10.0
    max_header_bytes: int = MAX_HEADER_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: Any = None  # asyncio.TimerHandle of the current deadline
        self._reading = False  # a request has begun and not all of it has arrived
        self._in_body = False  # ... and its headers have
        self._header_bytes = 0

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(self.read_timeout, self._expire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._in_body and cycle is not None and not cycle.response_started:
            cycle.scope[TIMED_OUT] = True  # type: ignore[literal-required]
            msg = f"the request body stalled for {self.read_timeout:g} s ({READ_TIMEOUT})"
            self.transport.write(_response(408, msg))
        self.transport.close()

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()  # the first request's headers are due

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_body:  # data starts, or goes on with, a request's headers
            room = self.max_header_bytes - self._header_bytes
            if len(data) > room and data.find(b"\r\n\r\n", 0, room + 4) < 0:
                msg = f"request line and headers over {self.max_header_bytes:,} bytes"
                self.transport.write(_response(431, msg))
                self.transport.close()
                return
        super().data_received(data)
        if not self._reading or self.transport.is_closing():
            return
        if self._in_body:
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete:  # else: dropping the rest
                self._arm()
        else:
            self._header_bytes += len(data)
            if self._timer is None:
                self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading, self._in_body, self._header_bytes = True, False, 0

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._in_body = True
        self._disarm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading = self._in_body = False
        self._header_bytes = 0
        self._disarm()
        cycle = self.cycle
        if cycle is not None and cycle.response_complete and not self.pipeline:
            # The rest of an answered body has been dropped: idle again, as after an answer.
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._reading and self._in_body and not self.transport.is_closing():
            self._arm()  # answered before the body was all there: drop the rest, for a while


def guarded_http(settings: Settings) -> type[GuardedHttp]:
    """The protocol class for uvicorn, with the settings' read timeout."""
    return type("GuardedHttp", (GuardedHttp,), {"read_timeout": float(settings.read_timeout)})


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http=guarded_http(settings),
        timeout_keep_alive=settings.keep_alive_timeout,
        access_log=False,  # requests are counted and timed in GET /metrics
        log_level="info",
    )


if __name__ == "__main__":
    main()
