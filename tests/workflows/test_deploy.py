"""The deploy job's scripts: the image smoke test against the real API, the push, the release
to a host with its check of the hosted /health and the rollback, and the Hugging Face target
against a local git repository standing in for the Space."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from demandcast import bundle
from demandcast.data.schema import DATE, SALES
from demandcast.model import fit
from tests.conftest import ROOT
from tests.workflows import fakes
from tests.workflows.conftest import GIT_ENV, free_port, run_env

pytestmark = pytest.mark.slow
IMAGE = "ghcr.io/acme/demandcast"


def git(repo: Path, *args: str) -> str:
    return run_env(["git", *args], repo, GIT_ENV).stdout.strip()


@pytest.fixture(scope="module")
def bundles(tmp_path_factory, small_features, small_params) -> dict[str, Path]:
    """Two serving bundles of the small data: ``current`` and ``older`` (a day earlier)."""
    root = tmp_path_factory.mktemp("bundles")
    last = small_features.loc[small_features[SALES].notna(), DATE].max()
    made = {}
    for name, cutoff in (("current", last), ("older", last - pd.Timedelta(days=1))):
        bundle.write(root / name, fit(small_features, cutoff, small_params))
        made[name] = root / name
    return made


@pytest.fixture
def repo(tmp_path, bundles) -> Path:
    """A checkout of a pipeline commit: scripts, Makefile, the model bundle, metrics, and a
    bare origin."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    shutil.copy(ROOT / "Makefile", repo / "Makefile")
    shutil.copytree(bundles["current"], repo / "models" / "serving")
    (repo / "reports").mkdir()
    (repo / "reports" / "metrics.json").write_text('{"holdout": {"smape": 20.0}}')
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "a pipeline commit")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(tmp_path / "origin.git"))
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    git(repo, "push", "-q", "origin", "main")
    return repo


def version_of(directory: Path) -> str:
    return bundle.read_meta(directory).model_version


def deploy(
    repo: Path, tmp: Path, command: str, check: bool = True, **env: str
) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    outputs = tmp / "outputs"
    outputs.write_text("")
    base = {
        "PATH": f"{tmp / 'bin'}:{os.environ['PATH']}",
        "IMAGE": IMAGE,
        "FAKE_DOCKER_STATE": str(tmp / "docker.json"),
        "GITHUB_OUTPUT": str(outputs),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
        **GIT_ENV,
    }
    done = run_env(["scripts/deploy.sh", command], repo, {**base, **env}, check=check)
    return done, dict(line.split("=", 1) for line in outputs.read_text().splitlines())


def test_smoke_test_runs_the_image_and_checks_version_and_predict(tmp_path, repo, bundles):
    fakes.install(tmp_path / "bin", "docker", fakes.DOCKER)
    port = str(free_port())
    done, _ = deploy(repo, tmp_path, "smoke", SMOKE_PORT=port)
    version = version_of(bundles["current"])
    assert f"ok: http://127.0.0.1:{port}/health: model {version}" in done.stdout
    assert f"ok: http://127.0.0.1:{port}/predict" in done.stdout
    calls = json.loads((tmp_path / "docker.json").read_text())["calls"]
    assert calls[0][:4] == ["run", "-d", "--rm", "-p"]
    assert calls[0][4] == f"127.0.0.1:{port}:8000" and calls[0][5] == f"{IMAGE}:{version}"
    assert calls[-1][:2] == ["rm", "-f"]  # the container is removed

    # an image serving another model fails, with the container's logs, and is removed too
    done, _ = deploy(
        repo,
        tmp_path,
        "smoke",
        check=False,
        SMOKE_PORT=str(free_port()),
        SMOKE_WAIT="2",
        FAKE_DOCKER_MODEL_DIR=str(bundles["older"]),
    )
    assert done.returncode == 1 and "failed its smoke test" in done.stderr
    assert f"expected model {version}" in done.stderr
    state = json.loads((tmp_path / "docker.json").read_text())
    assert state["calls"][-1][:2] == ["rm", "-f"] and not state["running"]


def test_build_and_push_tag_the_model_version_and_the_commit(tmp_path, repo, bundles):
    fakes.install(tmp_path / "bin", "docker", fakes.DOCKER)
    token = "ghs_secret-token-value"
    build, out = deploy(repo, tmp_path, "build", BASE_IMAGE="python:3.12-slim")
    push, _ = deploy(repo, tmp_path, "push", REGISTRY_TOKEN=token, GITHUB_ACTOR="octocat")
    version, commit = version_of(bundles["current"]), git(repo, "rev-parse", "--short=12", "HEAD")
    tags = [f"{IMAGE}:{version}", f"{IMAGE}:sha-{commit}"]
    state = json.loads((tmp_path / "docker.json").read_text())
    assert state["calls"][0] == [  # `make image`
        "build",
        "-t",
        tags[1],
        "--build-arg",
        "BASE_IMAGE=python:3.12-slim",
        "-t",
        tags[0],
        ".",
    ]
    assert out["image"] == tags[0]
    assert state["calls"][1] == ["login", "ghcr.io", "-u", "octocat", "--password-stdin"]
    assert state["login_stdin_bytes"] == len(token) + 1  # the token went through stdin only
    assert state["calls"][2:] == [["push", tags[0]], ["push", tags[1]]]
    for done in (build, push):
        assert token not in done.stdout + done.stderr


@pytest.fixture
def host(tmp_path) -> dict[str, str]:
    """The fake host, running the previous model's image, and its hosted endpoint."""
    state = tmp_path / "host.json"
    script = fakes.install(tmp_path / "host", "deploy_fake.sh", fakes.HOST)
    with fakes.hosted_api(state) as url:
        state.write_text(json.dumps({"image": f"{IMAGE}:20140101-00000000", "url": url}))
        yield {"DEPLOY_HOST_SCRIPT": str(script), "FAKE_HOST_STATE": str(state), "url": url}


def test_release_verifies_the_hosted_version_and_moves_the_deployed_tag(
    tmp_path, repo, bundles, host
):
    version = version_of(bundles["current"])
    env = {k: v for k, v in host.items() if k != "url"}
    _, out = deploy(repo, tmp_path, "release", **env)
    assert out["deployed"] == f"{IMAGE}:{version}"
    assert json.loads(Path(host["FAKE_HOST_STATE"]).read_text())["image"] == f"{IMAGE}:{version}"
    origin = repo.parent / "origin.git"
    assert git(origin, "rev-parse", "deployed^{commit}") == git(repo, "rev-parse", "HEAD")
    assert f"/health reports model `{version}`" in (tmp_path / "summary.md").read_text()


def test_release_rolls_back_when_the_host_does_not_serve_the_new_version(
    tmp_path, repo, bundles, host
):
    new = f"{IMAGE}:{version_of(bundles['current'])}"
    previous = f"{IMAGE}:20140101-00000000"
    env = {k: v for k, v in host.items() if k != "url"}
    done, _ = deploy(
        repo, tmp_path, "release", check=False, FAKE_HOST_BROKEN_IMAGE=new, DEPLOY_WAIT="1", **env
    )
    assert done.returncode == 1
    assert f"rolled back to {previous}" in done.stderr
    state = json.loads(Path(host["FAKE_HOST_STATE"]).read_text())
    assert state["deploys"] == [new, previous] and state["image"] == previous
    assert "FAILED" in (tmp_path / "summary.md").read_text()
    origin = repo.parent / "origin.git"
    assert run_env(["git", "tag"], origin, {}).stdout.strip() == ""  # `deployed` did not move


def test_hugging_face_target_points_the_space_at_the_image(tmp_path, repo):
    space = tmp_path / "space.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(space))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(space), str(seed))
    (seed / "README.md").write_text("a new Space\n")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "Space created")
    git(seed, "push", "-q", "origin", "HEAD:main")
    token = "hf_secret-token-value"
    env = {"HF_SPACE": "Acme/Demand_Cast", "HF_SPACE_GIT_URL": str(space), "HF_TOKEN": token}

    def hf(*args: str) -> str:
        done = run_env(["scripts/deploy_hf.sh", *args], repo, env)
        assert token not in done.stdout + done.stderr
        return done.stdout.strip()

    assert hf("current") == ""
    assert hf("url") == "https://acme-demand-cast.hf.space"
    hf("deploy", f"{IMAGE}:20140224-aaaaaaaa")
    assert hf("current") == f"{IMAGE}:20140224-aaaaaaaa"
    assert "already runs" in hf("deploy", f"{IMAGE}:20140224-aaaaaaaa")  # no empty commit
    hf("deploy", f"{IMAGE}:20140225-bbbbbbbb")
    assert hf("current") == f"{IMAGE}:20140225-bbbbbbbb"
    readme = git(space, "show", "main:README.md")
    assert "sdk: docker" in readme and "app_port: 8000" in readme
    assert git(space, "log", "--format=%s", "main").splitlines()[:2] == [
        f"Deploy {IMAGE}:20140225-bbbbbbbb",
        f"Deploy {IMAGE}:20140224-aaaaaaaa",
    ]
    assert token not in run_env(["git", "config", "--list"], space, {}).stdout
    bad = run_env(["scripts/deploy_hf.sh", "deploy", "x; rm -rf /"], repo, env, check=False)
    assert bad.returncode == 1 and "not an image reference" in bad.stderr
