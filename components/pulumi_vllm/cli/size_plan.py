"""The capacity plan ``pulumi-vllm size`` makes for its flags, shared by the plan and the load prediction."""

from __future__ import annotations

import argparse
from typing import Any

from pulumi_vllm.capacity.gpus import lookup_gpu
from pulumi_vllm.capacity.layout import LayoutAdvice, advise_layout
from pulumi_vllm.capacity.planner import CapacityPlan, plan_capacity
from pulumi_vllm.distributed.parallelism import plan_topology
from pulumi_vllm.models.facts import ModelFacts


def plan_for_flags(args: argparse.Namespace, facts: ModelFacts) -> tuple[CapacityPlan, LayoutAdvice | None]:
    """The plan, and the advice behind it when the layout was suggested (``--gpus`` without parallel sizes)."""
    gpu = lookup_gpu(args.gpu)
    common: dict[str, Any] = {
        "max_model_len": args.max_model_len,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "kv_cache_dtype": args.kv_cache_dtype,
        "weight_dtype": args.weight_dtype,
        "vllm_version": args.vllm_version,
        "model_id": args.model,
    }
    layout_given = args.tensor_parallel_size is not None or args.pipeline_parallel_size is not None
    # The suggestion searches tensor x pipeline layouts of one replica; data or expert parallel sizes one as given.
    layout_given = layout_given or args.data_parallel_size > 1 or args.enable_expert_parallel
    if args.gpus is not None and not layout_given:
        advice = advise_layout(facts, gpu, args.gpus, min_concurrency=args.min_concurrency, **common)
        return advice.plan, advice
    tp = args.tensor_parallel_size or 1
    pp = args.pipeline_parallel_size or 1
    if args.gpus is not None:
        plan_topology(tp, pp, gpus_per_node=args.gpus)
    parallel = {"data_parallel_size": args.data_parallel_size, "enable_expert_parallel": args.enable_expert_parallel}
    return plan_capacity(facts, gpu, tp, pp, **common, **parallel), None
