"""``pulumi-vllm diff`` on a throw-away git repository: one change per commit, each reported with its consequence."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pulumi_vllm.cli import diff as review_cli
from pulumi_vllm.cli import main
from pulumi_vllm.review.report import COMMENT_MARKER

REPO = Path(__file__).resolve().parents[1]

STACK = """\
config:
  pulumi-vllm:name: llama-8b
  pulumi-vllm:namespace: vllm-dev
  pulumi-vllm:model:
    id: meta-llama/Llama-3.1-8B-Instruct
  pulumi-vllm:engine:
    image: vllm/vllm-openai:v0.32.0
    maxModelLen: 8192
  pulumi-vllm:cache:
    size: 50Gi
    accessMode: ReadWriteMany
  pulumi-vllm:replicas: 1
"""

CHANGES = [
    ("replicas", "pulumi-vllm:replicas: 1", "pulumi-vllm:replicas: 2"),
    ("image", "image: vllm/vllm-openai:v0.32.0", "image: vllm/vllm-openai:v0.33.0"),
    ("cache size", "size: 50Gi", "size: 80Gi"),
    ("cache storage class", "size: 80Gi\n", "size: 80Gi\n    storageClass: fast-ssd\n"),
]
"""Successive commits of the dev stack: (name, text replaced, replacement)."""


def git(folder: Path, *args: str) -> str:
    """Run git in ``folder`` with a fixed identity; return its output."""
    command = ["git", "-c", "user.name=Reviewer", "-c", "user.email=reviewer@example.com", "-c", "commit.gpgsign=false"]
    return subprocess.run([*command, *args], cwd=folder, check=True, capture_output=True, text=True).stdout


def fingerprint(folder: Path) -> tuple[str, str, str]:
    """What a read-only command must leave as it was: status, the index file, the worktree list."""
    index = hashlib.sha256((folder / ".git" / "index").read_bytes()).hexdigest()
    return git(folder, "status", "--porcelain"), index, git(folder, "worktree", "list")


def diff(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``pulumi-vllm diff`` in-process; return the exit code, stdout and stderr."""
    code = main(["diff", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding the project (program, Pulumi.yaml, a dev and a prod stack), one commit."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(REPO / "Pulumi.yaml", folder)
    shutil.copy(REPO / "__main__.py", folder)
    (folder / "Pulumi.dev.yaml").write_text(STACK)
    (folder / "Pulumi.prod.yaml").write_text(STACK.replace("vllm-dev", "vllm-prod"))
    git(folder, "init", "--quiet", "--initial-branch=main")
    git(folder, "add", ".")
    git(folder, "commit", "--quiet", "-m", "dev and prod stacks")
    monkeypatch.chdir(folder)
    for name in list(__import__("os").environ):
        if name.startswith("PULUMI_VLLM_SECRET_"):
            monkeypatch.delenv(name)
    return folder


def commit_change(folder: Path, name: str, old: str, new: str) -> None:
    """Edit the dev stack and commit it."""
    path = folder / "Pulumi.dev.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    git(folder, "commit", "--quiet", "-am", name)


def test_no_changes_exits_0(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = diff(capsys, "--base", "HEAD")
    assert code == 0
    assert "unchanged: dev, prod" in out
    assert "stack dev" not in out


def test_config_overrides_apply_to_both_sides(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The same override on both sides changes nothing; it does reach each render.
    code, out, _ = diff(capsys, "--base", "HEAD", "--config", "replicas=1")
    assert code == 0 and "unchanged: dev, prod" in out
    side = review_cli.render_side(project, "dev", None, base=False, overrides={"pulumi-vllm:namespace": "elsewhere"})
    namespaces = {doc["metadata"].get("namespace") for doc in side.documents.values() if isinstance(doc, dict) and "metadata" in doc}
    assert namespaces == {"elsewhere"}
    code, _, err = diff(capsys, "--base", "HEAD", "--config", "replicas")
    assert code == 2 and "expected KEY=VALUE" in err


def test_each_commit_is_reported_with_its_consequence(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports: dict[str, tuple[int, str]] = {}
    before = None
    for name, old, new in CHANGES:
        commit_change(project, name, old, new)
        before = fingerprint(project)
        code, out, _ = diff(capsys, "--base", "HEAD~1")
        assert fingerprint(project) == before
        reports[name] = (code, out)
    assert all(code == 3 for code, _ in reports.values())
    for _, out in reports.values():
        assert "unchanged: prod" in out and "stack prod" not in out

    replicas = reports["replicas"][1]
    assert "replicas 1 -> 2" in replicas
    assert "GPUs requested: 1 -> 2" in replicas
    assert "pods will be replaced" not in replicas

    image = reports["image"][1]
    assert "[pods restart] Deployment llama-8b: the Deployment's pods will be replaced" in image
    assert "image changed: vllm/vllm-openai:v0.32.0 -> vllm/vllm-openai:v0.33.0" in image
    assert "+        image: vllm/vllm-openai:v0.33.0" in image
    assert "PersistentVolumeClaim" not in image

    size = reports["cache size"][1]
    assert "storage 50Gi -> 80Gi: expanded in place" in size
    assert "[data loss]" not in size and "pods will be replaced" not in size

    storage_class = reports["cache storage class"][1]
    assert (
        "[data loss] model cache PVC llama-8b-model-cache: the model cache PVC would be replaced: its data is lost"
        in storage_class
    )
    assert "storageClassName (unset) -> fast-ssd" in storage_class
    assert "+  storageClassName: fast-ssd" in storage_class


def test_all_changes_at_once_in_markdown(project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for change in CHANGES:
        commit_change(project, *change)
    out_file = tmp_path / "diff.md"
    code, out, _ = diff(capsys, "--base", "HEAD~4", "--format", "markdown", "--out", str(out_file))
    assert code == 3
    assert out.strip() == f"wrote {out_file}: changes in dev"
    text = out_file.read_text()
    assert text.startswith(COMMENT_MARKER)
    # A second replica brings a PodDisruptionBudget (availability.podDisruptionBudget), listed in resources.txt too.
    assert "| `dev` | 1 added, 4 changed | data loss | 1 -> 2 |" in text
    assert "+- type: kubernetes:policy/v1:PodDisruptionBudget" in text
    assert "| `prod` | no changes |" in text and "### Stack `prod`" not in text
    assert 'deployment_llama_8b["Deployment llama-8b<br/>2 pods × 1 GPU"]' in text
    assert "tensor parallel 1 × pipeline parallel 1; 2 replicas × 1 pod × 1 GPU" in text


def test_uncommitted_edits_are_the_after_side(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("maxModelLen: 8192", "maxModelLen: 16384"))
    before = fingerprint(project)
    code, out, _ = diff(capsys, "--base", "HEAD", "--stack", "dev")
    assert code == 3
    assert "command line changed: --max-model-len 8192 -> 16384" in out
    assert fingerprint(project) == before


def test_added_and_removed_stacks(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "Pulumi.staging.yaml").write_text(STACK.replace("vllm-dev", "vllm-staging"))
    (project / "Pulumi.prod.yaml").unlink()
    code, out, _ = diff(capsys, "--base", "HEAD")
    assert code == 3
    assert "stack staging: new stack" in out and "added   " in out
    assert "stack prod: stack removed" in out and "pulumi destroy" in out
    assert "unchanged: dev" in out


def test_program_at_the_base_is_that_revisions_own(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main_py = project / "__main__.py"
    main_py.write_text(main_py.read_text() + '\nimport pulumi\npulumi.export("reviewed", "yes")\n')
    code, out, _ = diff(capsys, "--base", "HEAD", "--stack", "dev")
    assert code == 3
    assert "changed  stack outputs (_pulumi/outputs.txt)" in out
    assert "+reviewed: 'yes'" in out


def test_rotated_secret_is_noted_and_values_never_printed(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text() + "  pulumi-vllm:hfToken:\n    secure: v1:AAAA\n")
    git(project, "commit", "--quiet", "-am", "token")
    path.write_text(path.read_text().replace("v1:AAAA", "v1:BBBB"))
    monkeypatch.setenv("PULUMI_VLLM_SECRET_HF_TOKEN", "hf_do_not_print_me")
    code, out, _ = diff(capsys, "--base", "HEAD", "--stack", "dev")
    assert code == 3
    assert "secret config set again: hfToken" in out
    assert "hf_do_not_print_me" not in out and "v1:BBBB" not in out


def test_errors_exit_2(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = diff(capsys, "--base", "no-such-branch")
    assert code == 2 and "unknown revision 'no-such-branch'" in err
    code, _, err = diff(capsys, "--base", "HEAD", "--stack", "nope")
    assert code == 2 and "no stack nope" in err and "stacks: dev, prod" in err
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("pulumi-vllm:replicas: 1", "pulumi-vllm:replicas: -1"))
    code, _, err = diff(capsys, "--base", "HEAD")
    assert code == 2 and err.startswith("error: stack dev:") and "replicas" in err


def test_base_that_no_longer_renders_shows_everything_added(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("pulumi-vllm:replicas: 1", "pulumi-vllm:notAKey: 1"))
    git(project, "commit", "--quiet", "-am", "broken")
    path.write_text(STACK)
    code, out, _ = diff(capsys, "--base", "HEAD", "--stack", "dev")
    assert code == 3
    assert "could not render at the base revision" in out and "notAKey" in out


def test_mandatory_violation_after_the_change_exits_4(
    project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The project's own policy pack, run over both renders through the Analyzer protocol.
    quota = tmp_path / "quota.json"
    quota.write_text(json.dumps({"vllm-gpu-quota": {"enforcementLevel": "mandatory", "maxGpusPerStack": 1}}))
    pack = ["--policy-pack", str(REPO / "policies"), "--policy-pack-config", str(quota)]
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("pulumi-vllm:replicas: 1", "pulumi-vllm:replicas: 2"))
    code, out, err = diff(capsys, "--base", "HEAD", "--stack", "dev", *pack)
    assert code == 4
    assert "policy: before 0 mandatory, 0 advisory; after 1 mandatory, 0 advisory" in out
    assert "NEW [mandatory] vllm-gpu-quota on the stack: the stack requests 2 GPU(s)" in out
    assert "mandatory policy violation" in err
    quota.write_text(json.dumps({"vllm-gpu-quota": {"enforcementLevel": "mandatory", "maxGpusPerStack": 2}}))
    code, out, _ = diff(capsys, "--base", "HEAD", "--stack", "dev", *pack)
    assert code == 3 and "after 0 mandatory" in out


def test_policy_verdicts_missing_are_said(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("v0.32.0", "v0.33.0"))
    code, out, _ = diff(capsys, "--base", "HEAD", "--stack", "dev")
    assert code == 3 and "policy verdicts: not available (no policy pack in policies/)" in out
    code, out, _ = diff(
        capsys, "--base", "HEAD", "--stack", "dev", "--policy-pack", str(REPO / "policies"), "--no-policy"
    )
    assert code == 3 and "policy verdicts: not run (--no-policy)" in out
    code, _, err = diff(capsys, "--base", "HEAD", "--policy-pack", str(project))
    assert code == 2 and "no PulumiPolicy.yaml" in err


def test_scrub_replaces_secret_values() -> None:
    text = review_cli.scrub(
        "token hf_abcdef and hf_abcdef", {"PULUMI_VLLM_SECRET_HF_TOKEN": "hf_abcdef", "OTHER": "and"}
    )
    assert text == "token [secret] and [secret]"


def test_the_documented_example_is_what_the_command_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # docs/review.md shows the report for the dev stack with its image moved to v0.33.0.
    folder = tmp_path / "example"
    folder.mkdir()
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.dev.yaml"):
        shutil.copy(REPO / name, folder)
    git(folder, "init", "--quiet", "--initial-branch=main")
    git(folder, "add", ".")
    git(folder, "commit", "--quiet", "-m", "base")
    stack = folder / "Pulumi.dev.yaml"
    assert "vllm/vllm-openai:v0.32.0" in stack.read_text()
    stack.write_text(stack.read_text().replace("vllm/vllm-openai:v0.32.0", "vllm/vllm-openai:v0.33.0"))
    monkeypatch.chdir(folder)
    pack = [
        "--policy-pack",
        str(REPO / "policies"),
        "--policy-pack-config",
        str(REPO / "policies" / "policy-config.example.json"),
    ]
    code, _, err = diff(capsys, "--base", "main", "--format", "markdown", "--out", "diff.md", *pack)
    assert code == 3, err
    written = (folder / "diff.md").read_text().rstrip("\n")
    documented = (REPO / "docs" / "review.md").read_text().split("````markdown\n", 1)[1].split("\n````", 1)[0]

    def without_commit(text: str) -> str:
        # The commit id differs per run; hunk line numbers move whenever the manifest grows.
        text = re.sub(r"\(`[0-9a-f]{12}`\)", "(`<commit>`)", text)
        return re.sub(r"(?m)^@@ -\d+,\d+ \+\d+,\d+ @@$", "@@", text)

    assert without_commit(documented) == without_commit(written)


def test_project_in_a_subfolder_of_the_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "repo"
    folder = root / "infra" / "serving"
    folder.mkdir(parents=True)
    shutil.copy(REPO / "Pulumi.yaml", folder)
    shutil.copy(REPO / "__main__.py", folder)
    (folder / "Pulumi.dev.yaml").write_text(STACK)
    (root / "README.md").write_text("not part of the project\n")
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "add", ".")
    git(root, "commit", "--quiet", "-m", "base")
    (folder / "Pulumi.dev.yaml").write_text(STACK.replace("size: 50Gi", "size: 40Gi"))
    code, out, _ = diff(capsys, "--base", "main", "--project", str(folder))
    assert code == 3
    assert "[update fails] model cache PVC llama-8b-model-cache: storage 50Gi -> 40Gi" in out


def test_forgetting_a_programs_modules_keeps_the_package_and_the_running_script() -> None:
    import sys

    from pulumi_vllm.cli.diff import _forget_modules_under

    before = {name for name in sys.modules if name == "__main__" or name.startswith("pulumi_vllm")}
    _forget_modules_under(REPO)  # the package itself lives under the repository (components/)
    after = {name for name in sys.modules if name == "__main__" or name.startswith("pulumi_vllm")}
    assert before == after


def test_diff_on_this_repositorys_own_history(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Against the repository's first commit, stacks added since then are reported as new (exit 3)."""
    shallow = subprocess.run(
        ["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    if shallow == "true":
        pytest.skip("a shallow clone has no history to compare with")
    first = subprocess.run(
        ["git", "rev-list", "--max-parents=0", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()[0]
    monkeypatch.chdir(REPO)
    code = main(["diff", "--base", first, "--stack", "qwen-batch", "--stack", "dev", "--no-policy"])
    printed = capsys.readouterr().out
    assert code == 3
    assert "stack qwen-batch: new stack" in printed
