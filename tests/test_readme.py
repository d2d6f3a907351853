"""The README and the manual stay true: the demo output is what the demo command prints, the
documented commands exist, the import example runs and every link between the pages resolves."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from pulumi_vllm.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def _makefile_demo_command() -> list[str]:
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo: install\n", 1)[1].split("\n\n", 1)[0]
    words = shlex.split(recipe.replace("\\\n", " ").replace("$(DEMO_SECRETS)", "").replace("$(BIN)/", ""))
    assert words[0] == "pulumi-vllm"
    return words[1:]


def test_demo_summary_in_readme_is_what_make_demo_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    makefile = (REPO / "Makefile").read_text()
    for assignment in re.search(r"DEMO_SECRETS := (.*)", makefile).group(1).split():  # type: ignore[union-attr]
        name, value = assignment.split("=", 1)
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    args = _makefile_demo_command()
    args[args.index("--out") + 1] = str(tmp_path / "dev")
    assert main(args) == 0
    printed = capsys.readouterr().out.replace(str(tmp_path / "dev"), "rendered/dev")
    printed = re.sub(r"files in \S+", "files in rendered/dev", printed)
    documented = README.split("It prints a summary:\n\n```\n", 1)[1].split("```", 1)[0]
    assert printed == documented


def _documented_commands() -> list[str]:
    """Every ``pulumi-vllm ...`` command line of the README and docs/*.md, continuation lines joined."""
    commands = []
    for page in PAGES:
        pending = ""
        for raw in page.read_text().splitlines():
            line = pending + raw.strip()
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            if re.match(r"^(\.venv/bin/)?pulumi-vllm \w", line):
                commands.append(line.split("  #", 1)[0].strip())
    return commands


COMMANDS = _documented_commands()


def test_the_manual_documents_the_commands() -> None:
    assert {command.split()[1] for command in COMMANDS} >= {"render", "size", "diff"}


@pytest.mark.parametrize("line", COMMANDS)
def test_every_documented_pulumi_vllm_command_parses(line: str) -> None:
    try:
        build_parser().parse_args(shlex.split(line)[1:])
    except SystemExit as error:  # argparse exits on an unknown flag or a missing argument
        raise AssertionError(f"documented command does not parse: {line}") from error


def test_the_import_example_runs_as_a_program(tmp_path: Path) -> None:
    """The manual's example of importing the components, run as another project's Pulumi program."""
    from pulumi_vllm.render.engine import run_program

    page = (REPO / "docs" / "importing.md").read_text()
    assert page.startswith("# Importing the components\n")
    example = page.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "Pulumi.yaml").write_text("name: my-llm-platform\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(example)
    run = run_program(tmp_path, "dev", {"my-llm-platform:apiKey": "k-123"}, ["my-llm-platform:apiKey"], "my-llm-platform")
    kinds = sorted(reg.type.rsplit(":", 1)[-1] for reg in run.registrations if reg.custom)
    assert kinds == ["Deployment", "PersistentVolumeClaim", "Secret", "Service"]
    assert run.outputs == {"qwen_url": "http://qwen.llm.svc.cluster.local/v1"}


def test_the_platform_import_example_runs_as_a_program(tmp_path: Path) -> None:
    """The manual's GpuPlatform example: the releases it names, and the serving waiting for the platform."""
    from pulumi_vllm.render.engine import run_program

    page = (REPO / "docs" / "importing.md").read_text()
    example = page.split("## The GPU platform in your program", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "Pulumi.yaml").write_text("name: my-llm-platform\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(example)
    run = run_program(tmp_path, "dev", {}, [], "my-llm-platform")
    assert run.outputs == {"releases": ["nvidia-device-plugin", "dcgm-exporter", "lws"]}
    platform = {reg.urn for reg in run.registrations if reg.name.startswith("gpu-") and reg.custom}
    deployment = next(reg for reg in run.registrations if reg.type == "kubernetes:apps/v1:Deployment")
    assert platform and platform <= set(deployment.dependencies)


FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> list[str]:
    """The lines of a markdown text outside fenced code blocks (a fence closes with its own kind and length)."""
    kept, fence = [], ""
    for line in text.splitlines():
        marker = FENCE.match(line)
        if not fence and marker:
            fence = marker.group(1)
        elif fence and marker and line.strip() == fence[0] * len(line.strip()) and len(line.strip()) >= len(fence):
            fence = ""
        elif not fence:
            kept.append(line)
    return kept


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (but '-' and '_'), spaces to '-'."""
    text = re.sub(r"<[^>]+>", "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; GitHub numbers repeated ones ``-1``, ``-2``, ..."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(page.read_text()):
        heading = re.match(r"^ {0,3}#{1,6} +(.*?)(?: +#+)? *$", line)
        if heading:
            anchor = _anchor(heading.group(1))
            anchors.add(f"{anchor}-{seen[anchor]}" if anchor in seen else anchor)
            seen[anchor] = seen.get(anchor, 0) + 1
    return anchors


def _relative_links(page: Path) -> list[str]:
    """Targets of the page's links to other markdown pages or to its own headings (code left out)."""
    return [
        target
        for line in _prose(page.read_text())
        for target in LINK.findall(re.sub(r"(`+).+?\1", "", line))
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target) and (target.startswith("#") or ".md" in target.split("#")[0])
    ]


def _broken_links(page: Path) -> list[str]:
    broken = []
    for target in _relative_links(page):
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.is_file():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    return broken


def test_the_anchor_rule_is_githubs() -> None:
    assert _anchor("Models larger than one node (Ray across pods)") == "models-larger-than-one-node-ray-across-pods"
    assert _anchor("Policy pack: vLLM rules at preview time") == "policy-pack-vllm-rules-at-preview-time"
    assert _anchor("kubectl habits, mapped") == "kubectl-habits-mapped"
    assert _anchor("Stack `dev`: 1 changed") == "stack-dev-1-changed"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    (tmp_path / "target.md").write_text(
        "# Target\n\n## A section, named\n\n## A section, named\n\n````\n```\n## In a code block\n```\n````\n"
    )
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](target.md) [ok](target.md#a-section-named-1) [ok](#page) [web](https://example.com/x.md)\n"
        "[no file](missing.md#page) [no anchor](target.md#nowhere) [code only](target.md#in-a-code-block)\n"
        "`[inline code](missing.md)`\n\n```\n[inside a code block](missing.md)\n```\n"
    )
    assert [entry.split(":", 1)[0] for entry in _broken_links(page)] == [
        "missing.md#page",
        "target.md#nowhere",
        "target.md#in-a-code-block",
    ]


def test_the_readme_links_every_page_of_the_manual() -> None:
    linked = {(REPO / target.split("#", 1)[0]).resolve() for target in _relative_links(REPO / "README.md")}
    assert len(PAGES) > 5
    assert {page.resolve() for page in PAGES[1:]} <= linked


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_points_to_a_file_and_a_heading(page: Path) -> None:
    assert _broken_links(page) == []


def test_the_example_stacks_table_lists_every_example_once() -> None:
    """examples/stacks/README.md has a row for each example stack file, and no row without one."""
    import re

    folder = REPO / "examples" / "stacks"
    files = {path.name[len("Pulumi."):-len(".yaml")] for path in folder.glob("Pulumi.*.yaml")}
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", (folder / "README.md").read_text(), re.MULTILINE)
    assert len(rows) == len(set(rows))
    assert set(rows) == files
    assert not (REPO / "examples" / "stacks" / "Pulumi.dev.yaml").exists() and (REPO / "Pulumi.dev.yaml").is_file()
