"""``parallelism.dataParallelSize`` and ``enableExpertParallel``: one pod of tensor x pipeline x data GPUs, the
flags vLLM's own parser reads, and the refusals (multi-node data parallel, expert parallel on a dense model)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.distributed.parallelism import TopologyError, plan_topology
from pulumi_vllm.plan import plan_serving

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "policies"))

from stacks import stack_file
from test_policies_unit import run

from vllm_policies.gpus import gpus_match_parallelism

MOE = "Qwen/Qwen3-30B-A3B"
DENSE = "Qwen/Qwen3-32B"


def _objects(rendered: RenderedStack, kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == kind]


def _render(parallelism: dict[str, Any], model: str = MOE, **more: Any) -> RenderedStack:
    return render_config({"name": "dp", "model": {"id": model}, "parallelism": parallelism, **more})


def _main(rendered: RenderedStack) -> dict[str, Any]:
    (deployment,) = _objects(rendered, "Deployment")
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def test_topology_is_one_pod_of_every_rank() -> None:
    topology = plan_topology(2, 1, None, 8, data_parallel_size=4)
    assert (topology.gpus_per_pod, topology.pods, topology.world_size, topology.gpus_per_rank) == (8, 1, 8, 2)
    assert not topology.multi_node
    assert plan_topology(2, 1).world_size == 2  # data_parallel_size defaults to 1


def test_data_parallel_across_nodes_is_refused() -> None:
    with pytest.raises(TopologyError, match="data parallelism across nodes is not supported yet"):
        plan_topology(4, 1, None, 4, data_parallel_size=2)
    with pytest.raises(TopologyError, match=r"gpus_per_pod \(4\) must be 8 with data parallelism"):
        plan_topology(4, 1, 4, None, data_parallel_size=2)
    with pytest.raises(ConfigError) as caught:
        plan_serving(parse_stack_config({"model": {"id": MOE}, "parallelism": {
            "tensorParallelSize": 4, "dataParallelSize": 2, "gpusPerNode": 4}}))
    message = str(caught.value)
    assert "parallelism.dataParallelSize 2 x parallelism.tensorParallelSize 4" in message
    assert "lower parallelism.dataParallelSize to 1 or less" in message


@pytest.mark.vllm
def test_rendered_pod_requests_every_ranks_gpus_and_vllm_reads_the_flags() -> None:
    from pulumi_vllm.engine.check import check_serve_args

    rendered = _render({"tensorParallelSize": 2, "dataParallelSize": 2, "enableExpertParallel": True},
                       quota={"enabled": True})
    main = _main(rendered)
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "4"
    args = list(main["args"])
    assert args.count("--data-parallel-size") == 1 and args.count("--enable-expert-parallel") == 1
    namespace = check_serve_args(args)
    assert (namespace.data_parallel_size, namespace.tensor_parallel_size) == (2, 2)
    assert namespace.enable_expert_parallel is True
    (quota,) = _objects(rendered, "ResourceQuota")
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "4"}
    assert any("x data 2" in line for line in rendered.summary())
    # The policy pack counts the data-parallel ranks too: the pod is sized right.
    assert run(gpus_match_parallelism, _objects(rendered, "Deployment")) == []


def test_without_data_parallel_no_flag_is_rendered() -> None:
    args = _main(_render({"tensorParallelSize": 2}))["args"]
    assert "--data-parallel-size" not in args and "--enable-expert-parallel" not in args


def test_capacity_is_planned_per_rank() -> None:
    """A dense model's rank holds a whole copy on its tensor x pipeline GPUs: per GPU, the same plan as one copy.
    A mixture of experts' MoE layers split over every tensor x data parallel rank (vLLM's
    FusedMoEParallelConfig.make), whole experts with expert parallelism: less weight per GPU."""
    def capacity(model: str, data: int, expert: bool = False) -> Any:
        config = parse_stack_config({"model": {"id": model}, "resources": {"gpuType": "H100-80GB"},
                                     "parallelism": {"tensorParallelSize": 2, "dataParallelSize": data,
                                                     "enableExpertParallel": expert}})
        return plan_serving(config).capacity

    one, four = capacity(DENSE, 1), capacity(DENSE, 4)
    assert one is not None and four is not None
    assert four.kv_cache_tokens == one.kv_cache_tokens and four.max_concurrency == one.max_concurrency
    moe_one, moe_four, moe_ep = capacity(MOE, 1), capacity(MOE, 4), capacity(MOE, 4, True)
    assert moe_four.weights_gib_per_gpu < moe_one.weights_gib_per_gpu
    assert moe_ep.expert_parallel_size == 8 and moe_ep.weights_gib_per_gpu < moe_one.weights_gib_per_gpu


def test_expert_parallel_on_a_dense_model_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_serving(parse_stack_config({"model": {"id": DENSE}, "parallelism": {
            "dataParallelSize": 2, "enableExpertParallel": True}}))
    message = str(caught.value)
    assert message.startswith("pulumi-vllm:parallelism.enableExpertParallel: true is not accepted for Qwen/Qwen3-32B")
    assert "dense model" in message


def test_data_parallel_with_another_engine_is_refused() -> None:
    with pytest.raises(ConfigError, match="parallelism.dataParallelSize: 2 is not accepted with engine.kind 'tgi'"):
        plan_serving(parse_stack_config({"model": {"id": DENSE}, "engine": {"kind": "tgi"},
                                         "parallelism": {"dataParallelSize": 2}}))


def _docker_stack(name: str) -> dict[str, Any]:
    import yaml

    config = yaml.safe_load(stack_file(name).read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in config.items()}


def test_docker_runs_every_rank_in_the_one_container() -> None:
    raw = _docker_stack("docker-single")
    raw["parallelism"] = {"tensorParallelSize": 1, "dataParallelSize": 2}
    raw["docker"]["hosts"][0]["gpus"] = ["0", "1"]
    assert plan_serving(parse_stack_config(raw)).gpus_per_pod == 2
    two_hosts = _docker_stack("docker-2host")
    two_hosts["parallelism"] = {**two_hosts.get("parallelism", {}), "dataParallelSize": 2}
    with pytest.raises(ConfigError, match="dataParallelSize: 2 is not accepted with 2 Docker hosts"):
        plan_serving(parse_stack_config(two_hosts))
