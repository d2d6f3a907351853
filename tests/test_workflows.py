"""The GitHub workflows: valid against GitHub's workflow schema, least privilege, one sticky diff comment."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pulumi_vllm.review.report import COMMENT_MARKER

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"
ALLOWED_SECRETS = {"PULUMI_ACCESS_TOKEN", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "KUBECONFIG"}


class _Yaml12Loader(yaml.SafeLoader):
    """YAML as GitHub reads it: ``on``/``off``/``yes``/``no`` stay strings (YAML 1.2 booleans are true/false only)."""


_Yaml12Loader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf"))


def load(name: str) -> dict[str, Any]:
    """A workflow file as a document."""
    return yaml.load((WORKFLOWS / name).read_text(), Loader=_Yaml12Loader)


def workflow_schema() -> dict[str, Any]:
    """The github-workflows schema that check-jsonschema vendors (works offline)."""
    vendor = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "github-workflows.json"
    return json.loads(vendor.read_text())


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps of a job."""
    return list(job.get("steps") or [])


def step_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    """Steps of ``job`` that use ``action`` (``owner/name``)."""
    return [step for step in steps(job) if str(step.get("uses", "")).split("@")[0] == action]


@pytest.mark.parametrize("name", ["pr.yaml", "deploy.yaml"])
def test_valid_against_the_github_workflow_schema(name: str) -> None:
    validator = jsonschema.Draft7Validator(workflow_schema())
    document = load(name)
    assert list(validator.iter_errors(document)) == []
    broken = copy.deepcopy(document)
    broken["permissions"] = {"contents": "reed"}
    assert list(validator.iter_errors(broken)), "the schema must reject an unknown permission level"


@pytest.mark.parametrize("name", ["pr.yaml", "deploy.yaml"])
def test_check_jsonschema_accepts_the_file(name: str) -> None:
    command = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    result = subprocess.run(
        [command, "--builtin-schema", "vendor.github-workflows", str(WORKFLOWS / name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["pr.yaml", "deploy.yaml"])
def test_least_privilege_and_secrets(name: str) -> None:
    document = load(name)
    assert document["permissions"] == {"contents": "read"}
    for job_name, job in document["jobs"].items():
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"{job_name} must say which permissions it needs"
        writes = {scope for scope, level in permissions.items() if level == "write"}
        comments = bool(step_using(job, "actions/github-script")) or any(
            step.get("with", {}).get("comment-on-pr") for step in step_using(job, "pulumi/actions")
        )
        assert writes == ({"pull-requests"} if comments else set()), job_name
        assert permissions.get("contents") == "read"
    text = (WORKFLOWS / name).read_text()
    assert set(re.findall(r"secrets\.([A-Z_]+)", text)) <= ALLOWED_SECRETS
    for uses in re.findall(r"uses:\s*(\S+)", text):
        assert re.search(r"@(v\d+\.\d+\.\d+|[0-9a-f]{40})$", uses), f"{uses} is not pinned to a version"


def test_pull_request_posts_one_comment_and_fails_on_mandatory_violations() -> None:
    document = load("pr.yaml")
    assert "pull_request" in document["on"]
    review = document["jobs"]["review"]
    names = [step.get("run", step.get("uses", "")) for step in steps(review)]
    make_test = names.index("make test")
    assert names.index("make schemas") < make_test, "GitHub runners have no ../shared: fetch the schemas first"
    [diff_step] = [step for step in steps(review) if ".venv/bin/pulumi-vllm diff" in step.get("run", "")]
    assert steps(review).index(diff_step) > make_test
    assert '.venv/bin/pulumi-vllm diff --base "origin/$BASE_REF" --format markdown --out diff.md' in diff_step["run"]
    assert diff_step["env"]["BASE_REF"] == "${{ github.base_ref }}"
    assert step_using(review, "actions/checkout")[0]["with"]["fetch-depth"] == 0
    [comment] = step_using(review, "actions/github-script")
    script = comment["with"]["script"]
    assert f"'{COMMENT_MARKER}'" in script
    assert "updateComment" in script and "createComment" in script
    assert "diff.md" in script
    [gate] = [step for step in steps(review) if "exit-code == '4'" in str(step.get("if", ""))]
    assert "exit 1" in gate["run"]
    assert steps(review).index(gate) > steps(review).index(comment)


def test_preview_runs_only_with_credentials_and_the_policy_pack() -> None:
    document = load("pr.yaml")
    review, preview = document["jobs"]["review"], document["jobs"]["preview"]
    assert "secrets.PULUMI_ACCESS_TOKEN != ''" in review["env"]["HAS_PULUMI_CREDENTIALS"]
    assert preview["needs"] == "review"
    assert preview["if"] == "${{ !cancelled() && needs.review.outputs.pulumi-credentials == 'true' }}"
    assert preview["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.review.outputs.stacks) }}"
    [action] = step_using(preview, "pulumi/actions")
    assert action["with"]["command"] == "preview"
    assert action["with"]["comment-on-pr"] is True
    assert action["with"]["policyPacks"] == "policies"
    assert action["with"]["policyPackConfigs"] == "policies/policy-config.example.json"
    assert action["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"


def test_deploy_per_stack_behind_an_environment() -> None:
    document = load("deploy.yaml")
    assert document["on"]["push"]["branches"] == ["main"]
    up = document["jobs"]["up"]
    assert up["environment"] == "${{ matrix.stack }}"
    assert up["concurrency"] == {"group": "deploy-${{ matrix.stack }}", "cancel-in-progress": False}
    assert up["strategy"]["matrix"]["stack"] == "${{ fromJSON(needs.stacks.outputs.stacks) }}"
    [action] = step_using(up, "pulumi/actions")
    assert action["with"]["command"] == "up"
    assert action["with"]["policyPacks"] == "policies"
    kubeconfig = [step for step in steps(up) if "KUBECONFIG_CONTENT" in step.get("run", "")]
    assert kubeconfig and kubeconfig[0]["env"]["KUBECONFIG_CONTENT"] == "${{ secrets.KUBECONFIG }}"


def _run_diff_step(tmp_path: Path, exit_code: int) -> tuple[int, dict[str, str]]:
    """Run the diff step's shell script with a stand-in ``pulumi-vllm`` that exits with ``exit_code``."""
    [step] = [
        step for step in steps(load("pr.yaml")["jobs"]["review"]) if ".venv/bin/pulumi-vllm diff" in step.get("run", "")
    ]
    work = tmp_path / f"run{exit_code}"
    (work / ".venv" / "bin").mkdir(parents=True)
    stub = work / ".venv" / "bin" / "pulumi-vllm"
    stub.write_text(f'#!/bin/sh\necho "$@" > args.txt\nprintf "report\\n" > diff.md\nexit {exit_code}\n')
    stub.chmod(0o755)
    output, summary = work / "output", work / "summary"
    env = {**os.environ, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary), "BASE_REF": "main"}
    result = subprocess.run(
        ["bash", "-e", "-c", step["run"]], check=False, cwd=work, env=env, capture_output=True, text=True
    )
    values = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert (work / "args.txt").read_text().split() == [
        "diff",
        "--base",
        "origin/main",
        "--format",
        "markdown",
        "--out",
        "diff.md",
    ]
    assert summary.read_text() == "report\n"
    return result.returncode, values


@pytest.mark.parametrize(("code", "step_fails"), [(0, False), (3, False), (4, False), (2, True)])
def test_diff_step_records_the_exit_code(tmp_path: Path, code: int, step_fails: bool) -> None:
    status, outputs = _run_diff_step(tmp_path, code)
    assert outputs["exit-code"] == str(code)
    assert (status != 0) == step_fails


COMMENT_HARNESS = """
const script = require('fs').readFileSync(process.argv[2], 'utf8');
const comments = JSON.parse(require('fs').readFileSync(process.argv[3], 'utf8'));
const calls = [];
const github = {
  paginate: async (method, args) => comments,
  rest: { issues: {
    listComments: 'listComments',
    updateComment: async (args) => calls.push(['update', args.comment_id, args.body]),
    createComment: async (args) => calls.push(['create', args.issue_number, args.body]),
  } },
};
const context = { repo: { owner: 'o', repo: 'r' }, issue: { number: 7 } };
const run = new (Object.getPrototypeOf(async function () {}).constructor)('require', 'github', 'context', script);
run(require, github, context).then(() => console.log(JSON.stringify(calls)));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node (the runtime of actions/github-script) is not installed")
def test_comment_script_updates_its_own_comment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    [comment] = step_using(load("pr.yaml")["jobs"]["review"], "actions/github-script")
    (tmp_path / "script.js").write_text(comment["with"]["script"])
    (tmp_path / "harness.js").write_text(COMMENT_HARNESS)
    (tmp_path / "diff.md").write_text(f"{COMMENT_MARKER}\nnew report\n")
    monkeypatch.chdir(tmp_path)

    def run(existing: list[dict[str, Any]]) -> list[list[Any]]:
        (tmp_path / "comments.json").write_text(json.dumps(existing))
        result = subprocess.run(
            ["node", "harness.js", "script.js", "comments.json"], capture_output=True, text=True, check=True
        )
        return json.loads(result.stdout)

    assert run([]) == [["create", 7, f"{COMMENT_MARKER}\nnew report\n"]]
    others = [
        {"id": 1, "user": {"type": "User"}, "body": f"{COMMENT_MARKER} quoted by a person"},
        {"id": 2, "user": {"type": "Bot"}, "body": "another bot"},
        {"id": 3, "user": {"type": "Bot"}, "body": f"{COMMENT_MARKER}\nold report"},
    ]
    assert run(others) == [["update", 3, f"{COMMENT_MARKER}\nnew report\n"]]
