"""``python -m demandcast.api`` as an operator runs it: a uvicorn process on 127.0.0.1, answering
over real HTTP, swapping models while requests keep coming, and stopping cleanly."""

from __future__ import annotations

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


@pytest.fixture
def server(tmp_path: Path, bundles: dict[str, Path]) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, model symlink, log file) of a running server; stopped with SIGTERM after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    link = tmp_path / "serving"
    link.symlink_to(bundles["store_item"])
    log = tmp_path / "server.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "DEMANDCAST_MODEL_DIR": str(link),
        "DEMANDCAST_METRICS": "",
        "DEMANDCAST_RELOAD_TOKEN": TOKEN,
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
