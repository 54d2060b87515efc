"""The retraining loop end to end, with the scripts the workflows run, on small synthetic data
against a real S3 API on loopback: the monitor flags drift, the retrain passes the gate and
pushes, a fresh clone pulls and serves the new model; a worse recipe is refused and nothing of
it is pushed. Each workflow job is a fresh clone, as in GitHub Actions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from demandcast.api.app import create_app
from demandcast.api.settings import Settings
from tests.conftest import ROOT, merged
from tests.workflows import fakes
from tests.workflows.conftest import GIT_ENV, TINY, Project, clone, make_project, run_env

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
    # four weeks, demand +60%: the new model's evaluation holdout (the last two weeks) comes after
    # two weeks of the new level it trained on, so it beats the seasonal-naive baseline there
    new_data = {"APPEND_DAYS": "28", "LEVEL_SHIFT": "0.6"}

    # monitor.yml: the deployed model on the newest data, the drift stage alone
    monitor = clone(project, tmp_path / "monitor")
    done, out = step(monitor, tmp_path, "scripts/monitor.sh", **new_data)
    assert out["drift_detected"] == "true", done.stdout
    assert "concept drift" in out["reasons"] and out["model_version"] == first
    drift = json.loads((monitor / "reports" / "drift.json").read_text())
    assert drift["model"]["version"] == first and drift["current"]["days"] == 28
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
    assert gate["baseline"]["passed"]  # and it beats the seasonal-naive baseline on its holdout
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


# The publish step alone, on a commit that `retrain.sh build` made: no pipeline to run.
VERSION = "20140224-aaaaaaaa"
PROTECTED_MAIN = """#!/bin/sh
# like GitHub's answer to a push to a protected branch
while read -r old new ref; do
  case "$ref" in
    refs/heads/main)
      echo "remote: error: GH006: Protected branch update failed for refs/heads/main." >&2
      exit 1 ;;
  esac
done
"""
READ_ONLY = """#!/bin/sh
echo "remote: Permission to acme/demandcast.git denied to github-actions[bot]." >&2
exit 1
"""


@pytest.fixture
def built(tmp_path) -> Path:
    """A clone where `retrain.sh build` has committed and tagged model-VERSION, one commit ahead
    of its origin's main."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    (repo / "reports").mkdir()
    (repo / "reports" / "gate.md").write_text("### Promotion gate: PASSED\n\nPassed: better\n")
    run_env(["git", "init", "-q", "-b", "main", str(repo)], tmp_path, GIT_ENV)
    git_env(repo, "add", "-A")
    git_env(repo, "commit", "-q", "-m", "the pipeline")
    origin = tmp_path / "origin.git"
    run_env(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path, GIT_ENV)
    git_env(repo, "remote", "add", "origin", str(origin))
    git_env(repo, "push", "-q", "origin", "main")
    (repo / "dvc.lock").write_text("stages: {}\n")
    git_env(repo, "add", "-A")
    git_env(repo, "commit", "-q", "-m", f"Retrain: model {VERSION}", "-m", "Reason: drift")
    git_env(repo, "tag", "-a", f"model-{VERSION}", "-m", f"Model {VERSION}", "-m", "Passed: better")
    return repo


def git_env(repo: Path, *args: str) -> str:
    return run_env(["git", *args], repo, GIT_ENV).stdout.strip()


def hook(repo: Path, script: str) -> None:
    path = repo.parent / "origin.git" / "hooks" / "pre-receive"
    path.write_text(script)
    path.chmod(0o755)


def publish(repo: Path, tmp: Path, check: bool = True, command: str = "publish", **env):
    """`retrain.sh publish` (or another command) with the gh double; its step outputs."""
    fakes.install(tmp / "bin", "gh", fakes.GH)
    state = tmp / "gh.json"
    extra = env.pop("GH", {})
    if not state.exists():
        state.write_text(json.dumps({"calls": [], "comments": [], "pulls": {}, **extra}))
    outputs, summary = tmp / "publish.out", tmp / "summary.md"
    outputs.write_text("")
    env = {
        "PATH": f"{tmp / 'bin'}:{os.environ['PATH']}",
        "FAKE_GH_STATE": str(state),
        "GITHUB_REPOSITORY": "acme/demandcast",
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(summary),
        **GIT_ENV,
        **env,
    }
    done = run_env(["scripts/retrain.sh", command], repo, env, check=check)
    return done, dict(line.split("=", 1) for line in outputs.read_text().splitlines() if line)


def on_origin(repo: Path, ref: str) -> str:
    origin = repo.parent / "origin.git"
    return run_env(
        ["git", "rev-parse", "-q", "--verify", ref], origin, {}, check=False
    ).stdout.strip()


def test_publish_pushes_the_commit_and_its_tag_to_main_in_one_atomic_push(tmp_path, built):
    commit = git_env(built, "rev-parse", "HEAD")
    _, out = publish(built, tmp_path)
    assert out == {"published": "true", "promoted": "true", "deploy": "true"}
    assert on_origin(built, "main") == commit
    assert on_origin(built, f"model-{VERSION}^{{commit}}") == commit
    again, out = publish(built, tmp_path)
    assert "is on origin already" in again.stdout and out == {}  # never deployed twice


@pytest.mark.parametrize("kind", ["github", "app"])
def test_a_protected_main_gets_a_pull_request_and_the_token_stays_out_of_git(tmp_path, built, kind):
    hook(built, PROTECTED_MAIN)
    before, commit = on_origin(built, "main"), git_env(built, "rev-parse", "HEAD")
    token = "ghs_app-installation-token-value"
    done, out = publish(built, tmp_path, GIT_PUSH_TOKEN=token, GH_TOKEN=token, TOKEN_KIND=kind)
    assert out == {
        "published": "true",
        "promoted": "true",
        "pull_request": "https://github.com/acme/demandcast/pull/8",
    }  # no deploy: main has not moved
    assert "GH006: Protected branch update failed" in done.stderr
    assert on_origin(built, "main") == before  # atomic: neither main nor the tag moved alone
    assert on_origin(built, f"refs/heads/retrain/{VERSION}") == commit
    assert on_origin(built, f"model-{VERSION}^{{commit}}") == commit
    created = json.loads((tmp_path / "gh.json").read_text())["pulls_created"]
    assert created[0]["head"] == f"retrain/{VERSION}"
    body = created[0]["body"]
    assert "Reason: drift" in body and "Passed: better" in body and f"`model-{VERSION}`" in body
    assert ("Close and reopen this pull request to run CI" in body) is (kind == "github")
    config = (built / ".git" / "config").read_text()
    assert token not in config + done.stdout + done.stderr


def test_a_pull_request_that_cannot_be_opened_says_which_setting_to_change(tmp_path, built):
    hook(built, PROTECTED_MAIN)
    done, out = publish(built, tmp_path, check=False, GH={"pr_create_fails": True})
    assert done.returncode == 1
    assert "'Allow GitHub Actions to create and approve pull requests'" in done.stderr
    assert f"https://github.com/acme/demandcast/compare/main...retrain/{VERSION}" in done.stderr
    assert on_origin(built, f"refs/heads/retrain/{VERSION}")  # the model has a commit on origin
    assert "published" not in out


def test_a_model_no_commit_on_origin_refers_to_is_reported(tmp_path, built):
    hook(built, READ_ONLY)
    done, out = publish(built, tmp_path, check=False, GITHUB_ACTIONS="true")
    assert done.returncode == 1 and "published" not in out
    message = f"model {VERSION} is in the DVC remote (dvc push ran), but no commit on origin"
    assert f"::error::{message}" in done.stdout
    assert "NOT published" in (tmp_path / "summary.md").read_text()
    # the workflow's own step, when the push step never ran (e.g. the App token failed)
    done, _ = publish(built, tmp_path, command="unpublished", GITHUB_ACTIONS="true")
    assert f"::error::{message}" in done.stdout


def test_the_push_token_reaches_git_only_through_a_credential_helper(tmp_path, built):
    token = "ghs_only-for-the-push"
    done = subprocess.run(
        ["bash", "-c", "source scripts/lib.sh && token_git credential fill"],
        cwd=built,
        env={**os.environ, "GIT_PUSH_TOKEN": token, "GIT_TERMINAL_PROMPT": "0"},
        input="protocol=https\nhost=github.com\n\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert f"password={token}" in done.stdout and "username=x-access-token" in done.stdout
    assert token not in run_env(["git", "config", "--list"], built, {}).stdout
