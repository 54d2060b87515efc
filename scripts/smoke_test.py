#!/usr/bin/env python3
"""Smoke-test a running demandcast API: /health reports the expected model, one /predict works.

    scripts/smoke_test.py URL [--bundle models/serving] [--expect-version V] [--wait SECONDS]

The expected version is ``--expect-version`` or the bundle's ``metadata.json``; the /predict row
is the bundle's first series on its first forecast day. ``--wait`` keeps polling /health until
it reports that version (a container starting, a host rolling out); ``--health-only`` skips
/predict (e.g. checking a rollback to an image whose bundle is not at hand).
Standard library only, so it runs on any runner without the project installed. Exit 0 = pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class SmokeError(Exception):
    """The API is not serving what it should; the message says what it did instead."""


def request(url: str, body: dict[str, Any] | None = None, timeout: float = 10) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise SmokeError(f"{url}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise SmokeError(f"{url}: {getattr(exc, 'reason', exc)}") from None
    except json.JSONDecodeError:
        raise SmokeError(f"{url}: the answer is not JSON") from None


def check_health(base: str, version: str, wait: float, interval: float = 5) -> dict[str, Any]:
    """GET /health until it is ok and reports ``version``, for at most ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            health = request(f"{base}/health")
            if health.get("status") == "ok" and health.get("model_version") == version:
                return health
            problem = (
                f"/health reports {health.get('status')!r}, model {health.get('model_version')}"
            )
        except SmokeError as exc:
            problem = str(exc)
        if time.monotonic() >= deadline:
            raise SmokeError(f"{problem}; expected model {version} (waited {wait:.0f} s)")
        print(f"waiting: {problem}", file=sys.stderr)
        time.sleep(min(interval, max(deadline - time.monotonic(), 0.1)))


def check_predict(base: str, meta: dict[str, Any], version: str) -> float:
    """POST /predict one row (the first series, the first forecast day); return its sales."""
    first_day = dt.date.fromisoformat(meta["trained_through"]) + dt.timedelta(days=1)
    row = dict(zip(meta["series_keys"], meta["series"][0], strict=True))
    row["date"] = first_day.isoformat()
    answer = request(f"{base}/predict", {"rows": [row]})
    if answer.get("model_version") != version:
        raise SmokeError(
            f"/predict answered with model {answer.get('model_version')}, not {version}"
        )
    predictions = answer.get("predictions") or [{}]
    sales = predictions[0].get("sales")
    if not isinstance(sales, int | float) or not math.isfinite(sales) or sales < 0:
        raise SmokeError(f"/predict returned sales {sales!r} for {row}")
    return float(sales)


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("url", help="base URL of the API, e.g. http://127.0.0.1:8000")
    cli.add_argument("--bundle", default="models/serving", help="bundle the API should serve")
    cli.add_argument("--expect-version", help="model version expected (default: the bundle's)")
    cli.add_argument("--wait", type=float, default=0, help="seconds to wait for /health")
    cli.add_argument("--health-only", action="store_true", help="skip POST /predict")
    args = cli.parse_args(argv)
    base = args.url.rstrip("/")
    meta: dict[str, Any] | None = None
    if not args.health_only or not args.expect_version:
        meta_path = Path(args.bundle) / "metadata.json"
        if not meta_path.exists():
            print(f"error: {meta_path}: not found (pass --bundle)", file=sys.stderr)
            return 2
        meta = json.loads(meta_path.read_text())
    version = args.expect_version or meta["model_version"]
    try:
        health = check_health(base, version, args.wait)
        print(f"ok: {base}/health: model {version}, trained through {health['trained_through']}")
        if not args.health_only:
            sales = check_predict(base, meta, version)
            print(f"ok: {base}/predict: {sales:.3f} for the first series' first forecast day")
    except SmokeError as exc:
        print(f"error: smoke test failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
