"""The S3 remote: configured in .dvc/config without credentials, and a round trip against a
real S3 API on loopback (moto). The first retrain of a project is refused with nothing deployed
to compare with (the gate fails closed) unless it is an explicit bootstrap; then it pushes its
outputs from one clone (and, asked for a pull request, opens one); a second clean clone of that
branch pulls them: `dvc status` is clean and the model bytes are the same."""

from __future__ import annotations

import configparser
import json
import os

import pytest

from tests.conftest import ROOT
from tests.workflows import fakes
from tests.workflows.conftest import TINY, clone, make_project, run_env

pytestmark = pytest.mark.slow

CREDENTIAL_KEYS = {"access_key_id", "secret_access_key", "session_token", "profile"}


def test_dvc_config_names_the_s3_remote_and_no_credentials():
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert config["core"]["remote"] == "storage"
    remote = config["'remote \"storage\"'"]
    assert remote["url"] == "s3://demandcast-dvc/cache"
    assert not CREDENTIAL_KEYS & set(remote)


def test_first_retrain_pushes_and_a_clean_clone_pulls_the_same_bytes(tmp_path, bucket, s3_endpoint):
    project = make_project(tmp_path, TINY, bucket, s3_endpoint)
    assert "endpointurl" in (project.repo / ".dvc" / "config.local").read_text()
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "the pipeline, never run")
    project.run("git", "push", "-q", "origin", "main")
    main = project.run("git", "rev-parse", "HEAD").stdout.strip()
    fakes.install(tmp_path / "bin", "gh", fakes.GH)
    (tmp_path / "gh.json").write_text(json.dumps({"calls": [], "comments": [], "pulls": {}}))
    outputs = tmp_path / "outputs"
    outputs.write_text("")
    env = {
        "OPEN_PR": "true",
        "REASON": "first model",
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "FAKE_GH_STATE": str(tmp_path / "gh.json"),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    # nothing is deployed: no comparison, so the gate refuses (fails closed) and nothing moves
    refused = project.run("scripts/retrain.sh", check=False, **env)
    assert refused.returncode == 1 and "no model is deployed to compare it with" in refused.stderr
    assert "GATE_BOOTSTRAP=true" in refused.stderr
    out = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert out == {"gate": "no-production"}
    assert "REFUSED" in (project.repo / "reports" / "gate.md").read_text()
    assert "not in cache" not in project.run("dvc", "status", "-c").stdout  # nothing pushed
    assert run_env(["git", "tag", "--list"], project.origin, {}).stdout == ""
    project.run("git", "reset", "-q", "--hard")  # dvc autostage staged its files
    project.run("git", "clean", "-fdq")

    outputs.write_text("")
    project.run("scripts/retrain.sh", GATE_BOOTSTRAP="true", **env)  # the first model, on purpose
    out = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    version, branch = out["model_version"], f"retrain/{out['model_version']}"
    assert out["promoted"] == "true" and out["gate"] == "passed" and "deploy" not in out
    assert out["pull_request"] == "https://github.com/acme/demandcast/pull/8"
    gate = json.loads((project.repo / "reports" / "gate.json").read_text())
    assert gate["method"] == "bootstrap" and gate["baseline"]["passed"]
    assert "bootstrap: first model" in (tmp_path / "summary.md").read_text()
    assert "Cache and remote 'storage' are in sync" in project.run("dvc", "status", "-c").stdout
    # a pull request, not a push to main
    assert run_env(["git", "rev-parse", "main"], project.origin, {}).stdout.strip() == main
    create = json.loads((tmp_path / "gh.json").read_text())["calls"][0]
    assert create[:6] == ["pr", "create", "--base", "main", "--head", branch]
    body = create[create.index("--body") + 1]
    assert "bootstrap: first model" in body and "Close and reopen this pull request" in body

    second = clone(project, tmp_path / "second", ref=branch)
    assert not (second / "models").exists()
    run_env(["dvc", "pull"], second, {})
    status = run_env(["dvc", "status"], second, {})
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    features = "data/features.parquet/part-00000.parquet"  # a dataset of one part (local)
    for name in ("models/serving/model.ubj", "models/eval/model.ubj", features):
        assert (second / name).read_bytes() == (project.repo / name).read_bytes(), name
    meta = json.loads((second / "models/serving/metadata.json").read_text())
    assert meta["model_version"] == version
