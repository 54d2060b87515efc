"""params.yaml: defaults, strictness and messages."""

import pytest

from demandcast.config import Params, load_params
from demandcast.errors import ConfigError
from tests.conftest import ROOT


def test_repository_params_match_the_defaults():
    assert load_params(ROOT / "params.yaml") == Params()


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
