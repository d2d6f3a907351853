"""The other-language examples against the schema snapshot, and render for a program that is not this project's.

No SDK is generated here (that needs the Pulumi CLI): what is checked instead is that every resource
type and property the YAML and TypeScript programs use is one the package's schema declares, down to
the nested types; and that ``pulumi-vllm render`` runs a team's own program with its own config.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "plugin" / "schema.json").read_text())
EXAMPLES = REPO / "examples"


def unknown_keys(properties: dict[str, Any], given: dict[str, Any], where: str) -> list[str]:
    """Keys of ``given`` the schema's ``properties`` do not declare, following ``$ref`` types and lists."""
    found = []
    for key, value in given.items():
        spec = properties.get(key)
        if spec is None:
            found.append(f"{where}.{key}")
            continue
        if spec.get("type") == "array" and isinstance(value, list):
            spec, items = spec.get("items") or {}, value
        else:
            items = [value]
        ref = str(spec.get("$ref", ""))
        if ref.startswith("#/types/"):
            nested = SCHEMA["types"][ref.removeprefix("#/types/")]["properties"]
            for item in items:
                if isinstance(item, dict):
                    found += unknown_keys(nested, item, f"{where}.{key}")
    return found


def test_the_yaml_program_uses_only_declared_types_and_properties() -> None:
    program = yaml.safe_load((EXAMPLES / "yaml" / "Pulumi.yaml").read_text())
    assert program["runtime"] == "yaml"
    used = program["resources"]
    assert used, "the example creates something"
    for name, resource in used.items():
        assert resource["type"] in SCHEMA["resources"], resource["type"]
        inputs = SCHEMA["resources"][resource["type"]]["inputProperties"]
        assert unknown_keys(inputs, resource["properties"], name) == []
    outputs = set(re.findall(r"\$\{qwen\.(\w+)\}", (EXAMPLES / "yaml" / "Pulumi.yaml").read_text()))
    assert outputs and outputs <= set(SCHEMA["resources"]["pulumi-vllm:index:VllmServing"]["properties"])


def object_literal(text: str, start: int) -> dict[str, Any]:
    """The keys of the TypeScript object literal at ``text[start] == '{'`` as nested dicts (values not read)."""
    root: dict[str, Any] = {}
    stack: list[Any] = [root]
    key: str | None = None
    i = start + 1
    while stack:
        char = text[i]
        if char in "\"'":
            end = text.index(char, i + 1)
            word, i = text[i + 1 : end], end + 1
            if text[i:].lstrip().startswith(":") and isinstance(stack[-1], dict):
                key = word
            continue
        match = re.match(r"[A-Za-z_]\w*", text[i:])
        if match and text[i + match.end() :].lstrip().startswith(":") and isinstance(stack[-1], dict):
            key, i = match.group(0), i + match.end()
            continue
        if char in "{[":
            child: Any = {} if char == "{" else []
            container = stack[-1]
            if isinstance(container, dict) and key is not None:
                container[key] = child
            elif isinstance(container, list):
                container.append(child)
            stack.append(child)
            key = None
        elif char in "}]":
            if key is not None and isinstance(stack[-1], dict):
                stack[-1].setdefault(key, None)
            key = None
            stack.pop()
        elif char == "," and isinstance(stack[-1], dict) and key is not None:
            stack[-1].setdefault(key, None)
            key = None
        i += 1
    return root


def test_the_typescript_program_uses_only_declared_components_and_properties() -> None:
    source = (EXAMPLES / "typescript" / "index.ts").read_text()
    calls = list(re.finditer(r"new vllm\.(\w+)\(\s*\"[^\"]+\",\s*\{", source))
    assert calls, "the example creates components"
    for call in calls:
        token = f"pulumi-vllm:index:{call.group(1)}"
        assert token in SCHEMA["resources"], token
        given = object_literal(source, call.end() - 1)
        inputs = SCHEMA["resources"][token]["inputProperties"]
        assert unknown_keys(inputs, given, call.group(1)) == []
    exported = set(re.findall(r"qwen\.(\w+);", source))
    assert exported and exported <= set(SCHEMA["resources"]["pulumi-vllm:index:VllmServing"]["properties"])
    package = json.loads((EXAMPLES / "typescript" / "package.json").read_text())
    assert "@pulumi/pulumi-vllm" in package["dependencies"]


def test_the_checker_sees_a_misspelt_property() -> None:
    inputs = SCHEMA["resources"]["pulumi-vllm:index:VllmServing"]["inputProperties"]
    assert unknown_keys(inputs, {"engine": {"maxModelLength": 1}}, "qwen") == ["qwen.engine.maxModelLength"]
    given = object_literal('{ model: { id: "x" }, engine: { maxModelLen: 2 }, "a.b/c": 1 }', 0)
    assert set(given) == {"model", "engine", "a.b/c"} and set(given["engine"]) == {"maxModelLen"}


def test_the_generated_serving_args_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "serving_args.py"), "--check"], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr + "(run make serving-args)"


@pytest.mark.parametrize("override", [[], ["--config", "maxModelLen=8192"]])
def test_render_runs_a_program_that_is_not_this_project_with_its_own_config(tmp_path: Path, override: list[str]) -> None:
    out = tmp_path / "rendered"
    result = subprocess.run(
        [sys.executable, "-m", "pulumi_vllm.cli", "render", "--stack", "prod",
         "--project", str(EXAMPLES / "python-program"), "--out", str(out), *override],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "project 'acme-llm'" in result.stdout
    deployment = next(path for path in out.rglob("*.yaml") if "kind: Deployment" in path.read_text())
    manifest = yaml.safe_load(deployment.read_text())
    args = manifest["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "Qwen/Qwen2.5-7B-Instruct" in " ".join(args)
    assert args[args.index("--max-model-len") + 1] == ("8192" if override else "16384")
