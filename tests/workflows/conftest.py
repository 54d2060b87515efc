"""Fixtures for the workflow tests: a real S3 API on loopback (moto) and scratch projects.

A scratch project is this repository's pipeline and scripts in a temporary git + DVC repo whose
DVC remote is a fresh bucket of the moto server and whose git ``origin`` is a local bare repo,
so the scripts the workflows call run here exactly as in GitHub Actions.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, SMALL, merged, run, scratch_repo

# SMALL with fewer series and days: enough for every stage, drift and the gate, and quick
TINY = merged(SMALL, {"data": {"synthetic": {"stores": 2, "items": 3, "days": 200}}})

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",  # moto accepts any credentials; these are not secrets
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "NO_PROXY": "127.0.0.1,localhost",
}
GIT_ENV = {
    "GIT_AUTHOR_NAME": "demandcast-test",
    "GIT_AUTHOR_EMAIL": "test@demandcast.invalid",
    "GIT_COMMITTER_NAME": "demandcast-test",
    "GIT_COMMITTER_EMAIL": "test@demandcast.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers (any HTTP status) or ``proc`` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before serving {url}")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 (a free port) for the whole session."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **AWS_ENV},
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        wait_for(f"{endpoint}/moto-api/", proc)
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


LEAKY = ("GITHUB_", "RUNNER_", "AWS_", "DVC_", "HF_", "DEPLOY", "IMAGE", "REGISTRY_", "GH_")


@pytest.fixture(autouse=True)
def _no_ci_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripts read GITHUB_OUTPUT, AWS_*, DEPLOY_* ...: when these tests run inside a
    workflow (or a shell with credentials), none of that may reach them, or leak out."""
    for name in list(os.environ):
        if name.startswith(LEAKY):
            monkeypatch.delenv(name)
    for name in ("APPEND_DAYS", "LEVEL_SHIFT", "REASON", "OPEN_PR", "BASE_BRANCH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a git identity for every subprocess of the test."""
    for name, value in {**AWS_ENV, **GIT_ENV}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bucket(s3_endpoint: str, aws_env: None) -> str:
    """A new, empty bucket on the moto server."""
    import boto3

    name = f"demandcast-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


@dataclass(frozen=True)
class Project:
    """A scratch clone of this project, its bare ``origin`` and its S3 remote."""

    repo: Path
    origin: Path
    remote_url: str
    endpoint: str

    def run(self, *cmd: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        return run_env(list(cmd), self.repo, env, check=check)


def run_env(
    cmd: list[str], cwd: Path, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess:
    """``tests.test_pipeline.run`` with extra environment variables."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return run(cmd, cwd, check=check)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def remote_env(remote_url: str, endpoint: str) -> dict[str, str]:
    """What the workflows set as repository variables, pointing at the moto bucket."""
    return {"DVC_REMOTE_URL": remote_url, "DVC_S3_ENDPOINT_URL": endpoint}


def make_project(tmp: Path, params: dict, bucket: str, endpoint: str) -> Project:
    """This project's pipeline, scripts and ``.dvc/config`` in a scratch git + DVC repo with a
    bare ``origin``; the remote is pointed at ``bucket`` by ``scripts/configure_remote.sh``."""
    repo = scratch_repo(tmp, params)
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    shutil.copy(ROOT / ".dvc" / "config", repo / ".dvc" / "config")  # the real remote section
    origin = tmp / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp)
    run(["git", "checkout", "-q", "-b", "main"], repo)
    run(["git", "remote", "add", "origin", str(origin)], repo)
    project = Project(repo, origin, f"s3://{bucket}/cache", endpoint)
    project.run("scripts/configure_remote.sh", **remote_env(project.remote_url, endpoint))
    return project


def clone(project: Project, dest: Path, ref: str = "main") -> Path:
    """A fresh ``git clone`` of the project's origin with its DVC remote configured."""
    run(["git", "clone", "-q", "--branch", ref, str(project.origin), str(dest)], dest.parent)
    run_env(["scripts/configure_remote.sh"], dest, remote_env(project.remote_url, project.endpoint))
    return dest
