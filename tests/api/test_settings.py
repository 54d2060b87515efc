"""The API's configuration comes from DEMANDCAST_* environment variables (and PORT) only."""

from __future__ import annotations

from pathlib import Path

import pytest

from demandcast.api.settings import Settings, SettingsError


def test_defaults_serve_the_pipeline_output() -> None:
    assert Settings.from_env({}) == Settings(
        model_dir=Path("models/serving"),
        metrics_path=Path("reports/metrics.json"),
        max_rows=50_000,
        reload_token=None,
        host="127.0.0.1",
        port=8000,
    )


def test_every_variable_is_read() -> None:
    env = {
        "DEMANDCAST_MODEL_DIR": "/srv/model",
        "DEMANDCAST_METRICS": "/srv/metrics.json",
        "DEMANDCAST_MAX_ROWS": "100",
        "DEMANDCAST_RELOAD_TOKEN": "t",
        "DEMANDCAST_HOST": "0.0.0.0",
        "PORT": "8080",
    }
    assert Settings.from_env(env) == Settings(
        Path("/srv/model"), Path("/srv/metrics.json"), 100, "t", "0.0.0.0", 8080
    )


def test_an_empty_metrics_path_means_no_evaluation() -> None:
    assert Settings.from_env({"DEMANDCAST_METRICS": ""}).metrics_path is None


@pytest.mark.parametrize("value", ["0", "-5", "many", "1.5"])
def test_a_bad_max_rows_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(
        SettingsError, match=f"DEMANDCAST_MAX_ROWS='{value}': expected a whole number"
    ):
        Settings.from_env({"DEMANDCAST_MAX_ROWS": value})


@pytest.mark.parametrize("value", ["0", "65536", "-1", "http", "80.5"])
def test_a_bad_port_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(
        SettingsError, match=f"PORT='{value}': expected a whole number 1..65535 \\(default 8000\\)"
    ):
        Settings.from_env({"PORT": value})


def test_empty_host_and_port_keep_the_defaults() -> None:
    settings = Settings.from_env({"DEMANDCAST_HOST": "", "PORT": ""})
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
