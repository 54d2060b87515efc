"""The API's configuration comes from DEMANDCAST_* environment variables (and PORT) only."""

from __future__ import annotations

from pathlib import Path

import pytest

from demandcast.api.settings import Settings, SettingsError


def test_defaults_serve_the_pipeline_output() -> None:
    settings = Settings.from_env({})
    assert settings == Settings(
        model_dir=Path("models/serving"),
        metrics_path=Path("reports/metrics.json"),
        max_rows=50_000,
        reload_token=None,
        host="127.0.0.1",
        port=8000,
        max_body_bytes=None,
        read_timeout=10,
        keep_alive_timeout=5,
    )
    assert settings.body_limit == 50_000 * 256  # 12.8 MB: 256 bytes per row


def test_every_variable_is_read() -> None:
    token = "0123456789abcdef"
    env = {
        "DEMANDCAST_MODEL_DIR": "/srv/model",
        "DEMANDCAST_METRICS": "/srv/metrics.json",
        "DEMANDCAST_MAX_ROWS": "100",
        "DEMANDCAST_RELOAD_TOKEN": token,
        "DEMANDCAST_HOST": "0.0.0.0",
        "PORT": "8080",
        "DEMANDCAST_MAX_BODY_BYTES": "4096",
        "DEMANDCAST_READ_TIMEOUT": "3",
        "DEMANDCAST_KEEP_ALIVE_TIMEOUT": "2",
    }
    assert Settings.from_env(env) == Settings(
        Path("/srv/model"), Path("/srv/metrics.json"), 100, token, "0.0.0.0", 8080, 4096, 3, 2
    )
    assert Settings.from_env(env).body_limit == 4096


def test_the_body_limit_follows_the_row_limit_unless_set() -> None:
    assert Settings.from_env({"DEMANDCAST_MAX_ROWS": "10"}).body_limit == 2560
    assert Settings(max_rows=10, max_body_bytes=100).body_limit == 100


@pytest.mark.parametrize("token", ["t", "s3cret", "0123456789abcde"])
def test_a_short_reload_token_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"DEMANDCAST_RELOAD_TOKEN": token})
    message = str(refused.value)
    assert message.startswith(f"DEMANDCAST_RELOAD_TOKEN is {len(token)} characters long")
    assert "at least 16" in message and repr(token) not in message
    with pytest.raises(SettingsError, match="at least 16"):
        Settings(reload_token=token)  # whoever builds the settings


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEMANDCAST_MAX_BODY_BYTES", "0"),
        ("DEMANDCAST_MAX_BODY_BYTES", "10MB"),
        ("DEMANDCAST_READ_TIMEOUT", "0"),
        ("DEMANDCAST_READ_TIMEOUT", "1.5"),
        ("DEMANDCAST_KEEP_ALIVE_TIMEOUT", "-1"),
        ("DEMANDCAST_KEEP_ALIVE_TIMEOUT", "3601"),
    ],
)
def test_bad_limits_are_refused_with_their_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}='{value}': expected a whole number"):
        Settings.from_env({name: value})


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
