"""Atomic writes, the sweep of an interrupted run's leftovers, and the folder swap."""

from __future__ import annotations

import os
import subprocess

import pytest

from demandcast import files
from demandcast.files import atomic_path, leftovers, replace_dir, write_json, write_text
from tests.conftest import ROOT

DEAD = 99_999_999  # above any pid_max: no such process
LONG_AGO = 946_684_800  # 2000-01-01


def live_pid() -> int:
    return os.getppid()  # the process that started the tests: running


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.json"
    write_json(path, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_temporary_names_carry_the_pid(tmp_path):
    with atomic_path(tmp_path / "out.json") as tmp:
        assert tmp.name.startswith(f".out.json.{os.getpid()}.") and tmp.name.endswith(".tmp")


def test_the_next_write_removes_the_leftovers_of_its_own_interrupted_writes(tmp_path):
    stale = tmp_path / f".out.json.{DEAD}.abcd1234.tmp"  # a killed writer's
    old = tmp_path / ".out.json.k3j_x9z0.tmp"  # named before pids, older than this process
    running = tmp_path / f".out.json.{live_pid()}.abcd1234.tmp"  # a concurrent writer's
    fresh = tmp_path / ".out.json.zzzz9999.tmp"  # no pid, but made after this process started
    other = tmp_path / f".other.json.{DEAD}.abcd1234.tmp"  # another output's
    for path in (stale, old, running, fresh, other):
        path.write_text("x")
    os.utime(old, (LONG_AGO, LONG_AGO))
    write_text(tmp_path / "out.json", "new")
    assert not stale.exists() and not old.exists()
    assert running.exists() and fresh.exists() and other.exists()
    assert (tmp_path / "out.json").read_text() == "new"


def test_a_live_pid_is_swept_only_after_a_day(tmp_path):
    entry = tmp_path / f".models.{live_pid()}.abcd1234"
    entry.mkdir()
    assert leftovers(tmp_path, ".models.") == []
    os.utime(entry, (LONG_AGO, LONG_AGO))
    assert leftovers(tmp_path, ".models.") == [entry]


def test_leftover_names_are_matched_exactly(tmp_path):
    for name in (".models.old.123.abcd1234", ".models.abc", "models", ".models.1.abcd1234.x"):
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (LONG_AGO, LONG_AGO))
    assert leftovers(tmp_path, ".models.") == []
    assert leftovers(tmp_path, ".models.old.") == [tmp_path / ".models.old.123.abcd1234"]


def test_replace_dir_swaps_a_folder_in_whole(tmp_path):
    target, new = tmp_path / "models", tmp_path / ".models.1.abcd1234"
    target.mkdir()
    (target / "old").write_text("old")
    new.mkdir()
    (new / "new").write_text("new")
    replace_dir(new, target)
    assert [p.name for p in target.iterdir()] == ["new"] and not new.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]
    other = tmp_path / "other"
    other.mkdir()
    replace_dir(other, tmp_path / "fresh")  # no old folder: a plain rename
    assert (tmp_path / "fresh").is_dir()


def test_replace_dir_puts_the_old_folder_back_when_the_new_one_cannot_move_in(
    tmp_path, monkeypatch
):
    target, new = tmp_path / "models", tmp_path / ".models.1.abcd1234"
    target.mkdir()
    (target / "old").write_text("old")
    new.mkdir()
    rename = os.rename

    def failing(src, dst):
        if os.fspath(src) == os.fspath(new):
            raise OSError("disk full")
        rename(src, dst)

    monkeypatch.setattr(files.os, "rename", failing)
    with pytest.raises(OSError, match="disk full"):
        replace_dir(new, target)
    assert (target / "old").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [new.name, "models"]


def test_git_ignores_the_leftovers():
    names = [
        "data/.prepared.parquet.123.abcd1234.tmp",
        "reports/plots/.forecast.csv.abcd1234.tmp",
        ".models.123.abcd1234",
        ".models.old.123.abcd1234",
    ]
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.split() == names
