"""The forecast page: GET / and its files under GET /static/, and the two lookups it needs
beside the forecast routes: GET /series (the type-ahead) and GET /history (recent sales).

The page (``api/static/``: its HTML, script and style; the chart is SVG it draws itself, no
library) is a plain client of the API: it reads GET /model, GET /forecast and, for an uploaded
CSV, POST /predict. Its files are read once, kept in memory with their gzip form and an ETag, and
served only by name from that table, so no request path ever reaches the file system.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import math
import urllib.parse
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from demandcast.api import deps
from demandcast.api.errors import ApiError
from demandcast.api.lookup import locate_series
from demandcast.api.routes.forecast import check_query
from demandcast.api.routes.responses import error_responses, json_response
from demandcast.api.schemas import Key
from demandcast.api.store import DECIMALS, Model

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
SERIES_LIMIT = 20  # default answers of GET /series
SERIES_MAX = 200
SERIES_PARAMS = frozenset({"q", "limit"})
HISTORY_PARAMS = frozenset({"store", "item"})

router = APIRouter()


# --- the page's files -------------------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str


@functools.cache
def assets() -> dict[str, Asset]:
    """Every file under ``static/`` by its path there (``app.js``; ``img/x.svg`` in a folder)."""
    found: dict[str, Asset] = {}
    for path in sorted(STATIC_DIR.rglob("*")):
        media_type = MEDIA_TYPES.get(path.suffix)
        if not path.is_file() or media_type is None or path.name.startswith("."):
            continue
        found[path.relative_to(STATIC_DIR).as_posix()] = make_asset(path.read_bytes(), media_type)
    return found


def make_asset(body: bytes, media_type: str) -> Asset:
    return Asset(
        body=body,
        gzipped=gzip.compress(body, mtime=0),
        media_type=media_type,
        etag=f'"{hashlib.sha256(body).hexdigest()[:16]}"',
    )


def named_asset(name: str) -> Asset:
    asset = assets().get(name)
    if asset is None:
        hint = "" if assets() else f" (the page's files are not installed: {STATIC_DIR})"
        raise ApiError(404, f"no file {name!r} on the page{hint}")
    return asset


_pages: weakref.WeakKeyDictionary[Model, Asset] = weakref.WeakKeyDictionary()


def page_of(model: Model) -> Asset:
    """index.html naming the model's first series (``<html data-series="store=1&item=1">``),
    so that the page asks for its history and forecast at once, not after GET /series."""
    found = _pages.get(model)
    if found is None:
        first = urllib.parse.urlencode(
            dict(zip(model.meta.series_keys, model.meta.series[0], strict=True))
        )
        index = named_asset("index.html")
        body = index.body.replace(b'data-series=""', f'data-series="{html.escape(first)}"'.encode())
        found = _pages[model] = make_asset(body, index.media_type)
    return found


def asset_response(request: Request, asset: Asset) -> Response:
    """A file of the page (304 when the client has it; gzip when it accepts it).
    ``no-cache``: browsers keep the files but ask again, so a new release shows at once."""
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = asset.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body, headers["Content-Encoding"] = asset.gzipped, "gzip"
    return Response(body, headers=headers, media_type=asset.media_type)


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def page(request: Request) -> Response:
    """The forecast page (served without a model too: it shows why there is none)."""
    model = (await deps.state(request)).models.current
    asset = named_asset("index.html") if model is None else page_of(model)
    return asset_response(request, asset)


@router.api_route("/static/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def static(request: Request, name: str) -> Response:
    """A file of the page: only the names under ``api/static/``, never a path outside it."""
    return asset_response(request, named_asset(name))


# --- GET /series: the type-ahead ----------------------------------------------------------------


class SeriesList(BaseModel):
    model_version: str
    series_keys: list[str] = Field(examples=[["store", "item"]])
    total: int = Field(description="series in the model")
    matches: int = Field(description="series that match q (the first `limit` are listed)")
    series: list[dict[str, Key]] = Field(
        description="matching series, best first: the text equal to q, then starting with it, "
        "then containing it; each as its keys, e.g. {'store': 1, 'item': 5}"
    )


_labels: weakref.WeakKeyDictionary[Model, list[str]] = weakref.WeakKeyDictionary()


def labels(model: Model) -> list[str]:
    """The text form of each series, ``"store item"`` in lower case, in grid order (once per
    model: computed on its first GET /series)."""
    found = _labels.get(model)
    if found is None:
        found = _labels[model] = [
            " ".join(str(value) for value in values).lower() for values in model.meta.series
        ]
    return found


def normalize(text: str) -> str:
    """Query text as a series label: lower case, ``,``, ``/`` and runs of spaces as one space."""
    return " ".join(text.lower().replace(",", " ").replace("/", " ").split())


def search(model: Model, text: str) -> list[int]:
    """Rows of the series whose label equals, starts with or contains ``text``, in that order."""
    wanted = normalize(text)
    if not wanted:
        return list(range(len(model.meta.series)))
    exact: list[int] = []
    prefix: list[int] = []
    inside: list[int] = []
    for row, label in enumerate(labels(model)):
        if wanted in label:
            if label == wanted:
                exact.append(row)
            elif label.startswith(wanted):
                prefix.append(row)
            else:
                inside.append(row)
    return exact + prefix + inside


@router.get("/series", response_model=SeriesList, responses=error_responses(422, 503))
async def series(
    request: Request,
    q: Annotated[
        str,
        Query(
            max_length=200,
            description="text of the series, 'store item' (e.g. '3 17' or '3'); empty: all",
        ),
    ] = "",
    limit: Annotated[int, Query(ge=1, le=SERIES_MAX, description="series to list")] = SERIES_LIMIT,
) -> Response:
    """The model's series matching ``q``, for the page's type-ahead."""
    state = await deps.state(request)
    model = state.serving()
    check_query(request, SERIES_PARAMS)
    rows = search(model, q)
    keys = model.meta.series_keys
    body = {
        "model_version": model.version,
        "series_keys": keys,
        "total": len(model.meta.series),
        "matches": len(rows),
        "series": [dict(zip(keys, model.meta.series[row], strict=True)) for row in rows[:limit]],
    }
    return json_response(body, model=model)


# --- GET /history: recent sales -----------------------------------------------------------------


class History(BaseModel):
    model_version: str
    store: Key
    item: Key | None = Field(None, description="absent for a store-only model")
    frequency: str = Field(examples=["day"], description="day or week: the period of a value")
    dates: list[str] = Field(description="first day of each period, YYYY-MM-DD, ascending")
    sales: list[float | None] = Field(description="sales of each period; null where unknown")


@router.get("/history", response_model=History, responses=error_responses(404, 422, 503))
async def history(
    request: Request,
    store: Annotated[str, Query(description="store ID", examples=["1"])],
    item: Annotated[str | None, Query(description="item ID (store x item models)")] = None,
) -> Response:
    """The series' actual sales over the last year before the forecast (as shipped in the
    model bundle), null for periods whose sales are unknown (an outage, before the series
    started)."""
    state = await deps.state(request)
    model = state.serving()
    check_query(request, HISTORY_PARAMS)
    row = locate_series(model, store, item)
    sales = [None if math.isnan(v) else v for v in model.history[row].round(DECIMALS).tolist()]
    body = {
        "model_version": model.version,
        **dict(zip(model.meta.series_keys, model.meta.series[row], strict=True)),
        "frequency": model.meta.frequency.name,
        "dates": [date.isoformat() for date in model.history_dates()],
        "sales": sales,
    }
    return json_response(body, model=model)
