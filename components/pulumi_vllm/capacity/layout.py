"""Layout advice: which tensor x pipeline layout a model should use on a given GPU count.

Built on :func:`~pulumi_vllm.capacity.planner.plan_capacity`: every layout the parallelism rules
accept is sized, and one is chosen.
"""

from __future__ import annotations

from pulumi_vllm.capacity.accounting import PINNED_VLLM_VERSION
from pulumi_vllm.capacity.gpus import GpuType, lookup_gpu
from pulumi_vllm.capacity.planner import CapacityPlan, plan_capacity
from pulumi_vllm.distributed.parallelism import (
    TopologyError,
    check_parallelism,
    plan_topology,
    valid_tensor_parallel_sizes,
)
from pulumi_vllm.models.facts import ModelFacts

__all__ = ["NoLayoutError", "suggest_layout"]


class NoLayoutError(ValueError):
    """No layout within the limits fits; ``closest`` is the plan with the largest KV cache tried."""

    def __init__(self, message: str, closest: CapacityPlan | None) -> None:
        super().__init__(message)
        self.closest = closest


def suggest_layout(
    facts: ModelFacts,
    gpu: GpuType | str,
    gpus_per_node: int,
    min_concurrency: float = 1.0,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    kv_cache_dtype: str = "auto",
    weight_dtype: str | None = None,
    vllm_version: str = PINNED_VLLM_VERSION,
    model_id: str = "",
    max_nodes: int = 16,
) -> CapacityPlan:
    """The smallest layout that passes the parallelism rules, lays out on nodes of
    ``gpus_per_node`` GPUs, and fits with at least ``min_concurrency`` requests of max_model_len.

    Fewest GPUs first; for equal counts, fewer pipeline stages (tensor parallelism stays in a node).

    Raises:
        NoLayoutError: nothing up to ``max_nodes`` nodes fits (carries the closest plan).
        ValueError: ``gpus_per_node`` or ``max_nodes`` below 1.
    """
    gpu = lookup_gpu(gpu) if isinstance(gpu, str) else gpu
    if gpus_per_node < 1 or max_nodes < 1:
        raise ValueError(f"gpus_per_node and max_nodes must be at least 1, got {gpus_per_node}, {max_nodes}")
    most = gpus_per_node * max_nodes
    candidates = sorted(
        ((t, p) for t in valid_tensor_parallel_sizes(facts, gpus_per_node)
         for p in range(1, min(facts.num_hidden_layers, most // t) + 1)),
        key=lambda layout: (layout[0] * layout[1], layout[1]),
    )
    closest: CapacityPlan | None = None
    for t, p in candidates:
        if any(f.verifiable for f in check_parallelism(facts, t, p, model_id)):
            continue
        try:
            plan_topology(t, p, gpus_per_node=gpus_per_node)
        except TopologyError:
            continue
        plan = plan_capacity(
            facts, gpu, t, p, max_model_len, gpu_memory_utilization, kv_cache_dtype, weight_dtype,
            vllm_version, model_id,
        )
        if plan.fits and plan.max_concurrency >= min_concurrency:
            return plan
        if closest is None or (plan.fits, plan.kv_cache_tokens) > (closest.fits, closest.kv_cache_tokens):
            closest = plan
    best = f" The largest KV cache found: {closest.summary_line()}" if closest else ""
    raise NoLayoutError(
        f"no layout of up to {max_nodes} nodes of {gpus_per_node} {gpu.name} GPUs fits "
        f"{model_id or 'the model'} with {min_concurrency:g}x concurrency.{best}",
        closest,
    )
