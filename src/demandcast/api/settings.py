"""Configuration of the API, from environment variables only (never from params.yaml)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MODEL_DIR = "DEMANDCAST_MODEL_DIR"
METRICS = "DEMANDCAST_METRICS"
MAX_ROWS = "DEMANDCAST_MAX_ROWS"
MAX_BODY_BYTES = "DEMANDCAST_MAX_BODY_BYTES"
RELOAD_TOKEN = "DEMANDCAST_RELOAD_TOKEN"
READ_TIMEOUT = "DEMANDCAST_READ_TIMEOUT"
KEEP_ALIVE_TIMEOUT = "DEMANDCAST_KEEP_ALIVE_TIMEOUT"
HOST = "DEMANDCAST_HOST"
PORT = "PORT"  # unprefixed, as container platforms set it

BYTES_PER_ROW = 256  # default body limit per row: a compact row is ~45 bytes, indented ~110
MIN_TOKEN_CHARS = 16


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
    max_body_bytes: int | None = None  # bytes of a request body; None = BYTES_PER_ROW * max_rows
    read_timeout: int = 10  # seconds to send a request's headers, or of a pause in its body
    keep_alive_timeout: int = 5  # seconds an idle keep-alive connection stays open (uvicorn's)

    def __post_init__(self) -> None:
        if self.reload_token is not None and len(self.reload_token) < MIN_TOKEN_CHARS:
            raise SettingsError(
                f"{RELOAD_TOKEN} is {len(self.reload_token)} characters long: use at least "
                f"{MIN_TOKEN_CHARS}, e.g. the output of "
                "python -c 'import secrets; print(secrets.token_urlsafe())'"
            )

    @property
    def body_limit(self) -> int:
        """The largest request body the API reads, in bytes."""
        return self.max_body_bytes or BYTES_PER_ROW * self.max_rows

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read the ``DEMANDCAST_*`` variables and ``PORT``; unset ones keep the defaults above."""
        defaults = cls()
        metrics = env.get(METRICS, str(defaults.metrics_path))  # set it empty for none
        max_rows = _whole_number(env, MAX_ROWS, defaults.max_rows)
        body = _whole_number(env, MAX_BODY_BYTES, BYTES_PER_ROW * max_rows)
        return cls(
            model_dir=Path(env.get(MODEL_DIR) or defaults.model_dir),
            metrics_path=Path(metrics) if metrics else None,
            max_rows=max_rows,
            reload_token=env.get(RELOAD_TOKEN) or None,
            host=env.get(HOST) or defaults.host,
            port=_whole_number(env, PORT, defaults.port, highest=65535),
            max_body_bytes=body if env.get(MAX_BODY_BYTES) else None,
            read_timeout=_whole_number(env, READ_TIMEOUT, defaults.read_timeout, highest=3600),
            keep_alive_timeout=_whole_number(
                env, KEEP_ALIVE_TIMEOUT, defaults.keep_alive_timeout, highest=3600
            ),
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
