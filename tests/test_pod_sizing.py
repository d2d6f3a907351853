"""Pods sized for the model (CPU and memory requests) and pinned to the GPU type, in every pod builder."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from schemas import validate_object
from stacks import stack_file

from pulumi_vllm.capacity.gpus import gpu_from_node_label
from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.kubernetes.pod_resources import (
    GPU_PRODUCT_LABEL,
    MIN_MEMORY_GIB,
    ModelMemory,
    checkpoint_gib,
    cpu_request,
    gpu_node_terms,
    memory_request,
    offload_gib,
)
from pulumi_vllm.models.catalog import lookup

REPO = Path(__file__).resolve().parents[1]
QWEN_FP8 = "Qwen/Qwen3-30B-A3B-FP8"


def _objects(rendered: Any) -> list[dict[str, Any]]:
    return [doc for name, doc in rendered.documents if name.endswith(".yaml") and isinstance(doc, dict) and "kind" in doc]


def _pod_specs(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every pod spec of a workload (Deployment, StatefulSet, Job, LeaderWorkerSet, RayCluster)."""
    spec = document.get("spec", {})
    if document["kind"] == "LeaderWorkerSet":
        template = spec["leaderWorkerTemplate"]
        return [template["leaderTemplate"]["spec"], template["workerTemplate"]["spec"]]
    if document["kind"] == "RayCluster":
        return [spec["headGroupSpec"]["template"]["spec"], *(g["template"]["spec"] for g in spec["workerGroupSpecs"])]
    if "template" in spec and "spec" in spec["template"]:
        return [spec["template"]["spec"]]
    return []


def _gpu_pods(rendered: Any) -> list[dict[str, Any]]:
    return [
        pod for document in _objects(rendered) for pod in _pod_specs(document)
        if any("nvidia.com/gpu" in c.get("resources", {}).get("limits", {}) for c in pod["containers"])
    ]


def _requests(pod: dict[str, Any]) -> dict[str, str]:
    return pod["containers"][0]["resources"]["requests"]


def _terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]


def _render(values: dict[str, Any]) -> Any:
    return render_config({"name": "sized", **values})


def test_cpu_follows_vllms_two_plus_n_processes_in_vcpus() -> None:
    assert [cpu_request(gpus) for gpus in (0, 1, 2, 8)] == ["4", "6", "8", "20"]


def test_memory_grows_with_gpus_checkpoint_and_offload_and_never_falls_below_the_floor() -> None:
    assert memory_request(1, ModelMemory()) == f"{MIN_MEMORY_GIB}Gi"
    assert memory_request(1, ModelMemory(checkpoint_gib=28.5)) == "35Gi"  # 3 processes x 2Gi + the checkpoint
    assert memory_request(8, ModelMemory(checkpoint_gib=28.5)) == "49Gi"
    assert memory_request(1, ModelMemory(checkpoint_gib=28.5, offload_gib=40)) == "75Gi"
    assert memory_request(0, ModelMemory(checkpoint_gib=500)) == f"{MIN_MEMORY_GIB}Gi"  # a head without GPUs loads nothing


def test_offload_flags_and_lmcache_add_host_memory() -> None:
    assert offload_gib(["--cpu-offload-gb", "10"], {}, 2) == 20  # per GPU
    assert offload_gib(["--kv-offloading-size=40"], {}, 4) == 40  # the total across ranks
    assert offload_gib([], {"LMCACHE_MAX_LOCAL_CPU_SIZE": "5"}, 2) == 10
    assert offload_gib(["--cpu-offload-gb", "lots"], {}, 2) == 0


def test_checkpoint_size_follows_the_precision_on_disk() -> None:
    bf16, fp8 = checkpoint_gib(lookup("Qwen/Qwen3-30B-A3B")), checkpoint_gib(lookup(QWEN_FP8), QWEN_FP8)
    assert 50 < bf16 < 60 and fp8 == pytest.approx(bf16 / 2, rel=0.01)
    assert checkpoint_gib(None) == 0


def test_rendered_pods_grow_with_gpus_and_checkpoint_size() -> None:
    small = _gpu_pods(_render({"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}}))[0]
    moe = _gpu_pods(_render({"model": {"id": QWEN_FP8}, "resources": {"gpuType": "L40S"}}))[0]
    wide = _gpu_pods(_render({"model": {"id": "meta-llama/Llama-3.1-70B-Instruct"},
                              "parallelism": {"tensorParallelSize": 4}, "resources": {"gpuType": "H100"}}))[0]
    cpus = [int(_requests(pod)["cpu"]) for pod in (small, moe, wide)]
    memory = [int(_requests(pod)["memory"].removesuffix("Gi")) for pod in (small, moe, wide)]
    assert cpus == [6, 6, 12]
    assert memory[0] < memory[1] < memory[2]
    assert memory[1] == 6 + 29  # 3 processes x 2Gi + the FP8 checkpoint (28.5 GiB)
    # The limit stays the request plus /dev/shm (a memory-backed emptyDir counts against it).
    assert wide["containers"][0]["resources"]["limits"]["memory"] == f"{memory[2] + 8}Gi"


def test_the_users_requests_win() -> None:
    pod = _gpu_pods(_render({"model": {"id": QWEN_FP8},
                             "resources": {"gpuType": "L40S", "cpuRequest": "3", "memoryRequest": "40Gi"}}))[0]
    assert _requests(pod)["cpu"] == "3" and _requests(pod)["memory"] == "40Gi"


@pytest.mark.parametrize(("gpu", "model", "product", "other"), [
    ("H100", "meta-llama/Llama-3.1-70B-Instruct", "NVIDIA-H100-80GB-HBM3", "NVIDIA-L4"),
    ("L4", "meta-llama/Llama-3.1-8B-Instruct", "NVIDIA-L4", "NVIDIA-H100-80GB-HBM3"),
])
def test_the_gpu_type_pins_pods_with_required_node_affinity(gpu: str, model: str, product: str, other: str) -> None:
    values: dict[str, Any] = {"model": {"id": model}, "resources": {"gpuType": gpu}, "engine": {"maxModelLen": 8192}}
    if gpu == "H100":
        values["parallelism"] = {"tensorParallelSize": 4}
    rendered = _render(values)
    for document in _objects(rendered):
        validate_object(document)
    (pod,) = _gpu_pods(rendered)
    terms = _terms(pod)
    products = next(t["matchExpressions"][0]["values"] for t in terms if t["matchExpressions"][0]["key"] == GPU_PRODUCT_LABEL)
    assert product in products and other not in products
    keys = [term["matchExpressions"][0]["key"] for term in terms]
    assert keys == ["karpenter.k8s.aws/instance-gpu-name", "cloud.google.com/gke-accelerator",
                    "node.kubernetes.io/instance-type", GPU_PRODUCT_LABEL]
    # Every value names the stack's GPU as the policy pack and the planner read node labels.
    named = {gpu_from_node_label(e["key"], v).name for t in terms for e in t["matchExpressions"] for v in e["values"]}  # type: ignore[union-attr]
    assert named == {"H100-80GB" if gpu == "H100" else "L4"}


def test_pinning_can_be_turned_off_and_is_not_repeated_over_a_gpu_node_selector() -> None:
    base = {"model": {"id": QWEN_FP8}}
    off = _gpu_pods(_render({**base, "resources": {"gpuType": "L40S", "pinGpuType": False}}))[0]
    selected = _gpu_pods(_render({**base, "resources": {
        "gpuType": "L40S", "nodeSelector": {"node.kubernetes.io/instance-type": "g6e.2xlarge"}}}))[0]
    untyped = _gpu_pods(_render(base))[0]
    assert "affinity" not in off and "affinity" not in selected and "affinity" not in untyped
    assert selected["nodeSelector"] == {"node.kubernetes.io/instance-type": "g6e.2xlarge"}


def test_a_gpu_no_label_names_gets_no_affinity() -> None:
    assert gpu_node_terms("custom:40") == [] and gpu_node_terms("MI300X") == []


def _lws_values() -> dict[str, Any]:
    config = yaml.safe_load(stack_file("llama-405b-lws").read_text())["config"]
    values = {key.removeprefix("pulumi-vllm:"): value for key, value in config.items()}
    for key in ("nodeSelector", "cpuRequest", "memoryRequest"):
        values["resources"].pop(key)
    return values


@pytest.mark.parametrize("backend", ["plain", "leaderworkerset", "kuberay"])
def test_every_multi_node_pod_is_pinned_and_sized(backend: str) -> None:
    values = copy.deepcopy(_lws_values())
    values["parallelism"]["backend"] = backend
    rendered = _render(values)
    pods = _gpu_pods(rendered)
    assert len(pods) == 2  # the Ray head and the workers
    for pod in pods:
        assert "NVIDIA-H100-80GB-HBM3" in _terms(pod)[-1]["matchExpressions"][0]["values"]
        # 8 GPUs: 20 CPUs; half the FP8 405B checkpoint (about 189 GiB) per pod plus 10 processes x 2Gi.
        assert _requests(pod)["cpu"] == "20"
        assert 200 <= int(_requests(pod)["memory"].removesuffix("Gi")) <= 220
    for document in _objects(rendered):
        validate_object(document)


def test_the_batch_job_is_pinned_and_sized_like_the_server() -> None:
    rendered = render_stack(REPO, "qwen-batch", env={})
    (job,) = [doc for doc in _objects(rendered) if doc["kind"] == "Job" and "batch" in doc["metadata"]["name"]]
    (pod,) = _pod_specs(job)
    assert _terms(pod)[-1]["matchExpressions"][0]["values"] == ["NVIDIA-L4"]
    assert _requests(pod)["cpu"] == "6" and _requests(pod)["memory"] == "24Gi"  # the stack sets the memory


def test_a_node_selector_on_another_gpu_than_the_gpu_type_is_refused() -> None:
    from pulumi_vllm.config import ConfigError, parse_stack_config
    from pulumi_vllm.plan import plan_serving

    config = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": {"maxModelLen": 8192},
              "resources": {"gpuType": "H100", "nodeSelector": {GPU_PRODUCT_LABEL: "NVIDIA-L4"}}}
    with pytest.raises(ConfigError) as caught:
        plan_serving(parse_stack_config(config))
    assert str(caught.value).startswith(
        "pulumi-vllm:resources.nodeSelector.nvidia.com/gpu.product: 'NVIDIA-L4' is not accepted: it selects L4 nodes, "
        "but resources.gpuType is 'H100'"
    )
    config["resources"]["nodeSelector"] = {GPU_PRODUCT_LABEL: "NVIDIA-H100-80GB-HBM3"}
    assert plan_serving(parse_stack_config(config)).capacity is not None
