"""Predicted KV-cache concurrency of each vLLM server (vLLM itself, Ray Serve LLM), from the capacity planner.

The planner accounts for vLLM's memory only: other engines get no capacity verdict.
"""

from __future__ import annotations

import re
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from pulumi_vllm.capacity.gpus import GpuType, lookup_gpu
from pulumi_vllm.capacity.planner import CapacityPlan, plan_capacity
from pulumi_vllm.capacity.remedies import explain
from pulumi_vllm.engine.workload import VllmCommand, count
from pulumi_vllm.models.facts import ModelFacts
from vllm_policies.common import config_value, engine_targets, facts_for, gpu_choices
from vllm_policies.pods import image_tag

_RELEASE = re.compile(r"^v?(\d+\.\d+\.\d+)")


def known_gpu(names: set[str]) -> GpuType | None:
    """The catalog GPU for the first of ``names`` it knows (sorted for a stable choice), or ``None``."""
    for name in sorted(names):
        try:
            return lookup_gpu(name)
        except ValueError:
            continue
    return None


def vllm_release(image: str) -> str | None:
    """``vllm/vllm-openai:v0.32.0`` -> ``0.32.0``; ``None`` for other tags."""
    tag = image_tag(image) or ""
    match = _RELEASE.match(tag)
    return match.group(1) if match else None


def plan_for(command: VllmCommand, facts: ModelFacts, gpu: GpuType, model: str, image: str) -> CapacityPlan | None:
    """The capacity plan of one vLLM command on ``gpu``, or ``None`` when its flags cannot be planned."""
    tensor, pipeline = command.tensor_parallel_size, command.pipeline_parallel_size
    if tensor is None or pipeline is None:
        return None
    quantization = command.value("--quantization")
    if quantization:
        facts = facts.model_copy(update={"quantization": quantization})
    dtype = command.value("--dtype")
    try:
        utilization = float(command.value("--gpu-memory-utilization") or 0.9)
    except ValueError:
        return None
    settings: dict[str, Any] = {
        "tensor_parallel_size": tensor,
        "pipeline_parallel_size": pipeline,
        "max_model_len": count(command.value("--max-model-len")),
        "gpu_memory_utilization": utilization,
        "kv_cache_dtype": command.value("--kv-cache-dtype") or "auto",
        "weight_dtype": dtype if dtype and dtype != "auto" and not quantization else None,
        "model_id": model,
        "max_num_seqs": count(command.value("--max-num-seqs")),
        "max_num_batched_tokens": count(command.value("--max-num-batched-tokens")),
        "hybrid_kv_cache_manager": not command.has("--disable-hybrid-kv-cache-manager"),
    }
    release = vllm_release(image)
    for version in ([release] if release else []) + [None]:
        try:
            if version is None:
                return plan_capacity(facts, gpu, **settings)  # type: ignore[arg-type]
            return plan_capacity(facts, gpu, vllm_version=version, **settings)  # type: ignore[arg-type]
        except (ValueError, IndexError):
            continue  # a release the planner has no accounting for: plan with the pinned one
    return None


def _planning(command: VllmCommand) -> dict[str, Any]:
    """The command's scheduler settings the remedies are planned with too."""
    return {
        "max_num_seqs": count(command.value("--max-num-seqs")),
        "max_num_batched_tokens": count(command.value("--max-num-batched-tokens")),
        "hybrid_kv_cache_manager": not command.has("--disable-hybrid-kv-cache-manager"),
    }


def validate_capacity(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Servers whose KV cache holds fewer than ``minConcurrency`` full-length requests, on a known GPU type."""
    minimum = float(config_value(args, "minConcurrency", 1))
    for target in engine_targets(args):
        # Ray Serve LLM runs vLLM on the cluster's GPU workers, not in the head the target names.
        groups = [target.group] if target.engines[0].in_container else [
            g for g in target.workload.groups if g.gpus_per_pod] or [target.group]
        choices = gpu_choices(target.workload, groups[0])
        gpu = next((choices[name] for name in sorted(choices) if choices[name] is not None), None)
        if gpu is None:
            continue
        for engine in target.engines:
            command = engine.vllm
            if command is None or command.mode != "serve":
                continue  # not vLLM: the planner's accounting does not apply
            facts, _, model = facts_for(target, engine.model)
            if facts is None:
                continue
            plan = plan_for(command, facts, gpu, model, str(target.container.get("image") or ""))
            if plan is None:
                continue
            layout = f"{gpu.name}, tensor parallel {plan.tensor_parallel_size} x pipeline parallel {plan.pipeline_parallel_size}"
            if not plan.fits:
                # The real reason and the remedies that fit, as the plan and `pulumi-vllm size` say them.
                refusal = explain(plan, facts, gpu, min_concurrency=minimum, **_planning(command))
                report(f"{target.label}: vLLM would not start on {layout}: {refusal.text()}")
            elif plan.max_concurrency < minimum:
                refusal = explain(plan, facts, gpu, min_concurrency=minimum, **_planning(command))
                report(
                    f"{target.label}: on {layout} the KV cache holds {plan.kv_cache_tokens:,} tokens, "
                    f"{plan.max_concurrency:.2f} requests of {plan.max_model_len:,} tokens at once, below "
                    f"minConcurrency {minimum:g}. {refusal.text()}"
                )


capacity = ResourceValidationPolicy(
    name="vllm-capacity",
    description=(
        "Where the GPU type is known (a vllm.pulumi.com/gpu-type annotation or a GPU node selector), the capacity "
        "planner predicts how many full-length requests vLLM's KV cache holds; below minConcurrency the server "
        "queues requests or does not start."
    ),
    validate=validate_capacity,
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=PolicyConfigSchema(
        properties={
            "minConcurrency": {
                "type": "number", "minimum": 0, "default": 1,
                "description": "Fewest concurrent requests of max-model-len tokens the KV cache must hold.",
            }
        }
    ),
)
