"""What the workflow YAML adds to the scripts: triggers, permissions, timeouts, concurrency,
ordering, pinned actions, and that every step runs a script or make target that exists and
that the tests run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONS = ROOT / ".github" / "actions"
NAMES = ("ci", "pr-comment", "monitor", "retrain", "deploy")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if True in data:  # PyYAML reads the key `on` as the boolean True
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def wf() -> dict[str, dict[str, Any]]:
    return {name: load(WORKFLOWS / f"{name}.yml") for name in NAMES}


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow["on"]
    return {name: None for name in on} if isinstance(on, list) else on


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in workflow["jobs"].values() for s in job.get("steps", [])]


def composite_steps() -> list[dict[str, Any]]:
    return [s for p in sorted(ACTIONS.glob("*/action.yml")) for s in load(p)["runs"]["steps"]]


def runs(workflow: dict[str, Any]) -> list[str]:
    return [s["run"] for s in steps(workflow) if "run" in s]


def test_every_workflow_file_is_known():
    assert sorted(p.stem for p in WORKFLOWS.glob("*.y*ml")) == sorted(NAMES)


def test_ci_runs_on_pull_requests_and_pushes_to_main_without_secrets(wf):
    on = triggers(wf["ci"])
    assert set(on) == {"pull_request", "push"} and on["push"]["branches"] == ["main"]
    text = (WORKFLOWS / "ci.yml").read_text()
    assert "secrets." not in text  # a fork's PR has none: everything must work without
    assert runs(wf["ci"]) == [
        "make test",
        "make run",
        'scripts/pr_report.sh "$BASE" pr-report',
    ]
    uploads = [s["with"]["name"] for s in steps(wf["ci"]) if "upload-artifact" in s.get("uses", "")]
    assert uploads == ["dvc-plots", "pr-report"]


def test_the_comment_is_posted_from_the_base_repository_after_ci(wf):
    on = triggers(wf["pr-comment"])
    assert on == {"workflow_run": {"workflows": [wf["ci"]["name"]], "types": ["completed"]}}
    job = wf["pr-comment"]["jobs"]["comment"]
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    checkout = job["steps"][0]
    assert "ref" not in checkout["with"]  # the default branch's scripts, never the PR's code
    assert checkout["with"]["persist-credentials"] is False
    assert runs(wf["pr-comment"]) == [
        'scripts/pr_comment.sh "$(cat pr-report/pr-number)" pr-report/report.md'
    ]
    env = job["steps"][-1]["env"]
    assert env["EXPECTED_HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"


def test_monitor_is_daily_and_manual_and_calls_retrain_on_drift(wf):
    on = triggers(wf["monitor"])
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert re.fullmatch(r"\d+ \d+ \* \* \*", on["schedule"][0]["cron"])  # once a day
    jobs = wf["monitor"]["jobs"]
    assert jobs["drift"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert runs(wf["monitor"]) == ["scripts/monitor.sh"]
    upload = next(s for s in jobs["drift"]["steps"] if "upload-artifact" in s.get("uses", ""))
    assert "reports/drift.html" in upload["with"]["path"] and upload["if"] == "always()"
    call = jobs["retrain"]
    assert call["uses"] == "./.github/workflows/retrain.yml" and call["needs"] == "drift"
    assert call["if"] == "needs.drift.outputs.drift_detected == 'true'"
    assert "needs.drift.outputs.reasons" in call["with"]["reason"]
    assert call["secrets"] == "inherit"


def test_retrain_triggers_concurrency_and_the_deploy_after_it(wf):
    retrain = wf["retrain"]
    on = triggers(retrain)
    assert set(on) == {"schedule", "workflow_dispatch", "repository_dispatch", "workflow_call"}
    assert re.fullmatch(r"\d+ \d+ \* \* [0-6]", on["schedule"][0]["cron"])  # once a week
    assert on["workflow_dispatch"]["inputs"]["reason"]["required"] is True
    assert on["workflow_dispatch"]["inputs"]["open_pr"]["type"] == "boolean"
    assert on["repository_dispatch"] == {"types": ["drift-detected"]}
    assert on["workflow_call"]["inputs"]["reason"]["required"] is True
    assert retrain["concurrency"] == {"group": "demandcast-retrain", "cancel-in-progress": False}
    job = retrain["jobs"]["retrain"]
    assert job["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "id-token": "write",
    }
    assert runs(retrain) == ["scripts/retrain.sh"]
    reason = job["steps"][-2]["env"]["REASON"]
    assert "inputs.reason" in reason and "client_payload.reasons" in reason
    deploy = retrain["jobs"]["deploy"]
    assert deploy["uses"] == "./.github/workflows/deploy.yml" and deploy["needs"] == "retrain"
    assert deploy["if"] == "needs.retrain.outputs.deploy == 'true'"
    assert deploy["with"]["ref"] == "${{ needs.retrain.outputs.commit }}"


def test_deploy_pulls_builds_smokes_pushes_then_releases(wf):
    deploy = wf["deploy"]
    assert set(triggers(deploy)) == {"workflow_call", "workflow_dispatch"}
    assert deploy["concurrency"]["group"] == "demandcast-deploy"
    job = deploy["jobs"]["deploy"]
    assert job["permissions"] == {"contents": "write", "packages": "write", "id-token": "write"}
    assert runs(deploy) == [
        f"scripts/deploy.sh {c}" for c in ("pull", "build", "smoke", "push")
    ] + ["scripts/deploy.sh release"]
    release = job["steps"][-1]["env"]
    assert release["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert set(release) == {"DEPLOY_TARGET", "DEPLOY_URL", "HF_SPACE", "HF_TOKEN"}
    push = job["steps"][-2]["env"]
    assert push == {"REGISTRY_TOKEN": "${{ github.token }}"}


def test_least_privilege_permissions_and_timeouts_on_every_job(wf):
    for name, workflow in wf.items():
        assert workflow["permissions"] == {}, f"{name}: deny by default at the top"
        for job_name, job in workflow["jobs"].items():
            where = f"{name}.yml job {job_name}"
            assert "permissions" in job, f"{where}: no permissions"
            assert all(v in ("read", "write") for v in job["permissions"].values()), where
            if "runs-on" in job:
                assert 0 < job["timeout-minutes"] <= 60, f"{where}: no timeout-minutes"
            writes = {k for k, v in job["permissions"].items() if v == "write"}
            if "contents" not in writes:  # only jobs that push keep git credentials
                for step in job.get("steps", []):
                    if "actions/checkout" in step.get("uses", ""):
                        assert step["with"]["persist-credentials"] is False, where


def test_third_party_actions_are_pinned_to_a_commit():
    files = [*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml")]
    for path in files:
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:- )?uses: (.+)$", line)
            if match and not match.group(1).startswith("./"):
                assert PINNED.match(match.group(1)), f"{path.name}: {line.strip()}"


def test_no_expression_or_secret_inside_a_shell_command(wf):
    commands = [r for w in wf.values() for r in runs(w)]
    commands += [s["run"] for s in composite_steps() if "run" in s]
    for command in commands:
        assert "${{" not in command, f"pass it through env instead: {command}"
        assert "secret" not in command.lower(), command


def scripts_of(command: str) -> list[str]:
    return re.findall(r"scripts/[\w.-]+", command)


def test_every_step_runs_a_script_or_make_target_the_tests_exercise(wf):
    makefile = (ROOT / "Makefile").read_text()
    tests = "\n".join(
        p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name
    )
    plumbing = {'echo "$PWD/.venv/bin" >> "$GITHUB_PATH"'}
    commands = [r for w in wf.values() for r in runs(w)]
    commands += [s["run"] for s in composite_steps() if "run" in s]
    called = set()
    for command in commands:
        if command in plumbing:
            continue
        make = re.fullmatch(r'make "?(\w[\w-]*)"?', command)
        if make:
            assert re.search(rf"^{make.group(1)}:.*## ", makefile, re.M), command
            continue
        found = scripts_of(command)
        assert found, f"a step that is neither a script nor a make target: {command}"
        called.update(found)
    for target in ("monitor", "retrain", "gate", "pr-report"):
        recipe = re.search(rf"^{target}:.*\n\t(.+)$", makefile, re.M).group(1)
        called.update(scripts_of(recipe))
    # exercised: named by a test, or called by an exercised script (retrain.sh -> gate.sh)
    exercised = {f"scripts/{p.name}" for p in (ROOT / "scripts").iterdir() if p.name in tests}
    frontier = set(exercised)
    while frontier:
        calls = {s for f in frontier for s in scripts_of((ROOT / f).read_text())}
        frontier = {s for s in calls if (ROOT / s).is_file()} - exercised
        exercised |= frontier
    for script in sorted(called):
        path = ROOT / script
        assert path.exists() and path.stat().st_mode & 0o111, f"{script}: missing or not executable"
        assert script in exercised, f"{script}: no test runs it"


def test_workflow_inputs_reach_the_scripts_through_env(wf):
    monitor = next(s for s in steps(wf["monitor"]) if s.get("run") == "scripts/monitor.sh")
    assert set(monitor["env"]) == {"APPEND_DAYS", "LEVEL_SHIFT"}
    retrain = next(s for s in steps(wf["retrain"]) if s.get("run") == "scripts/retrain.sh")
    assert {"REASON", "OPEN_PR", "APPEND_DAYS", "LEVEL_SHIFT", "GH_TOKEN"} <= set(retrain["env"])
    for name in ("monitor", "retrain", "deploy"):
        remote = next(s for s in steps(wf[name]) if s.get("uses") == "./.github/actions/dvc-remote")
        assert remote["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
        assert remote["with"]["secret-access-key"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}"
