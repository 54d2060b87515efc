"""Hot swap: POST /admin/reload swaps the model atomically, refuses a bad one (the old one keeps
serving), and no request in flight fails while models are swapped."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
from collections.abc import Callable, Iterator
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


def assert_refused_and_old_model_serves(
    live: TestClient,
    link: Path,
    target: Path,
    reason: str,
    old: str,
    meta: bundle.Meta,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Point the live app at ``target``: reload is a 409 naming ``reason``, logged, counted,
    and the old model answers exactly as before."""
    before = live.post("/predict", json={"rows": [row(meta, 1, 2)]}).json()
    point(link, target)
    with caplog.at_level(logging.ERROR, logger="demandcast.api.store"):
        response = reload(live)
    assert response.status_code == 409, response.text
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
    target = (
        _mismatched_model(tmp_path, bundles) if broken == "mismatched_model" else bundles[broken]
    )
    meta = bundle.read_meta(bundles["store_item"])
    old = version("store_item", bundles)
    assert_refused_and_old_model_serves(live, link, target, reason, old, meta, caplog)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=1) + "\n")


def _move_base_margin(meta: dict) -> None:
    """What the probe did: the metadata names another feature as the base margin."""
    names = [f["name"] for f in meta["features"]]
    meta["base_margin"] = next(n for n in names if n != meta["base_margin"])


def _rehash_manifest(directory: Path) -> None:
    """The manifest rewritten to match the files as they are now (a careful tamperer)."""
    _edit_json(
        directory / bundle.MANIFEST_FILE,
        lambda manifest: manifest["files"].update(
            {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in FILES}
        ),
    )


FILES = (bundle.MODEL_FILE, bundle.META_FILE, bundle.FORECAST_FILE, bundle.HISTORY_FILE)
TAMPERINGS: dict[str, tuple[Callable[[Path], None], str]] = {
    "model.ubj, a byte flipped": (
        lambda d: _flip_last_byte(d / bundle.MODEL_FILE),
        "model.ubj: its sha256 differs from manifest.json",
    ),
    "metadata.json, base margin moved": (
        lambda d: _edit_json(d / bundle.META_FILE, _move_base_margin),
        "metadata.json: its sha256 differs from manifest.json",
    ),
    "forecast.npy, a byte flipped": (
        lambda d: _flip_last_byte(d / bundle.FORECAST_FILE),
        "forecast.npy: its sha256 differs from manifest.json",
    ),
    "history.npy, a byte flipped": (
        lambda d: _flip_last_byte(d / bundle.HISTORY_FILE),
        "history.npy: its sha256 differs from manifest.json",
    ),
    "manifest.json, a file's hash changed": (
        lambda d: _edit_json(
            d / bundle.MANIFEST_FILE,
            lambda m: m["files"].update({bundle.FORECAST_FILE: "0" * 64}),
        ),
        "forecast.npy: its sha256 differs from manifest.json",
    ),
    "manifest.json, base-margin column moved": (
        lambda d: _edit_json(
            d / bundle.MANIFEST_FILE,
            lambda m: m.update(base_margin_column=m["base_margin_column"] - 1),
        ),
        "manifest.json: base-margin column does not match",
    ),
    "manifest.json, removed": (
        lambda d: (d / bundle.MANIFEST_FILE).unlink(),
        "manifest.json: missing",
    ),
    "metadata.json and manifest.json, base margin moved and rehashed": (
        lambda d: (_edit_json(d / bundle.META_FILE, _move_base_margin), _rehash_manifest(d)),
        "the files do not make model",
    ),
    "forecast.npy and manifest.json, features changed and rehashed": (
        lambda d: (_flip_last_byte(d / bundle.FORECAST_FILE), _rehash_manifest(d)),
        "the files do not make model",
    ),
}


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_each_tampered_file_is_refused_and_the_old_model_keeps_serving(
    live: TestClient,
    link: Path,
    bundles: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    tampering: str,
) -> None:
    damage, reason = TAMPERINGS[tampering]
    target = shutil.copytree(bundles["store_item"], tmp_path / "tampered")
    damage(target)
    meta = bundle.read_meta(bundles["store_item"])
    old = version("store_item", bundles)
    assert_refused_and_old_model_serves(live, link, target, reason, old, meta, caplog)


@pytest.mark.parametrize(
    ("taken", "reason"),
    [
        ((bundle.MODEL_FILE,), "model.ubj: its sha256 differs"),
        ((bundle.META_FILE,), "metadata.json: its sha256 differs"),
        ((bundle.FORECAST_FILE,), "forecast.npy: its sha256 differs"),
        ((bundle.HISTORY_FILE,), "history.npy: its sha256 differs"),
        ((bundle.MANIFEST_FILE,), "model.ubj: its sha256 differs"),
        # the other bundle's model with its own metadata and manifest: our features and history
        (
            (bundle.MODEL_FILE, bundle.META_FILE, bundle.MANIFEST_FILE),
            "forecast.npy: its sha256 differs",
        ),
    ],
)
def test_a_bundle_mixed_from_two_is_refused_and_the_old_model_keeps_serving(
    live: TestClient,
    link: Path,
    bundles: dict[str, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    taken: tuple[str, ...],
    reason: str,
) -> None:
    """``reseeded`` has the same series and shapes as ``store_item`` and other sales, so every
    one of its files differs: each is taken in turn into a copy of ``store_item``."""
    target = shutil.copytree(bundles["store_item"], tmp_path / "mixed")
    for name in taken:
        other = (bundles["reseeded"] / name).read_bytes()
        assert other != (target / name).read_bytes()
        (target / name).write_bytes(other)
    meta = bundle.read_meta(bundles["store_item"])
    old = version("store_item", bundles)
    assert_refused_and_old_model_serves(live, link, target, reason, old, meta, caplog)


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
