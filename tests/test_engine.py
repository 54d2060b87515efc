"""The dask engine on a real multi-process cluster: a LocalCluster of 2 worker processes that
`dvc repro` connects to (engine.scheduler), against the local engine on the same data."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xgboost

from demandcast import bundle, engine, model
from demandcast.config import EngineParams, Params
from demandcast.data import load
from demandcast.data.schema import DATE, series_columns
from demandcast.errors import ConfigError
from demandcast.stages.raw import RawPart, raw_partitions
from tests.conftest import DRIVEN, merged, run, scratch_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A Dask cluster of 2 single-threaded worker processes; its scheduler's address."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        with distributed.Client(local) as client:
            assert len(client.nthreads()) == 2
        yield local.scheduler_address


def two_repos(tmp_path: Path, params: dict, address: str) -> tuple[Path, Path]:
    """Scratch repositories with ``params`` on the local engine and on the cluster."""
    local = scratch_repo(tmp_path / "local", merged(params, {"engine": {"kind": "local"}}))
    on_cluster = {"engine": {"kind": "dask", "scheduler": address}}
    return local, scratch_repo(tmp_path / "dask", merged(params, on_cluster))


def table(repo: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(repo / "data" / name)


def report(repo: Path, name: str) -> dict:
    return json.loads((repo / "reports" / name).read_text())


def test_dask_and_local_engines_agree_end_to_end(tmp_path, cluster):
    # 12 series in 5 partitions: stores and items both span partitions, so the pooled store
    # and item levels and the promotions' lifts are summed across them
    params = merged(DRIVEN, {"engine": {"kind": "dask", "partitions": 5}})
    local, dask = two_repos(tmp_path, params, cluster)
    run(["dvc", "repro"], local)
    done = run(["dvc", "repro"], dask)

    log = done.stderr
    assert f"engine: dask cluster {cluster}" in log
    for stage in ("prepare", "features", "evaluate", "drift, pass 2"):
        assert f"{stage}: partitions 5/5 done" in log
    assert "train: 5 partitions on the dask cluster" in log
    assert "on 2 dask workers" in log
    assert len(list((dask / "data" / "features.parquet").glob("part-*.parquet"))) == 5
    assert len(list((local / "data" / "features.parquet").glob("part-*.parquet"))) == 1

    # the same tables, value for value, whatever the partitions
    for name in ("prepared.parquet", "plan.parquet", "features.parquet"):
        pd.testing.assert_frame_equal(table(local, name), table(dask, name), check_exact=True)
    assert report(local, "prepare.json") == report(dask, "prepare.json")
    # the same accuracy up to the distributed quantile sketch (README: Large tables)
    smape = [report(repo, "metrics.json")["holdout"]["smape"] for repo in (local, dask)]
    assert abs(smape[1] / smape[0] - 1) < 0.01
    drift = [report(repo, "drift.json") for repo in (local, dask)]
    assert drift[0]["drift_detected"] is drift[1]["drift_detected"] is False
    assert drift[0]["inputs_match"] is drift[1]["inputs_match"] is True
    assert drift[0]["current"]["rows"] == drift[1]["current"]["rows"] > 0
    assert drift[0]["reference"] == drift[1]["reference"]
    assert drift[0]["data_drift"]["drifted_columns"] == drift[1]["data_drift"]["drifted_columns"]
    for repo in (local, dask):  # no staging or scratch folder left behind
        assert not list((repo / "data").glob(".*.parquet.*"))
        assert not list((repo / ".dvc" / "tmp").glob("drift-*"))

    again = run(["dvc", "repro"], dask)
    assert "Data and pipelines are up to date" in again.stdout


def users_file() -> pd.DataFrame:
    """A user's export: other names, text keys (one with a leading zero), a flag covariate
    written yes/no, closed days, a missing day and an outage."""
    rng = np.random.default_rng(3)
    dates = pd.date_range("2022-01-03", periods=260)
    frames = []
    for shop in ("007", "12", "3"):
        for article in (1, 2, 3):
            promo = rng.random(len(dates)) < 0.1
            is_open = dates.dayofweek != 6
            units = rng.poisson(5 * article * (1 + 0.5 * promo)) * is_open
            frames.append(
                pd.DataFrame(
                    {
                        "Day": dates.strftime("%Y-%m-%d"),
                        "Shop": shop,
                        "Article": article,
                        "Units": units,
                        "Open": is_open.astype(int),
                        "OnPromo": np.where(promo, "yes", "no"),
                    }
                )
            )
    out = pd.concat(frames, ignore_index=True)
    outage = (out["Shop"] == "12") & (out["Article"] == 2)
    outage &= out["Day"].between("2022-03-01", "2022-04-15")
    return out.drop(index=[5, *out.index[outage]])


def test_a_users_csv_is_prepared_alike_on_both_engines(tmp_path, cluster):
    params = {
        "horizon": 14,
        "data": {
            "source": "file",
            "path": "data/raw/sales.csv",
            "columns": {
                "date": "Day",
                "store": "Shop",
                "item": "Article",
                "sales": "Units",
                "open": "Open",
            },
            "covariates": {"OnPromo": "flag"},
        },
        "features": {"holidays": {"country": None}},
        "train": {"n_estimators": 20},
        "engine": {"kind": "dask", "partitions": 4},
    }
    local, dask = two_repos(tmp_path, params, cluster)
    for repo in (local, dask):
        users_file().to_csv(repo / "data" / "raw" / "sales.csv", index=False)
        run([sys.executable, "-m", "demandcast.stages.prepare"], repo)
        run([sys.executable, "-m", "demandcast.stages.features"], repo)
    for name in ("prepared.parquet", "plan.parquet", "features.parquet"):
        pd.testing.assert_frame_equal(table(local, name), table(dask, name), check_exact=True)
    summary = report(dask, "prepare.json")
    assert summary == report(local, "prepare.json")
    assert summary["series"] == 9 and summary["filled_zero"] == 1 and summary["outage"] > 0
    prepared = table(dask, "prepared.parquet")
    assert sorted(prepared["store"].unique()) == ["007", "12", "3"]  # text keys stay text


def test_a_bad_row_is_refused_by_the_dask_engine_and_nothing_is_written(tmp_path, cluster):
    data = {"source": "file", "path": "data/raw/bad.csv", "columns": {"open": None}}
    params = {
        "horizon": 7,
        "data": {**data, "covariates": {}},
        "engine": {"kind": "dask", "scheduler": cluster, "partitions": 2},
    }
    repo = scratch_repo(tmp_path, params)
    frame = pd.DataFrame(
        {
            "date": np.tile(pd.date_range("2024-01-01", periods=60).strftime("%Y-%m-%d"), 2),
            "store": np.repeat([1, 2], 60),
            "item": 1,
            "sales": 3.0,
        }
    )
    frame.loc[70, "sales"] = -2  # a return, in the second store's partition
    frame.to_csv(repo / "data" / "raw" / "bad.csv", index=False)
    done = run([sys.executable, "-m", "demandcast.stages.prepare"], repo, check=False)
    assert done.returncode == 2, done.stderr
    assert "are negative" in done.stderr and "Traceback" not in done.stderr
    assert "first at row 71: " in done.stderr  # the file's row, not the partition's
    assert not (repo / "data" / "prepared.parquet").exists()
    assert not list((repo / "data").glob(".*.parquet.*"))


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path):
    params = {"engine": {"kind": "dask", "scheduler": "tcp://127.0.0.1:9"}}
    repo = scratch_repo(tmp_path, merged(DRIVEN, params))
    done = run([sys.executable, "-m", "demandcast.stages.prepare"], repo, check=False)
    assert done.returncode == 2
    assert "engine.scheduler 'tcp://127.0.0.1:9': no Dask scheduler answers" in done.stderr


def test_the_scheduler_variable_points_the_pipeline_at_a_cluster(monkeypatch):
    local = EngineParams()
    assert engine.settings(local) == local
    monkeypatch.setenv(engine.SCHEDULER_ENV, "tcp://scheduler:8786")
    chosen = engine.settings(local)
    assert chosen.kind == "dask" and chosen.scheduler == "tcp://scheduler:8786"


def test_partitions_follow_the_rows_on_dask_and_are_one_locally(cluster):
    distributed = pytest.importorskip("distributed")
    assert engine.Engine(EngineParams(kind="dask")).partitions(10**9) == 1  # no client: local
    with distributed.Client(cluster) as client:
        auto = engine.Engine(EngineParams(kind="dask"), client)
        assert auto.partitions(10) == 2  # at least one per worker thread
        assert auto.partitions(5_500_000) == 6  # about 1 M rows each
        assert engine.Engine(EngineParams(kind="dask", partitions=3), client).partitions(1) == 3


def test_the_local_cluster_is_sized_to_the_machine_or_to_engine_workers():
    psutil = pytest.importorskip("psutil")
    auto = engine.local_cluster_options(EngineParams(kind="dask"))
    assert auto["threads_per_worker"] == 1 and auto["processes"] is True
    assert auto["n_workers"] == (os.cpu_count() or 1)
    four = engine.local_cluster_options(EngineParams(kind="dask", workers=4))
    assert four["n_workers"] == 4  # the machine's memory shared among four
    assert four["memory_limit"] == int(psutil.virtual_memory().total * 0.9 / 4)


def as_partitions(frame: pd.DataFrame, folder: Path, count: int):
    """``frame`` as a lazy dask frame of ``count`` Parquet parts of whole series."""
    dd = pytest.importorskip("dask.dataframe")
    keys = series_columns(frame)
    ordinal = frame.groupby(keys, sort=True).ngroup()
    bucket = ordinal * count // (ordinal.max() + 1)
    folder.mkdir()
    for index, part in frame.groupby(bucket, sort=True):
        part.to_parquet(folder / f"part-{index:05d}.parquet", index=False)
    return dd.read_parquet(str(folder))


def mean_forecast(trained) -> np.ndarray:
    booster = bundle.load_booster(trained.model_bytes)
    return bundle.predict_mean(booster, trained.meta, trained.forecast, trained.open)


def test_external_memory_training_agrees_with_the_local_engine(
    tmp_path, monkeypatch, cluster, caplog, driven_features, driven_params
):
    distributed = pytest.importorskip("distributed")
    monkeypatch.setattr(engine, "SCRATCH", tmp_path / "scratch")
    cutoff = driven_features[DATE].max() - pd.Timedelta(days=driven_params.horizon)
    lazy = as_partitions(driven_features, tmp_path / "features", 4)
    external = driven_params.model_copy(
        update={"engine": EngineParams(kind="dask", training="external")}
    )
    local = model.fit(driven_features, cutoff, driven_params)
    with distributed.Client(cluster) as client, caplog.at_level("INFO"):
        on_disk = model.fit(lazy, cutoff, external, client=client)
    assert "4 parts binned into XGBoost's external memory" in caplog.text
    assert on_disk.meta.training_rows == local.meta.training_rows
    assert on_disk.meta.data_hash == local.meta.data_hash
    np.testing.assert_array_equal(on_disk.forecast, local.forecast)  # the same inputs
    # the same model up to the quantile sketch of parts: forecasts within 2% each, 0.5% in all
    ours, theirs = mean_forecast(on_disk), mean_forecast(local)
    assert np.allclose(ours, theirs, rtol=0.02, atol=0.05)
    assert abs(ours.sum() / theirs.sum() - 1) < 0.005
    assert not list((tmp_path / "scratch").iterdir()), "the training rows were left behind"


def test_training_goes_external_when_the_rows_do_not_fit_the_workers_memory(cluster, caplog):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(cluster) as client, caplog.at_level("INFO"):
        limits = client.scheduler_info(n_workers=-1)["workers"].values()
        memory = sum(worker["memory_limit"] for worker in limits)
        values = int(memory * model.CLUSTER_MEMORY_SHARE / model.CLUSTER_BYTES_PER_VALUE)
        auto = Params.model_validate({"engine": {"kind": "dask"}})
        assert not model._external(client, auto, values // 26, 26)  # fits: xgboost.dask
        assert model._external(client, auto, values // 26 + 1_000, 26)  # too many rows
        assert "XGBoost's external memory in this process" in caplog.text
        for choice, external in (("cluster", False), ("external", True)):
            forced = Params.model_validate({"engine": {"kind": "dask", "training": choice}})
            assert model._external(client, forced, 10**12, 26) is external
            assert model._external(client, forced, 1, 26) is external


def test_a_worker_lost_in_training_says_what_to_change(
    tmp_path, monkeypatch, cluster, driven_features, driven_params
):
    distributed = pytest.importorskip("distributed")
    dxgb = pytest.importorskip("xgboost.dask")
    lazy = as_partitions(driven_features, tmp_path / "features", 2)
    cutoff = driven_features[DATE].max()
    on_cluster = driven_params.model_copy(
        update={"engine": EngineParams(kind="dask", training="cluster")}
    )

    def peer_died(*args, **kwargs):  # what XGBoost raises when a worker is killed mid-training
        raise xgboost.core.XGBoostError("[12:00:01] Ring allgather failed, error: Broken pipe")

    monkeypatch.setattr(dxgb, "train", peer_died)
    with distributed.Client(cluster) as client:
        with pytest.raises(ConfigError, match=r"engine\.training: external") as refused:
            model.fit(lazy, cutoff, on_cluster, client=client)
        assert "Ring allgather failed" in str(refused.value)
        assert re.search(r"holds the [\d,]+ training rows x \d+ inputs", str(refused.value))

        def bad_params(*args, **kwargs):  # any other XGBoost error is left as it is
            raise xgboost.core.XGBoostError("Invalid Parameter format for max_depth")

        monkeypatch.setattr(dxgb, "train", bad_params)
        with pytest.raises(xgboost.core.XGBoostError, match="max_depth"):
            model.fit(lazy, cutoff, on_cluster, client=client)


def test_a_file_read_in_blocks_keeps_its_rows_numbers_in_every_partition(
    tmp_path, monkeypatch, cluster
):
    distributed = pytest.importorskip("distributed")
    path = tmp_path / "sales.csv"
    frame = users_file().reset_index(drop=True)
    frame.to_csv(path, index=False)
    monkeypatch.setattr(load, "BLOCK", 2_000)  # bytes: the file is read in many blocks
    columns = {"date": "Day", "store": "Shop", "item": "Article", "sales": "Units"}
    params = Params.model_validate(
        {"data": {"source": "file", "path": str(path), "columns": columns}}
    )
    with distributed.Client(cluster) as client:
        eng = engine.Engine(EngineParams(kind="dask", partitions=3), client)
        parts = raw_partitions(params, eng)[0]
        assert load.read_table_lazily(path, params.data.columns).npartitions > 5
        frames = client.compute([part.frame for part in parts], sync=True)
    loaded = [RawPart(frame=rows).load(params) for rows in frames]
    assert len(parts) == 3
    rows = pd.concat(loaded).sort_index()
    assert rows.index.tolist() == list(range(len(frame)))  # every row once, by its number
    for part in loaded:  # in file order, and each row's values are the file's
        assert part.index.is_monotonic_increasing
        assert (
            part["sales"].astype(float).to_numpy() == frame["Units"].to_numpy()[part.index]
        ).all()
