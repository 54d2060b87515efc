"""``python -m demandcast.api`` as an operator runs it: a uvicorn process on 127.0.0.1, answering
over real HTTP, swapping models while requests keep coming, and stopping cleanly; and against
hostile clients: ones that hang up mid-body, send nothing, trickle their headers, stall their
body, send huge headers or a 50 MB body, and a reload token too short to start with."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from demandcast import bundle
from tests.api.helpers import TOKEN, point, row

pytestmark = pytest.mark.slow


def call(url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@contextlib.contextmanager
def running(directory: Path, model: Path, **env: str) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, model symlink, log file) of ``python -m demandcast.api`` serving ``model``
    with ``env`` added; stopped with SIGTERM after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    link = directory / "serving"
    link.symlink_to(model)
    log = directory / "server.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "DEMANDCAST_MODEL_DIR": str(link),
        "DEMANDCAST_METRICS": "",
        "DEMANDCAST_RELOAD_TOKEN": TOKEN,
        **env,
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "demandcast.api"], env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url, link, log
    finally:
        process.send_signal(signal.SIGTERM)  # uvicorn drains, then exits by the same signal
        assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
        assert "Finished server process" in log.read_text()


@pytest.fixture
def server(tmp_path: Path, bundles: dict[str, Path]) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, model symlink, log file) of a running server; stopped with SIGTERM after."""
    with running(tmp_path, bundles["store_item"]) as started:
        yield started


def test_serves_and_swaps_under_load(
    server: tuple[str, Path, Path], bundles: dict[str, Path]
) -> None:
    url, link, log = server
    meta = bundle.read_meta(bundles["store_item"])
    old, new = meta.model_version, bundle.read_meta(bundles["retrained"]).model_version
    status, health = call(f"{url}/health")
    assert (status, health["model_version"]) == (200, old)

    answers: list[tuple[int, str]] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set() and len(answers) < 20_000:
            status, body = call(f"{url}/predict", {"rows": [row(meta, 1, 1)]})
            answers.append((status, body.get("model_version", body.get("detail"))))

    askers = [threading.Thread(target=keep_asking) for _ in range(3)]
    for thread in askers:
        thread.start()
    try:
        time.sleep(0.3)
        point(link, bundles["retrained"])
        assert call(f"{url}/admin/reload", {}, token=TOKEN)[0] == 200
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in askers:
            thread.join(timeout=30)
    assert {status for status, _ in answers} == {200}
    served = [version for _, version in answers]
    assert set(served) == {old, new} and served[-1] == new
    assert f"serving model {new}" in log.read_text()


# --- hostile clients ----------------------------------------------------------------------------

TIMEOUT = 1  # DEMANDCAST_READ_TIMEOUT and DEMANDCAST_KEEP_ALIVE_TIMEOUT of the guarded server
BOUND = 4.0  # seconds by which a server with TIMEOUT must have closed a connection


@pytest.fixture(scope="module")
def guarded(
    tmp_path_factory: pytest.TempPathFactory, bundles: dict[str, Path]
) -> Iterator[tuple[str, int, Path]]:
    """(base URL, port, log file) of a server with 1-second timeouts."""
    env = {"DEMANDCAST_READ_TIMEOUT": str(TIMEOUT), "DEMANDCAST_KEEP_ALIVE_TIMEOUT": str(TIMEOUT)}
    with running(tmp_path_factory.mktemp("guarded"), bundles["store_item"], **env) as started:
        url, _, log = started
        yield url, int(url.rsplit(":", 1)[1]), log
    assert "Traceback" not in log.read_text()


def closed_after(sock: socket.socket, limit: float = BOUND + 2) -> tuple[float, bytes]:
    """Seconds until the server closes ``sock``, and what it sent before."""
    sock.settimeout(limit)
    started, received = time.monotonic(), b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return time.monotonic() - started, received


def counted(url: str, route: str, status: int) -> float:
    wanted = f'demandcast_http_request_duration_seconds_count{{route="{route}",status="{status}"}} '
    text = urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()
    lines = [line for line in text.splitlines() if line.startswith(wanted)]
    return float(lines[0].removeprefix(wanted)) if lines else 0.0


HEAD = (
    "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    "Content-Length: {length}\r\n\r\n"
)


def test_a_client_that_hangs_up_mid_body_is_a_499(guarded: tuple[str, int, Path]) -> None:
    url, port, log = guarded
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(HEAD.format(length=100_000).encode() + b'{"rows": [' + b" " * 50_000)
        time.sleep(0.2)  # the app is reading the body
    deadline = time.monotonic() + 10
    while counted(url, "/predict", 499) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert counted(url, "/predict", 499) == 1
    assert counted(url, "/predict", 500) == 0
    text = log.read_text()
    assert "Traceback" not in text and "Exception in ASGI application" not in text


@pytest.mark.parametrize(
    "sent", [b"", b"GET /health HTTP/1.1\r\nHost: x\r\n"], ids=["nothing", "half the headers"]
)
def test_a_socket_that_does_not_send_its_headers_is_closed(
    guarded: tuple[str, int, Path], sent: bytes
) -> None:
    _, port, _ = guarded
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        seconds, received = closed_after(sock)
    assert received == b"" and seconds < BOUND


def test_headers_sent_a_byte_at_a_time_are_cut_off(guarded: tuple[str, int, Path]) -> None:
    """Each byte comes well within the timeout; the headers as a whole do not."""
    _, port, _ = guarded
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /health HTTP/1.1\r\nX-Slow: ")
        with pytest.raises(OSError):  # the server closed: broken pipe or reset
            while time.monotonic() - started < BOUND + 2:
                sock.sendall(b"a")
                time.sleep(0.3)
        assert time.monotonic() - started < BOUND


def test_an_idle_kept_alive_connection_is_closed(guarded: tuple[str, int, Path]) -> None:
    _, port, _ = guarded
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        seconds, received = closed_after(sock)
    assert received.startswith(b"HTTP/1.1 200 OK") and seconds < BOUND


def test_a_stalled_body_is_answered_408_and_closed(guarded: tuple[str, int, Path]) -> None:
    url, port, _ = guarded
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(HEAD.format(length=1000).encode() + b'{"rows": [')
        seconds, received = closed_after(sock)
    assert seconds < BOUND
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b'"detail":"the request body stalled for 1 s (DEMANDCAST_READ_TIMEOUT)"' in received
    assert counted(url, "/predict", 408) == 1


def test_oversized_headers_are_refused(guarded: tuple[str, int, Path]) -> None:
    _, port, _ = guarded
    with socket.create_connection(("127.0.0.1", port)) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(
                b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
            )
        _, received = closed_after(sock)
    assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


@pytest.mark.parametrize("chunked", [False, True], ids=["Content-Length", "chunked"])
def test_a_50_mb_body_is_answered_413_and_the_connection_kept(
    guarded: tuple[str, int, Path], chunked: bool
) -> None:
    """A plain client sends its whole body before it reads: the server refuses the body once it
    is over the limit (or at once, by its Content-Length) and reads the rest without keeping it,
    so the client reads the 413 and can go on using the connection."""
    url, port, _ = guarded
    before = counted(url, "/predict", 413)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        piece = b" " * 1_000_000
        body: Any = (piece for _ in range(50)) if chunked else piece * 50
        connection.request(
            "POST",
            "/predict",
            body=body,
            headers={"Content-Type": "application/json"},
            encode_chunked=chunked,
        )
        response = connection.getresponse()
        detail = json.loads(response.read())["detail"]
        assert response.status == 413
        assert detail.startswith(
            "at most 12,800,000 bytes per request body (DEMANDCAST_MAX_BODY_BYTES)"
        )
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    assert counted(url, "/predict", 413) == before + 1


def test_a_short_reload_token_stops_the_server_with_a_message(tmp_path: Path) -> None:
    env = {**os.environ, "DEMANDCAST_RELOAD_TOKEN": "short", "DEMANDCAST_MODEL_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "demandcast.api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(
        "error: DEMANDCAST_RELOAD_TOKEN is 5 characters long: use at least 16"
    )
    assert "Traceback" not in done.stderr
