"""The CLI edge: generate, report, and error handling."""

import pandas as pd

from demandcast.cli import main


def test_generate_writes_a_user_style_csv(tmp_path):
    out = tmp_path / "sales.csv"
    assert (
        main(["generate", "--out", str(out), "--stores", "2", "--items", "3", "--days", "30"]) == 0
    )
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["date", "store", "item", "sales"] and len(frame) == 180


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
