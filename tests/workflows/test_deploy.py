"""The deploy job's scripts: the gate on what may be deployed (a model tag), the image smoke
test against the real API, the build and push to a digest (with attestations in CI, the Docker
format with podman), the release of that digest to a host with its check of the hosted /health,
the rollback to the previous digest, the first deploy to a host that cannot pull a private
image, and the Hugging Face target against a local git repository standing in for the Space."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
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
    commit = git(repo, "rev-parse", "--short=12", "HEAD")
    assert calls[0][4] == f"127.0.0.1:{port}:8000" and calls[0][5] == f"{IMAGE}:sha-{commit}"
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


def test_build_and_push_tag_the_commit_and_the_model_and_output_the_digest(tmp_path, repo, bundles):
    fakes.install(tmp_path / "bin", "docker", fakes.DOCKER)
    token = "ghs_secret-token-value"
    build, out = deploy(repo, tmp_path, "build", BASE_IMAGE="python:3.12-slim")
    push, pushed = deploy(repo, tmp_path, "push", REGISTRY_TOKEN=token, GITHUB_ACTOR="octocat")
    version, commit = version_of(bundles["current"]), git(repo, "rev-parse", "--short=12", "HEAD")
    tags = [f"{IMAGE}:sha-{commit}", f"{IMAGE}:{version}"]
    state = json.loads((tmp_path / "docker.json").read_text())
    assert state["calls"][0] == [  # `make image`
        "build",
        "-t",
        tags[1],
        "--build-arg",
        f"MODEL_VERSION={version}",
        "--build-arg",
        "BASE_IMAGE=python:3.12-slim",
        "--build-arg",
        f"REVISION={git(repo, 'rev-parse', 'HEAD')}",
        "-t",
        tags[0],
        ".",
    ]
    assert out["image"] == tags[0]
    assert state["calls"][1] == ["login", "ghcr.io", "-u", "octocat", "--password-stdin"]
    assert state["login_stdin_bytes"] == len(token) + 1  # the token went through stdin only
    assert state["calls"][2:4] == [["push", tags[0]], ["push", tags[1]]]
    # what the host will run: the registry's digest of the commit's image, not a tag
    digest = "sha256:" + hashlib.sha256(tags[0].encode()).hexdigest()
    assert pushed == {"ref": f"{IMAGE}@{digest}", "digest": digest}
    for done in (build, push):
        assert token not in done.stdout + done.stderr


def test_publish_pushes_one_buildx_build_with_an_sbom_and_provenance(tmp_path, repo, bundles):
    fakes.install(tmp_path / "bin", "docker", fakes.DOCKER)
    env = {"REGISTRY_TOKEN": "ghs_token", "GITHUB_REPOSITORY": "Acme/DemandCast"}
    _, out = deploy(repo, tmp_path, "publish", **env)
    version, commit = version_of(bundles["current"]), git(repo, "rev-parse", "--short=12", "HEAD")
    state = json.loads((tmp_path / "docker.json").read_text())
    assert state["calls"][0][0] == "login"
    build = state["calls"][1]
    assert build[:2] == ["buildx", "build"] and build[-3:] == ["-t", f"{IMAGE}:sha-{commit}", "."]
    for flag in ("--sbom=true", "--provenance=mode=max", "--push"):
        assert flag in build
    assert "--load" not in build  # a loaded image carries no attestations
    assert "SOURCE_URL=https://github.com/Acme/DemandCast" in build  # links the GHCR package
    assert f"MODEL_VERSION={version}" in build and f"{IMAGE}:{version}" in build
    digest = (
        "sha256:" + hashlib.sha256(f"{IMAGE}:{version} {IMAGE}:sha-{commit}".encode()).hexdigest()
    )
    assert out == {"ref": f"{IMAGE}@{digest}", "digest": digest}
    assert "provenance" in (tmp_path / "summary.md").read_text().lower()


def test_podman_builds_the_docker_format_and_pushes_with_a_digest_file(tmp_path, repo, bundles):
    """podman's default OCI format drops HEALTHCHECK (Healthcheck=null); `make image` asks for the
    Docker format, and podman writes the pushed digest to a file."""
    fakes.install(tmp_path / "bin", "podman", fakes.DOCKER)
    deploy(repo, tmp_path, "build", DOCKER="podman")
    _, out = deploy(repo, tmp_path, "push", DOCKER="podman")
    state = json.loads((tmp_path / "docker.json").read_text())
    assert state["calls"][0][:3] == ["build", "--format", "docker"]
    assert state["calls"][1][:2] == ["push", "--digestfile"]
    assert out["ref"].startswith(f"{IMAGE}@sha256:")


def test_a_deploy_takes_only_a_model_tag_that_passed_the_gate(tmp_path, repo, bundles):
    version = version_of(bundles["current"])
    passed = {"passed": True, "deploy": {"model_version": version}}
    (repo / "reports" / "gate.json").write_text(json.dumps(passed))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"Retrain: model {version}")
    git(repo, "tag", "-a", f"model-{version}", "-m", f"Model {version}")
    done, _ = deploy(repo, tmp_path, "check-ref", DEPLOY_REF=f"model-{version}")
    assert "passed by the promotion gate" in done.stdout
    git(repo, "tag", "-d", f"model-{version}")
    git(repo, "tag", f"model-{version}")  # actions/checkout may leave a tag lightweight: fine
    deploy(repo, tmp_path, "check-ref", DEPLOY_REF=f"model-{version}")
    git(repo, "tag", f"model-{version}-copy")
    refused = {  # what its commit must hold: the gate's pass of the model the tag names
        "main": "is not a model-<version> tag",
        git(repo, "rev-parse", "HEAD"): "is not a model-<version> tag",
        "model-nowhere": "is not a model-<version> tag",
        f"model-{version}-copy": f"is not a pass of model {version}-copy",
        "model-20140101-00000000": "has no promotion gate verdict",
    }
    git(repo, "tag", "model-20140101-00000000", "HEAD~1")  # by hand, on an ungated commit
    for ref, why in refused.items():
        done, _ = deploy(repo, tmp_path, "check-ref", check=False, DEPLOY_REF=ref)
        assert done.returncode == 1 and why in done.stderr, ref
    done, _ = deploy(repo, tmp_path, "check-ref", check=False, DEPLOY_REF="main")
    assert "run the Retrain workflow" in done.stderr
    (repo / "reports" / "gate.json").write_text(json.dumps({**passed, "passed": False}))
    git(repo, "commit", "-q", "-am", "a refused model")
    git(repo, "tag", f"model-{version}-refused")
    done, _ = deploy(
        repo, tmp_path, "check-ref", check=False, DEPLOY_REF=f"model-{version}-refused"
    )
    assert done.returncode == 1 and "is not a pass" in done.stderr
    assert "Deploy refused" in (tmp_path / "summary.md").read_text()


PREVIOUS = f"{IMAGE}@sha256:{'b' * 64}"  # what the host runs before the deploy
NEW = f"{IMAGE}@sha256:{'a' * 64}"


@pytest.fixture
def host(tmp_path, bundles) -> dict[str, str]:
    """The fake host, running the previous model's image (by digest), and its hosted endpoint;
    ``versions`` says which model each image serves."""
    state = tmp_path / "host.json"
    script = fakes.install(tmp_path / "host", "deploy_fake.sh", fakes.HOST)
    versions = {PREVIOUS: "20140101-00000000", NEW: version_of(bundles["current"])}
    with fakes.hosted_api(state) as url:
        state.write_text(json.dumps({"image": PREVIOUS, "url": url, "versions": versions}))
        yield {"DEPLOY_HOST_SCRIPT": str(script), "FAKE_HOST_STATE": str(state)}


def host_state(host: dict[str, str]) -> dict:
    return json.loads(Path(host["FAKE_HOST_STATE"]).read_text())


def test_release_deploys_the_digest_verifies_the_model_and_moves_the_deployed_tag(
    tmp_path, repo, bundles, host
):
    version = version_of(bundles["current"])
    token = "ghs_push-token-value"
    done, out = deploy(repo, tmp_path, "release", IMAGE_REF=NEW, GIT_PUSH_TOKEN=token, **host)
    assert out["deployed"] == NEW and host_state(host)["image"] == NEW
    assert f"replacing {PREVIOUS}, model 20140101-00000000" in done.stdout
    origin = repo.parent / "origin.git"
    assert git(origin, "rev-parse", "deployed^{commit}") == git(repo, "rev-parse", "HEAD")
    assert f"/health reports model `{version}`" in (tmp_path / "summary.md").read_text()
    assert token not in done.stdout + done.stderr + (repo / ".git" / "config").read_text()


@pytest.mark.parametrize("ref", [f"{IMAGE}:20140224-aaaaaaaa", f"{IMAGE}@sha256:abc", ""])
def test_release_deploys_only_by_digest(tmp_path, repo, host, ref):
    done, _ = deploy(repo, tmp_path, "release", check=False, IMAGE_REF=ref, **host)
    assert done.returncode == 1 and "IMAGE_REF" in done.stderr
    assert "deploys" not in host_state(host)  # a reusable tag never reaches the host


def test_release_rolls_back_to_the_previous_digest_when_the_host_does_not_serve_it(
    tmp_path, repo, bundles, host
):
    env = {"FAKE_HOST_BROKEN_IMAGE": NEW, "DEPLOY_WAIT": "1", **host}
    done, _ = deploy(repo, tmp_path, "release", check=False, IMAGE_REF=NEW, **env)
    assert done.returncode == 1
    assert f"rolled back to {PREVIOUS}" in done.stderr
    state = host_state(host)
    assert state["deploys"] == [NEW, PREVIOUS] and state["image"] == PREVIOUS
    summary = (tmp_path / "summary.md").read_text()
    assert f"rolled back to `{PREVIOUS}` (model `20140101-00000000`)" in summary
    origin = repo.parent / "origin.git"
    assert run_env(["git", "tag"], origin, {}).stdout.strip() == ""  # `deployed` did not move


def test_first_deploy_to_a_host_that_cannot_pull_a_private_image_says_what_to_do(
    tmp_path, repo, bundles, host
):
    """A new GHCR package is private, and a Hugging Face Space pulls without credentials: the
    release stops before touching the host, with the package settings to change."""
    state = host_state(host)
    Path(host["FAKE_HOST_STATE"]).write_text(
        json.dumps({**state, "image": "", "pull": "anonymous"})
    )
    with fakes.registry(public=False) as registry:
        env = {"REGISTRY_CHECK_URL": f"http://{registry}", **host}
        done, _ = deploy(repo, tmp_path, "release", check=False, IMAGE_REF=NEW, **env)
    assert done.returncode == 1
    assert "refuses an anonymous pull of acme/demandcast (HTTP 403): private" in done.stderr
    settings = "https://github.com/users/acme/packages/container/demandcast/settings"
    assert settings in done.stderr and "Change visibility -> Public" in done.stderr
    assert "nothing was deployed" in done.stderr
    assert "deploys" not in host_state(host)  # the host was not touched
    assert settings in (tmp_path / "summary.md").read_text()

    with fakes.registry(public=True) as registry:  # once the package is public
        env = {"REGISTRY_CHECK_URL": f"http://{registry}", **host}
        _, out = deploy(repo, tmp_path, "release", IMAGE_REF=NEW, **env)
    assert out["deployed"] == NEW


def test_a_first_deploy_that_never_comes_up_says_how_to_find_out_why(tmp_path, repo, host):
    state = host_state(host)
    Path(host["FAKE_HOST_STATE"]).write_text(json.dumps({**state, "image": ""}))
    env = {"FAKE_HOST_BROKEN_IMAGE": NEW, "DEPLOY_WAIT": "1", "HF_SPACE": "acme/demand", **host}
    done, _ = deploy(repo, tmp_path, "release", check=False, IMAGE_REF=NEW, **env)
    assert done.returncode == 1 and "nothing to roll back to" in done.stderr
    summary = (tmp_path / "summary.md").read_text()
    assert "the usual cause is that the host cannot pull the image" in summary
    assert "packages/container/demandcast/settings" in summary
    assert "https://huggingface.co/spaces/acme/demand?logs=build" in summary


def test_the_registry_check_tells_public_from_private_and_unreachable(tmp_path):
    check = [sys.executable, str(ROOT / "scripts" / "registry_check.py")]
    with fakes.registry(public=True) as registry:
        assert run_env([*check, f"{registry}/acme/x@sha256:{'c' * 64}"], ROOT, {}).returncode == 0
    with fakes.registry(public=False) as registry:
        done = run_env([*check, f"{registry}/acme/x:v1"], ROOT, {}, check=False)
        assert done.returncode == 3 and "private" in done.stderr
    done = run_env([*check, f"127.0.0.1:{free_port()}/acme/x:v1"], ROOT, {}, check=False)
    assert done.returncode == 2 and "could not reach the registry" in done.stderr


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
    assert hf("pull-access") == "anonymous"  # the Space pulls without credentials
    hf("deploy", NEW)
    assert hf("current") == NEW
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
