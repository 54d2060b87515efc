"""The CI workflow's scripts: the pipeline report of a pull request, the comment that is updated
in place, and the credential plumbing of the DVC remote."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, scratch_repo, write_params
from tests.workflows import fakes
from tests.workflows.conftest import GIT_ENV, TINY, clone, make_project, run_env

pytestmark = pytest.mark.slow


def git(repo: Path, *args: str) -> str:
    return run_env(["git", *args], repo, GIT_ENV).stdout.strip()


ZEROS = "0" * 40


def test_pr_report_diffs_metrics_params_and_plots_against_the_base(tmp_path):
    repo = scratch_repo(tmp_path, TINY)
    shutil.copytree(ROOT / "scripts", repo / "scripts")
    run_env(["dvc", "repro"], repo, {})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "main")
    git(repo, "branch", "-M", "main")
    # the first push of a repository: `before` is all zeros and HEAD has no parent
    first = run_env(["scripts/pr_report.sh", ZEROS], repo, {})
    assert "compared with nothing: this is the first commit" in first.stdout
    assert "xychart-beta" in first.stdout and "### Metrics" not in first.stdout
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

    # the chart: SMAPE by horizon day, main's model and this revision's, in a Mermaid block
    chart = report[report.index("```mermaid") : report.index("```", report.index("xychart"))]
    lines = [line.split(" [", 1) for line in chart.splitlines() if line.startswith("  line ")]
    horizon = TINY.get("horizon", 14)
    assert len(lines) == 2 and all(len(v[1].split(",")) == horizon for v in lines)
    assert lines[0][1] != lines[1][1]  # deeper trees: another error by horizon day
    assert "  bar [" in chart and "plotColorPalette" in chart
    assert "blue line: the model of `main`; orange line: this revision's model" in report

    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "deeper trees, results committed")
    same = run_env(["scripts/pr_report.sh", "HEAD"], repo, {}).stdout
    assert "`dvc repro` reproduced the committed `dvc.lock`." in same
    assert "No metric changed." in same and "No parameter changed." in same
    assert "No plot data changed." in same

    # a push whose `before` is unusable compares with the parent commit, and says why
    parent = git(repo, "rev-parse", "--short", "HEAD^")
    for before, why in ((ZEROS, "all zeros: the first push of a branch"), ("ab" * 20, "force")):
        pushed = run_env(["scripts/pr_report.sh", before], repo, {}).stdout
        assert f"against the parent commit (the push's `before` {before[:12]} is" in pushed
        assert why in pushed and f", {parent}." in pushed
        assert "| params.yaml | train.max_depth | 4 " in pushed  # the parent's params
    missing = run_env(["scripts/pr_report.sh", "origin/nowhere"], repo, {}, check=False)
    assert missing.returncode == 1 and "no revision 'origin/nowhere'" in missing.stderr

    # a DVC command that fails fails the report, with its error, and writes none
    (repo / "dvc.yaml").write_text("stages: [\n")
    broken = run_env(["scripts/pr_report.sh", "main", "broken-out"], repo, {}, check=False)
    assert broken.returncode == 1 and "YAML file structure is corrupted" in broken.stderr
    assert "dvc metrics diff main --md failed (above): the report is not written" in (broken.stderr)
    assert not (repo / "broken-out" / "report.md").exists()


def test_the_chart_leaves_out_a_base_it_cannot_compare(tmp_path):
    head = tmp_path / "head.csv"
    head.write_text("horizon_day,model,seasonal_naive\n2,11.5,20\n1,10.25,19\n")
    chart = [sys.executable, str(ROOT / "scripts" / "horizon_chart.py"), str(head)]
    alone = run_env(chart, ROOT, {}).stdout
    assert '  x-axis "horizon day" [1, 2]' in alone and "  line [10.25, 11.50]" in alone
    assert "  bar [19.00, 20.00]" in alone and "blue line" not in alone
    short = tmp_path / "short.csv"
    short.write_text("horizon_day,model,seasonal_naive\n1,9,18\n")
    done = run_env([*chart, "--base", str(short)], ROOT, {})
    assert "blue line" not in done.stdout and "shorter horizon" in done.stderr
    old = tmp_path / "old.csv"
    old.write_text("day,smape\n1,9\n2,9\n")  # an older revision's columns
    done = run_env([*chart, "--base", str(old), "--base-label", "main"], ROOT, {})
    assert "blue line" not in done.stdout and "base not charted" in done.stderr


def test_remote_check_names_the_outputs_of_dvc_lock_not_in_the_remote(
    tmp_path, bucket, s3_endpoint
):
    project = make_project(tmp_path, TINY, bucket, s3_endpoint)
    project.run("dvc", "repro")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "pipeline run, pushed")
    project.run("dvc", "push")
    project.run("git", "push", "-q", "origin", "main")
    params = {**TINY, "train": {**TINY["train"], "max_depth": 2}}
    project.run("git", "checkout", "-q", "-b", "unpushed")
    write_params(project.repo, params)
    project.run("dvc", "repro")
    project.run("git", "add", "-A")
    project.run("git", "commit", "-q", "-m", "a new model, committed, never pushed")
    project.run("git", "push", "-q", "origin", "unpushed")

    # CI's job: a fresh clone of the pull request's branch, an empty DVC cache
    same = clone(project, tmp_path / "same", ref="main")
    done = run_env(["scripts/remote_check.sh", "origin/main"], same, {})
    assert "nothing to check" in done.stdout
    ci = clone(project, tmp_path / "ci", ref="unpushed")
    summary = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_ACTIONS": "true"}
    done = run_env(["scripts/remote_check.sh", "origin/main"], ci, env, check=False)
    assert done.returncode == 1 and "not in the DVC remote: run dvc push" in done.stderr
    assert "::error::not in the DVC remote: models (missing)" in done.stdout, done.stderr
    assert "`models (missing)`" in summary.read_text()
    assert "data/features.parquet" not in done.stdout  # the features did not change

    project.run("dvc", "push")
    done = run_env(["scripts/remote_check.sh", "origin/main"], ci, env)
    assert "every output of dvc.lock is in the DVC remote" in done.stdout


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


def test_notify_opens_one_issue_then_comments_on_it(tmp_path, gh):
    verdict = tmp_path / "gate.md"
    verdict.write_text("### Promotion gate: REFUSED\n")
    notify = [str(ROOT / "scripts" / "notify.sh"), "Retrain refused by the promotion gate"]
    env = {**gh, "GITHUB_RUN_ID": "42"}
    assert "opened an issue" in run_env([*notify, str(verdict)], ROOT, env).stdout
    assert "commented on issue #1" in run_env([*notify, str(verdict)], ROOT, env).stdout
    issues = json.loads(Path(gh["FAKE_GH_STATE"]).read_text())["issues"]
    assert [i["title"] for i in issues] == ["Retrain refused by the promotion gate"]
    assert len(issues[0]["comments"]) == 2
    assert "REFUSED" in issues[0]["comments"][1]
    assert "https://github.com/acme/demandcast/actions/runs/42" in issues[0]["comments"][1]
