"""The CLI edge: generate, report, the stage subcommands, and error handling."""

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from demandcast.cli import main
from demandcast.stages import prepare
from tests.conftest import SMALL


def test_generate_writes_a_user_style_csv(tmp_path):
    out, plan = tmp_path / "sales.csv", tmp_path / "plan.csv"
    args = ["--stores", "2", "--items", "3", "--days", "30", "--plan", str(plan)]
    assert main(["generate", "--out", str(out), *args]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["date", "store", "item", "sales", "open", "promo", "holiday"]
    assert len(frame) == 180
    ahead = pd.read_csv(plan)  # the params' horizon (90 days) after the data, every series
    assert list(ahead.columns) == ["date", "store", "item", "open", "promo", "holiday"]
    assert len(ahead) == 6 * 90 and ahead["date"].min() > frame["date"].max()


def test_report_without_metrics_is_an_actionable_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text("{}\n")
    assert main(["report"]) == 2
    assert "reports/metrics.json: not found; run the pipeline first" in capsys.readouterr().err


def test_bad_params_exit_2(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("horizon: 0\n")
    assert main(["--params", str(params), "report"]) == 2
    assert "horizon: Input should be greater than or equal to 1" in capsys.readouterr().err


def test_importing_the_cli_imports_no_stage_and_no_training_code():
    code = (
        "import sys, demandcast.cli\n"
        "bad = sorted(m for m in sys.modules if m.startswith('demandcast.')\n"
        "             and m not in ('demandcast.cli', 'demandcast.config', 'demandcast.errors',\n"
        "                           'demandcast.files', 'demandcast.stages',\n"
        "                           'demandcast.stages.common'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_stage_subcommand_runs_the_stage_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(json.dumps(SMALL))  # JSON is YAML
    assert main(["prepare"]) == 0
    first = pd.read_parquet(tmp_path / "data/prepared.parquet")
    assert len(first) == 3 * 4 * 420
    assert json.loads((tmp_path / "reports/prepare.json").read_text())["series"] == 12

    shutil.rmtree(tmp_path / "data/prepared.parquet")  # a Parquet dataset: a folder
    assert prepare.main([]) == 0  # what dvc runs: python -m demandcast.stages.prepare
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "data/prepared.parquet"), first)


def test_stage_options_pass_through_and_errors_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    params = tmp_path / "other.yaml"
    params.write_text("horizon: 0\n")
    assert main(["--params", str(params), "features"]) == 2
    assert "horizon: Input should be greater than or equal to 1" in capsys.readouterr().err
    assert main(["features", "--params", str(params)]) == 2
    assert "other.yaml: invalid parameters" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["features", "--no-such-option"])
    assert refused.value.code == 2
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err
