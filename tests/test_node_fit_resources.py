"""Serving pods' CPU and memory against the node types they run on: every instance row has vCPUs and memory with
a source, the allocatable estimate, default requests capped at the pod's share of its node (with a warning), and
explicit requests or limits above it refused naming the key before anything is created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulumi_vllm.cli.render import render_stack
from pulumi_vllm.cloud_plan.agreement import pod_share, quantity_value, share_on
from pulumi_vllm.cloud_plan.instances import INSTANCES, allocatable, reserved_cpu_milli
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.kubernetes.pod import requests
from pulumi_vllm.kubernetes.pod_resources import ModelMemory, cpu_request, memory_request, model_memory
from pulumi_vllm.plan import plan_serving
from pulumi_vllm.program import plan_notes

REPO = Path(__file__).resolve().parents[1]
LLAMA_8B = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": {"maxModelLen": 8192}}
LLAMA_70B = {"model": {"id": "meta-llama/Llama-3.1-70B-Instruct"}, "parallelism": {"tensorParallelSize": 8}}


def aws(instance: str, **resources: Any) -> dict[str, Any]:
    section = {"cloud": {"provider": "aws", "region": "us-east-2", "nodeGroups": [{"name": "gpu", "instanceType": instance}]}}
    return {**section, "resources": resources} if resources else section


def gcp(machine: str, **resources: Any) -> dict[str, Any]:
    section = {"cloud": {"provider": "gcp", "project": "p", "region": "us-central1", "zones": ["us-central1-a"],
                         "nodePools": [{"name": "l4", "machineType": machine}]},
               "cluster": {"gpu": {"enablement": "none"}}}
    return {**section, "resources": resources} if resources else section


def pod_requests(values: dict[str, Any]) -> tuple[tuple[str, str], list[str]]:
    """The GPU pods' ``(cpu, memory)`` requests as the pod builder writes them, and the plan's warnings."""
    plan = plan_serving(parse_stack_config(values))
    return requests(plan.config.resources, plan.gpus_per_pod, model_memory(plan)), plan_notes(plan)


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_every_instance_row_has_vcpus_and_memory_from_its_clouds_page(name: str) -> None:
    row = INSTANCES[name]
    assert row.vcpus >= 4 and row.memory_gib >= 16
    page = {
        "aws": "docs.aws.amazon.com/ec2/latest/instancetypes/ac.html",
        "gcp": "cloud.google.com/compute/docs/accelerator-optimized-machines",
        "azure": "learn.microsoft.com/en-us/azure/virtual-machines/sizes/gpu-accelerated/",
    }[row.provider]
    assert f"vCPUs and memory: https://{page}" in row.source
    node = allocatable(row)
    # What pods get is less than the node, and the reservation stays a small part of it.
    assert 0.80 * row.vcpus * 1000 < node.cpu_milli < row.vcpus * 1000
    assert 0.75 * row.memory_gib * 1024 < node.memory_mib < row.memory_gib * 1024


def test_allocatable_follows_the_eks_ami_and_gke_reservations() -> None:
    # CPU: 6% of the first core, 1% of the second, 0.5% of the third and fourth, 0.25% beyond.
    assert [reserved_cpu_milli(n) for n in (1, 2, 4, 8)] == [60, 70, 80, 90]
    # EKS: 7.5% not reported, 11 MiB x 110 pods + 255 MiB kube-reserved, 100 MiB eviction.
    assert allocatable(INSTANCES["g6e.xlarge"]).memory_mib == int(32 * 1024 * 0.925 - 11 * 110 - 255 - 100)
    # GKE, 16 GiB: 25% of 4 GiB + 20% of 4 GiB + 10% of 8 GiB reserved, 100 MiB eviction.
    assert allocatable(INSTANCES["g2-standard-4"]).memory_mib == int(16384 - 1024 - 819.2 - 819.2 - 100)
    assert allocatable(INSTANCES["g2-standard-4"]).cpu_milli == 3920


def test_defaults_are_capped_at_the_share_of_a_small_node_with_a_warning() -> None:
    (cpu, memory), notes = pod_requests({**LLAMA_8B, **aws("g6.xlarge")})
    share = share_on(INSTANCES["g6.xlarge"], 1, "cloud.nodeGroups[gpu]")
    assert cpu == "3400m" and quantity_value(cpu) * 1000 <= share.cpu_milli
    assert memory == f"{share.memory_mib // 1024}Gi" and quantity_value(memory) <= share.memory_mib * 2**20
    cpu_note = next(note for note in notes if note.startswith("pulumi-vllm:resources.cpuRequest:"))
    assert "lowered from 6 CPUs" in cpu_note and "g6.xlarge (cloud.nodeGroups[gpu])" in cpu_note
    memory_note = next(note for note in notes if note.startswith("pulumi-vllm:resources.memoryRequest:"))
    assert "lowered from 21Gi to 12Gi" in memory_note and "load more slowly" in memory_note


def test_a_share_below_the_processes_and_offload_warns_of_oom() -> None:
    values = {**LLAMA_8B, "engine": {"maxModelLen": 8192, "extraArgs": ["--cpu-offload-gb", "10"]}, **aws("g6.xlarge")}
    _, notes = pod_requests(values)
    assert any("resources.memoryRequest" in note and "OOM-killed" in note for note in notes)


def test_a_large_node_leaves_the_defaults_unchanged_and_silent() -> None:
    (cpu, memory), notes = pod_requests({**LLAMA_70B, **aws("p5.48xlarge")})
    assert cpu == "20"
    assert quantity_value(memory) > 100 * 2**30  # 2Gi x 10 processes + the whole 70B checkpoint
    assert not [note for note in notes if "resources.cpuRequest" in note or "resources.memoryRequest" in note]


def test_pods_sharing_a_node_get_their_gpus_share() -> None:
    share = share_on(INSTANCES["g6e.12xlarge"], 1, "x")
    whole = share_on(INSTANCES["g6e.12xlarge"], 4, "x")
    assert share.cpu_milli <= whole.cpu_milli / 4 and share.memory_mib <= whole.memory_mib / 4 + 1
    (cpu, _), _ = pod_requests({**LLAMA_8B, **aws("g6e.12xlarge")})
    assert cpu == "6"  # 11.6 CPUs per GPU: vLLM's 6 fit


def test_a_karpenter_pool_of_several_types_offers_its_largest_unless_the_selector_names_one() -> None:
    pool = {"cloud": {"provider": "aws", "region": "us-east-2",
                      "karpenter": {"nodePools": [{"name": "l40s", "instanceTypes": ["g6e.xlarge", "g6e.2xlarge"]}]}}}
    config = parse_stack_config({**LLAMA_8B, **pool})
    assert (share := pod_share(config, 1)) is not None and share.node_type == "g6e.2xlarge"
    pinned = parse_stack_config({**LLAMA_8B, **pool, "resources": {"nodeSelector": {
        "karpenter.sh/nodepool": "l40s", "node.kubernetes.io/instance-type": "g6e.xlarge"}}})
    assert (share := pod_share(pinned, 1)) is not None and share.node_type == "g6e.xlarge"
    assert cpu_request(1, ModelMemory(node=share)) == "3400m"


def test_a_node_selector_on_a_known_instance_type_caps_the_defaults_without_a_cloud_section() -> None:
    (cpu, _), notes = pod_requests({**LLAMA_8B, "resources": {"nodeSelector": {"node.kubernetes.io/instance-type": "g5.xlarge"}}})
    assert cpu == "3400m"
    assert any("g5.xlarge (resources.nodeSelector)" in note for note in notes)
    (cpu, _), _ = pod_requests(LLAMA_8B)
    assert cpu == "6"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({**LLAMA_8B, **aws("g6e.xlarge", cpuRequest="6")},
         "pulumi-vllm:resources.cpuRequest: '6' is not accepted on g6e.xlarge (cloud.nodeGroups[gpu]): at most 3400m fits"),
        ({**LLAMA_8B, **aws("g6e.xlarge", memoryRequest="30Gi")},
         "pulumi-vllm:resources.memoryRequest: '30Gi' is not accepted on g6e.xlarge (cloud.nodeGroups[gpu]): at most 27721Mi"),
        ({**LLAMA_8B, **aws("g6e.xlarge", cpuLimit="4")},
         "pulumi-vllm:resources.cpuLimit: '4' is not accepted on g6e.xlarge (cloud.nodeGroups[gpu]): at most 3420m fits"),
        ({**LLAMA_8B, **aws("g6e.xlarge", memoryLimit="32Gi")},
         "pulumi-vllm:resources.memoryLimit: '32Gi' is not accepted on g6e.xlarge"),
        ({**LLAMA_8B, **gcp("g2-standard-8", memoryRequest="32Gi")},
         "pulumi-vllm:resources.memoryRequest: '32Gi' is not accepted on g2-standard-8 (cloud.nodePools[l4])"),
        ({**LLAMA_8B, **aws("g6e.12xlarge", cpuRequest="20")},  # a quarter of the node per 1-GPU pod
         "pulumi-vllm:resources.cpuRequest: '20' is not accepted on g6e.12xlarge"),
    ],
)
def test_explicit_requests_and_limits_the_node_cannot_give_are_refused_naming_the_key(
    values: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(values)
    assert expected in str(raised.value)


def test_explicit_requests_within_the_share_are_kept() -> None:
    (cpu, memory), notes = pod_requests({**LLAMA_8B, **aws("g6e.xlarge", cpuRequest="3", memoryRequest="24Gi")})
    assert (cpu, memory) == ("3", "24Gi")
    assert not [note for note in notes if "is lowered" in note]


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(INSTANCES)), gpus=st.integers(min_value=1, max_value=16),
       checkpoint=st.floats(min_value=0, max_value=2000), offload=st.floats(min_value=0, max_value=500))
def test_default_requests_never_exceed_the_share(name: str, gpus: int, checkpoint: float, offload: float) -> None:
    row = INSTANCES[name]
    gpus = min(gpus, row.gpus)
    share = share_on(row, gpus, "x")
    memory = ModelMemory(checkpoint, offload, share)
    assert quantity_value(cpu_request(gpus, memory)) * 1000 <= share.cpu_milli + 1e-6
    assert quantity_value(memory_request(gpus, memory)) <= share.memory_mib * 2**20


def test_the_karpenter_example_renders_a_pod_its_pinned_node_type_can_take() -> None:
    rendered = render_stack(REPO, "eks-karpenter-two-models", env={})
    deployment = next(doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = next(item for item in pod["containers"] if "nvidia.com/gpu" in item["resources"].get("limits", {}))
    wanted = container["resources"]["requests"]
    node_type = pod["nodeSelector"]["node.kubernetes.io/instance-type"]
    share = share_on(INSTANCES[node_type], 1, "")
    assert quantity_value(wanted["cpu"]) * 1000 <= share.cpu_milli
    assert quantity_value(wanted["memory"]) <= share.memory_mib * 2**20
    assert wanted["cpu"] == "6"  # g6e.2xlarge gives vLLM the 2 + N cores it asks for, in vCPUs
