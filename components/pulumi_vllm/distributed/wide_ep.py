"""Wide expert parallelism: data-parallel attention and expert-parallel MoE layers over several nodes.

A mixture-of-experts model served with ``parallelism.dataParallelSize`` D, ``tensorParallelSize`` T and
``enableExpertParallel`` runs D copies of the attention layers (each on T GPUs, its own KV cache) while the
experts are split over all D x T GPUs; tokens travel to their experts and back with an all-to-all each MoE layer.
When D x T GPUs do not fit one node, the ranks are spread over pods of whole ranks joined into one Ray cluster (the
LeaderWorkerSet backend's Ray head and workers, docs/multinode.md) and the head starts ``vllm serve ...
--data-parallel-size D --data-parallel-size-local L --data-parallel-backend ray``: vLLM places L ranks on each Ray
node (``vllm/engine/arg_utils.py``, ``vllm/v1/engine/utils.py``), the head alone serves the API.

The all-to-all crosses the network between nodes. The backends vLLM 0.32 offers (``--all2all-backend``,
``vllm/config/parallel.py``: default ``allgather_reducescatter`` over NCCL) include ones that move tokens with
GPU-initiated RDMA (DeepEP, NIXL-EP, MoRI) or over NVLink only (FlashInfer's NVLink kernels): the first need the
RDMA network the stack opts into with ``network.infiniband``; the second cannot leave a node. Both are refused
where the stack says the network cannot carry them.
"""

from __future__ import annotations

from typing import Any

from pulumi_vllm.config import PROJECT, ConfigError, StackConfig

RDMA_ALL2ALL = frozenset({
    "deepep_high_throughput", "deepep_low_latency", "deepep_v2", "nixl_ep", "mori_high_throughput",
    "mori_low_latency", "moonep",
})
"""All-to-all backends that move tokens between nodes with GPU-initiated RDMA (InfiniBand, RoCE or EFA)."""
NVLINK_ALL2ALL = frozenset({"flashinfer_nvlink_one_sided", "flashinfer_nvlink_two_sided"})
"""All-to-all backends over NVLink, inside one node (or one multi-node NVLink domain)."""


def ranks_per_pod(config: StackConfig) -> int | None:
    """Data-parallel ranks in each pod of a stack whose ranks span several pods (``--data-parallel-size-local``);
    ``None`` without data parallelism."""
    parallel = config.parallelism
    if parallel.data_parallel_size <= 1:
        return None
    rank = parallel.tensor_parallel_size * parallel.pipeline_parallel_size
    per_pod = parallel.gpus_per_pod or config.resources.gpu_count or parallel.gpus_per_node
    if per_pod is None:
        return parallel.data_parallel_size
    return max(min((per_pod // rank) or 1, parallel.data_parallel_size), 1)


def all2all_backend(extra_args: list[str] | tuple[str, ...]) -> str | None:
    """The ``--all2all-backend`` the extra arguments give (its last value), or ``None``."""
    found = None
    for index, arg in enumerate(extra_args):
        if arg == "--all2all-backend" and index + 1 < len(extra_args):
            found = extra_args[index + 1]
        elif arg.startswith("--all2all-backend="):
            found = arg.split("=", 1)[1]
    return found


def check_wide_ep(config: StackConfig, topology: Any) -> None:
    """Refuse an all-to-all backend the stack's network cannot carry between the pods of a multi-node model."""
    if not topology.multi_node:
        return
    backend = all2all_backend(config.engine.extra_args)
    if backend is None:
        return
    if backend in NVLINK_ALL2ALL:
        raise ConfigError(
            f"{PROJECT}:engine.extraArgs: '--all2all-backend {backend}' is not accepted: it moves tokens over NVLink, "
            f"which does not leave a node, and this model spans {topology.pods} pods; use allgather_reducescatter "
            "(NCCL) or, with network.infiniband, a DeepEP backend"
        )
    if backend in RDMA_ALL2ALL and not config.network.infiniband:
        raise ConfigError(
            f"{PROJECT}:engine.extraArgs: '--all2all-backend {backend}' is not accepted: it sends tokens between the "
            f"{topology.pods} pods with GPU-initiated RDMA, and network.infiniband is false, so the stack says its "
            "nodes have no RDMA device; set network.infiniband: true (with your device plugin's rdmaResourceName) or "
            "use allgather_reducescatter over NCCL"
        )
