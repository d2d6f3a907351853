"""The policy pack as the Pulumi engine sees it: a subprocess serving the Analyzer gRPC protocol.

One pack process serves the whole module. It is started as the engine starts a Python pack
(``python -u -m pulumi.policy <engine address> .`` in the pack folder, stack identity in
``PULUMI_*`` variables); every example stack and every hand-written manifest goes through
``Analyze`` and ``AnalyzeStack``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from stacks import STACKS

from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.distributed.parallelism import check_tensor_parallel
from pulumi_vllm.models.catalog import lookup
from pulumi_vllm.policy.client import (
    PolicyPackError,
    PolicyPackProcess,
    Violation,
    load_policy_config,
    resources_from_manifests,
    resources_from_registrations,
)
from pulumi_vllm.render import checks

REPO = Path(__file__).resolve().parents[1]
PACK = REPO / "policies"
EXAMPLE_CONFIG = PACK / "policy-config.example.json"
MANIFESTS = REPO / "tests" / "manifests"


POLICIES = {
    "vllm-tensor-parallel-divides-heads": "mandatory",
    "vllm-pipeline-parallel-fits-layers": "mandatory",
    "vllm-gpus-match-parallelism": "mandatory",
    "vllm-gpu-quota": "mandatory",
    "vllm-shm-for-tensor-parallel": "mandatory",
    "vllm-secrets-not-plaintext": "mandatory",
    "vllm-model-cache-persistent": "advisory",
    "vllm-startup-probe": "advisory",
    "vllm-image-pinned": "advisory",
    "vllm-service-links-disabled": "advisory",
    "vllm-capacity": "advisory",
}


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackProcess]:
    """One running pack for the module; stopped (and checked stopped) afterwards."""
    process = PolicyPackProcess(PACK, project="pulumi-vllm", stack="test", stack_config={"pulumi-vllm:name": "t"})
    process.start()
    child = process._process
    assert child is not None and child.args[1:5] == ["-u", "-m", "pulumi.policy", "127.0.0.1:0"]
    try:
        yield process
    finally:
        process.close()
        assert child.poll() is not None, "the policy pack process is still running"


@pytest.fixture
def configured(pack: PolicyPackProcess) -> Iterator[PolicyPackProcess]:
    """The pack with the default config (what `pulumi preview --policy-pack policies` sends)."""
    pack.configure(None)
    yield pack
    pack.configure(None)


def manifest_resources(*filenames: str) -> list[Any]:
    documents = [d for name in filenames for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]
    return resources_from_manifests(documents, project="manifests", stack="test")


def summary(violations: list[Violation]) -> set[tuple[str, str, str]]:
    """``(policy, level, resource name)`` of each violation ("" for the stack)."""
    return {(v.policy_name, v.enforcement_level, v.urn.rsplit("::", 1)[-1] if v.urn else "") for v in violations}


def test_analyzer_info_lists_every_policy_with_its_level_and_schema(pack: PolicyPackProcess) -> None:
    info = pack.info()
    assert info.name == "pulumi-vllm" and info.supportsConfig
    levels = {p["name"]: p["enforcementLevel"] for p in pack.policy_infos()}
    assert levels == POLICIES
    schemas = {p["name"]: p.get("configSchema", {}).get("properties", {}) for p in pack.policy_infos()}
    assert set(schemas["vllm-gpu-quota"]) == {"maxGpusPerStack", "maxGpusPerNamespace", "maxGpusPerWorkload",
                                              "allowedGpuTypes"}
    assert schemas["vllm-startup-probe"]["minStartupSeconds"]["default"] == 600
    assert schemas["vllm-capacity"]["minConcurrency"]["default"] == 1
    assert schemas["vllm-tensor-parallel-divides-heads"]["unknownModel"]["enum"] == ["advisory", "mandatory"]


@pytest.mark.parametrize("stack", STACKS)
def test_example_stacks_have_no_violations(configured: PolicyPackProcess, stack: str) -> None:
    rendered = render_stack(REPO, stack)
    resources = resources_from_registrations(rendered.run.registrations)
    assert configured.analyze_all(resources) == []
    configured.configure(EXAMPLE_CONFIG)
    assert configured.analyze_all(resources) == []


EXPECTED = {
    "api-server-deployment.yaml": set(),
    "batch-job.yaml": set(),
    "lws-llama-405b.yaml": set(),
    "ray-head-worker.yaml": set(),
    "vllm-guide-deployment.yaml": {
        ("vllm-startup-probe", "advisory", "mistral-7b"),
        ("vllm-image-pinned", "advisory", "mistral-7b"),
        ("vllm-service-links-disabled", "advisory", "mistral-7b"),
    },
    "tp3-on-32-heads.yaml": {("vllm-tensor-parallel-divides-heads", "mandatory", "mistral-tp3")},
    "plaintext-token.yaml": {
        ("vllm-secrets-not-plaintext", "mandatory", "qwen-env"),
        ("vllm-secrets-not-plaintext", "mandatory", "qwen-7b"),
    },
    "raycluster-too-few-gpus.yaml": {("vllm-gpus-match-parallelism", "mandatory", "qwen72b")},
    "gpu-quota-exceeded.yaml": {("vllm-gpu-quota", "mandatory", "gpus")},
}


def test_every_manifest_is_covered() -> None:
    assert set(EXPECTED) == {path.name for path in MANIFESTS.glob("*.yaml")}


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_hand_written_manifests(configured: PolicyPackProcess, filename: str) -> None:
    assert summary(configured.analyze_all(manifest_resources(filename))) == EXPECTED[filename]


def test_bad_stack_is_blocked_with_vllms_wording(configured: PolicyPackProcess) -> None:
    resources = manifest_resources("tp3-on-32-heads.yaml", "plaintext-token.yaml", "gpu-quota-exceeded.yaml")
    violations = configured.analyze_all(resources)
    mandatory = [v for v in violations if v.mandatory]
    assert summary(mandatory) == {
        ("vllm-tensor-parallel-divides-heads", "mandatory", "mistral-tp3"),
        ("vllm-secrets-not-plaintext", "mandatory", "qwen-env"),
        ("vllm-secrets-not-plaintext", "mandatory", "qwen-7b"),
        ("vllm-gpu-quota", "mandatory", "gpus"),
    }
    tensor = [v for v in violations if v.policy_name == "vllm-tensor-parallel-divides-heads"]
    model = "mistralai/Mistral-7B-Instruct-v0.3"
    assert [v.detail for v in tensor] == [
        f"Deployment default/mistral-tp3, container 'vllm': {f.message} (model facts from the catalog)"
        for f in check_tensor_parallel(lookup(model), 3, model)
    ]
    assert all(v.message.startswith(v.description + "\n") and v.policy_pack == "pulumi-vllm" for v in violations)
    assert all(v.policy_pack_version == "0.1.0" for v in violations)  # PulumiPolicy.yaml's, as the engine reports


def test_rendered_stack_over_the_configured_gpu_quota(configured: PolicyPackProcess) -> None:
    rendered = render_config({
        "name": "qwen", "namespace": "team-b", "model": {"id": "Qwen/Qwen3-8B"}, "replicas": 3,
        "parallelism": {"tensorParallelSize": 2}, "cache": {"accessMode": "ReadWriteMany"},
    })
    resources = resources_from_registrations(rendered.run.registrations)
    assert configured.analyze_all(resources) == []
    configured.configure({"vllm-gpu-quota": {"properties": {"maxGpusPerStack": 4, "maxGpusPerNamespace": {"team-b": 5}}}})
    violations = configured.analyze_all(resources)
    assert summary(violations) == {("vllm-gpu-quota", "mandatory", "")}
    assert sorted(v.detail for v in violations) == [
        "namespace team-b gets 6 GPU(s) from this stack; maxGpusPerNamespace allows 5.",
        "the stack requests 6 GPU(s) (Deployment team-b/qwen: 6); maxGpusPerStack is 4.",
    ]


def test_unknown_model_is_advisory_by_default_and_mandatory_when_configured(configured: PolicyPackProcess) -> None:
    document = yaml.safe_load((MANIFESTS / "tp3-on-32-heads.yaml").read_text())
    document["spec"]["template"]["spec"]["containers"][0]["args"] = ["vllm serve /models/private -tp 2"]
    resources = resources_from_manifests([document])
    violations = configured.analyze_all(resources)
    assert summary(violations) == {
        ("vllm-tensor-parallel-divides-heads", "advisory", "mistral-tp3"),
        ("vllm-pipeline-parallel-fits-layers", "advisory", "mistral-tp3"),
        ("vllm-gpus-match-parallelism", "mandatory", "mistral-tp3"),  # 3 GPUs for tensor parallel 2
    }
    assert all("cannot verify" in v.message for v in violations if v.enforcement_level == "advisory")
    configured.configure({"vllm-tensor-parallel-divides-heads": {"properties": {"unknownModel": "mandatory"}}})
    assert ("vllm-tensor-parallel-divides-heads", "mandatory", "mistral-tp3") in summary(
        configured.analyze_all(resources))


def test_levels_overridden_by_a_config_file(configured: PolicyPackProcess, tmp_path: Path) -> None:
    config = tmp_path / "policy.json"
    config.write_text(json.dumps({
        "vllm-image-pinned": "mandatory", "vllm-startup-probe": "disabled",
        "vllm-service-links-disabled": {"enforcementLevel": "advisory"},
    }))
    configured.configure(config)
    assert summary(configured.analyze_all(manifest_resources("vllm-guide-deployment.yaml"))) == {
        ("vllm-image-pinned", "mandatory", "mistral-7b"),
        ("vllm-service-links-disabled", "advisory", "mistral-7b"),
    }
    config.write_text(json.dumps({"all": "disabled"}))
    configured.configure(config)
    assert configured.analyze_all(manifest_resources("plaintext-token.yaml")) == []


def test_invalid_config_is_refused_before_analysis(pack: PolicyPackProcess, tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"vllm-gpu-quota": {"maxGpusPerStack": -1, "allowedGpuTypes": "H100"},
                                  "vllm-capacity": "sometimes"}))
    with pytest.raises(PolicyPackError, match="'sometimes' is not a valid enforcement level"):
        pack.configure(config)
    config.write_text(json.dumps({"vllm-gpu-quota": {"maxGpusPerStack": -1, "allowedGpuTypes": "H100"}}))
    with pytest.raises(PolicyPackError) as raised:
        pack.configure(config)
    assert "vllm-gpu-quota: maxGpusPerStack: -1 is less than the minimum of 0" in str(raised.value)
    assert "vllm-gpu-quota: allowedGpuTypes: 'H100' is not of type 'array'" in str(raised.value)
    config.write_text(json.dumps({"vllm-gpu-qouta": {"maxGpusPerStack": 4}}))
    with pytest.raises(PolicyPackError, match="names no policy of this pack: vllm-gpu-qouta"):
        pack.configure(config)


def test_example_config_is_valid_and_covers_every_policy(pack: PolicyPackProcess) -> None:
    assert set(load_policy_config(EXAMPLE_CONFIG)) == set(POLICIES)
    reconciled = pack.configure(EXAMPLE_CONFIG)
    assert reconciled["vllm-gpu-quota"]["properties"]["maxGpusPerStack"] > 0
    pack.configure(None)


def test_render_check_prints_violations_grouped_by_resource(
    configured: PolicyPackProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def through_module_pack(pack_dir: Path, resources: list[Any], config: Any, **_: Any) -> list[Violation]:
        configured.configure(config)
        return configured.analyze_all(resources)

    monkeypatch.setattr(checks, "run_policy_pack", through_module_pack)
    rendered = render_stack(REPO, "dev")
    assert checks.check_policies(rendered, PACK, None) == 0
    assert "no violations" in capsys.readouterr().out
    config = {"vllm-gpu-quota": {"properties": {"maxGpusPerStack": 0, "maxGpusPerWorkload": 0}}}
    assert checks.check_policies(rendered, PACK, config) == 1  # type: ignore[arg-type]
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "policy violations: 2 (2 mandatory, 0 advisory)"
    assert out[1] == "  stack"
    deployment = next(i for i, line in enumerate(out) if line.startswith("  kubernetes:apps/v1:Deployment"))
    assert out[deployment + 1] == "    [mandatory] vllm-gpu-quota"
