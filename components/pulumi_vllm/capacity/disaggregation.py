"""Sizing the prefill and decode pools of a disaggregated stack, its KV-cache tiers, and whether P/D pays.

Each pool is planned on its own GPU type and parallel sizes by the capacity planner (``plan_capacity``
through the pool's serving plan): the decode pool holds every running sequence's KV cache, so its KV tokens
bound the concurrency; the prefill pool only holds prompts while they are transferred. A host-memory tier
holds ``tier GiB / (KV bytes per token per rank x ranks)`` more tokens of evicted prefixes per server
(:func:`pulumi_vllm.engine.kv_transfer.tier_tokens`, from the planner's ``kv_cache_bytes_per_token``).

With the workload's typical lengths (``disaggregation.inputTokens`` / ``outputTokens``) and performance figures
for the pools' GPUs, each pool gets a capacity in requests per second: prefill servers from the prompt's matrix
FLOPs at the performance model's fitted prefill rate, decode servers from the performance model's ``predict`` of
the whole request (which overstates their work, since the prompt's KV arrives from prefill). The advice then
says which pool binds and how many prefill servers one decode server needs.

When it does not pay (the notes of :func:`disaggregation_notes`), from the sources cited in docs/disaggregation.md:
llm-d's P/D guide targets "long context workloads (10:1 ISL:OSL) and medium-to-large models" and warns that NIXL
over TCP is not for production (https://llm-d.ai/docs/guides/pd-disaggregation); vLLM's own page says
disaggregated prefill tunes TTFT and tail ITL but "DOES NOT improve throughput"
(https://github.com/vllm-project/vllm/blob/main/docs/features/disagg_prefill.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pulumi_vllm.capacity.planner import kv_cache_bytes_per_token
from pulumi_vllm.engine.kv_transfer import tier_tokens

MEDIUM_MODEL_PARAMETERS = 20e9
"""Below this many parameters (dense), a model is not the "medium-to-large" one llm-d's P/D guide is for."""

LONG_CONTEXT_RATIO = 10.0
"""llm-d's P/D guide: long context workloads of 10:1 input to output tokens."""


@dataclass(frozen=True)
class PoolSizing:
    """One pool as the planner sees it."""

    role: str
    replicas: int
    gpus_per_server: int
    gpu: str | None
    kv_tokens_per_server: int | None
    """KV-cache tokens on the GPUs of one server (``None`` without a GPU type or model facts)."""
    max_concurrency: float | None
    """Sequences of the full context one server holds at once."""
    tier_tokens_per_server: int
    """Tokens of evicted prefixes one server's host-memory tier holds."""
    capacity_requests_per_s: float | None = None
    """Requests/s the pool serves (all replicas) at the workload, from the performance model."""


def _kv_bytes_per_token(plan: Any) -> int | None:
    facts = plan.facts
    if facts is None:
        return None
    config = plan.config
    dtype_bytes = 4 if config.engine.dtype in ("float", "float32") else 2
    return kv_cache_bytes_per_token(
        facts, config.parallelism.tensor_parallel_size, config.engine.kv_cache_dtype, model_dtype_bytes=dtype_bytes
    )


def _prefill_capacity(plan: Any, input_tokens: int) -> float | None:
    """Prompts per second the pool's servers run: prefill is compute-bound, so one prompt takes its matrix
    FLOPs (2 x active parameters x tokens) at the rate the performance model's fitted constants give a large
    prefill batch (``prefill_peak_fraction`` x ``prefill_efficiency_factor`` of the GPUs' dense peak)."""
    from pulumi_vllm.capacity.performance import active_parameters, fitted_constants, gpu_performance

    config = plan.config
    if plan.facts is None or not config.resources.gpu_type:
        return None
    try:
        gpu = gpu_performance(config.resources.gpu_type)
    except ValueError:
        return None  # no performance figures for this GPU
    weight_dtype = plan.capacity.weight_dtype if plan.capacity is not None else ""
    tflops = gpu.fp8_tflops if weight_dtype in ("fp8", "int8") and gpu.fp8_tflops else gpu.bf16_tflops
    constants = fitted_constants()
    ranks = config.parallelism.tensor_parallel_size * config.parallelism.pipeline_parallel_size
    rate = ranks * tflops * 1e12 * constants.prefill_peak_fraction * constants.prefill_efficiency_factor
    seconds = 2 * active_parameters(plan.facts)[2] * input_tokens / rate
    return config.replicas * config.parallelism.data_parallel_size / seconds


def _decode_capacity(plan: Any, input_tokens: int, output_tokens: int) -> float | None:
    """Requests per second the pool's servers finish at their batch limit (the performance model's ``predict``)."""
    from pulumi_vllm.capacity.performance import ServingLayout, Workload, predict

    config = plan.config
    if plan.facts is None or not config.resources.gpu_type:
        return None
    layout = ServingLayout(
        gpu=config.resources.gpu_type,
        tensor_parallel_size=config.parallelism.tensor_parallel_size,
        pipeline_parallel_size=config.parallelism.pipeline_parallel_size,
        data_parallel_size=config.parallelism.data_parallel_size,
        replicas=config.replicas,
        kv_cache_dtype=config.engine.kv_cache_dtype,
        kv_cache_tokens=plan.capacity.kv_cache_tokens if plan.capacity is not None else None,
    )
    try:
        prediction = predict(plan.facts, layout, Workload(input_tokens, output_tokens, concurrency=1))
    except ValueError:
        return None  # no performance figures for this GPU
    return float(prediction.capacity_requests_per_s)


def size_pool(role: str, plan: Any, input_tokens: int | None = None, output_tokens: int | None = None) -> PoolSizing:
    """The sizing of one pool from its serving plan (:func:`pulumi_vllm.plan.plan_serving` of the pool)."""
    config = plan.config
    ranks = config.parallelism.tensor_parallel_size * config.parallelism.pipeline_parallel_size
    capacity = plan.capacity
    per_token = _kv_bytes_per_token(plan)
    tier = tier_tokens(config.kv_cache.cpu_gib or 0.0, per_token, ranks) if per_token else 0
    throughput = None
    if input_tokens is not None and output_tokens is not None:
        throughput = (_prefill_capacity(plan, input_tokens) if role == "prefill"
                      else _decode_capacity(plan, input_tokens, output_tokens))
    return PoolSizing(
        role=role,
        replicas=config.replicas,
        gpus_per_server=ranks * config.parallelism.data_parallel_size,
        gpu=config.resources.gpu_type,
        kv_tokens_per_server=capacity.kv_cache_tokens if capacity is not None else None,
        max_concurrency=capacity.max_concurrency if capacity is not None else None,
        tier_tokens_per_server=tier,
        capacity_requests_per_s=throughput,
    )


def size_pools(root: Any, plan: Any) -> dict[str, PoolSizing]:
    """Both pools of a disaggregated stack; ``plan`` is :func:`pulumi_vllm.plan.plan_serving`."""
    spec = root.disaggregation
    return {
        role: size_pool(role, plan(pool), spec.input_tokens, spec.output_tokens)
        for role, pool in root.pools.items()
    }


def disaggregation_notes(root: Any, pools: dict[str, PoolSizing], facts: Any) -> list[str]:
    """What the plan says about a disaggregated stack: each pool's size, which binds, and when P/D does not pay."""
    spec = root.disaggregation
    notes = []
    for sizing in pools.values():
        kv = f"{sizing.kv_tokens_per_server:,} KV-cache tokens" if sizing.kv_tokens_per_server else "KV cache not sized"
        tier = f" + {sizing.tier_tokens_per_server:,} in the CPU tier" if sizing.tier_tokens_per_server else ""
        notes.append(f"{sizing.role} pool: {sizing.replicas} server(s) of {sizing.gpus_per_server} {sizing.gpu or 'GPU'}"
                     f"(s), {kv} per server{tier}")
    prefill, decode = pools.get("prefill"), pools.get("decode")
    if prefill and decode and prefill.capacity_requests_per_s and decode.capacity_requests_per_s:
        per_prefill = prefill.capacity_requests_per_s / prefill.replicas
        per_decode = decode.capacity_requests_per_s / decode.replicas
        binds = "prefill" if prefill.capacity_requests_per_s < decode.capacity_requests_per_s else "decode"
        notes.append(
            f"at {spec.input_tokens} tokens in and {spec.output_tokens} out the prefill pool serves about "
            f"{prefill.capacity_requests_per_s:.1f} requests/s and the decode pool {decode.capacity_requests_per_s:.1f} "
            f"(performance model): the {binds} pool binds; one decode server needs about "
            f"{per_decode / per_prefill:.1f} prefill server(s)"
        )
    if spec.transport == "tcp":
        notes.append("disaggregation.transport tcp: NIXL over TCP works but llm-d's P/D guide recommends InfiniBand, "
                     "RoCE or EFA for production; every prompt's KV cache crosses the pod network")
    dense = facts is not None and not facts.num_experts and (facts.num_parameters or 0) < MEDIUM_MODEL_PARAMETERS
    if dense:
        notes.append(f"{root.model.id} is a dense model below {MEDIUM_MODEL_PARAMETERS / 1e9:.0f}B parameters: llm-d advises "
                     "P/D for medium-to-large models; one pool behind the cache-aware router is likely as fast")
    if spec.input_tokens and spec.output_tokens and spec.input_tokens < LONG_CONTEXT_RATIO * spec.output_tokens:
        notes.append(f"inputTokens {spec.input_tokens} to outputTokens {spec.output_tokens} is below the 10:1 of llm-d's "
                     "long-context P/D workloads: disaggregation tunes TTFT and tail ITL but does not add throughput")
    return notes
