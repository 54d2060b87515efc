"""The CI workflow's scripts: the pipeline report of a pull request, the comment that is updated
in place, and the credential plumbing of the DVC remote."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT, scratch_repo, write_params
from tests.workflows import fakes
from tests.workflows.conftest import GIT_ENV, TINY, run_env

pytestmark = pytest.mark.slow


def git(repo: Path, *args: str) -> str:
    return run_env(["git", *args], repo, GIT_ENV).stdout.strip()


def test_pr_report_diffs_metrics_params_and_plots_against_the_base(tmp_path):
    repo = scratch_repo(tmp_path, TINY)
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    run_env(["dvc", "repro"], repo, {})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "main")
    git(repo, "branch", "-M", "main")
    git(repo, "checkout", "-q", "-b", "feature")
    write_params(repo, {**TINY, "train": {**TINY["train"], "max_depth": 2}})
    run_env(["dvc", "repro"], repo, {})

    env = {"PR_NUMBER": "7", "HEAD_SHA": "abc123", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md")}
    run_env(["scripts/pr_report.sh", "main", "out"], repo, env)
    report = (repo / "out" / "report.md").read_text()
    assert report.splitlines()[0] == "<!-- demandcast-pr-report -->"
    assert "| params.yaml | train.max_depth | 4 " in report
    assert "holdout.smape" in report and "reports/metrics.json" in report
    assert "- `reports/plots/horizon.csv` changed" in report
    assert "**`dvc repro` changed `dvc.lock`** (stages: drift, evaluate, train)" in report
    assert (repo / "dvc_plots" / "index.html").stat().st_size > 0
    assert (repo / "out" / "pr-number").read_text() == "7\n"
    assert (repo / "out" / "head-sha").read_text() == "abc123\n"
    assert (tmp_path / "s.md").read_text() == report  # the job summary

    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "deeper trees, results committed")
    same = run_env(["scripts/pr_report.sh", "HEAD"], repo, {}).stdout
    assert "`dvc repro` reproduced the committed `dvc.lock`." in same
    assert "No metric changed." in same and "No parameter changed." in same
    assert "No plot data changed." in same


@pytest.fixture
def gh(tmp_path) -> dict[str, str]:
    """The ``gh`` double on the PATH, with PR #7 at commit abc123 and someone's comment."""
    state = tmp_path / "gh.json"
    foreign = {"id": 1, "pr": 7, "body": "<!-- demandcast-pr-report -->\nquoted by a human"}
    foreign["user"] = {"login": "octocat"}
    state.write_text(
        json.dumps({"calls": [], "comments": [foreign], "pulls": {"7": {"head": {"sha": "abc"}}}})
    )
    fakes.install(tmp_path / "bin", "gh", fakes.GH)
    return {
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "FAKE_GH_STATE": str(state),
        "GITHUB_REPOSITORY": "acme/demandcast",
        "GH_TOKEN": "ghs_not-a-real-token",
    }


def test_pr_comment_is_one_comment_updated_in_place(tmp_path, gh):
    report = tmp_path / "report.md"
    comment = [str(ROOT / "scripts" / "pr_comment.sh"), "7", str(report)]
    report.write_text("<!-- demandcast-pr-report -->\nfirst run\n")
    first = run_env(comment, ROOT, gh).stdout
    report.write_text("<!-- demandcast-pr-report -->\nsecond run\n")
    second = run_env(comment, ROOT, {**gh, "EXPECTED_HEAD_SHA": "abc"}).stdout
    assert "posted" in first and "updated the report comment 101" in second
    state = json.loads(Path(gh["FAKE_GH_STATE"]).read_text())
    ours = [c for c in state["comments"] if c["user"]["login"] == "github-actions[bot]"]
    assert [c["body"] for c in ours] == [report.read_text()]
    assert state["comments"][0]["body"].endswith("quoted by a human")  # not ours: untouched


@pytest.mark.parametrize(
    ("pr", "env", "message"),
    [
        ("7; rm -rf /", {}, "is not a number"),
        ("7", {"EXPECTED_HEAD_SHA": "def"}, "PR #7 is at abc, the report is of def"),
    ],
)
def test_pr_comment_refuses_a_report_that_is_not_this_prs(tmp_path, gh, pr, env, message):
    report = tmp_path / "report.md"
    report.write_text("<!-- demandcast-pr-report -->\nreport\n")
    done = run_env(
        [str(ROOT / "scripts" / "pr_comment.sh"), pr, str(report)], ROOT, {**gh, **env}, False
    )
    assert done.returncode == 1 and message in done.stderr
    assert len(json.loads(Path(gh["FAKE_GH_STATE"]).read_text())["comments"]) == 1


def test_access_keys_reach_later_steps_without_being_printed(tmp_path):
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    script = [str(ROOT / "scripts" / "ci_aws_keys.sh")]
    secret = "wJalrXUtnFEMI-not-a-real-key"
    env = {"GITHUB_ENV": str(github_env), "KEY_ID": "AKIAEXAMPLE", "SECRET": secret}
    done = run_env(script, ROOT, env)
    assert secret not in done.stdout + done.stderr
    assert github_env.read_text().splitlines() == [
        "AWS_ACCESS_KEY_ID=AKIAEXAMPLE",
        f"AWS_SECRET_ACCESS_KEY={secret}",
        "AWS_DEFAULT_REGION=us-east-1",
    ]
    missing = run_env(script, ROOT, {"GITHUB_ENV": str(github_env), "SECRET": ""}, check=False)
    assert missing.returncode == 1 and "set the AWS_ROLE_ARN variable" in missing.stdout
