"""A stack's ``autoscaling.objective``: KEDA's targets derived from the performance model at plan time.

The stack's layout (GPU, tensor and pipeline sizes, the KV cache the capacity planner gives one engine) goes
through the same search as ``pulumi-vllm size --write-stack`` (:func:`pulumi_vllm.capacity.objective.size_replicas`
and :func:`~pulumi_vllm.capacity.objective.targets_for`); the keys the stack sets itself win over the derived ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic.alias_generators import to_camel

from pulumi_vllm.capacity.objective import (
    MAX_REPLICAS,
    TrafficObjective,
    hit_rate_words,
    shortfall,
    size_replicas,
    targets_for,
)
from pulumi_vllm.capacity.performance import AutoscalingTargets, ServingLayout, gpu_performance
from pulumi_vllm.capacity.planner import CapacityPlan
from pulumi_vllm.config import PROJECT, ConfigError, StackConfig
from pulumi_vllm.config.operations import OBJECTIVE_DERIVED, AutoscalingObjective, check_scaling_bounds
from pulumi_vllm.models.facts import ModelFacts

KEY = f"{PROJECT}:autoscaling.objective"


@dataclass(frozen=True)
class DerivedAutoscaling:
    """The targets an objective gave a stack, and which keys the stack set itself instead."""

    objective: TrafficObjective
    targets: AutoscalingTargets
    """What the model derives (``size --write-stack`` writes the same)."""
    explicit: tuple[str, ...]
    """The derivable keys the stack sets itself (camelCase), which won."""
    layout: str
    """The layout predicted, in words."""

    def summary_line(self, config: StackConfig) -> str:
        """``autoscaling: ...`` for the render summary: the targets in force and where they came from."""
        scaling = config.autoscaling
        objective = self.objective
        kv = "-" if scaling.kv_cache_usage_percent is None else f"{scaling.kv_cache_usage_percent:g}%"
        limits = "".join((
            f", TTFT p90 <= {objective.ttft_p90_ms:g} ms" if objective.ttft_p90_ms is not None else "",
            f", ITL p90 <= {objective.itl_p90_ms:g} ms" if objective.itl_p90_ms is not None else "",
        ))
        own = f"; the stack's own: {', '.join(self.explicit)}" if self.explicit else ""
        return (
            f"autoscaling: replicas {scaling.min_replicas}-{scaling.max_replicas}, waiting requests per replica "
            f"{scaling.waiting_requests_per_replica:g}, KV-cache usage {kv} (derived from autoscaling.objective: "
            f"{objective.rate:g} requests/s of {objective.input_tokens} in / {objective.output_tokens} out"
            f"{hit_rate_words(objective.prefix_hit_rate)}{limits} "
            f"on {self.layout}; {self.targets.replica_requests_per_s:.3g} requests/s and "
            f"{self.targets.running_requests_per_replica:g} running per replica at the target{own})"
        )


def traffic_objective(spec: AutoscalingObjective) -> TrafficObjective:
    """The stack's objective in the search's terms."""
    return TrafficObjective(spec.requests_per_second, spec.input_tokens, spec.output_tokens, spec.ttft_p90_ms,
                            spec.itl_p90_ms, spec.prefix_hit_rate)


def _describe(spec: AutoscalingObjective) -> str:
    parts = [f"requestsPerSecond {spec.requests_per_second:g}", f"inputTokens {spec.input_tokens}",
             f"outputTokens {spec.output_tokens}"]
    if spec.ttft_p90_ms is not None:
        parts.append(f"ttftP90Ms {spec.ttft_p90_ms:g}")
    if spec.itl_p90_ms is not None:
        parts.append(f"itlP90Ms {spec.itl_p90_ms:g}")
    if spec.prefix_hit_rate:
        parts.append(f"prefixHitRate {spec.prefix_hit_rate:g}")
    return "{" + ", ".join(parts) + "}"


def _why_not_planned(config: StackConfig, facts: ModelFacts | None, vllm_based: bool) -> str:
    if not vllm_based:
        return f"engine.kind {config.engine.kind} is not vLLM, whose scheduler the performance model follows"
    if config.resources.gpu_type is None:
        return "it needs resources.gpuType (the GPU whose figures the performance model uses)"
    if facts is None:
        return f"no model facts for {config.model.id} (the performance model needs its layers and heads)"
    return "it needs the capacity plan (the KV cache one replica holds); capacity.check is off: set it to warning"


def derive_autoscaling(
    config: StackConfig, facts: ModelFacts | None, capacity: CapacityPlan | None, data_parallel_size: int,
    max_num_seqs: int | None, max_num_batched_tokens: int | None, vllm_based: bool,
) -> tuple[StackConfig, DerivedAutoscaling | None]:
    """``config`` with the autoscaling targets its objective derives (the keys it sets itself kept), and what was
    derived; ``config`` unchanged and ``None`` without an objective or with autoscaling off.

    Raises:
        ConfigError: the objective cannot be predicted for this stack, no replica count up to
            ``autoscaling.maxReplicas`` meets it, or the derived maximum exceeds the cache or the GPU quota.
    """
    scaling = config.autoscaling
    spec = scaling.objective
    if spec is None or not scaling.enabled:
        return config, None
    given = _describe(spec)
    if capacity is None or facts is None:
        raise ConfigError(f"{KEY}: {given} is not accepted: {_why_not_planned(config, facts, vllm_based)}")
    try:
        gpu_performance(capacity.gpu)
    except ValueError as error:
        raise ConfigError(
            f"{PROJECT}:resources.gpuType: {config.resources.gpu_type!r} is not accepted with autoscaling.objective: "
            f"{error}"
        ) from None
    from pulumi_vllm.capacity.gpus import lookup_gpu

    gpu = lookup_gpu(capacity.gpu)

    def layout(replicas: int) -> ServingLayout:
        return ServingLayout(
            capacity.gpu, tensor_parallel_size=capacity.tensor_parallel_size,
            pipeline_parallel_size=capacity.pipeline_parallel_size, data_parallel_size=data_parallel_size,
            replicas=replicas, weight_dtype=capacity.weight_dtype, kv_cache_dtype=capacity.kv_cache_dtype,
            kv_cache_tokens=capacity.kv_cache_tokens, model_id=capacity.model_id,
            max_num_seqs=max_num_seqs or gpu.default_max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens or gpu.default_max_num_batched_tokens,
        )

    explicit = scaling.explicit()
    bound = scaling.max_replicas if "max_replicas" in explicit else MAX_REPLICAS
    objective = traffic_objective(spec)
    sizing = size_replicas(facts, layout, objective, max_replicas=bound)
    if not sizing.meets:
        limit = f"autoscaling.maxReplicas ({bound})" if "max_replicas" in explicit else f"{bound}"
        raise ConfigError(
            f"{KEY}: {given} is not accepted: no replica count up to {limit} meets it on {capacity.gpu} with tensor "
            f"parallel {capacity.tensor_parallel_size}: {shortfall(sizing, objective)}. Raise autoscaling.maxReplicas, "
            "relax the objective, or find a layout that meets it with pulumi-vllm size --rate "
            f"{objective.rate:g} --input-tokens {objective.input_tokens} --output-tokens {objective.output_tokens}"
            + (f" --ttft-p90 {objective.ttft_p90_ms:g}" if objective.ttft_p90_ms is not None else "")
            + (f" --itl-p90 {objective.itl_p90_ms:g}" if objective.itl_p90_ms is not None else "")
        )
    targets = targets_for(sizing, objective)
    derived: dict[str, Any] = {
        "min_replicas": targets.min_replicas,
        "max_replicas": targets.max_replicas,
        "waiting_requests_per_replica": targets.waiting_requests_per_replica,
        "kv_cache_usage_percent": targets.kv_cache_usage_percent,
    }
    update = {key: value for key, value in derived.items() if key not in explicit}
    if "max_replicas" in update:
        update["max_replicas"] = max(update["max_replicas"], scaling.min_replicas)
    updated = config.model_copy(update={"autoscaling": scaling.model_copy(update=update)})
    try:
        check_scaling_bounds(updated)
    except ValueError as error:
        raise ConfigError(
            f"{error} (autoscaling.maxReplicas {updated.autoscaling.max_replicas} is derived from "
            "autoscaling.objective; set it to bound the replicas)"
        ) from None
    gpus = capacity.tensor_parallel_size * capacity.pipeline_parallel_size * data_parallel_size
    words = f"{gpus} x {gpu.name} per replica"
    own = tuple(to_camel(key) for key in OBJECTIVE_DERIVED if key in explicit)
    return updated, DerivedAutoscaling(objective, targets, own, words)
