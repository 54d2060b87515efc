"""Hot swap: POST /admin/reload swaps the model atomically, refuses a bad one (the old one keeps
serving), and no request in flight fails while models are swapped."""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from demandcast import bundle
from demandcast.api.routes.responses import VERSION_HEADER
from tests.api.helpers import TOKEN, expected_sales, point, row, serve

SWAPS = 20


def reload(client: TestClient, token: str | bytes = TOKEN) -> Response:
    token = token if isinstance(token, bytes) else token.encode()
    return client.post("/admin/reload", headers={"Authorization": b"Bearer " + token})


@pytest.fixture
def link(tmp_path: Path, bundles: dict[str, Path]) -> Path:
    """DEMANDCAST_MODEL_DIR of the live app: a symlink, first to ``store_item``."""
    path = tmp_path / "serving"
    path.symlink_to(bundles["store_item"])
    return path


@pytest.fixture
def live(link: Path) -> Iterator[TestClient]:
    with serve(link, reload_token=TOKEN) as client:
        yield client


def version(name: str, bundles: dict[str, Path]) -> str:
    return bundle.read_meta(bundles[name]).model_version


def test_reload_is_disabled_without_a_token(bundles: dict[str, Path]) -> None:
    with serve(bundles["store_item"]) as client:
        response = reload(client)
    assert response.status_code == 403
    assert "DEMANDCAST_RELOAD_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize("header", [None, b"Bearer wrong", b"Basic czNjcmV0", "Bearer é".encode()])
def test_reload_needs_the_token(live: TestClient, header: bytes | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = live.post("/admin/reload", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_reload_swaps_in_the_new_model(
    live: TestClient, link: Path, bundles: dict[str, Path]
) -> None:
    old, new = version("store_item", bundles), version("retrained", bundles)
    meta = bundle.read_meta(bundles["retrained"])
    point(link, bundles["retrained"])
    assert live.get("/health").json()["model_version"] == old  # nothing changes until reload

    response = reload(live)
    assert response.status_code == 200
    assert response.json() == {"status": "reloaded", "model_version": new, "previous_version": old}
    assert live.get("/health").json()["model_version"] == new
    predicted = live.post("/predict", json={"rows": [row(meta, 3, 5)]})
    assert predicted.headers[VERSION_HEADER] == new
    assert predicted.json()["predictions"][0]["sales"] == pytest.approx(
        expected_sales(bundles["retrained"])[3, 5], abs=6e-4
    )
    metrics = live.get("/metrics").text
    assert f'demandcast_model_info{{model_version="{new}"' in metrics
    assert f'model_version="{old}"' not in metrics
    assert 'demandcast_model_reloads_total{outcome="ok"} 2.0' in metrics


def _mismatched_model(tmp_path: Path, bundles: dict[str, Path]) -> Path:
    """A bundle whose model.ubj is another bundle's: loadable, but not the model it claims."""
    mixed = shutil.copytree(bundles["store_item"], tmp_path / "mixed")
    shutil.copy(bundles["retrained"] / bundle.MODEL_FILE, mixed / bundle.MODEL_FILE)
    return mixed


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        ("truncated_model", "model.ubj: its sha256 differs from manifest.json"),
        ("short_forecast", "forecast.npy: its sha256 differs from manifest.json"),
        ("future_format", "metadata.json: its sha256 differs from manifest.json"),
        ("no_metadata", "metadata.json: not found"),
        ("store_only", "series keys ['store'] differ from the serving model's ['store', 'item']"),
        ("mismatched_model", "model.ubj: its sha256 differs from manifest.json"),
    ],
)
def test_a_bad_model_is_refused_and_the_old_one_keeps_serving(
    live: TestClient,
    link: Path,
    bundles: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    broken: str,
    reason: str,
) -> None:
    old = version("store_item", bundles)
    meta = bundle.read_meta(bundles["store_item"])
    before = live.post("/predict", json={"rows": [row(meta, 1, 2)]}).json()
    target = (
        _mismatched_model(tmp_path, bundles) if broken == "mismatched_model" else bundles[broken]
    )
    point(link, target)

    with caplog.at_level(logging.ERROR, logger="demandcast.api.store"):
        response = reload(live)
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith(f"new model refused, still serving {old}: ") and reason in detail
    assert "\n" not in detail  # one line, even when XGBoost's error carries its C++ stack
    assert any(
        f"refused the new model, still serving {old}" in r.message and reason in r.message
        for r in caplog.records
    )
    assert live.get("/health").json()["model_version"] == old
    assert live.post("/predict", json={"rows": [row(meta, 1, 2)]}).json() == before
    assert 'demandcast_model_reloads_total{outcome="refused"} 1.0' in live.get("/metrics").text


def test_a_model_can_arrive_after_startup(tmp_path: Path, bundles: dict[str, Path]) -> None:
    link = tmp_path / "serving"
    link.symlink_to(tmp_path / "not-yet")
    with serve(link, reload_token=TOKEN) as client:
        assert client.get("/health").status_code == 503
        assert reload(client).status_code == 409  # still nothing there
        point(link, bundles["store_item"])
        response = reload(client)
        assert response.status_code == 200 and response.json()["previous_version"] is None
        assert client.get("/health").status_code == 200


def test_no_request_in_flight_fails_during_swaps(
    live: TestClient, link: Path, bundles: dict[str, Path]
) -> None:
    """Four threads ask while a fifth reloads SWAPS times (each load runs in a worker thread of
    the app); every answer must be whole and come from exactly one of the models."""
    names = ("store_item", "retrained")
    grids = {version(name, bundles): expected_sales(bundles[name]) for name in names}
    meta = bundle.read_meta(bundles["store_item"])  # both models have the same series and days
    cells = [(s, d) for s in range(len(meta.series)) for d in range(meta.horizon)]
    done = threading.Event()

    def swap() -> list[int]:
        statuses = []
        for n in range(SWAPS):
            point(link, bundles[names[(n + 1) % 2]])
            statuses.append(reload(live).status_code)
        done.set()
        return statuses

    def ask(n: int) -> list[str]:
        """Problems with one answer (none expected)."""
        s, d = cells[n % len(cells)]
        response = live.post("/predict", json={"rows": [row(meta, s, d), row(meta, 0, 0)]})
        if response.status_code != 200:
            return [f"HTTP {response.status_code}: {response.text}"]
        body = response.json()
        grid = grids.get(body["model_version"])
        if grid is None or response.headers[VERSION_HEADER] != body["model_version"]:
            return [f"version {body['model_version']} / {response.headers[VERSION_HEADER]}"]
        sales = [p["sales"] for p in body["predictions"]]
        return [] if sales == pytest.approx([grid[s, d], grid[0, 0]], abs=6e-4) else [str(body)]

    def keep_asking(first: int) -> tuple[int, list[str]]:
        asked, problems = 0, []
        while not done.is_set() and asked < 2000:
            problems += ask(first + 4 * asked)
            asked += 1
        return asked, problems

    with ThreadPoolExecutor(max_workers=5) as pool:
        swapper = pool.submit(swap)
        askers = [pool.submit(keep_asking, first) for first in range(4)]
        results = [asker.result() for asker in askers]
    assert swapper.result() == [200] * SWAPS
    assert [p for _, problems in results for p in problems] == []
    assert sum(asked for asked, _ in results) >= SWAPS  # requests overlapped the swaps
