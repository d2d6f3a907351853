"""The render is what ``pulumi preview`` of the same stack would create.

For every example stack, the program is run a second time under Pulumi's own mock runtime with only what
the Pulumi CLI would hand it: the stack file's values, each ``secure:`` value as a secret, and nothing from
the environment. Every resource that runtime receives must be in the render's ``_pulumi/resources.txt``,
and nothing else; every Kubernetes object it receives must be a file of the render, and nothing else. The
render runs with ``PULUMI_VLLM_SECRET_*`` variables set for secrets most stacks do not declare, which must
change nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import runpy
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from pulumi.runtime import config as runtime_config
from pulumi.runtime import mocks, settings
from stacks import STACKS, stack_file

from pulumi_vllm.cli import main
from pulumi_vllm.cli.render import render_stack

REPO = Path(__file__).resolve().parents[1]

ENV = {"PULUMI_VLLM_SECRET_HF_TOKEN": "hf_env_token_1234", "PULUMI_VLLM_SECRET_API_KEY": "sk-env-key-5678"}
"""Set while rendering: a stack that declares no secret must render as if they were unset."""


def preview_config(stack: str) -> tuple[dict[str, str], list[str]]:
    """The config the Pulumi CLI gives the program: the stack file's values (secure ones secret), nothing else."""
    document = yaml.safe_load(stack_file(stack).read_text()) or {}
    flat: dict[str, str] = {}
    secret: list[str] = []
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            flat[key] = "decrypted-by-the-cli"
            secret.append(key)
        elif isinstance(value, bool):
            flat[key] = "true" if value else "false"
        elif isinstance(value, (dict, list)):
            flat[key] = json.dumps(value)
        else:
            flat[key] = str(value)
    return flat, secret


class Received(pulumi.runtime.Mocks):
    """Every resource registration the mock runtime hands over, as (type, name, custom, inputs)."""

    def __init__(self) -> None:
        self.resources: list[tuple[str, str, bool, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        self.resources.append((args.typ, args.name, bool(args.custom), dict(args.inputs)))
        state = dict(args.inputs)
        if args.typ.startswith("kubernetes:"):
            metadata = dict(state.get("metadata") or {})
            metadata.setdefault("name", f"{args.name}-{hashlib.sha256(args.name.encode()).hexdigest()[:8]}")
            state["metadata"] = metadata
        elif args.typ.startswith(("aws:", "gcp:")):
            from pulumi_vllm.cloud_plan.placeholders import placeholder_outputs

            state = placeholder_outputs(args.typ, args.name, state)
        elif args.typ == "docker:index/remoteImage:RemoteImage":
            state.setdefault("imageId", state.get("name"))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return {}, None


def preview_registrations(stack: str) -> list[tuple[str, str, bool, dict[str, Any]]]:
    """Run ``__main__.py`` under the mock runtime with the preview's config; what the runtime received."""
    flat, secret = preview_config(stack)
    runtime_config.set_all_config(flat, secret)
    settings.reset_options(project="pulumi-vllm", stack=stack)
    received = Received()
    mocks.set_mocks(received, project="pulumi-vllm", stack=stack, preview=False)

    @mocks.test
    def _run() -> Any:
        sys.path.insert(0, str(REPO))
        try:
            runpy.run_path(str(REPO / "__main__.py"), run_name="__main__")
        finally:
            sys.path.remove(str(REPO))
        return asyncio.sleep(0)

    _run()
    return received.resources


def _kubernetes_object(typ: str, custom: bool) -> bool:
    return custom and typ.startswith("kubernetes:") and not typ.startswith(("pulumi:providers:", "kubernetes:helm.sh/"))


@pytest.mark.parametrize("stack", STACKS)
def test_the_render_has_every_resource_the_preview_registers_and_nothing_else(
    stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / stack
    assert main(["render", "--stack", stack, "--out", str(out), "--project", str(REPO)]) == 0, capsys.readouterr().err
    index = yaml.safe_load((out / "_pulumi" / "resources.txt").read_text())
    rendered = Counter((entry["type"], entry["name"]) for entry in index)

    registered = preview_registrations(stack)
    previewed = Counter((typ, name) for typ, name, _, _ in registered)
    assert previewed, "the program registered nothing"
    assert rendered - previewed == Counter(), f"rendered, not in the preview: {sorted(rendered - previewed)}"
    assert previewed - rendered == Counter(), f"in the preview, not rendered: {sorted(previewed - rendered)}"

    # Every Kubernetes object of the preview is one top-level file of the render (kind, namespace, name).
    files: Counter[tuple[str, str, str]] = Counter()
    for path in out.glob("*.yaml"):
        manifest = yaml.safe_load(path.read_text())
        if "kind" not in manifest:
            continue  # compose.yaml of a Docker stack: not a Kubernetes object
        metadata = manifest["metadata"]
        files[(manifest["kind"], metadata.get("namespace", ""), metadata["name"])] += 1
    objects: Counter[tuple[str, str, str]] = Counter()
    for typ, name, custom, inputs in registered:
        if _kubernetes_object(typ, custom):
            metadata = inputs.get("metadata") or {}
            default_name = f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
            objects[(inputs["kind"], metadata.get("namespace", ""), metadata.get("name", default_name))] += 1
    assert files == objects
    # The environment's secrets reach the render only where the stack declares them.
    text = "\n".join(path.read_text() for path in out.rglob("*") if path.is_file())
    assert ENV["PULUMI_VLLM_SECRET_API_KEY"] not in text and ENV["PULUMI_VLLM_SECRET_HF_TOKEN"] not in text


@pytest.mark.parametrize(
    "stack", ["docker-ollama", "engine-ollama", "engine-megatron", "engine-ray-serve-llm", "engine-tensorrt-llm", "engine-triton"]
)
def test_an_api_key_in_the_environment_is_not_a_key_of_a_stack_that_has_none(stack: str) -> None:
    """These engines take no API key; their stacks set none, so the variable must not give them one."""
    rendered = render_stack(REPO, stack, env=dict(ENV))
    assert rendered.config is not None and rendered.config.api_key is None


def test_the_dev_stack_is_unprotected_unless_it_declares_the_api_key() -> None:
    plain = render_stack(REPO, "dev", env=dict(ENV))
    assert plain.config is not None and plain.config.api_key is None
    assert not [name for name, _ in plain.documents if "api-key" in name]
    declared = render_stack(REPO, "dev", env=dict(ENV), secrets={"apiKey": None})
    assert declared.config is not None and declared.config.api_key is not None
    assert declared.config.api_key.get_secret_value() == ENV["PULUMI_VLLM_SECRET_API_KEY"]
    assert [name for name, _ in declared.documents if "api-key" in name]


def test_a_secure_value_in_the_stack_file_takes_its_variable(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((REPO / "Pulumi.yaml").read_text())
    (tmp_path / "__main__.py").write_text((REPO / "__main__.py").read_text())
    (tmp_path / "Pulumi.s.yaml").write_text(
        "config:\n  pulumi-vllm:model:\n    id: Qwen/Qwen2.5-7B-Instruct\n  pulumi-vllm:apiKey:\n    secure: v1:AAAA\n"
    )
    rendered = render_stack(tmp_path, "s", env=dict(ENV))
    assert rendered.config is not None and rendered.config.api_key is not None
    assert rendered.config.api_key.get_secret_value() == ENV["PULUMI_VLLM_SECRET_API_KEY"]
    assert rendered.config.hf_token is None  # declared nowhere, so not taken from its variable
    without = render_stack(tmp_path, "s", env={})
    assert without.config is not None and without.config.api_key is not None
    assert without.config.api_key.get_secret_value() == "[secret]"


def test_a_secret_value_on_the_command_line_wins_and_is_never_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "dev"
    code = main(["render", "--stack", "dev", "--secret", "apiKey=sk-cli-9999", "--out", str(out), "--project", str(REPO)])
    assert code == 0
    printed = capsys.readouterr()
    assert "sk-cli-9999" not in printed.out + printed.err
    assert [path for path in out.glob("secret-*api-key*.yaml")]
    assert all("sk-cli-9999" not in path.read_text() for path in out.rglob("*") if path.is_file())


def test_a_secret_must_be_a_top_level_key(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["render", "--stack", "dev", "--secret", "engine.apiKey", "--out", str(tmp_path / "o"), "--project", str(REPO)])
    assert code == 2
    assert "--secret 'engine.apiKey': expected a top-level config key" in capsys.readouterr().err
