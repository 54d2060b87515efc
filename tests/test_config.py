"""params.yaml: defaults, strictness and messages."""

import pytest

from demandcast.config import Params, load_params, parse_params
from demandcast.errors import ConfigError
from tests.conftest import ROOT


def test_repository_params_match_the_defaults():
    """params.yaml is the defaults, plus the declarations of the embedded data's drivers (a
    table of your own has none of them until you declare them)."""
    drivers = {
        "data": {
            "columns": {"open": "open"},
            "covariates": {"promo": "flag", "holiday": "category"},
        },
        "features": {"holidays": {"country": "DE"}},
    }
    assert load_params(ROOT / "params.yaml") == Params.model_validate(drivers)


def test_unknown_key_is_refused_with_its_path(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  max_dept: 8\n")
    with pytest.raises(
        ConfigError, match=r"params.yaml: invalid parameters\n  train.max_dept: Extra"
    ):
        load_params(path)


def test_file_source_needs_a_path(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  source: file\n")
    with pytest.raises(ConfigError, match=r"data\.path is empty"):
        load_params(path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("horizon: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def test_digest():
    params = Params(horizon=30)
    assert params.digest("train") == Params().digest("train")
    assert params.digest("horizon") != Params().digest("horizon")


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(text, "params.yaml")
    return str(info.value)


@pytest.mark.parametrize("windows", ["[0, -7]", "[7, 0]", "[-7]", "[]", "[7.5]", "[true]"])
def test_window_widths_are_whole_periods_of_at_least_one(windows):
    # a window ends `horizon` periods back; a width < 1 would reach newer periods (leakage)
    assert "features.windows" in refused(f"features:\n  windows: {windows}\n")


@pytest.mark.parametrize(
    "knob",
    [
        "horizon: true",
        "train:\n  n_estimators: true",
        "train:\n  max_depth: false",
        "train:\n  seed: true",
        "train:\n  nthread: '2'",
        "train:\n  n_estimators: 300.0",
        "prepare:\n  min_train_days: true",
        "prepare:\n  outage_periods: true",
        "data:\n  synthetic:\n    stores: true",
        "evaluate:\n  plot_top_features: true",
        "drift:\n  min_days: true",
    ],
)
def test_integer_knobs_refuse_booleans_text_and_floats(knob):
    where = ".".join(line.strip().split(":")[0] for line in knob.splitlines())
    assert f"{where}: Input should be a valid integer" in refused(knob)


@pytest.mark.parametrize(
    "knob",
    [
        "train:\n  learning_rate: true",
        "train:\n  subsample: false",
        "train:\n  learning_rate: '0.1'",
        "train:\n  reg_lambda: .nan",
        "drift:\n  concept_threshold: .inf",
        "gate:\n  tolerance: true",
        "data:\n  synthetic:\n    yearly_growth: true",
    ],
)
def test_float_knobs_refuse_booleans_text_and_non_finite_numbers(knob):
    where = ".".join(line.strip().split(":")[0] for line in knob.splitlines())
    assert f"{where}: Input should be a" in refused(knob)


def test_float_knobs_take_integers_and_integer_knobs_take_integers():
    params = parse_params("horizon: 28\ntrain:\n  learning_rate: 1\n  n_estimators: 50\n")
    assert params.train.learning_rate == 1.0 and isinstance(params.train.learning_rate, float)
    assert params.train.n_estimators == 50 and params.horizon == 28
