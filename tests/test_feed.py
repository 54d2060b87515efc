"""The data feed: `append` edits params.yaml so the synthetic export continues, day by day."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from demandcast.cli import main
from demandcast.config import parse_params
from demandcast.data import synthetic
from demandcast.errors import ConfigError
from demandcast.feed import Injection, append_days, float_list, int_list
from tests.conftest import ROOT

PARAMS = (ROOT / "params.yaml").read_text()
SMALL = """\
# a comment that must survive
horizon: 14
data:
  synthetic:           # small
    seed: 3
    stores: 3
    items: 4
    start: "2020-01-01"
    days: 400
    changes: []        # injected changes
"""


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def test_clean_days_change_only_the_days_line_of_the_real_params_file():
    text, appended = append_days(PARAMS, 28)
    cfg = parse_params(PARAMS).data.synthetic
    assert changed_lines(PARAMS, text) == [
        (f"    days: {cfg.days}", f"    days: {cfg.days + 28}")
    ]  # comments, quotes and layout kept
    assert appended.first_day == synthetic.last_day(cfg) + dt.timedelta(days=1)
    assert appended.last_day == appended.first_day + dt.timedelta(days=27)
    assert parse_params(text).data.synthetic.days == cfg.days + 28


def test_level_shift_for_some_stores_starts_on_the_first_new_day():
    text, appended = append_days(SMALL, 10, Injection(level_shift=0.3, stores=(1, 3)))
    assert "# a comment that must survive" in text and "# injected changes" in text
    cfg = parse_params(text).data.synthetic
    assert cfg.days == 410
    (change,) = cfg.changes
    assert change.start == dt.date(2021, 2, 4) == appended.first_day  # 2020-01-01 + 400 days
    assert (change.level_shift, change.stores, change.weekly_pattern) == (0.3, [1, 3], None)
    assert "start: '2021-02-04'" in text  # quoted: DVC reads params dates as text
    assert "level shift +30% in stores [1, 3]" in appended.describe()


def test_changes_accumulate_and_weekly_pattern_and_new_items_are_written():
    text, _ = append_days(SMALL, 7, Injection(level_shift=-0.2))
    pattern = (1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.5)
    text, appended = append_days(text, 7, Injection(weekly_pattern=pattern, new_items=2))
    cfg = parse_params(text).data.synthetic
    assert cfg.days == 414
    assert [c.start for c in cfg.changes] == [dt.date(2021, 2, 4), dt.date(2021, 2, 11)]
    assert cfg.changes[1].weekly_pattern == list(pattern) and cfg.changes[1].level_shift == 0
    assert (cfg.new_items, cfg.new_items_start) == (2, dt.date(2021, 2, 11))
    assert "2 new items in every store" in appended.describe()


def test_a_params_file_without_a_synthetic_section_gets_one():
    text, _ = append_days("horizon: 14\n", 5, Injection(level_shift=0.1))
    cfg = parse_params(text).data.synthetic
    assert cfg.days == 1826 + 5 and len(cfg.changes) == 1


def test_appended_days_continue_the_generator_and_leave_earlier_days_untouched():
    before = parse_params(SMALL).data.synthetic
    text, appended = append_days(SMALL, 21, Injection(level_shift=0.5, stores=(2,)))
    after = parse_params(text).data.synthetic
    old, new = synthetic.generate(before), synthetic.generate(after)
    keys = ["store", "item", "date"]
    merged = new.merge(old, on=keys, how="left", suffixes=("", "_old"), validate="one_to_one")
    earlier = merged["date"] <= pd.Timestamp(synthetic.last_day(before))
    assert earlier.sum() == len(old)
    assert (merged.loc[earlier, "sales"] == merged.loc[earlier, "sales_old"]).all()
    # the new days: +50% in store 2 only, against the same days without the change
    plain = synthetic.generate(before.model_copy(update={"days": after.days}))
    open_days = plain["true_mean"] > 0  # closed days sell nothing either way
    ratio = new["true_mean"] / plain["true_mean"]
    new_days = new["date"] >= pd.Timestamp(appended.first_day)
    assert np.allclose(ratio[open_days & new_days & (new["store"] == 2)], 1.5)
    assert np.allclose(ratio[open_days & ~(new_days & (new["store"] == 2))], 1.0)
    assert (new.loc[~open_days, "true_mean"] == 0).all()


@pytest.mark.parametrize(
    ("days", "injection", "message"),
    [
        (0, Injection(), "--days 0: append at least one day"),
        (7, Injection(level_shift=-1.0), "demand would be <= 0"),
        (7, Injection(weekly_pattern=(1.0, 2.0)), "give 7 positive numbers"),
        (7, Injection(weekly_pattern=(1, 1, 1, 1, 1, 1, 0)), "give 7 positive numbers"),
        (7, Injection(stores=(1,)), "--stores restricts --level-shift/--weekly-pattern"),
        (7, Injection(level_shift=0.1, stores=(4,)), "--stores: no store [4]; stores are 1..3"),
    ],
)
def test_options_that_make_no_sense_are_refused(days, injection, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        append_days(SMALL, days, injection)


def test_a_second_cohort_of_new_items_is_refused():
    text, _ = append_days(SMALL, 7, Injection(new_items=1))
    with pytest.raises(ConfigError, match="supports one cohort of new items"):
        append_days(text, 7, Injection(new_items=1))


def test_a_file_source_is_refused_with_the_way_new_data_arrives():
    text = "data:\n  source: file\n  path: data/raw/sales.csv\n"
    with pytest.raises(ConfigError) as err:
        append_days(text, 7)
    assert "replace data/raw/sales.csv" in str(err.value)
    assert "dvc update" in str(err.value) and "dvc repro -s drift" in str(err.value)


def test_list_options():
    assert float_list("1,1.5, 2") == (1.0, 1.5, 2.0)
    assert int_list("1,2") == (1, 2)
    with pytest.raises(ValueError):
        int_list("1,x")


def test_cli_append_edits_the_params_file_in_place_keeping_its_mode(tmp_path, capsys):
    path = tmp_path / "params.yaml"
    path.write_text(SMALL)
    path.chmod(0o644)
    argv = ["--params", str(path), "append", "--days", "3", "--level-shift", "0.3"]
    assert main([*argv, "--stores", "1,2", "--weekly-pattern", "1,1,1,1,1,2,2"]) == 0
    written = yaml.safe_load(path.read_text())["data"]["synthetic"]
    assert written["days"] == 403
    assert written["changes"] == [
        {
            "start": "2021-02-04",
            "level_shift": 0.3,
            "weekly_pattern": [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0],
            "stores": [1, 2],
        }
    ]
    assert path.stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob(".*tmp"))

    assert main(["--params", str(path), "append", "--days", "3", "--stores", "9"]) == 2
    assert "--stores restricts" in capsys.readouterr().err
    assert yaml.safe_load(path.read_text())["data"]["synthetic"]["days"] == 403  # untouched
