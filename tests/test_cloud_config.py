"""The ``cloud`` section: what a stack takes from its node type, and the serving stacks refused before anything
is created because they cannot run on the cluster's GPU node groups."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulumi_vllm.cloud_plan.instances import INSTANCES, known_instances
from pulumi_vllm.config import ConfigError, load_program_config, parse_stack_config
from pulumi_vllm.config.stack import is_platform_only, load_cloud_config

LLAMA_70B = {"model": {"id": "meta-llama/Llama-3.1-70B-Instruct"}, "parallelism": {"tensorParallelSize": 8}}
LLAMA_8B = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}}


def aws(*groups: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"cloud": {"provider": "aws", "region": "us-east-2", "nodeGroups": list(groups), **extra}}


def gcp(*pools: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"cloud": {"provider": "gcp", "project": "p", "region": "us-central1", "zones": ["us-central1-a"],
                      "nodePools": list(pools), **extra}}


@pytest.mark.parametrize("instance", ["p5.48xlarge", "p4de.24xlarge", "g6e.48xlarge"])
def test_a_stack_on_a_node_group_takes_gpus_per_node_gpu_type_and_selector_from_its_type(instance: str) -> None:
    config = parse_stack_config({**LLAMA_70B, **aws({"name": "gpu", "instanceType": instance})})
    row = INSTANCES[instance]
    assert config.parallelism.gpus_per_node == row.gpus
    assert config.resources.gpu_type == row.gpu
    assert config.resources.node_selector == {"node.kubernetes.io/instance-type": instance}


def test_a_gke_pool_and_a_karpenter_pool_derive_the_same_way() -> None:
    config = parse_stack_config({**LLAMA_8B, **gcp({"name": "l4", "machineType": "g2-standard-8"})})
    assert (config.parallelism.gpus_per_node, config.resources.gpu_type) == (1, "L4")
    karpenter = {"nodePools": [{"name": "l40s", "instanceTypes": ["g6e.xlarge", "g6e.2xlarge"]}]}
    config = parse_stack_config({**LLAMA_8B, **aws(karpenter=karpenter)})
    assert (config.parallelism.gpus_per_node, config.resources.gpu_type) == (1, "L40S")
    assert config.resources.node_selector == {"karpenter.sh/nodepool": "l40s"}


def test_values_the_stack_sets_itself_are_kept_when_they_agree() -> None:
    config = parse_stack_config({
        **LLAMA_70B, "parallelism": {"tensorParallelSize": 8, "gpusPerNode": 8},
        "resources": {"gpuType": "h100", "nodeSelector": {"eks.amazonaws.com/nodegroup": "gpu"}},
        **aws({"name": "gpu", "instanceType": "p5.48xlarge"}),
    })
    assert config.resources.gpu_type == "h100" and config.resources.node_selector == {"eks.amazonaws.com/nodegroup": "gpu"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({**LLAMA_70B, **aws({"name": "gpu", "instanceType": "g6e.xlarge"})},
         "pulumi-vllm:parallelism.tensorParallelSize: 8 does not fit cloud.nodeGroups[gpu] (g6e.xlarge, 1 GPU(s) per node)"),
        ({**LLAMA_70B, "parallelism": {"tensorParallelSize": 8, "gpusPerNode": 4}, **aws({"name": "gpu", "instanceType": "p5.48xlarge"})},
         "pulumi-vllm:parallelism.gpusPerNode: 4 is not accepted: cloud.nodeGroups[gpu] runs p5.48xlarge with 8 GPU(s) per node"),
        ({**LLAMA_8B, "resources": {"gpuType": "A100-80GB"}, **gcp({"name": "l4", "machineType": "g2-standard-8"})},
         "pulumi-vllm:resources.gpuType: 'A100-80GB' is not accepted: cloud.nodePools[l4] runs g2-standard-8 with L4 GPUs"),
        ({**LLAMA_8B, "resources": {"tolerations": []}, **aws({"name": "gpu", "instanceType": "g6.xlarge"})},
         "pulumi-vllm:resources.tolerations: the taint nvidia.com/gpu:NoSchedule of cloud.nodeGroups[gpu] is not tolerated"),
        ({**LLAMA_8B, "resources": {"nodeSelector": {"eks.amazonaws.com/nodegroup": "cpu"}}, **aws({"name": "gpu", "instanceType": "g6.xlarge"})},
         "pulumi-vllm:resources.nodeSelector.eks.amazonaws.com/nodegroup: 'cpu' is not accepted: the nodes of cloud.nodeGroups[gpu] carry"),
        ({**LLAMA_8B, "resources": {"nodeSelector": {"team": "a"}}, **gcp({"name": "l4", "machineType": "g2-standard-8"})},
         "pulumi-vllm:resources.nodeSelector.team: no node of cloud.nodePools[l4] carries the label team"),
        ({"model": {"id": "meta-llama/Llama-3.1-405B-Instruct-FP8"},
          "parallelism": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "backend": "leaderworkerset"},
          "cache": {"accessMode": "ReadWriteMany"},
          **aws({"name": "gpu", "instanceType": "p5.48xlarge", "maxSize": 1, "efa": True}, zones=["us-east-2a"])},
         "pulumi-vllm:cloud.nodeGroups[gpu].maxSize: 1 is not accepted: the serving needs 2 node(s) of p5.48xlarge"),
        ({**LLAMA_8B, "replicas": 3, "cache": {"accessMode": "ReadWriteMany"},
          **aws(karpenter={"nodePools": [{"name": "l40s", "instanceTypes": ["g6e.xlarge"], "gpuLimit": 2}]})},
         "pulumi-vllm:cloud.karpenter.nodePools[l40s].gpuLimit: 2 is not accepted: the serving holds 3 GPUs at once"),
        ({**LLAMA_8B, "cluster": {"gpu": {"enablement": "device-plugin"}}, **gcp({"name": "l4", "machineType": "g2-standard-8"})},
         "pulumi-vllm:cluster.gpu.enablement: 'device-plugin' is not accepted on GKE GPU node pools that install the driver"),
        ({**LLAMA_8B, **aws({"name": "gpu", "instanceType": "g6.xlarge", "efa": True})},
         "efa: true is not accepted: g6.xlarge has no EFA interface"),
        ({**LLAMA_8B, **aws({"name": "gpu", "instanceType": "p5.48xlarge", "capacityType": "CAPACITY_BLOCK"})},
         "capacityType CAPACITY_BLOCK needs capacityReservationId"),
        ({**LLAMA_8B, **aws({"name": "gpu", "instanceType": "a3-highgpu-8g"})},
         "pulumi-vllm:cloud.nodeGroups[0].instanceType: 'a3-highgpu-8g' is not accepted: 'a3-highgpu-8g' is not a known EC2"),
        ({**LLAMA_8B, **aws({"name": "gpu", "instanceType": "g6.xlarge"}, nodePools=[{"name": "x", "machineType": "g2-standard-4"}])},
         "nodePools is a GKE key: not accepted with provider 'aws'"),
        ({**LLAMA_8B, **aws({"name": "a", "instanceType": "g6.xlarge"}, servingNodeGroup="b")},
         "servingNodeGroup 'b' names no node group here; accepted: a"),
        ({**LLAMA_8B, "target": "docker", "docker": {"hosts": [{"name": "h", "dockerHost": "unix:///x"}]},
          **aws({"name": "gpu", "instanceType": "g6.xlarge"})},
         "pulumi-vllm:cloud: is not accepted with target 'docker'"),
    ],
)
def test_stacks_that_cannot_run_on_their_node_group_are_refused_naming_the_key(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(values)
    assert expected in str(raised.value)


def test_two_gpu_groups_need_the_serving_group_named_before_anything_is_derived() -> None:
    groups = ({"name": "a", "instanceType": "g6.xlarge"}, {"name": "b", "instanceType": "p5.48xlarge"})
    config = parse_stack_config({**LLAMA_8B, **aws(*groups)})
    assert config.parallelism.gpus_per_node is None and config.resources.gpu_type is None
    config = parse_stack_config({**LLAMA_8B, **aws(*groups, servingNodeGroup="b")})
    assert config.parallelism.gpus_per_node == 8


def test_a_cloud_and_platform_stack_without_a_model_provisions_only() -> None:
    raw = {"name": "gpu", **aws({"name": "gpu", "instanceType": "g6.xlarge"}), "cluster": {}}
    assert is_platform_only(raw)
    flat = {f"pulumi-vllm:{key}": value for key, value in raw.items()}
    import json

    flat = {key: json.dumps(value) if isinstance(value, dict) else value for key, value in flat.items()}
    config, cluster = load_program_config(flat)
    assert config is None and cluster is not None
    cloud = load_cloud_config(flat)
    assert cloud is not None and cloud.provider == "aws" and cloud.version == "1.35"


@settings(max_examples=150, deadline=None)
@given(
    instance=st.sampled_from(known_instances("aws")),
    tensor=st.sampled_from([1, 2, 4, 8]),
    pipeline=st.sampled_from([1, 2]),
    max_size=st.integers(1, 3),
)
def test_generated_node_groups_accept_exactly_the_layouts_that_fit(instance: str, tensor: int, pipeline: int, max_size: int) -> None:
    row = INSTANCES[instance]
    values = {"model": {"id": "meta-llama/Llama-3.1-70B-Instruct"},
              "parallelism": {"tensorParallelSize": tensor, "pipelineParallelSize": pipeline, "backend": "leaderworkerset"},
              "cache": {"accessMode": "ReadWriteMany"},
              **aws({"name": "gpu", "instanceType": instance, "maxSize": max_size, "desiredSize": 1})}
    world = tensor * pipeline
    nodes = -(-world // row.gpus) if tensor <= row.gpus else None
    fits = nodes is not None and nodes <= max_size
    if fits:
        assert parse_stack_config(values).parallelism.gpus_per_node == row.gpus
    else:
        with pytest.raises(ConfigError) as raised:
            parse_stack_config(values)
        key = "parallelism.tensorParallelSize" if nodes is None else "cloud.nodeGroups[gpu].maxSize"
        assert f"pulumi-vllm:{key}" in str(raised.value)
