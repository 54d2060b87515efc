"""The retraining loop end to end, with the scripts the workflows run, on small synthetic data
against a real S3 API on loopback: the monitor flags drift, the retrain passes the gate and
pushes, a fresh clone pulls and serves the new model; a worse recipe is refused and nothing of
it is pushed. Each workflow job is a fresh clone, as in GitHub Actions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from demandcast.api.app import create_app
from demandcast.api.settings import Settings
from tests.conftest import merged
from tests.workflows.conftest import TINY, Project, clone, make_project, run_env

pytestmark = pytest.mark.slow


def step(
    repo: Path, tmp: Path, script: str, check: bool = True, **env: str
) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """Run a workflow step's script; return it and the step outputs it wrote."""
    outputs, summary = tmp / f"{script.replace('/', '_')}.out", tmp / "summary.md"
    outputs.write_text("")
    done = run_env(
        [script],
        repo,
        {**env, "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)},
        check=check,
    )
    pairs = (line.split("=", 1) for line in outputs.read_text().splitlines() if line)
    return done, dict(pairs)


def git(repo: Path, *args: str) -> str:
    return run_env(["git", *args], repo, {}).stdout.strip()


def meta(repo: Path) -> dict:
    return json.loads((repo / "models" / "serving" / "metadata.json").read_text())


def deploy_first_model(project: Project) -> str:
    """What the first deploy leaves behind: a pipeline run committed, pushed and tagged."""
    project.run("dvc", "repro")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "first model")
    project.run("dvc", "push")
    project.run("git", "tag", "deployed")
    project.run("git", "push", "-q", "origin", "main", "deployed")
    return meta(project.repo)["model_version"]


def test_drift_retrain_gate_push_and_a_fresh_clone_serves_the_new_model(
    tmp_path, bucket, s3_endpoint
):
    project = make_project(tmp_path, TINY, bucket, s3_endpoint)
    first = deploy_first_model(project)
    new_data = {"APPEND_DAYS": "14", "LEVEL_SHIFT": "0.6"}  # two weeks, demand +60%

    # monitor.yml: the deployed model on the newest data, the drift stage alone
    monitor = clone(project, tmp_path / "monitor")
    done, out = step(monitor, tmp_path, "scripts/monitor.sh", **new_data)
    assert out["drift_detected"] == "true", done.stdout
    assert "concept drift" in out["reasons"] and out["model_version"] == first
    drift = json.loads((monitor / "reports" / "drift.json").read_text())
    assert drift["model"]["version"] == first and drift["current"]["days"] == 14
    assert "Running stage 'train'" not in done.stdout  # monitoring never retrains
    assert (monitor / "reports" / "drift.html").stat().st_size > 0

    # retrain.yml, called with the reasons: the recipe is unchanged, so the gate passes
    ci = clone(project, tmp_path / "retrain")
    reason = f"drift detected: {out['reasons']}"  # as monitor.yml calls retrain.yml
    done, out = step(ci, tmp_path, "scripts/retrain.sh", REASON=reason, **new_data)
    assert out["promoted"] == "true" and out["deploy"] == "true", done.stderr
    version = out["model_version"]
    assert version != first and out["tag"] == f"model-{version}"
    gate = json.loads((ci / "reports" / "gate.json").read_text())
    assert gate["passed"] and gate["method"] == "after_cutoff"
    assert gate["production"]["model_version"] == first
    assert gate["rows"]["count"] == 2 * 3 * 14  # every series, one horizon after production
    assert gate["deploy"]["model_version"] == version
    # committed and tagged on origin: dvc.lock, params (the new days) and the reports
    assert git(project.origin, "rev-parse", "main") == out["commit"]
    assert git(project.origin, "rev-parse", f"{out['tag']}^{{commit}}") == out["commit"]
    changed = git(ci, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert {"dvc.lock", "params.yaml", "reports/metrics.json", "reports/gate.json"} <= set(changed)
    assert f"Reason: {reason}" in git(ci, "log", "-1", "--format=%B")

    # deploy.yml's first step in a fresh clone: pull the model, then serve it
    served = clone(project, tmp_path / "serve")
    run_env(["scripts/deploy.sh", "pull"], served, {})
    assert (served / "models/serving/model.ubj").read_bytes() == (
        ci / "models/serving/model.ubj"
    ).read_bytes()
    settings = Settings(
        model_dir=served / "models" / "serving", metrics_path=served / "reports" / "metrics.json"
    )
    with TestClient(create_app(settings)) as client:
        health = client.get("/health").json()
    assert health["model_version"] == version
    assert health["trained_through"] == meta(ci)["trained_through"]

    # deploy.sh moves `deployed` once the host serves it; then a worse recipe lands on main
    git(ci, "tag", "-f", "deployed", out["commit"])
    git(ci, "push", "-q", "-f", "origin", "refs/tags/deployed")
    worse = clone(project, tmp_path / "worse")
    params = yaml.safe_load((worse / "params.yaml").read_text())
    bad = {"train": {"n_estimators": 2, "max_depth": 1, "learning_rate": 0.05}}
    (worse / "params.yaml").write_text(yaml.safe_dump(merged(params, bad)))
    git(worse, "commit", "-q", "-am", "a worse recipe")
    git(worse, "push", "-q", "origin", "main")
    bad_commit = git(worse, "rev-parse", "HEAD")
    refused = clone(project, tmp_path / "refused")
    done, out = step(refused, tmp_path, "scripts/retrain.sh", check=False, APPEND_DAYS="7")
    assert done.returncode == 1
    assert "promotion gate refused" in done.stderr
    assert out.get("gate") == "refused" and "promoted" not in out
    gate = json.loads((refused / "reports" / "gate.json").read_text())
    assert not gate["passed"] and gate["production"]["model_version"] == version
    assert gate["candidate"]["metrics"]["smape"] > gate["threshold_smape"]
    # nothing of it left the machine: main, the tags and `deployed` are as they were
    assert git(project.origin, "rev-parse", "main") == bad_commit
    assert git(project.origin, "rev-parse", "deployed^{commit}") == git(ci, "rev-parse", "HEAD")
    assert git(project.origin, "tag", "--list", "model-*") == f"model-{version}"
