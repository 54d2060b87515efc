"""Unconfigured = green and explicit: the workflows' preflight (a fresh fork passes with a notice,
a half-done setup fails naming what is missing) and `make doctor`, the local side of the setup."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.workflows import fakes
from tests.workflows.conftest import GIT_ENV, run_env

PREFLIGHT = str(ROOT / "scripts" / "preflight.sh")
PLACEHOLDER = "s3://demandcast-dvc/cache"


def preflight(tmp: Path, *args: str, **env: str) -> tuple[object, dict[str, str], str]:
    """Run the preflight as a workflow step does; its result, outputs and job summary."""
    outputs, summary = tmp / "outputs", tmp / "summary.md"
    outputs.write_text("")
    summary.write_text("")
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs)}
    done = run_env(
        [PREFLIGHT, *args], ROOT, {**actions, "GITHUB_STEP_SUMMARY": str(summary), **env}, False
    )
    pairs = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if line)
    return done, pairs, summary.read_text()


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("remote", "the drift monitor"), "no DVC remote is configured, so the drift monitor"),
        (("remote", "the retrain"), "no DVC remote is configured, so the retrain does nothing"),
        (("deploy",), "no host is configured (HF_SPACE, HF_TOKEN), so nothing is deployed"),
        (("pr-check",), "no AWS_READ_ROLE_ARN variable"),
    ],
)
def test_a_fresh_fork_with_nothing_configured_passes_and_says_so(tmp_path, args, what):
    secrets = {"HAS_AWS_ACCESS_KEY_ID": "false", "HAS_AWS_SECRET_ACCESS_KEY": "false"}
    done, out, summary = preflight(tmp_path, *args, HAS_HF_TOKEN="false", **secrets)
    assert done.returncode == 0 and out == {"configured": "false"}
    assert f"::notice::{what}" in done.stdout and "Run the loop on your repository" in done.stdout
    assert summary.startswith("### Skipped: ")


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        # keys but no DVC_REMOTE_URL: DVC would target a bucket this project does not own
        (
            {"HAS_AWS_ACCESS_KEY_ID": "true", "HAS_AWS_SECRET_ACCESS_KEY": "true"},
            ["DVC_REMOTE_URL (variable)", PLACEHOLDER],
        ),
        ({"DVC_REMOTE_URL": "s3://ours/cache"}, ["AWS_ROLE_ARN (variable", "AWS_ACCESS_KEY_ID"]),
        (
            {"DVC_REMOTE_URL": "s3://ours/cache", "HAS_AWS_ACCESS_KEY_ID": "true"},
            ["AWS_SECRET_ACCESS_KEY (secret), the other half of AWS_ACCESS_KEY_ID"],
        ),
        (
            {"DVC_REMOTE_URL": "gs://ours/cache", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"},
            ["DVC_REMOTE_URL (variable) is 'gs://ours/cache': expected s3://BUCKET/PREFIX"],
        ),
    ],
)
def test_a_remote_configured_in_part_fails_naming_what_is_missing(tmp_path, env, missing):
    done, out, summary = preflight(tmp_path, "remote", "the retrain", **env)
    assert done.returncode == 1 and out == {"configured": "false"}
    for text in missing:
        assert text in done.stdout and text in summary
    assert "::error::The DVC remote is configured in part: missing" in done.stdout


def test_a_complete_setup_runs_the_job(tmp_path):
    role = {"DVC_REMOTE_URL": "s3://ours/cache", "AWS_ROLE_ARN": "arn:aws:iam::1:role/loop"}
    keys = {"DVC_REMOTE_URL": "s3://ours/cache"}
    keys |= {"HAS_AWS_ACCESS_KEY_ID": "true", "HAS_AWS_SECRET_ACCESS_KEY": "true"}
    for env in (role, keys):
        done, out, _ = preflight(tmp_path, "remote", **env)
        assert done.returncode == 0 and out == {"configured": "true"}, done.stdout
    host = {"HF_SPACE": "acme/demandcast", "HAS_HF_TOKEN": "true"}
    done, out, _ = preflight(tmp_path, "deploy", **role, **host)
    assert done.returncode == 0 and out == {"configured": "true"}


def test_a_deploy_configured_in_part_fails_naming_what_is_missing(tmp_path):
    role = {"DVC_REMOTE_URL": "s3://ours/cache", "AWS_ROLE_ARN": "arn:aws:iam::1:role/loop"}
    done, out, _ = preflight(tmp_path, "deploy", HF_SPACE="acme/demandcast", **role)
    assert done.returncode == 1 and "missing HF_TOKEN (secret)" in done.stdout
    assert out == {"configured": "false"}
    # a host, but no DVC remote to pull the model from
    done, _, _ = preflight(tmp_path, "deploy", HF_SPACE="acme/x", HAS_HF_TOKEN="true")
    assert done.returncode == 1 and "missing DVC_REMOTE_URL (variable)" in done.stdout
    done, _, _ = preflight(tmp_path, "deploy", DEPLOY_TARGET="fly", **role)
    assert done.returncode == 1 and "scripts/deploy_fly.sh does not exist" in done.stdout
    done, _, _ = preflight(tmp_path, "pr-check", AWS_READ_ROLE_ARN="arn:aws:iam::1:role/read")
    assert done.returncode == 1 and "missing DVC_REMOTE_URL (variable)" in done.stdout


# `make doctor`


@pytest.fixture
def clone(tmp_path) -> Path:
    """A clone of this project as a user has it: scripts, the DVC config, a GitHub origin."""
    repo = tmp_path / "clone"
    (repo / ".dvc").mkdir(parents=True)
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    run_env(["git", "init", "-q", str(repo)], tmp_path, GIT_ENV)
    run_env(["git", "remote", "add", "origin", "git@github.com:acme/demandcast.git"], repo, {})
    return repo


def doctor(repo: Path, tmp: Path, **env: str):
    home = tmp / "home"  # no ~/.aws of the machine running the tests
    home.mkdir(exist_ok=True)
    return run_env(["scripts/doctor.sh"], repo, {"HOME": str(home), **env}, check=False)


def test_doctor_names_what_the_local_setup_lacks_then_passes(tmp_path, clone):
    done = doctor(clone, tmp_path, PATH=f"{tmp_path / 'nogh'}:{os.environ['PATH']}")
    assert done.returncode == 1
    assert "ok        origin: GitHub repository acme/demandcast" in done.stdout
    assert f"MISSING   the DVC remote 'storage' is still {PLACEHOLDER}" in done.stdout
    assert "MISSING   credentials for the remote" in done.stdout
    assert "2 missing" in done.stdout

    run_env(["dvc", "remote", "modify", "--local", "storage", "url", "s3://ours/cache"], clone, {})
    keys = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "not-a-secret"}
    done = doctor(clone, tmp_path, **keys)
    if shutil.which("gh") is None:
        assert done.returncode == 0, done.stdout
        assert "optional  gh is not installed" in done.stdout
    assert "ok        DVC remote 'storage': s3://ours/cache" in done.stdout
    assert "not-a-secret" not in done.stdout + done.stderr


def test_doctor_checks_the_repositorys_variables_and_secrets_with_gh(tmp_path, clone):
    run_env(["dvc", "remote", "modify", "--local", "storage", "url", "s3://ours/cache"], clone, {})
    state = tmp_path / "gh.json"
    names = {
        "variables": ["DVC_REMOTE_URL", "AWS_ROLE_ARN", "HF_SPACE"],
        "secrets": [],
        "secrets@production": ["HF_TOKEN"],  # an environment secret counts
    }
    state.write_text(json.dumps({"calls": [], **names}))
    fakes.install(tmp_path / "bin", "gh", fakes.GH)
    env = {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "FAKE_GH_STATE": str(state),
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "not-a-secret",
    }
    done = doctor(clone, tmp_path, **env)
    assert done.returncode == 0, done.stdout
    for line in ("variable DVC_REMOTE_URL", "variable AWS_ROLE_ARN (OIDC)", "secret HF_TOKEN"):
        assert f"ok        {line}" in done.stdout
    assert "optional  the retrain GitHub App" in done.stdout
    calls = json.loads(state.read_text())["calls"]
    assert ["secret", "list", "--repo", "acme/demandcast", "--json", "name"] in calls

    state.write_text(json.dumps({"calls": [], **names, "variables": ["AWS_ROLE_ARN"]}))
    done = doctor(clone, tmp_path, **env)
    assert done.returncode == 1
    assert "MISSING   variable DVC_REMOTE_URL" in done.stdout
    assert "MISSING   variable HF_SPACE" in done.stdout

    state.write_text(json.dumps({"calls": [], "logged_in": False}))
    done = doctor(clone, tmp_path, **env)
    assert done.returncode == 1 and "MISSING   gh is installed but not logged in" in done.stdout


def test_make_doctor_runs_the_script():
    done = run_env(["make", "--no-print-directory", "-n", "doctor"], ROOT, {})
    assert done.stdout.strip() == "scripts/doctor.sh"
