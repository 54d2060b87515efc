"""The forecast page's routes, in process: GET / and its files, GET /series (the type-ahead) and
GET /history (recent sales). The page itself runs in a real browser in test_page_browser.py."""

from __future__ import annotations

import gzip
import math
import shutil
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from demandcast import bundle
from demandcast.api.routes import page
from demandcast.api.routes.responses import VERSION_HEADER
from tests.api.helpers import page_app
from tests.conftest import ROOT, run

STATIC = Path(page.__file__).resolve().parents[1] / "static"
PAGE_BUDGET = 100_000  # bytes of the page's own HTML, JS and CSS, gzipped (issue 12)


@pytest.fixture(scope="module")
def web(bundles: dict[str, Path], evaluation_file: Path) -> Iterator[TestClient]:
    with TestClient(page_app(bundles["store_item"], metrics_path=evaluation_file)) as client:
        yield client


@pytest.fixture(scope="module")
def store_only_web(bundles: dict[str, Path]) -> Iterator[TestClient]:
    with TestClient(page_app(bundles["store_only"], metrics_path=None)) as client:
        yield client


class Elements(HTMLParser):
    """The elements of a page: (tag, attributes) in document order, and each label's text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.label_text: dict[str, str] = {}
        self._label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag == "label":
            self._label = dict(attrs).get("for") or ""
            self.label_text[self._label] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self.label_text[self._label] += data

    def by_id(self, id_: str) -> tuple[str, dict[str, str | None]]:
        (found,) = [(tag, attrs) for tag, attrs in self.elements if attrs.get("id") == id_]
        return found


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    return parser


# --- the page and its files -----------------------------------------------------------------


def test_page_is_html_with_labelled_controls(web: TestClient) -> None:
    response = web.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = parse(response.text)
    tag, combo = html.by_id("series-input")
    assert (tag, combo["role"], combo["aria-controls"]) == ("input", "combobox", "series-list")
    assert html.by_id("series-list")[1]["role"] == "listbox"
    assert html.label_text["series-input"].strip().startswith("Series")
    tag, upload = html.by_id("upload")
    assert (tag, upload["type"]) == ("input", "file") and "csv" in (upload["accept"] or "")
    assert html.label_text["upload"].strip() == "CSV file"
    assert html.by_id("download")[0] == "button"
    assert "viewport" in {attrs.get("name") for _, attrs in html.elements}  # phone width
    # The model's first series, so the page asks for its forecast without a GET /series first.
    assert html.elements[0] == ("html", {"lang": "en", "data-series": "store=1&item=1"})
    # Everything the page loads is its own: no CDN, and every file is served.
    loaded = [attrs.get("src") or attrs.get("href") for tag, attrs in html.elements]
    local = [url for url in loaded if url and url.startswith("static/")]
    assert {"static/app.js", "static/app.css"} <= set(local)
    assert not [url for url in loaded if url and "//" in url]
    for url in local:
        assert web.get(f"/{url}").status_code == 200, url


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
    ],
)
def test_static_files_have_their_types(web: TestClient, name: str, media_type: str) -> None:
    response = web.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.content == (STATIC / name).read_bytes()
    assert response.headers["content-encoding"] == "gzip"  # TestClient accepts gzip
    assert response.headers["cache-control"] == "no-cache"
    again = web.get(f"/static/{name}", headers={"If-None-Match": response.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    plain = web.get(f"/static/{name}", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == response.content


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/..%2fapp.py",
        "/static/%2e%2e%2f%2e%2e%2fapi%2fapp.py",
        "/static//etc/passwd",
        "/static/",
        "/static/.",
        "/static/index.html/",
        "/static/missing.js",
    ],
)
def test_static_refuses_anything_but_its_files(web: TestClient, path: str) -> None:
    response = web.get(path)
    assert response.status_code == 404
    assert set(response.json()) == {"detail", "errors"}
    assert "import" not in response.text


def test_page_budget() -> None:
    """The page's own JS, CSS and HTML are under 100 KB gzipped (there is nothing else)."""
    files = [p for p in STATIC.rglob("*") if p.suffix in (".js", ".css", ".html")]
    assert {p.name for p in files} >= {"index.html", "app.js", "app.css"}
    size = sum(len(gzip.compress(p.read_bytes())) for p in files)
    assert size < PAGE_BUDGET, f"{size} bytes gzipped"


def test_page_is_served_without_a_model(tmp_path: Path) -> None:
    """The page loads and shows the API's reason; its lookups answer 503."""
    with TestClient(page_app(tmp_path / "missing", metrics_path=None)) as client:
        response = client.get("/")
        assert response.status_code == 200
        assert parse(response.text).elements[0][1]["data-series"] == ""
        assert client.get("/static/app.js").status_code == 200
        for url in ("/series", "/history?store=1&item=1"):
            response = client.get(url)
            assert response.status_code == 503, url
            assert response.json()["detail"].startswith("no model loaded")


# --- GET /series ----------------------------------------------------------------------------


def series_of(client: TestClient, **params: object) -> list[list]:
    response = client.get("/series", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    keys = body["series_keys"]
    return [[s[k] for k in keys] for s in body["series"]]


def test_series_lists_the_model_series(web: TestClient, meta: bundle.Meta) -> None:
    response = web.get("/series")
    body = response.json()
    assert response.headers[VERSION_HEADER] == body["model_version"] == meta.model_version
    assert body["series_keys"] == ["store", "item"]
    assert body["total"] == body["matches"] == len(meta.series) == 6
    assert body["series"][0] == {"store": 1, "item": 1}  # keys as in meta.series: integers
    assert series_of(web) == meta.series


def test_series_filters_by_text_best_first(web: TestClient) -> None:
    assert series_of(web, q="1 2") == [[1, 2]]
    assert series_of(web, q=" 1 , 2 ") == [[1, 2]]  # separators and spaces are loose
    assert series_of(web, q="1/2") == [[1, 2]]
    # "2": the series starting with it, then the one containing it
    assert series_of(web, q="2") == [[2, 1], [2, 2], [2, 3], [1, 2]]
    assert series_of(web, q="9") == []
    body = web.get("/series", params={"q": "2", "limit": 2}).json()
    assert (body["matches"], len(body["series"])) == (4, 2)


def test_series_of_a_store_only_model(store_only_web: TestClient) -> None:
    body = store_only_web.get("/series", params={"q": "s0"}).json()
    assert body["series_keys"] == ["store"]
    assert body["series"] == [{"store": "S01"}, {"store": "S02"}]  # case-insensitive


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"q": "x" * 201}, "q"),
        ({"query": "1"}, "query"),
    ],
)
def test_series_refuses_bad_queries(web: TestClient, params: dict, loc: str) -> None:
    response = web.get("/series", params=params)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == loc


def test_series_limit_up_to_200(web: TestClient) -> None:
    assert len(series_of(web, limit=200)) == 6


# --- GET /history ---------------------------------------------------------------------------


def test_history_is_the_bundle_history(
    web: TestClient, bundles: dict[str, Path], meta: bundle.Meta
) -> None:
    loaded = bundle.read(bundles["store_item"])
    assert meta.history_start is not None
    first = np.datetime64(meta.history_start)
    for row in (0, 4):
        store, item = meta.series[row]
        response = web.get("/history", params={"store": store, "item": item})
        assert response.status_code == 200
        body = response.json()
        assert response.headers[VERSION_HEADER] == body["model_version"] == meta.model_version
        assert (body["store"], body["item"], body["frequency"]) == (store, item, "day")
        expected = loaded.history[row].astype(np.float64)
        assert len(body["dates"]) == len(body["sales"]) == len(expected) == 364
        assert body["dates"] == [str(first + i) for i in range(len(expected))]
        assert body["dates"][-1] == meta.trained_through  # the last year before the forecast
        unknown = [i for i, v in enumerate(expected) if math.isnan(v)]
        assert unknown, "the tiny bundle has 120 days of sales: the rest of the year is unknown"
        assert [i for i, v in enumerate(body["sales"]) if v is None] == unknown
        known = [v for v in body["sales"] if v is not None]
        assert known == pytest.approx([v for v in expected if not math.isnan(v)], abs=6e-4)


def test_history_of_a_store_only_model(
    store_only_web: TestClient, bundles: dict[str, Path]
) -> None:
    body = store_only_web.get("/history", params={"store": "S02"}).json()
    assert body["store"] == "S02" and "item" not in body
    expected = bundle.read(bundles["store_only"]).history[1]
    assert len(body["sales"]) == len(expected)


@pytest.mark.parametrize(
    ("params", "status", "loc"),
    [
        ({"store": 9, "item": 1}, 404, "store"),
        ({"store": 1, "item": 99}, 404, "item"),
        ({"store": "one", "item": 1}, 404, "store"),
        ({"store": 1}, 422, "item"),
        ({"item": 1}, 422, "store"),
        ({"store": 1, "item": 1, "day": "2018-01-01"}, 422, "day"),
    ],
)
def test_history_refuses_unknown_series(
    web: TestClient, params: dict, status: int, loc: str
) -> None:
    response = web.get("/history", params=params)
    assert response.status_code == status
    body = response.json()
    assert body["errors"][0]["loc"] == loc and body["detail"]


def test_history_refuses_an_item_for_a_store_only_model(store_only_web: TestClient) -> None:
    response = store_only_web.get("/history", params={"store": "S01", "item": "1"})
    assert response.status_code == 422
    assert "one series per store" in response.json()["detail"]


# --- packaging ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_package_ships_the_page(tmp_path: Path) -> None:
    """The package's build (``pip install .``, the image) installs the page's files with the
    package: setuptools' build_py, offline, on what the Dockerfile copies."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = tmp_path / "built"
    setup = "from setuptools import setup; setup()"
    run([sys.executable, "-c", setup, "-q", "build_py", "--build-lib", str(built)], source)
    shipped = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    ours = {
        f"demandcast/api/static/{p.relative_to(STATIC).as_posix()}"
        for p in STATIC.rglob("*")
        if p.is_file()
    }
    assert "demandcast/api/routes/page.py" in shipped
    assert {"demandcast/api/static/index.html", "demandcast/api/static/app.js"} <= ours
    assert ours <= shipped, sorted(ours - shipped)
