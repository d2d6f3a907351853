"""Wide expert parallelism: data-parallel ranks over a LeaderWorkerSet's Ray cluster, read by vLLM's own parser.

A mixture-of-experts model with data parallel 8 x tensor parallel 2 on nodes of 8 GPUs is rendered as a
LeaderWorkerSet of two pods of 8 GPUs; the Ray head's ``vllm serve`` (read from its script) gets
``--data-parallel-size 8 --data-parallel-size-local 4 --data-parallel-backend ray``, which vLLM 0.32's parser
and validation accept; the LeaderWorkerSet passes its CRD. All-to-all backends the stack's network cannot carry
between the pods are refused; the single-pod layout and its refusal with the other backends stay as they were.
"""

from __future__ import annotations

from typing import Any

import pytest
from schemas import validate_object

from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.config import ConfigError
from pulumi_vllm.distributed.parallelism import TopologyError, plan_topology
from pulumi_vllm.engine.check import check_serve_args
from pulumi_vllm.render.checks import vllm_invocations

MOE = "Qwen/Qwen3-30B-A3B"


def _values(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "wide",
        "model": {"id": MOE},
        "parallelism": {"tensorParallelSize": 2, "dataParallelSize": 8, "enableExpertParallel": True,
                        "gpusPerNode": 8, "backend": "leaderworkerset"},
        "resources": {"gpuType": "H100-80GB"},
        "cache": {"accessMode": "ReadWriteMany"},
        "network": {"infiniband": True},
        "engine": {"extraArgs": ["--all2all-backend", "deepep_high_throughput"]},
    }
    values.update(changes)
    return values


@pytest.fixture(scope="module")
def rendered() -> RenderedStack:
    return render_config(_values())


def test_the_ranks_spread_over_pods_of_one_node_each(rendered: RenderedStack) -> None:
    topology = rendered.plan.topology if rendered.plan else None
    assert topology is not None
    assert (topology.pods, topology.gpus_per_pod, topology.world_size) == (2, 8, 16)
    (lws,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "LeaderWorkerSet"]
    validate_object(lws)
    assert lws["spec"]["leaderWorkerTemplate"]["size"] == 2
    container = lws["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert container["resources"]["limits"]["rdma/ib"] == "1"


def test_the_heads_serve_command_parses_with_vllm(rendered: RenderedStack) -> None:
    invocations, unread = vllm_invocations(rendered.run)
    assert unread == []
    (serve,) = [invocation for invocation in invocations if invocation.command.mode == "serve"]
    namespace = check_serve_args(list(serve.command.args))
    assert (namespace.data_parallel_size, namespace.data_parallel_size_local) == (8, 4)
    assert namespace.data_parallel_backend == "ray" and namespace.enable_expert_parallel
    assert (namespace.tensor_parallel_size, namespace.all2all_backend) == (2, "deepep_high_throughput")


@pytest.mark.parametrize(("changes", "expected"), [
    ({"network": {"infiniband": False}},
     ("'--all2all-backend deepep_high_throughput' is not accepted: it sends tokens between the 2 pods with "
      "GPU-initiated RDMA, and network.infiniband is false")),
    ({"engine": {"extraArgs": ["--all2all-backend", "flashinfer_nvlink_one_sided"]}},
     "it moves tokens over NVLink, which does not leave a node"),
    ({"parallelism": {"tensorParallelSize": 2, "dataParallelSize": 8, "enableExpertParallel": True,
                      "gpusPerNode": 8}},
     "data parallelism across nodes is not supported yet with this backend"),
    ({"parallelism": {"tensorParallelSize": 2, "dataParallelSize": 6, "enableExpertParallel": True,
                      "gpusPerNode": 8, "backend": "leaderworkerset"}},
     "cannot be split into equal pods of whole ranks"),
])
def test_what_the_network_or_the_layout_cannot_carry_is_refused(changes: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        render_config(_values(**changes))
    assert expected in str(caught.value)


def test_one_node_of_ranks_keeps_the_single_pod_layout() -> None:
    topology = plan_topology(2, 1, None, 8, data_parallel_size=4, data_parallel_across_nodes=True)
    assert (topology.pods, topology.gpus_per_pod) == (1, 8)
    with pytest.raises(TopologyError, match="pipeline_parallel_size 2 with data_parallel_size 4 across nodes"):
        plan_topology(2, 2, None, 8, data_parallel_size=4, data_parallel_across_nodes=True)


def test_the_policy_pack_passes_the_render(rendered: RenderedStack) -> None:
    from pathlib import Path

    from pulumi_vllm.policy.client import PolicyPackProcess, resources_from_registrations

    pack = PolicyPackProcess(Path(__file__).resolve().parents[1] / "policies", project="pulumi-vllm", stack="test",
                             stack_config={"pulumi-vllm:name": "t"})
    pack.start()
    try:
        violations = pack.analyze_all(resources_from_registrations(rendered.run.registrations))
    finally:
        pack.close()
    assert [(v.policy_name, v.detail) for v in violations] == []
