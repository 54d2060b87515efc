"""What the workflow YAML adds to the scripts: triggers, permissions, timeouts, concurrency,
ordering, pinned actions, and that every step runs a script or make target that exists and
that the tests run."""

from __future__ import annotations

import re
import subprocess
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


def step_named(workflow: dict[str, Any], run: str) -> dict[str, Any]:
    return next(s for s in steps(workflow) if s.get("run") == run)


def test_ci_runs_on_pull_requests_and_pushes_to_main_without_secrets(wf):
    on = triggers(wf["ci"])
    assert set(on) == {"pull_request", "push"} and on["push"]["branches"] == ["main"]
    text = (WORKFLOWS / "ci.yml").read_text()
    assert "secrets." not in text  # a fork's PR has none: everything must work without
    assert runs(wf["ci"]) == [
        "make test",
        "make run",
        'scripts/pr_report.sh "$BASE" pr-report',
        "scripts/preflight.sh pr-check",
        'scripts/remote_check.sh "$BASE"',
    ]
    uploads = [s["with"]["name"] for s in steps(wf["ci"]) if "upload-artifact" in s.get("uses", "")]
    assert uploads == ["dvc-plots", "pr-report"]
    # a push's `before` goes to the script, which falls back to the parent when it is unusable
    base = step_named(wf["ci"], 'scripts/pr_report.sh "$BASE" pr-report')["env"]["BASE"]
    assert "github.event.before" in base and "github.base_ref" in base


def test_ci_cancels_superseded_pull_request_runs_only_and_caches_on_the_code(wf):
    concurrency = wf["ci"]["concurrency"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    cache = next(s for s in steps(wf["ci"]) if "actions/cache" in s.get("uses", ""))
    for part in ("'src/**'", "'dvc.lock'", "'dvc.yaml'", "'params.yaml'"):
        assert part in cache["with"]["key"], part


def test_ci_proves_a_pull_requests_outputs_were_pushed_with_a_read_only_role(wf):
    job = wf["ci"]["jobs"]["outputs-pushed"]
    assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    remote = next(s for s in job["steps"] if s.get("uses") == "./.github/actions/dvc-remote")
    assert remote["with"]["role-to-assume"] == "${{ vars.AWS_READ_ROLE_ARN }}"
    assert "access-key-id" not in remote["with"]  # OIDC only: no secret in ci.yml
    gated_after(job, "scripts/preflight.sh pr-check")


def test_the_comment_is_posted_from_the_base_repository_after_ci(wf):
    on = triggers(wf["pr-comment"])
    assert on == {"workflow_run": {"workflows": [wf["ci"]["name"]], "types": ["completed"]}}
    job = wf["pr-comment"]["jobs"]["comment"]
    assert job["permissions"] == {"actions": "read", "contents": "read", "pull-requests": "write"}
    checkout = job["steps"][0]
    assert "ref" not in checkout["with"]  # the default branch's scripts, never the PR's code
    assert checkout["with"]["persist-credentials"] is False
    assert runs(wf["pr-comment"]) == [
        'scripts/pr_comment.sh "$(cat pr-report/pr-number)" pr-report/report.md'
    ]
    env = job["steps"][-1]["env"]
    assert env["EXPECTED_HEAD_SHA"] == "${{ github.event.workflow_run.head_sha }}"


def gated_after(job: dict[str, Any], preflight: str) -> None:
    """Every step after the job's preflight step runs only when it found the setup complete."""
    names = [s.get("run") for s in job["steps"]]
    first = names.index(preflight)
    assert job["steps"][first]["id"] == "preflight"
    for step in job["steps"][first + 1 :]:
        assert "steps.preflight.outputs.configured == 'true'" in step.get("if", ""), step


def test_unconfigured_jobs_skip_and_the_preflight_sees_only_whether_a_secret_is_set(wf):
    for name, job_name, preflight in (
        ("monitor", "drift", 'scripts/preflight.sh remote "the drift monitor"'),
        ("retrain", "retrain", 'scripts/preflight.sh remote "the retrain"'),
        ("deploy", "deploy", "scripts/preflight.sh deploy"),
    ):
        job = wf[name]["jobs"][job_name]
        if name != "retrain":
            gated_after(job, preflight)
        env = step_named(wf[name], preflight)["env"]
        assert env["DVC_REMOTE_URL"] == "${{ vars.DVC_REMOTE_URL }}"
        for secret in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[f"HAS_{secret}"] == f"${{{{ secrets.{secret} != '' }}}}"
        assert not any("secrets." in v and "!=" not in v for v in env.values()), name
    retrain = wf["retrain"]["jobs"]["retrain"]["steps"]
    build = next(i for i, s in enumerate(retrain) if s.get("run") == "scripts/retrain.sh build")
    for step in retrain[1:build]:
        if step.get("id") != "preflight":
            assert "steps.preflight.outputs.configured == 'true'" in step["if"], step
    # the steps after build need a commit to push, which needs a configured remote
    publish = step_named(wf["retrain"], "scripts/retrain.sh publish")
    assert publish["if"] == "steps.retrain.outputs.committed == 'true'"


def test_monitor_is_daily_and_manual_and_calls_retrain_on_drift(wf):
    on = triggers(wf["monitor"])
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert re.fullmatch(r"\d+ \d+ \* \* \*", on["schedule"][0]["cron"])  # once a day
    jobs = wf["monitor"]["jobs"]
    assert jobs["drift"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert runs(wf["monitor"]) == [
        'scripts/preflight.sh remote "the drift monitor"',
        "scripts/monitor.sh",
    ]
    upload = next(s for s in jobs["drift"]["steps"] if "upload-artifact" in s.get("uses", ""))
    assert "reports/drift.html" in upload["with"]["path"] and upload["if"].startswith("always()")
    call = jobs["retrain"]
    assert call["uses"] == "./.github/workflows/retrain.yml" and call["needs"] == "drift"
    assert call["if"] == "needs.drift.outputs.drift_detected == 'true'"
    assert "needs.drift.outputs.reasons" in call["with"]["reason"]
    assert call["secrets"] == "inherit"
    assert call["permissions"]["issues"] == "write"  # the retrain may open an issue


def test_the_monday_retrain_and_the_daily_monitor_never_run_at_once(wf):
    loop = {"group": "demandcast-loop", "cancel-in-progress": False}
    assert wf["monitor"]["jobs"]["drift"]["concurrency"] == loop
    assert wf["retrain"]["jobs"]["retrain"]["concurrency"] == loop
    # job level, not workflow level: monitor calls retrain, and a caller holding the group at
    # the workflow level would wait for its own callee
    assert "concurrency" not in wf["monitor"] and "concurrency" not in wf["retrain"]


def test_retrain_triggers_and_the_deploy_of_its_tag_after_it(wf):
    retrain = wf["retrain"]
    on = triggers(retrain)
    assert set(on) == {"schedule", "workflow_dispatch", "repository_dispatch", "workflow_call"}
    assert re.fullmatch(r"\d+ \d+ \* \* [0-6]", on["schedule"][0]["cron"])  # once a week
    assert on["workflow_dispatch"]["inputs"]["reason"]["required"] is True
    for trigger in ("workflow_dispatch", "workflow_call"):
        assert on[trigger]["inputs"]["open_pr"]["type"] == "boolean"
        assert on[trigger]["inputs"]["bootstrap"] == {
            **on[trigger]["inputs"]["bootstrap"],
            "type": "boolean",
            "default": False,
        }
    assert on["repository_dispatch"] == {"types": ["drift-detected"]}
    assert on["workflow_call"]["inputs"]["reason"]["required"] is True
    job = retrain["jobs"]["retrain"]
    assert job["permissions"] == {
        "contents": "write",
        "pull-requests": "write",
        "issues": "write",
        "id-token": "write",
    }
    assert runs(retrain) == [
        'scripts/preflight.sh remote "the retrain"',
        "scripts/retrain.sh build",
        "scripts/retrain.sh publish",
        "scripts/retrain.sh unpublished",
        'scripts/notify.sh "Retrain refused by the promotion gate" reports/gate.md',
    ]
    build = step_named(retrain, "scripts/retrain.sh build")
    assert "inputs.reason" in build["env"]["REASON"]
    assert "client_payload.reasons" in build["env"]["REASON"]
    assert build["env"]["GATE_BOOTSTRAP"] == "${{ inputs.bootstrap && 'true' || 'false' }}"
    deploy = retrain["jobs"]["deploy"]
    assert deploy["uses"] == "./.github/workflows/deploy.yml" and deploy["needs"] == "retrain"
    assert deploy["if"] == "needs.retrain.outputs.deploy == 'true'"
    assert deploy["with"]["ref"] == "${{ needs.retrain.outputs.tag }}"  # a gated model tag
    assert job["outputs"]["deploy"] == "${{ steps.publish.outputs.deploy }}"


def test_retrain_pushes_with_the_github_app_token_in_the_push_step_only(wf):
    job = wf["retrain"]["jobs"]["retrain"]
    names = [s.get("id") or s.get("run") or s.get("uses") for s in job["steps"]]
    app = job["steps"][names.index("app-token")]
    assert app["uses"].startswith("actions/create-github-app-token@")
    assert app["with"]["client-id"] == "${{ vars.RETRAIN_APP_CLIENT_ID }}"
    assert app["with"]["private-key"] == "${{ secrets.RETRAIN_APP_PRIVATE_KEY }}"
    assert {app["with"]["permission-contents"], app["with"]["permission-pull-requests"]} == {
        "write"
    }
    assert "vars.RETRAIN_APP_CLIENT_ID != ''" in app["if"]  # without the App: GITHUB_TOKEN
    # minted after the long retrain (it lives an hour), right before the push
    assert names.index("retrain") < names.index("app-token") == names.index("publish") - 1
    publish = job["steps"][names.index("publish")]["env"]
    token = "${{ steps.app-token.outputs.token || github.token }}"
    assert publish["GIT_PUSH_TOKEN"] == token and publish["GH_TOKEN"] == token
    assert publish["TOKEN_KIND"] == "${{ steps.app-token.outputs.token && 'app' || 'github' }}"
    build = job["steps"][names.index("retrain")]["env"]
    assert not any("token" in str(v) for v in build.values())  # dvc repro runs with no token
    checkout = job["steps"][0]
    assert checkout["with"]["persist-credentials"] is False and checkout["with"]["ref"] == "main"
    notify = step_named(wf["retrain"], job["steps"][-2]["run"])
    assert notify["if"].startswith("failure()") and "steps.retrain.outputs.gate" in notify["if"]


def test_deploy_takes_a_gated_tag_then_pulls_publishes_smokes_and_releases_a_digest(wf):
    deploy = wf["deploy"]
    on = triggers(deploy)
    assert set(on) == {"workflow_call", "workflow_dispatch"}
    assert "default" not in on["workflow_dispatch"]["inputs"]["ref"]  # no `main` by default
    assert deploy["concurrency"]["group"] == "demandcast-deploy"
    job = deploy["jobs"]["deploy"]
    assert job["permissions"] == {"contents": "write", "packages": "write", "id-token": "write"}
    assert job["environment"]["name"] == "production"
    assert runs(deploy) == [
        "scripts/deploy.sh check-ref",
        "scripts/preflight.sh deploy",
        "scripts/deploy.sh pull",
        "scripts/deploy.sh publish",
        "scripts/deploy.sh smoke",
        "scripts/deploy.sh release",
    ]
    assert job["steps"][1]["run"] == "scripts/deploy.sh check-ref"  # first, before anything
    assert job["steps"][1]["env"] == {"DEPLOY_REF": "${{ inputs.ref }}"}
    uses = [s.get("uses", "") for s in job["steps"]]
    buildx = next(i for i, u in enumerate(uses) if u.startswith("docker/setup-buildx-action@"))
    assert buildx < [s.get("run") for s in job["steps"]].index("scripts/deploy.sh publish")
    ref = "${{ steps.publish.outputs.ref }}"
    assert step_named(deploy, "scripts/deploy.sh smoke")["env"] == {"IMAGE_REF": ref}
    release = step_named(deploy, "scripts/deploy.sh release")["env"]
    assert release["IMAGE_REF"] == ref and release["HF_TOKEN"] == "${{ secrets.HF_TOKEN }}"
    assert release["GIT_PUSH_TOKEN"] == "${{ github.token }}"
    assert set(release) == {
        "IMAGE_REF",
        "GIT_PUSH_TOKEN",
        "DEPLOY_TARGET",
        "DEPLOY_URL",
        "HF_SPACE",
        "HF_TOKEN",
    }
    publish = step_named(deploy, "scripts/deploy.sh publish")
    assert (
        publish["env"] == {"REGISTRY_TOKEN": "${{ github.token }}"} and publish["id"] == "publish"
    )


def test_least_privilege_permissions_and_timeouts_on_every_job(wf):
    for name, workflow in wf.items():
        assert workflow["permissions"] == {}, f"{name}: deny by default at the top"
        for job_name, job in workflow["jobs"].items():
            where = f"{name}.yml job {job_name}"
            assert "permissions" in job, f"{where}: no permissions"
            assert all(v in ("read", "write") for v in job["permissions"].values()), where
            if "runs-on" in job:
                assert 0 < job["timeout-minutes"] <= 60, f"{where}: no timeout-minutes"
            for step in job.get("steps", []):  # no job keeps a token in .git/config
                if "actions/checkout" in step.get("uses", ""):
                    assert step["with"]["persist-credentials"] is False, where


# The steps that may hold a token that writes (the rest run with none in their environment).
TOKEN_STEPS = {
    "scripts/retrain.sh publish",
    "scripts/deploy.sh publish",
    "scripts/deploy.sh release",
    'scripts/notify.sh "Retrain refused by the promotion gate" reports/gate.md',
    'scripts/pr_comment.sh "$(cat pr-report/pr-number)" pr-report/report.md',
}


def test_a_write_token_reaches_only_the_steps_that_write(wf):
    for name, workflow in wf.items():
        for step in steps(workflow):
            if "run" not in step:
                continue
            values = " ".join(str(v) for v in (step.get("env") or {}).values())
            if "github.token" in values or "app-token.outputs.token" in values:
                assert step["run"] in TOKEN_STEPS, f"{name}.yml: {step['run']}"


# The first major of each action that runs on Node 24 (GitHub's runners have moved off Node 20).
NODE24 = {
    "actions/checkout": 5,
    "actions/setup-python": 6,
    "actions/cache": 5,
    "actions/upload-artifact": 6,
    "actions/download-artifact": 6,
    "actions/create-github-app-token": 2,
    "aws-actions/configure-aws-credentials": 6,
    "docker/setup-buildx-action": 4,
}


def test_actions_are_on_node_24_majors():
    files = [*WORKFLOWS.glob("*.yml"), *ACTIONS.glob("*/action.yml")]
    seen = set()
    for path in files:
        for action, major in re.findall(
            r"uses: ([\w.-]+/[\w.-]+)@[0-9a-f]{40} # v(\d+)", path.read_text()
        ):
            assert action in NODE24, f"{path.name}: {action}: which major runs on Node 24?"
            assert int(major) >= NODE24[action], f"{path.name}: {action} v{major} runs on Node 20"
            seen.add(action)
    assert seen == set(NODE24)


def test_dependabot_updates_the_actions_the_python_dependencies_and_the_base_image():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    assert config["version"] == 2
    updates = {u["package-ecosystem"]: u for u in config["updates"]}
    assert set(updates) == {"github-actions", "pip", "docker"}
    composite = {f"/.github/actions/{p.parent.name}" for p in ACTIONS.glob("*/action.yml")}
    assert {"/", *composite} == set(updates["github-actions"]["directories"])
    assert updates["pip"]["directory"] == updates["docker"]["directory"] == "/"
    assert all(u["schedule"]["interval"] == "weekly" for u in updates.values())


def test_the_base_image_is_pinned_by_digest_on_a_line_dependabot_reads():
    text = (ROOT / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, re.M)
    pinned = re.fullmatch(r"python:3\.11-slim@sha256:[0-9a-f]{64}", froms[0][0])
    assert pinned and froms[0][1] == "python-pinned"
    assert re.search(r"^ARG BASE_IMAGE=python-pinned$", text, re.M)
    assert [f[0] for f in froms[1:]] == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    for label in ("source", "revision", "version"):
        assert f"org.opencontainers.image.{label}=" in text
    assert "HEALTHCHECK" in text


def make_n(*args: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "image", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_make_image_builds_the_docker_format_with_podman_which_keeps_the_healthcheck():
    podman = make_n("CONTAINER=podman").split()
    assert podman[:4] == ["podman", "build", "--format", "docker"]
    assert "--format" not in make_n().split()  # docker builds the Docker format anyway
    assert "--format" not in make_n("CONTAINER=docker buildx").split()
    assert make_n("CONTAINER=/usr/bin/podman").split()[1:4] == ["build", "--format", "docker"]
    base = make_n("BASE_IMAGE=python:3.12-slim").split()
    assert "BASE_IMAGE=python:3.12-slim" in base
    assert not any(a.startswith("BASE_IMAGE=") for a in make_n().split())  # the pinned default


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
    monitor = step_named(wf["monitor"], "scripts/monitor.sh")
    assert set(monitor["env"]) == {"APPEND_DAYS", "LEVEL_SHIFT"}
    build = step_named(wf["retrain"], "scripts/retrain.sh build")
    assert {"REASON", "GATE_BOOTSTRAP", "APPEND_DAYS", "LEVEL_SHIFT"} <= set(build["env"])
    assert "OPEN_PR" in step_named(wf["retrain"], "scripts/retrain.sh publish")["env"]
    for name in ("monitor", "retrain", "deploy"):
        remote = next(s for s in steps(wf[name]) if s.get("uses") == "./.github/actions/dvc-remote")
        assert remote["with"]["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
        assert remote["with"]["secret-access-key"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}"
