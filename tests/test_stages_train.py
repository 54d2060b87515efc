"""The train stage never leaves the repository without a model, and sweeps its leftovers.

``train_bundles`` is replaced by a stand-in that writes marker files (or fails half-way), so
these tests exercise the staging, the swap and the sweep in milliseconds; the real training is
covered end to end by tests/test_pipeline.py.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
import pytest

from demandcast import files
from demandcast.config import Params
from demandcast.stages import train

DEAD = 99_999_999  # above any pid_max: no such process
LONG_AGO = 946_684_800  # 2000-01-01


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with features and a complete models/ from an earlier run."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    pd.DataFrame({"x": [1.0]}).to_parquet(tmp_path / "data" / "features.parquet")
    for name in ("eval", "serving"):
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "model.ubj").write_text(f"old {name}")
    return tmp_path


def bundles(fail_after_one: bool = False):
    def fake(features: pd.DataFrame, params: Params, out: Path) -> None:
        for name in ("eval", "serving"):
            (out / name).mkdir()
            (out / name / "model.ubj").write_text(f"new {name}")
            if fail_after_one:
                raise RuntimeError("training failed")

    return fake


def run_train() -> None:
    train.run(Params(), argparse.Namespace())


def models(repo: Path) -> dict[str, str]:
    return {p.parent.name: p.read_text() for p in sorted((repo / "models").glob("*/model.ubj"))}


def entries(repo: Path) -> list[str]:
    return sorted(p.name for p in repo.iterdir() if p.name != "data")


def test_new_bundles_replace_the_old_ones_whole(repo, monkeypatch):
    monkeypatch.setattr(train, "train_bundles", bundles())
    run_train()
    assert models(repo) == {"eval": "new eval", "serving": "new serving"}
    assert entries(repo) == ["models"]


def test_a_train_that_fails_after_one_bundle_leaves_models_as_it_was(repo, monkeypatch):
    monkeypatch.setattr(train, "train_bundles", bundles(fail_after_one=True))
    with pytest.raises(RuntimeError, match="training failed"):
        run_train()
    assert models(repo) == {"eval": "old eval", "serving": "old serving"}
    assert entries(repo) == ["models"]  # no staging folder left


def test_models_stay_when_the_new_ones_cannot_be_moved_in(repo, monkeypatch):
    monkeypatch.setattr(train, "train_bundles", bundles())
    rename = os.rename

    def failing(src, dst):
        staging = Path(src).name.startswith(".models.") and ".old." not in Path(src).name
        if staging and Path(dst).name == "models":
            raise OSError("no space left on device")
        rename(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError, match="no space left"):
        run_train()
    assert models(repo) == {"eval": "old eval", "serving": "old serving"}
    assert entries(repo) == ["models"]


def test_the_next_run_removes_the_leftovers_of_killed_runs(repo, monkeypatch):
    killed = repo / f".models.{DEAD}.abcd1234"  # staging of a killed run
    old = repo / ".models.k3j_x9z0"  # staging named before pids, older than this process
    running = repo / f".models.{os.getppid()}.abcd1234"  # a concurrent run's staging
    aside = repo / f".models.old.{DEAD}.abcd1234"  # the set-aside models of a finished swap
    for path in (killed, old, running, aside):
        (path / "eval").mkdir(parents=True)
    os.utime(old, (LONG_AGO, LONG_AGO))
    monkeypatch.setattr(train, "train_bundles", bundles())
    run_train()
    assert entries(repo) == sorted([running.name, "models"])
    assert models(repo) == {"eval": "new eval", "serving": "new serving"}


def test_a_run_killed_in_the_middle_of_the_swap_gets_its_models_back(repo, monkeypatch):
    # killed after moving the old models aside, before moving the new ones in
    aside = repo / f".models.old.{DEAD}.abcd1234"
    os.rename(repo / "models", aside)
    (repo / f".models.{DEAD}.abcd1234").mkdir()
    monkeypatch.setattr(train, "train_bundles", bundles(fail_after_one=True))
    with pytest.raises(RuntimeError):
        run_train()
    assert models(repo) == {"eval": "old eval", "serving": "old serving"}
    assert entries(repo) == ["models"]


def test_temporary_names_are_recognised_as_leftovers_once_their_process_is_gone(repo):
    name = f"{files.private_prefix(train.STAGING)}abcd1234"
    assert name.startswith(f".models.{os.getpid()}.")
    (repo / name).mkdir()
    assert files.leftovers(repo, train.STAGING) == []  # this process is running
