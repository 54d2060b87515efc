"""Configuration of the API, from environment variables only (never from params.yaml)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MODEL_DIR = "DEMANDCAST_MODEL_DIR"
METRICS = "DEMANDCAST_METRICS"
MAX_ROWS = "DEMANDCAST_MAX_ROWS"
RELOAD_TOKEN = "DEMANDCAST_RELOAD_TOKEN"
HOST = "DEMANDCAST_HOST"
PORT = "PORT"  # unprefixed, as container platforms set it


class SettingsError(ValueError):
    """An environment variable holds a value the API cannot use."""


@dataclass(frozen=True)
class Settings:
    model_dir: Path = Path("models/serving")  # the bundle the pipeline's train stage writes
    metrics_path: Path | None = Path("reports/metrics.json")  # evaluation shown by GET /model
    max_rows: int = 50_000  # rows per POST /predict
    reload_token: str | None = None  # enables POST /admin/reload; None = reload disabled
    host: str = "127.0.0.1"  # where python -m demandcast.api listens (the image: 0.0.0.0)
    port: int = 8000

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read the ``DEMANDCAST_*`` variables and ``PORT``; unset ones keep the defaults above."""
        defaults = cls()
        metrics = env.get(METRICS, str(defaults.metrics_path))  # set it empty for none
        return cls(
            model_dir=Path(env.get(MODEL_DIR) or defaults.model_dir),
            metrics_path=Path(metrics) if metrics else None,
            max_rows=_whole_number(env, MAX_ROWS, defaults.max_rows),
            reload_token=env.get(RELOAD_TOKEN) or None,
            host=env.get(HOST) or defaults.host,
            port=_whole_number(env, PORT, defaults.port, highest=65535),
        )


def _whole_number(
    env: Mapping[str, str], name: str, default: int, highest: int | None = None
) -> int:
    """``env[name]`` as a whole number from 1 to ``highest``; ``default`` when unset or empty."""
    text = env.get(name)
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or (highest is not None and value > highest):
        allowed = ">= 1" if highest is None else f"1..{highest}"
        raise SettingsError(
            f"{name}={text!r}: expected a whole number {allowed} (default {default})"
        )
    return value
