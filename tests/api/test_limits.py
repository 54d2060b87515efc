"""Hostile input, in process: bodies over the size limit (413, read no further than the limit),
batches over the row limit (refused while parsing), error bodies that stay small whatever the
client sent, repeated JSON keys, and clients that hang up mid-body (499, not 500).

The same against a real server (timeouts, a socket closed mid-body): ``test_server.py``.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from demandcast.api.errors import MAX_PROBLEMS, VALUE_CHARS
from tests.api.helpers import TOKEN, serve

GOOD = {"store": 1, "item": 2, "date": "2013-05-03"}
JSON = {"Content-Type": "application/json"}
SMALL_ERROR = 2_000  # bytes of an error body with one problem
BOUNDED_ERROR = 10_000  # bytes of any error body


def post_body(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """The ASGI scope of POST /predict with ``body``'s Content-Length (or ``headers``)."""
    if headers is None:
        headers = [(b"content-length", str(len(body)).encode())]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


def call(client: TestClient, scope: dict, messages: list[dict]) -> tuple[int, dict, int]:
    """Run the app of ``client`` (started) on one request whose body arrives as ``messages``
    (then the client is gone): (status, JSON body, messages the app read)."""
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        return messages[read - 1] if read <= len(messages) else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(client.app(scope, receive, send))  # type: ignore[arg-type]
    if not sent:
        return 0, {}, read
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], json.loads(body) if body else {}, read


def counted(client: TestClient, route: str, status: int) -> float:
    """Requests /metrics counted for ``route`` with ``status``."""
    wanted = f'demandcast_http_request_duration_seconds_count{{route="{route}",status="{status}"}} '
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(wanted):
            return float(line.removeprefix(wanted))
    return 0.0


# --- body size ----------------------------------------------------------------------------------


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    bundles: dict[str, Path],
) -> None:
    with serve(bundles["store_item"], max_body_bytes=1000) as client:
        status, body, read = call(client, post_body(b"", [(b"content-length", b"50000000")]), [])
        assert (status, read) == (413, 0)  # not one byte read
        assert body["detail"] == (
            "at most 1,000 bytes per request body (DEMANDCAST_MAX_BODY_BYTES), this one is of "
            "50,000,000 bytes: split the batch"
        )
        assert body["errors"] == []
        assert counted(client, "/predict", 413) == 1  # by its route, though the app never ran
        # the same through HTTP, and for a route that takes no body
        response = client.post("/admin/reload", content=b"x" * 1001)
        assert response.status_code == 413 and "1,001 bytes" in response.json()["detail"]
        assert counted(client, "/admin/reload", 413) == 1


def test_an_endless_body_is_refused_once_past_the_limit(bundles: dict[str, Path]) -> None:
    """Chunked (no Content-Length): read in 1,000-byte pieces until the limit is passed, never
    more; a body that says it is shorter than it is gets the same."""
    chunk = {"type": "http.request", "body": b" " * 1000, "more_body": True}
    with serve(bundles["store_item"], max_body_bytes=10_000) as client:
        for headers in ([(b"transfer-encoding", b"chunked")], [(b"content-length", b"10")]):
            status, body, read = call(client, post_body(b"", headers), [chunk] * 1000)
            assert (status, read) == (413, 11)
            assert "this one is longer than that" in body["detail"]
        assert counted(client, "/predict", 413) == 2


def test_a_body_at_the_limit_is_read_in_pieces_and_answered(bundles: dict[str, Path]) -> None:
    body = orjson.dumps({"rows": [GOOD] * 20})
    pieces = [body[i : i + 100] for i in range(0, len(body), 100)]
    messages = [{"type": "http.request", "body": p, "more_body": True} for p in pieces]
    messages[-1]["more_body"] = False
    with serve(bundles["store_item"], max_body_bytes=len(body)) as client:
        status, answer, read = call(client, post_body(body), messages)
        assert (status, read) == (200, len(pieces))
        assert len(answer["predictions"]) == 20
        response = client.post("/predict", content=body + b" ", headers=JSON)  # one byte over
        assert response.status_code == 413


def test_the_row_limit_is_checked_while_parsing(bundles: dict[str, Path]) -> None:
    """200,000 rows (8.4 MB) against a limit of 10: refused without making a Python object of
    each row (pydantic's error for max_length would carry them all as its input: 80 MB)."""
    body = b'{"rows": [' + b",".join([orjson.dumps(GOOD)] * 200_000) + b"]}"
    message = {"type": "http.request", "body": body, "more_body": False}
    with serve(bundles["store_item"], max_rows=10, max_body_bytes=len(body)) as client:
        tracemalloc.start()
        try:
            status, answer, _ = call(client, post_body(body), [message])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert status == 422
    assert answer["errors"] == [
        {"loc": "rows", "msg": "more than 10 rows; at most 10 per request: split the batch"}
    ]
    assert peak < 20_000_000, f"{peak:,} bytes of Python objects"


def test_braces_inside_ids_are_not_counted_as_rows(bundles: dict[str, Path]) -> None:
    rows = [{"store": store, "date": "2013-05-03"} for store in ("{" * 50, "S01", "S02")]
    with serve(bundles["store_only"], max_rows=3) as client:
        response = client.post("/predict", json={"rows": rows})
        assert response.status_code == 422
        assert response.json()["errors"][0]["msg"].startswith("unknown store '{{{{")
        response = client.post("/predict", json={"rows": [*rows, rows[1]]})
        assert response.json()["errors"][0]["msg"].startswith("more than 3 rows; at most 3")


def test_a_batch_sent_bare_is_typed_without_copying_it(bundles: dict[str, Path]) -> None:
    """The rows without {"rows": ...}: the message says what the body is, from its first byte."""
    body = b"\n [" + b",".join([orjson.dumps(GOOD)] * 30_000) + b"]"
    with serve(bundles["store_item"], max_body_bytes=len(body)) as client:
        response = client.post("/predict", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["errors"][0]["msg"].endswith(", got an array")


# --- bounded error bodies -----------------------------------------------------------------------


def test_a_50_mb_store_id_gets_a_short_answer(bundles: dict[str, Path]) -> None:
    huge = "A" * 50_000_000
    body = orjson.dumps({"rows": [{**GOOD, "store": huge}]})
    with serve(bundles["store_item"], max_body_bytes=len(body)) as client:
        response = client.post("/predict", content=body, headers=JSON)
    assert response.status_code == 422
    assert len(response.content) < SMALL_ERROR
    shown = f"'{'A' * VALUE_CHARS}…'"
    assert response.json()["errors"] == [
        {
            "loc": "rows[0].store",
            "msg": f"unknown store {shown} (store IDs are integers here); "
            "the model has 2 stores: 1, 2",
        }
    ]
    assert response.json()["detail"].startswith(f"rows[0].store: unknown store {shown} (")


@pytest.mark.parametrize("route", ["/forecast", "/history"])
def test_a_long_store_id_in_a_query_gets_a_short_answer(client: TestClient, route: str) -> None:
    response = client.get(route, params={"store": "7" * 30 + "x" * 60_000, "item": "1"})
    assert response.status_code == 404
    assert len(response.content) < SMALL_ERROR
    msg = response.json()["errors"][0]["msg"]
    assert msg.startswith(f"unknown store '{'7' * 30}{'x' * 10}…' (store IDs are integers")


def test_a_long_unknown_query_parameter_is_named_short(client: TestClient) -> None:
    name = "z" * 60_000
    response = client.get("/forecast", params={"store": "1", "item": "1", name: "1"})
    assert response.status_code == 422
    assert len(response.content) < SMALL_ERROR
    assert response.json()["errors"][0]["loc"] == "z" * VALUE_CHARS + "…"
    assert "unexpected query parameter; use days, item, start, store" in response.text


def test_a_long_bad_date_is_quoted_short(client: TestClient) -> None:
    response = client.post("/predict", json={"rows": [{**GOOD, "date": "9" * 100_000}]})
    assert response.status_code == 422
    assert len(response.content) < SMALL_ERROR
    assert f"'{'9' * VALUE_CHARS}…' is not a date" in response.json()["errors"][0]["msg"]


def test_every_error_body_is_bounded(client: TestClient) -> None:
    """1,000 rows, each with an unknown 1,000-character key: 20 problems listed, each short."""
    rows = [{**GOOD, f"{n:04d}" + "k" * 996: 1} for n in range(1000)]
    response = client.post("/predict", json={"rows": rows})
    assert response.status_code == 422
    assert len(response.content) < BOUNDED_ERROR
    body = response.json()
    assert len(body["errors"]) == MAX_PROBLEMS
    assert body["errors"][0]["loc"] == "rows[0]." + "0000" + "k" * (VALUE_CHARS - 4) + "…"
    assert body["detail"].endswith("; 1000 problems; errors lists the first 20")


# --- repeated keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (b'{"rows": [{"store": 1, "store": 2, "item": 1, "date": "2013-05-03"}]}', "rows[0].store"),
        (
            b'{"rows": [{"store": 1, "item": 1, "date": "2013-05-03"},'
            b' {"store": 1, "item": 1, "date": "2013-05-03", "date": "2013-05-04"}]}',
            "rows[1].date",
        ),
        (
            b'{"rows": [{"store": 1, "item": 1, "date": "2013-05-03"}],'
            b' "rows": [{"store": 2, "item": 1, "date": "2013-05-03"}]}',
            "rows",
        ),
        # spaced colons and a colon inside a string: only the real repeat is named
        (
            b'{"rows" : [{"store" : "1:2", "item": 1, "date": "2013-05-03", "item": 1}]}',
            "rows[0].item",
        ),
    ],
)
def test_a_repeated_key_is_refused_and_named(client: TestClient, body: bytes, loc: str) -> None:
    response = client.post("/predict", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    problem = response.json()["errors"][0]
    assert problem["loc"] == loc
    assert problem["msg"].startswith("given more than once in one object: send each key once")


@pytest.mark.parametrize(
    "body",
    [
        b'{"rows" :[{"store" : 1, "item" :2, "date"\n:\t"2013-05-03"}]}',  # spaced colons
        b'{"rows": [{"store": 1, "item": 2, "date": "2013-05-03"}, '
        b'{"store": 1, "item": 2, "date": "2013-05-03"}]}',  # the same row twice is fine
    ],
)
def test_bodies_without_repeats_are_answered(client: TestClient, body: bytes) -> None:
    assert client.post("/predict", content=body, headers=JSON).status_code == 200


def test_a_colon_inside_an_id_is_not_a_repeat(store_only_client: TestClient) -> None:
    body = b'{"rows": [{"store": "S:01", "date": "2013-05-03"}]}'
    response = store_only_client.post("/predict", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["errors"][0]["msg"].startswith("unknown store 'S:01'")


# --- clients that hang up -----------------------------------------------------------------------


def test_a_client_gone_mid_body_is_a_499(
    bundles: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    half = {"type": "http.request", "body": b'{"rows": [', "more_body": True}
    with serve(bundles["store_item"], reload_token=TOKEN) as client:
        status, _, read = call(client, post_body(b"", [(b"content-length", b"1000")]), [half])
        assert (status, read) == (0, 2)  # no answer to no one, and no exception
        assert counted(client, "/predict", 499) == 1
        assert counted(client, "/predict", 500) == 0
    assert "Traceback" not in caplog.text
