"""The offline render of whole stacks: files, schema validity, the Deployment's required fields, secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from schemas import validate_object
from stacks import SERVING_STACKS, STACKS, engine_kind

from pulumi_vllm.cli import main
from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.engine.profiles import profile
from pulumi_vllm.render.engine import REDACTED

REPO = Path(__file__).resolve().parents[1]
TOKEN = "hf_TESTTOKEN_d41d8cd98f00b204"
API_KEY = "sk-TESTKEY-0f343b0931126a20"


def _manifests(rendered: Any) -> dict[str, dict[str, Any]]:
    return {name: doc for name, doc in rendered.documents if name.endswith(".yaml") and isinstance(doc, dict) and "kind" in doc}


def _deployment(rendered: Any) -> dict[str, Any]:
    found = [doc for doc in _manifests(rendered).values() if doc["kind"] == "Deployment"]
    assert len(found) == 1
    return found[0]


@pytest.fixture(scope="module")
def dev() -> Any:
    return render_stack(
        REPO, "dev", env={"PULUMI_VLLM_SECRET_HF_TOKEN": TOKEN, "PULUMI_VLLM_SECRET_API_KEY": API_KEY}, secrets={"hfToken": None, "apiKey": None}
    )


@pytest.mark.parametrize("stack", STACKS)
def test_every_example_stack_renders_schema_valid_objects(stack: str) -> None:
    rendered = render_stack(REPO, stack, env={})
    manifests = _manifests(rendered)
    for manifest in manifests.values():
        if manifest.get("apiVersion", "").startswith("docker"):
            continue
        validate_object(manifest)


def test_dev_stack_has_claim_secret_deployment_service(dev: Any) -> None:
    kinds = sorted(doc["kind"] for doc in _manifests(dev).values())
    assert kinds == ["Deployment", "PersistentVolumeClaim", "Secret", "Secret", "Service"]


def test_deployment_fields(dev: Any) -> None:
    """Every field the serving Deployment must have, checked on the rendered dev stack."""
    deployment = _deployment(dev)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    # host 0.0.0.0 and port 8000
    assert args[args.index("--host") + 1] == "0.0.0.0" and args[args.index("--port") + 1] == "8000"
    # the cache PVC mounted, HF_HOME pointing at it
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    assert volumes["model-cache"]["persistentVolumeClaim"]["claimName"] == "llama-8b-model-cache"
    env = {item["name"]: item for item in container["env"]}
    assert env["HF_HOME"]["value"] == mounts["model-cache"]
    # the token from a secretKeyRef, never a literal
    assert "value" not in env["HF_TOKEN"]
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"key": "token", "name": "llama-8b-hf-token"}
    assert env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "llama-8b-api-key"
    # /dev/shm as a Memory emptyDir with a size
    assert mounts["dshm"] == "/dev/shm"
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory" and volumes["dshm"]["emptyDir"]["sizeLimit"] == "2Gi"
    # GPU limits equal to the tensor parallel size
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert args[args.index("--tensor-parallel-size") + 1] == "1"
    # a generous startup probe, then readiness and liveness on /health
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/health"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1800
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    # no service links (VLLM_PORT injection)
    assert pod["enableServiceLinks"] is False
    # a rollout that cannot deadlock on a ReadWriteOnce volume
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # the secret checksum annotation (a secret itself, so redacted)
    assert deployment["spec"]["template"]["metadata"]["annotations"]["pulumi-vllm/secret-checksum"] == REDACTED


def _checksum(token: str, api_key: str) -> str:
    rendered = render_config(
        {"name": "llm", "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "hfToken": token, "apiKey": api_key}
    )
    deployment = next(reg for reg in rendered.run.registrations if reg.type == "kubernetes:apps/v1:Deployment")
    envelope = deployment.inputs["spec"]["template"]["metadata"]["annotations"]["pulumi-vllm/secret-checksum"]
    return envelope["value"]


def test_rotating_a_secret_changes_the_pod_template() -> None:
    assert _checksum("hf_a", "k1") == _checksum("hf_a", "k1")
    assert _checksum("hf_a", "k1") != _checksum("hf_b", "k1")
    assert _checksum("hf_a", "k1") != _checksum("hf_a", "k2")


def test_model_cache_survives_unrelated_changes() -> None:
    base = {"name": "llm", "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}}
    changed = {
        **base,
        "model": {"id": "Qwen/Qwen2.5-7B-Instruct"},
        "engine": {"image": "vllm/vllm-openai:v0.31.0", "maxModelLen": 4096},
        "replicas": 0,
    }

    def claim(values: dict) -> tuple[dict, Any]:
        rendered = render_config(values)
        registration = next(reg for reg in rendered.run.registrations if reg.type.endswith("PersistentVolumeClaim"))
        return registration.inputs, (registration.name, registration.retain_on_delete)

    assert claim(base) == claim(changed)
    assert claim(base)[1][1] is True  # retained on delete


def test_no_secret_in_files_or_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULUMI_VLLM_SECRET_HF_TOKEN", TOKEN)
    monkeypatch.setenv("PULUMI_VLLM_SECRET_API_KEY", API_KEY)
    out = tmp_path / "dev"
    assert main(["render", "--stack", "dev", "--secret", "hfToken", "--secret", "apiKey", "--out", str(out), "--project", str(REPO)]) == 0
    printed = capsys.readouterr()
    files = [path for path in out.rglob("*") if path.is_file()]
    assert len(files) >= 5
    for path in files:
        text = path.read_text()
        assert TOKEN not in text and API_KEY not in text, path
    assert TOKEN not in printed.out + printed.err and API_KEY not in printed.out + printed.err
    secrets = [yaml.safe_load(path.read_text()) for path in out.glob("secret-*.yaml")]
    assert {tuple(doc["stringData"].values()) for doc in secrets} == {(REDACTED,)}
    outputs = yaml.safe_load((out / "_pulumi" / "outputs.txt").read_text())
    assert outputs["baseUrl"] == "http://llama-8b.vllm-dev.svc.cluster.local/v1"


def test_secure_values_without_environment_are_placeholders(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((REPO / name).read_text())
    stack = yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())
    stack["config"]["pulumi-vllm:hfToken"] = {"secure": "v1:AAAAciphertext"}
    (project / "Pulumi.sec.yaml").write_text(yaml.safe_dump(stack))
    rendered = render_stack(project, "sec", env={})
    secret = next(doc for doc in _manifests(rendered).values() if doc["kind"] == "Secret")
    assert secret["stringData"] == {"token": REDACTED}
    assert "AAAAciphertext" not in yaml.safe_dump([doc for _, doc in rendered.documents])


def test_invalid_config_exits_non_zero_with_one_message_and_no_traceback(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((REPO / name).read_text())
    (project / "Pulumi.bad.yaml").write_text(
        "config:\n  pulumi-vllm:model:\n    id: meta-llama/Llama-3.1-8B-Instruct\n"
        "  pulumi-vllm:engine:\n    gpuMemoryUtilisation: 0.9\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "components")}
    result = subprocess.run(
        [sys.executable, "-m", "pulumi_vllm.cli", "render", "--stack", "bad", "--out", str(tmp_path / "out")],
        check=False, cwd=project, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "pulumi-vllm:engine.gpuMemoryUtilisation: unknown key" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "out").exists()


def test_gpu_quota_from_stack_config() -> None:
    rendered = render_config(
        {"name": "llm", "namespace": "ml", "model": {"id": "meta-llama/Llama-3.1-70B-Instruct"},
         "parallelism": {"tensorParallelSize": 4}, "quota": {"enabled": True}}
    )
    (quota,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "ResourceQuota"]
    validate_object(quota)
    assert quota["metadata"]["namespace"] == "ml"
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == "4"
    unquoted = render_config({"name": "llm", "model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}})
    assert not [doc for _, doc in unquoted.documents if isinstance(doc, dict) and doc.get("kind") == "ResourceQuota"]


def _plaintext_occurrences(value: Any, secret: str, path: str = "") -> list[str]:
    """Paths where ``secret`` appears outside Pulumi's secret envelope (what would be plaintext in state)."""
    from pulumi_vllm.render.engine import SECRET_SIG

    if isinstance(value, dict):
        if SECRET_SIG in value:
            return []
        return [hit for key, item in value.items() for hit in _plaintext_occurrences(item, secret, f"{path}.{key}")]
    if isinstance(value, list):
        return [hit for index, item in enumerate(value) for hit in _plaintext_occurrences(item, secret, f"{path}[{index}]")]
    return [path] if isinstance(value, str) and secret in value else []


@pytest.mark.parametrize("stack", SERVING_STACKS)
def test_secrets_reach_the_engine_only_as_secrets(stack: str) -> None:
    """Every input that carries the token or the API key is marked secret, so state stores it encrypted."""
    env = {"PULUMI_VLLM_SECRET_HF_TOKEN": TOKEN, "PULUMI_VLLM_SECRET_API_KEY": API_KEY}
    if not profile(engine_kind(stack)).api_key_env:
        del env["PULUMI_VLLM_SECRET_API_KEY"]  # an engine without an API key refuses apiKey
    # The stack declares the secrets, as `pulumi config set --secret` would.
    declared = {"hfToken": None, "apiKey": None} if "PULUMI_VLLM_SECRET_API_KEY" in env else {"hfToken": None}
    rendered = render_stack(REPO, stack, env=env, secrets=declared)
    carried = False
    for registration in rendered.run.registrations:
        for secret in (TOKEN, API_KEY):
            assert _plaintext_occurrences(registration.inputs, secret) == [], (registration.type, registration.name)
            carried = carried or secret in str(registration.inputs)
    assert carried, "the secrets should reach some resource (inside their envelope)"
    assert TOKEN not in str(rendered.run.outputs) and API_KEY not in str(rendered.run.outputs)


def test_resource_index_records_aliases(tmp_path: Path) -> None:
    """A renamed resource carries its former name, so a review does not read the rename as a replacement."""
    from pulumi_vllm.render.engine import run_program
    from pulumi_vllm.render.manifests import resource_index

    (tmp_path / "Pulumi.yaml").write_text("name: aliasproj\nruntime: python\n")
    (tmp_path / "__main__.py").write_text(
        "import pulumi\nimport pulumi_kubernetes as k8s\n"
        'k8s.core.v1.ConfigMap("new-name", metadata={"name": "cm"}, data={"a": "b"},\n'
        '    opts=pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old-name")]))\n'
    )
    run = run_program(tmp_path, "s", {}, [], "aliasproj")
    (entry,) = resource_index(run)
    assert entry["name"] == "new-name" and entry["aliases"] == ["old-name"]


@pytest.mark.parametrize("stack", STACKS)
def test_rendered_files_load_back_to_the_same_objects(stack: str) -> None:
    """Scripts and JSONL are written as literal blocks; what a reader parses is still exactly the object."""
    from pulumi_vllm.render.manifests import dump_yaml

    rendered = render_stack(REPO, stack, env={})
    for filename, document in rendered.documents:
        if not isinstance(document, str):
            assert yaml.safe_load(dump_yaml(document)) == document, filename


def test_multi_line_strings_are_literal_blocks() -> None:
    from pulumi_vllm.render.manifests import dump_yaml

    text = dump_yaml({"script": "set -e\necho hi\n", "spaced": "trailing \nspace", "one": "line"})
    assert "script: |\n  set -e\n  echo hi\n" in text
    assert yaml.safe_load(text) == {"script": "set -e\necho hi\n", "spaced": "trailing \nspace", "one": "line"}
