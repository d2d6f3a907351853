"""Each policy of the pack, called as the policy SDK calls it, on good and bad workloads."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import Policy, PolicyResource, ResourceValidationArgs, StackValidationArgs
from pulumi_policy.policy import PolicyCustomTimeouts, PolicyResourceOptions
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from pulumi_vllm.distributed.parallelism import check_pipeline_parallel, check_tensor_parallel
from pulumi_vllm.engine.workload import pulumi_type
from pulumi_vllm.models.catalog import lookup

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "policies"))

from vllm_policies import all_policies
from vllm_policies.capacity import capacity
from vllm_policies.gpus import canonical_gpu_type, gpu_quota, gpus_match_parallelism
from vllm_policies.parallelism import pipeline_parallel_fits_layers, tensor_parallel_divides_heads
from vllm_policies.pods import (
    image_pinned,
    image_tag,
    model_cache_persistent,
    secrets_not_plaintext,
    service_links_disabled,
    shm_for_tensor_parallel,
    startup_probe,
)

MANIFESTS = REPO / "tests" / "manifests"
OPTIONS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])
MISTRAL = "mistralai/Mistral-7B-Instruct-v0.3"


def documents(filename: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / filename).read_text()) if d]


def find(filename: str, kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for d in documents(filename) if d["kind"] == kind))


def resource_args(document: dict[str, Any], config: dict[str, Any] | None = None) -> ResourceValidationArgs:
    """What the SDK passes a resource policy: properties behind its unknown-checking proxy."""
    resource_type = pulumi_type(document["apiVersion"], document["kind"])
    name = document["metadata"]["name"]
    return ResourceValidationArgs(
        resource_type, unknown_checking_proxy(document), f"urn:pulumi:t::p::{resource_type}::{name}", name,
        OPTIONS, None, config,
    )


def stack_args(docs: list[dict[str, Any]], config: dict[str, Any] | None = None) -> StackValidationArgs:
    resources = []
    for document in docs:
        resource_type = pulumi_type(document["apiVersion"], document["kind"])
        name = document["metadata"]["name"]
        resources.append(PolicyResource(resource_type, unknown_checking_proxy(document),
                                        f"urn:pulumi:t::p::{resource_type}::{name}", name, OPTIONS, None, None, [], {}))
    return StackValidationArgs(resources, config)


def run(policy: Policy, target: Any, config: dict[str, Any] | None = None) -> list[tuple[str, str | None]]:
    """Violations ``(message, urn)`` a policy reports for a document (resource policy) or documents (stack policy)."""
    found: list[tuple[str, str | None]] = []
    args = stack_args(target, config) if isinstance(target, list) else resource_args(target, config)
    policy.validate(args, lambda message, urn=None: found.append((message, urn)))  # type: ignore[arg-type]
    return found


def container(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"]["containers"][0]


def pod_spec(document: dict[str, Any]) -> dict[str, Any]:
    return document["spec"]["template"]["spec"]


def with_args(document: dict[str, Any], script: str) -> dict[str, Any]:
    container(document)["args"] = [script]
    return document


def test_pack_has_the_documented_policies() -> None:
    names = [policy.name for policy in all_policies()]
    assert names == [
        "vllm-tensor-parallel-divides-heads", "vllm-pipeline-parallel-fits-layers", "vllm-gpus-match-parallelism",
        "vllm-gpu-quota", "vllm-shm-for-tensor-parallel", "vllm-secrets-not-plaintext",
        "vllm-model-cache-persistent", "vllm-startup-probe", "vllm-image-pinned", "vllm-service-links-disabled",
        "vllm-capacity",
    ]
    assert all(policy.description and len(policy.description) > 40 for policy in all_policies())


def test_tensor_parallel_reports_vllms_messages_for_every_broken_rule() -> None:
    found = run(tensor_parallel_divides_heads, find("tp3-on-32-heads.yaml", "Deployment"))
    facts = lookup(MISTRAL)
    expected = [
        f"Deployment default/mistral-tp3, container 'vllm': {finding.message} (model facts from the catalog)"
        for finding in check_tensor_parallel(facts, 3, MISTRAL)
    ]
    assert [message for message, _ in found] == expected and len(expected) == 3


def test_tensor_parallel_accepts_a_divisor() -> None:
    document = find("tp3-on-32-heads.yaml", "Deployment")
    with_args(document, f"exec vllm serve {MISTRAL} --tensor-parallel-size 4")
    assert run(tensor_parallel_divides_heads, document) == []


def test_unknown_model_is_advisory_unless_configured_mandatory() -> None:
    document = find("tp3-on-32-heads.yaml", "Deployment")
    with_args(document, "vllm serve /models/in-house --tensor-parallel-size 3")
    with pytest.raises(UnknownValueError) as raised:  # the SDK turns this into an advisory diagnostic
        run(tensor_parallel_divides_heads, document)
    assert "cannot verify tensor parallel size 3: no model facts for '/models/in-house'" in raised.value.message
    found = run(tensor_parallel_divides_heads, document, {"unknownModel": "mandatory"})
    assert len(found) == 1 and "cannot verify" in found[0][0]


def test_annotations_give_facts_for_a_model_path() -> None:
    document = find("tp3-on-32-heads.yaml", "Deployment")
    with_args(document, "vllm serve /models/in-house --tensor-parallel-size 8 --pipeline-parallel-size 30")
    prefix = "vllm.pulumi.com/"
    document["metadata"]["annotations"] = {
        f"{prefix}num-attention-heads": "28", f"{prefix}num-key-value-heads": "4", f"{prefix}num-hidden-layers": "28",
        f"{prefix}head-dim": "128", f"{prefix}hidden-size": "3584", f"{prefix}vocab-size": "152064",
    }
    found = run(tensor_parallel_divides_heads, document)
    assert next(m for m, _ in found).endswith(
        "Total number of attention heads (28) must be divisible by tensor parallel size (8). "
        "Valid tensor parallel sizes up to 8: 1, 2, 4. (model facts from the annotations)"
    )
    (pipeline,) = run(pipeline_parallel_fits_layers, document)
    assert "Pipeline parallel size (30) must not exceed the number of hidden layers (28)" in pipeline[0]


def test_annotation_overrides_a_catalog_fact() -> None:
    document = find("tp3-on-32-heads.yaml", "Deployment")
    with_args(document, f"vllm serve {MISTRAL} --tensor-parallel-size 2")
    document["metadata"]["annotations"] = {"vllm.pulumi.com/num-attention-heads": "33"}
    (message, _), *_ = run(tensor_parallel_divides_heads, document)
    assert "attention heads (33)" in message and message.endswith("(model facts from the annotations and catalog)")


def test_pipeline_parallel_against_layers() -> None:
    document = find("tp3-on-32-heads.yaml", "Deployment")
    with_args(document, f"vllm serve {MISTRAL} -pp 33")
    (message, _), = run(pipeline_parallel_fits_layers, document)
    assert message.startswith("Deployment default/mistral-tp3, container 'vllm': "
                              + check_pipeline_parallel(lookup(MISTRAL), 33)[0].message)
    with_args(document, f"vllm serve {MISTRAL} -pp 32")
    assert run(pipeline_parallel_fits_layers, document) == []


def test_gpus_match_on_one_pod() -> None:
    document = find("api-server-deployment.yaml", "Deployment")
    assert run(gpus_match_parallelism, [document]) == []
    container(document)["resources"]["limits"]["nvidia.com/gpu"] = 1
    (message, urn), = run(gpus_match_parallelism, [document])
    assert "each pod request 1 GPU(s), but tensor parallel 2 x pipeline parallel 1 needs 2" in message
    assert urn.endswith("::llama-8b-tp2")
    container(document)["args"].append("--data-parallel-size=2")
    container(document)["resources"]["limits"]["nvidia.com/gpu"] = 4
    assert run(gpus_match_parallelism, [document]) == []


def test_gpus_match_across_ray_groups() -> None:
    assert run(gpus_match_parallelism, [find("lws-llama-405b.yaml", "LeaderWorkerSet")]) == []
    lws = find("lws-llama-405b.yaml", "LeaderWorkerSet")
    lws["spec"]["leaderWorkerTemplate"]["size"] = 3
    (message, _), = run(gpus_match_parallelism, [lws])
    assert "the LeaderWorkerSet group's pods request 24 GPU(s), but tensor parallel 8 x pipeline parallel 2 needs 16" in message
    pair = documents("ray-head-worker.yaml")
    assert run(gpus_match_parallelism, pair) == []
    pair[1]["spec"]["replicas"] = 2
    (message, _), = run(gpus_match_parallelism, pair)
    assert "the Ray head pod and its workers (StatefulSet llm/qwen72b-worker) request 12 GPU(s)" in message
    pair[1]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/instance"] = "other"
    (message, _), = run(gpus_match_parallelism, pair)  # unpaired: the head alone holds 4 of 8
    assert "each pod request 4 GPU(s)" in message
    (message, _), = run(gpus_match_parallelism, [find("raycluster-too-few-gpus.yaml", "RayCluster")])
    assert "the RayCluster group's pods request 4 GPU(s), but tensor parallel 4 x pipeline parallel 2 needs 8" in message


def test_tensor_parallel_group_must_not_span_pods() -> None:
    lws = find("lws-llama-405b.yaml", "LeaderWorkerSet")
    template = lws["spec"]["leaderWorkerTemplate"]
    template["size"] = 4
    for role in ("leaderTemplate", "workerTemplate"):
        template[role]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "4"
    found = [message for message, _ in run(gpus_match_parallelism, [lws])]
    assert found == [
        f"LeaderWorkerSet llm/llama-405b, leader, container 'vllm-leader': {role} pods hold 4 GPU(s), not a multiple "
        "of tensor parallel size 8: a tensor-parallel group must not span pods."
        for role in ("leader", "worker")
    ]


def quota_docs() -> list[dict[str, Any]]:
    return [find("api-server-deployment.yaml", "Deployment"), find("lws-llama-405b.yaml", "LeaderWorkerSet"),
            find("batch-job.yaml", "Job")]


def test_quota_limits_per_stack_namespace_and_workload() -> None:
    docs = quota_docs()  # 2 x 2 + 16 + 1 = 21 GPUs
    assert run(gpu_quota, docs) == []
    assert run(gpu_quota, docs, {"maxGpusPerStack": 21}) == []
    (message, urn), = run(gpu_quota, docs, {"maxGpusPerStack": 20.0})
    assert message.startswith("the stack requests 21 GPU(s) (Deployment inference/llama-8b-tp2: 4, ")
    assert urn is None
    (message, _), = run(gpu_quota, docs, {"maxGpusPerNamespace": {"llm": 8, "batch": 1}})
    assert message == "namespace llm gets 16 GPU(s) from this stack; maxGpusPerNamespace allows 8."
    (message, urn), = run(gpu_quota, docs, {"maxGpusPerWorkload": 8})
    assert message == "LeaderWorkerSet llm/llama-405b requests 16 GPU(s); maxGpusPerWorkload is 8."
    assert urn.endswith("::llama-405b")


def test_quota_allowed_gpu_types() -> None:
    deployment = find("api-server-deployment.yaml", "Deployment")  # selects NVIDIA-L40S
    assert run(gpu_quota, [deployment], {"allowedGpuTypes": ["L40S", "H100-80GB"]}) == []
    (message, _), = run(gpu_quota, [deployment], {"allowedGpuTypes": ["H100-80GB"]})
    assert message == "Deployment inference/llama-8b-tp2 may run on NVIDIA-L40S; allowedGpuTypes is H100-80GB."
    pod_spec(deployment).pop("nodeSelector")
    pod_spec(deployment)["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "cloud.google.com/gke-accelerator", "operator": "In", "values": ["nvidia-h100-80gb"]}]}]}}}
    assert run(gpu_quota, [deployment], {"allowedGpuTypes": ["H100-80GB"]}) == []
    pod_spec(deployment).pop("affinity")
    (message, _), = run(gpu_quota, [deployment], {"allowedGpuTypes": ["H100-80GB"]})
    assert "requests GPUs without selecting a GPU type" in message
    deployment["metadata"]["annotations"] = {"vllm.pulumi.com/gpu-type": "H100"}
    assert run(gpu_quota, [deployment], {"allowedGpuTypes": ["H100-80GB"]}) == []


def test_quota_against_the_stacks_own_resource_quota() -> None:
    docs = documents("gpu-quota-exceeded.yaml")
    (message, urn), = run(gpu_quota, docs)
    assert "request 8 nvidia.com/gpu in namespace research, above its ResourceQuota" in message
    assert urn.endswith("ResourceQuota::gpus")
    docs[1]["spec"]["replicas"] = 1
    assert run(gpu_quota, docs) == []


@pytest.mark.parametrize(
    ("name", "canonical"),
    [("NVIDIA-H100-80GB-HBM3", "H100-80GB"), ("nvidia-l4", "L4"), ("NVIDIA-A100-SXM4-80GB", "A100-80GB"),
     ("p5.48xlarge", "p5.48xlarge")],
)
def test_canonical_gpu_types(name: str, canonical: str) -> None:
    assert canonical_gpu_type(name) == canonical


def test_shm_needed_above_tensor_parallel_one() -> None:
    document = find("api-server-deployment.yaml", "Deployment")
    assert run(shm_for_tensor_parallel, document) == []
    pod_spec(document)["volumes"][1]["emptyDir"] = {}
    (message, _), = run(shm_for_tensor_parallel, document)
    assert "tensor parallel size 2 without a memory-backed /dev/shm" in message
    pod_spec(document)["hostIPC"] = True
    assert run(shm_for_tensor_parallel, document) == []
    assert run(shm_for_tensor_parallel, find("vllm-guide-deployment.yaml", "Deployment")) == []  # TP 1
    lws = find("lws-llama-405b.yaml", "LeaderWorkerSet")
    lws["spec"]["leaderWorkerTemplate"]["workerTemplate"]["spec"]["containers"][0]["volumeMounts"] = []
    (message, _), = run(shm_for_tensor_parallel, lws)
    assert message.startswith("LeaderWorkerSet llm/llama-405b, worker, container 'vllm-worker'")


def test_secrets_must_come_from_secrets() -> None:
    docs = documents("plaintext-token.yaml")
    assert [m for m, _ in run(secrets_not_plaintext, docs[0])] == [
        "ConfigMap qwen-env holds HUGGING_FACE_HUB_TOKEN: ConfigMaps are not secret; put it in a Secret."]
    messages = [m for m, _ in run(secrets_not_plaintext, docs[1])]
    assert len(messages) == 2
    assert "HF_TOKEN has a literal value" in messages[0] and "--api-key is given literally" in messages[1]
    assert all("hf_plaintext_token" not in m and "sk-plaintext-key" not in m for m in messages)
    good = find("api-server-deployment.yaml", "Deployment")
    container(good)["args"] += ["--api-key", "$(VLLM_API_KEY)"]
    assert run(secrets_not_plaintext, good) == []
    pod_spec(good)["initContainers"] = [{"name": "fetch", "env": [
        {"name": "VLLM_API_KEY", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]}]
    (message, _), = run(secrets_not_plaintext, good)
    assert message == ("Deployment inference/llama-8b-tp2, container 'fetch': VLLM_API_KEY comes from a ConfigMap; "
                       "use valueFrom.secretKeyRef.")


def test_model_cache_on_a_claim() -> None:
    document = find("api-server-deployment.yaml", "Deployment")  # HF_HOME=/models/hf on a claim at /models
    assert run(model_cache_persistent, document) == []
    assert run(model_cache_persistent, find("ray-head-worker.yaml", "StatefulSet")) == []  # volumeClaimTemplates
    pod_spec(document)["volumes"][0] = {"name": "models", "emptyDir": {}}
    (message, _), = run(model_cache_persistent, document)
    assert "the Hugging Face cache (/models/hf) is on a emptyDir volume" in message
    container(document)["volumeMounts"] = []
    (message, _), = run(model_cache_persistent, document)
    assert "is on the container's own disk" in message
    container(document)["args"][0] = "--model=/weights/llama"
    assert run(model_cache_persistent, document) == []  # nothing is downloaded


def test_startup_probe_budget() -> None:
    document = find("api-server-deployment.yaml", "Deployment")  # 10 s x 90
    assert run(startup_probe, document) == []
    (message, _), = run(startup_probe, document, {"minStartupSeconds": 1200})
    assert "the startupProbe allows 900 s" in message and "below minStartupSeconds 1200" in message
    (message, _), = run(startup_probe, find("vllm-guide-deployment.yaml", "Deployment"))
    assert "no startupProbe" in message
    assert run(startup_probe, find("batch-job.yaml", "Job")) == []  # a batch run serves nothing


@pytest.mark.parametrize(
    ("image", "tag"),
    [("vllm/vllm-openai:v0.32.0", "v0.32.0"), ("vllm/vllm-openai", None), ("localhost:5000/vllm", None),
     ("registry:5000/vllm/vllm-openai:latest", "latest"), ("vllm/vllm-openai@sha256:abc", "@sha256:abc")],
)
def test_image_tags(image: str, tag: str | None) -> None:
    assert image_tag(image) == tag
    document = find("api-server-deployment.yaml", "Deployment")
    container(document)["image"] = image
    assert bool(run(image_pinned, document)) is (tag in (None, "latest"))


def test_service_links_disabled() -> None:
    assert run(service_links_disabled, find("api-server-deployment.yaml", "Deployment")) == []
    (message, _), = run(service_links_disabled, find("vllm-guide-deployment.yaml", "Deployment"))
    assert "enableServiceLinks is not false" in message


def test_capacity_reports_low_concurrency_on_a_known_gpu() -> None:
    document = find("api-server-deployment.yaml", "Deployment")  # Llama 8B, TP 2, 16k tokens, L40S
    assert run(capacity, document) == []
    (message, _), = run(capacity, document, {"minConcurrency": 10_000})
    assert "on L40S, tensor parallel 2 x pipeline parallel 1 the KV cache holds" in message
    assert "below minConcurrency 10000" in message
    container(document)["args"] = ["--model=meta-llama/Llama-3.1-70B-Instruct", "--max-model-len=8192"]
    pod_spec(document)["nodeSelector"] = {}
    assert run(capacity, document) == []  # GPU type unknown: nothing to plan
    document["metadata"]["annotations"] = {"vllm.pulumi.com/gpu-type": "L4"}
    (message, _), = run(capacity, document)
    assert message.startswith("Deployment inference/llama-8b-tp2, container 'server': vLLM would not start on L4")


def test_unknown_values_are_tolerated() -> None:
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the SDK's marker for a string unknown during preview
    document = find("api-server-deployment.yaml", "Deployment")
    container(document)["resources"]["limits"]["nvidia.com/gpu"] = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
    container(document)["image"] = unknown
    assert run(gpus_match_parallelism, [document]) == []
    assert run(gpu_quota, [document], {"maxGpusPerStack": 0}) == []
