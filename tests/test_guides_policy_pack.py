"""Manifests written the way public guides write them, through the policy pack over gRPC.

Each file under tests/manifests/guides/ imitates one guide's style (vLLM's Kubernetes guide, a GKE
serving sample on a model-garden image, LeaderWorkerSet's multi-node example, AIBrix's quickstart,
production-stack's rendered chart); none is a copy. For each: every vLLM workload is recognised,
its model has catalog facts, its GPU type is read from the node labels, and the pack's verdicts
are the ones a reviewer would give.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulumi_vllm.capacity.gpus import gpu_from_node_label
from pulumi_vllm.engine.workload import pulumi_type, read_workload, vllm_containers
from pulumi_vllm.models.catalog import lookup
from pulumi_vllm.policy.client import PolicyPackProcess, Violation, resources_from_manifests

REPO = Path(__file__).resolve().parents[1]
GUIDES = REPO / "tests" / "manifests" / "guides"

# file -> (model served, GPU type the labels name, expected (policy, level, resource) verdicts)
EXPECTED: dict[str, tuple[str, str, set[tuple[str, str, str]]]] = {
    # No startupProbe with a 60 s liveness delay: restarts during the first download; no
    # enableServiceLinks: false. Everything else (secret token, PVC cache, shm) is right.
    "vllm-docs-deployment.yaml": ("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "A100-80GB", {
        ("vllm-startup-probe", "advisory", "r1-distill-llama-8b"),
        ("vllm-service-links-disabled", "advisory", "r1-distill-llama-8b"),
    }),
    # The sample downloads into the container's disk on every start, and leaves service links on.
    "gke-gemma3-api-server.yaml": ("google/gemma-3-27b-it", "H100-80GB", {
        ("vllm-model-cache-persistent", "advisory", "gemma-3-27b"),
        ("vllm-service-links-disabled", "advisory", "gemma-3-27b"),
    }),
    # 2 nodes x 8 H200 = tensor 8 x pipeline 2: GPUs match, 128 heads divide by 8, shm mounted.
    "lws-deepseek-r1.yaml": ("deepseek-ai/DeepSeek-R1", "H200", set()),
    "aibrix-qwen3-moe.yaml": ("Qwen/Qwen3-30B-A3B-FP8", "H100-80GB", set()),
    # One H100 80GB at gpu_memory_utilization 0.9 with the model's 131072 tokens: about 66 GiB of MXFP4 weights
    # leave 1.3 GiB of KV cache, short of the 5 GiB one request needs. Published start-up logs agree: at 0.95 the
    # same card had 1.71 GiB available and refused (https://github.com/vllm-project/vllm/issues/27508).
    "production-stack-gpt-oss.yaml": ("openai/gpt-oss-120b", "H100-80GB", {
        ("vllm-capacity", "advisory", "vllm-gpt-oss-deployment-vllm"),
    }),
}


def documents(filename: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((GUIDES / filename).read_text()) if d]


@pytest.fixture(scope="module")
def pack() -> Iterator[PolicyPackProcess]:
    process = PolicyPackProcess(REPO / "policies", project="pulumi-vllm", stack="test",
                                stack_config={"pulumi-vllm:name": "t"})
    process.start()
    try:
        yield process
    finally:
        process.close()


def summary(violations: list[Violation]) -> set[tuple[str, str, str]]:
    return {(v.policy_name, v.enforcement_level, v.urn.rsplit("::", 1)[-1] if v.urn else "") for v in violations}


def test_every_guide_manifest_is_covered() -> None:
    assert set(EXPECTED) == {path.name for path in GUIDES.glob("*.yaml")}


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_guide_workloads_are_recognised_with_known_model_and_gpu(filename: str) -> None:
    model, gpu, _ = EXPECTED[filename]
    workloads = [
        w for d in documents(filename)
        if (w := read_workload(pulumi_type(d["apiVersion"], d["kind"]), d)) is not None
    ]
    targets = [t for w in workloads for t in vllm_containers(w)]
    assert targets, f"{filename}: no vLLM container recognised"
    for target in targets:
        command = target.commands.vllm[0]
        assert command.mode == "serve" and command.model == model
        assert lookup(model) is not None
        labels = target.group.spec.get("nodeSelector") or {}
        affinity = target.group.spec.get("affinity", {}).get("nodeAffinity", {})
        for term in affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms", []):
            labels = {**labels, **{e["key"]: e["values"][0] for e in term["matchExpressions"]}}
        found = {g.name for key, value in labels.items() if (g := gpu_from_node_label(key, value))}
        assert found == {gpu}


@pytest.mark.parametrize("filename", sorted(EXPECTED))
def test_guide_manifests_get_a_reviewers_verdicts(pack: PolicyPackProcess, filename: str) -> None:
    pack.configure(None)
    resources = resources_from_manifests(documents(filename), project="manifests", stack="test")
    violations = pack.analyze_all(resources)
    assert summary(violations) == EXPECTED[filename][2]
    assert not any("cannot verify" in v.message or "no model facts" in v.message for v in violations)


def test_a_tight_guide_deployment_is_caught_by_capacity(pack: PolicyPackProcess) -> None:
    """The same gpt-oss-120b deployment on an L40S (44.53 GiB) cannot hold its 62 GiB of MXFP4 weights."""
    docs = documents("production-stack-gpt-oss.yaml")
    terms = docs[0]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    terms["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = [
        "NVIDIA-L40S"
    ]
    pack.configure(None)
    violations = pack.analyze_all(resources_from_manifests(docs, project="manifests", stack="test"))
    assert {(v.policy_name, v.enforcement_level) for v in violations} == {("vllm-capacity", "advisory")}
    assert "vLLM would not start on L40S" in violations[0].message
