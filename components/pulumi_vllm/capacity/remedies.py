"""Why a model does not fit, in the user's terms, and the remedies that do fit.

vLLM reports every shortage the same way ("Try increasing `gpu_memory_utilization`"), also when
the weights alone are larger than the GPU and no utilization can help. :func:`explain` reads a
:class:`~pulumi_vllm.capacity.planner.CapacityPlan` that does not fit and says the real cause
(the weights, the KV cache against one full-length request, the memory free at start-up, or the
concurrency floor), keeps vLLM's own message after it (users search for it), and lists remedies
in this order, each one planned with :func:`~pulumi_vllm.capacity.planner.plan_capacity` and kept
only when it fits:

1. a quantized re-upload of the same model that the model catalog lists (published repositories
   only: every catalog entry names the ``config.json`` it was copied from);
2. for a KV-cache shortage: an fp8 KV cache, a shorter maximum model length, or a lower GPU memory
   utilization when the start-up check is what fails;
3. the smallest tensor parallel size inside one node that fits;
4. the smallest larger GPU of the GPU catalog that fits the same layout;
5. pipeline stages across nodes, only when no layout inside one node fits
   (:func:`~pulumi_vllm.capacity.layout.advise_layout`).

The texts name no engine flags or stack keys, so the plan, ``pulumi-vllm size`` and the policy
pack print the same words.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from pulumi_vllm.capacity.accounting import (
    GIB,
    STARTUP_DISTRIBUTED_GIB,
    STARTUP_IN_USE_GIB,
    accounting_for,
    no_blocks_message,
    resolve_weight_dtype,
)
from pulumi_vllm.capacity.gpus import GpuType, known_gpus, lookup_gpu
from pulumi_vllm.capacity.layout import DEFAULT_GPUS_PER_NODE, LayoutAdvice, NoLayoutError, advise_layout
from pulumi_vllm.capacity.planner import CapacityPlan, plan_capacity
from pulumi_vllm.distributed.parallelism import valid_tensor_parallel_sizes
from pulumi_vllm.models.catalog import known_models, lookup
from pulumi_vllm.models.facts import ModelFacts

__all__ = ["Refusal", "Remedy", "explain", "prefer_one_node", "quantized_variants"]

# The quantized subset of the re-upload suffixes the catalog resolves to their base model
# (models/catalog.py): a catalog id is a variant of a model when it is the model's name plus one of these.
_QUANTIZED_SUFFIX = re.compile(
    r"^-(fp8(-dynamic|-block)?|awq(-int4)?|gptq(-int[48])?|quantized\.w\d+a\d+|w4a16|w8a8|nvfp4|fp4|bnb-4bit)$"
)
_WEIGHT_QUALITY = {"float32": 0, "bfloat16": 0, "float16": 0, "fp8": 1, "int8": 1, "int4": 2, "fp4": 2}
"""Fewer bits come later: the remedy closest to the model as published is offered first."""

MIN_MAX_MODEL_LEN = 1024
"""A shorter maximum model length than this is not offered as a remedy (too short to be useful)."""


@dataclass(frozen=True)
class Remedy:
    """One change that fits when planned."""

    kind: str
    """``quantized``, ``kv-cache-dtype``, ``max-model-len``, ``utilization``, ``tensor-parallel``,
    ``larger-gpu`` or ``pipeline``."""
    text: str
    plan: CapacityPlan
    """The plan of the changed setting (it fits)."""
    model_id: str = ""
    """The model the remedy serves (a quantized variant's id), else empty."""


@dataclass(frozen=True)
class Refusal:
    """Why a plan does not fit, vLLM's own message, and the remedies that fit."""

    reason: str
    remedies: tuple[str, ...]
    vllm_message: str = ""
    fixes: tuple[Remedy, ...] = field(default=())
    """The remedies with their kinds and plans, in the order of ``remedies``."""

    def text(self) -> str:
        """Reason, vLLM's message and the numbered remedies, as one paragraph."""
        parts = [f"{self.reason}."]
        if self.vllm_message:
            parts.append(f"vLLM's own message: {self.vllm_message}")
        if self.remedies:
            numbered = "; ".join(f"({index}) {text}" for index, text in enumerate(self.remedies, 1))
            parts.append(f"Remedies that fit when planned: {numbered}.")
        else:
            parts.append("No remedy was found that fits: no quantized variant, layout, larger GPU or pipeline.")
        return " ".join(parts)


def _bare(model_id: str) -> str:
    return model_id.strip().rsplit("/", 1)[-1].lower().removeprefix("meta-")


def quantized_variants(model_id: str) -> list[str]:
    """Catalog ids that are a quantized re-upload of ``model_id`` (``Qwen/Qwen3-30B-A3B`` ->
    ``Qwen/Qwen3-30B-A3B-FP8``), most bits first; empty for a model that is itself quantized."""
    facts = lookup(model_id)
    if facts is None or facts.quantization:
        return []
    name = _bare(model_id)
    found = []
    for candidate in known_models():
        other = _bare(candidate)
        if not other.startswith(name) or not _QUANTIZED_SUFFIX.match(other[len(name):]):
            continue
        variant = lookup(candidate)
        if variant is not None and variant.quantization:
            found.append(candidate)
    return sorted(found, key=lambda cid: (_WEIGHT_QUALITY.get(_dtype_of(cid), 3), cid))


def _dtype_of(model_id: str) -> str:
    facts = lookup(model_id)
    return resolve_weight_dtype(facts, None, model_id) if facts else ""


@dataclass(frozen=True)
class _Setting:
    """What the refused plan was planned with, to re-plan one change at a time."""

    facts: ModelFacts
    gpu: GpuType
    plan: CapacityPlan
    min_concurrency: float
    extra: dict[str, Any]

    def replan(self, **changes: Any) -> CapacityPlan | None:
        plan = self.plan
        settings: dict[str, Any] = {
            "tensor_parallel_size": plan.tensor_parallel_size,
            "pipeline_parallel_size": plan.pipeline_parallel_size,
            "max_model_len": plan.max_model_len,
            "gpu_memory_utilization": plan.gpu_memory_utilization,
            "kv_cache_dtype": plan.kv_cache_dtype,
            "weight_dtype": plan.weight_dtype,
            "vllm_version": plan.vllm_version,
            "model_id": plan.model_id,
            **self.extra,
        }
        facts = changes.pop("facts", self.facts)
        gpu = changes.pop("gpu", self.gpu)
        settings.update(changes)
        try:
            return plan_capacity(facts, gpu, **settings)
        except ValueError:
            return None

    def good(self, plan: CapacityPlan | None) -> bool:
        return plan is not None and plan.fits and plan.max_concurrency >= self.min_concurrency


def _where(plan: CapacityPlan) -> str:
    gpus = plan.tensor_parallel_size * plan.pipeline_parallel_size
    return f"{gpus} x {plan.gpu}"


def _fit(plan: CapacityPlan) -> str:
    return (
        f"{plan.weights_gib_per_gpu:.2f} GiB of weights per GPU, {plan.kv_cache_tokens:,} KV-cache tokens, "
        f"{plan.max_concurrency:.2f}x concurrency at {plan.max_model_len:,} tokens"
    )


def _free_at_start(setting: _Setting) -> float:
    """GiB free when a worker starts (the planner's start-up check)."""
    world = setting.plan.tensor_parallel_size * setting.plan.pipeline_parallel_size
    return setting.gpu.total_memory_gib - STARTUP_IN_USE_GIB - (STARTUP_DISTRIBUTED_GIB if world > 1 else 0)


def _gpus(count: int, gpu: str) -> str:
    return f"{count} {gpu} GPU{'s' if count != 1 else ''}"


def _reason(setting: _Setting) -> str:
    plan, gpu = setting.plan, setting.gpu
    stage = min(plan.stages, key=lambda s: s.kv_cache_gib)
    weights = plan.weights_gib_per_gpu
    if plan.fits:
        return (
            f"the KV cache holds {plan.kv_cache_tokens:,} tokens: {plan.max_concurrency:.2f} requests of "
            f"{plan.max_model_len:,} tokens at once, below the required {setting.min_concurrency:g}"
        )
    if plan.message.startswith("Free memory on"):
        free = _free_at_start(setting)
        return (
            f"free memory at start-up ({free:.2f} of the {gpu.name}'s {gpu.total_memory_gib:.2f} GiB; the CUDA "
            f"context holds the rest) is less than the {plan.requested_gib_per_gpu:.2f} GiB a GPU memory "
            f"utilization of {plan.gpu_memory_utilization:g} asks for"
        )
    if weights > gpu.total_memory_gib:
        return (
            f"the weights alone ({weights:.2f} GiB per GPU, {plan.weight_dtype}) exceed the {gpu.name}'s "
            f"{gpu.total_memory_gib:.2f} GiB: loading fails with CUDA out of memory before vLLM sizes the "
            "KV cache, whatever the GPU memory utilization"
        )
    if weights >= plan.requested_gib_per_gpu:
        return (
            f"the weights ({weights:.2f} GiB per GPU, {plan.weight_dtype}) fill the {plan.requested_gib_per_gpu:.2f} "
            f"GiB vLLM may use ({plan.gpu_memory_utilization:g} of the {gpu.name}'s {gpu.total_memory_gib:.2f} GiB), "
            "leaving nothing for activations and the KV cache"
        )
    if plan.message == no_blocks_message(accounting_for(plan.vllm_version)):
        return (
            f"after the weights ({stage.weights_gib:.2f} GiB per GPU), the profiling activation "
            f"({stage.activation_gib:.2f}), memory outside PyTorch ({stage.non_torch_gib:.2f}) and CUDA graphs "
            f"({stage.cuda_graph_gib:.2f}), nothing is left of the {plan.requested_gib_per_gpu:.2f} GiB vLLM may use "
            "for the KV cache"
        )
    needed = stage.kv.blocks_per_request * stage.kv.bytes_per_block / GIB
    return (
        f"the KV cache holds {plan.kv_cache_tokens:,} tokens ({plan.kv_cache_gib_per_gpu:.2f} GiB per GPU); one "
        f"request of {plan.max_model_len:,} tokens (the maximum model length) needs {needed:.2f} GiB"
    )


def _quantized(setting: _Setting) -> list[Remedy]:
    found = []
    for variant in quantized_variants(setting.plan.model_id):
        facts = lookup(variant)
        plan = setting.replan(facts=facts, model_id=variant, weight_dtype=None)
        if plan is not None and setting.good(plan):
            found.append(Remedy(
                "quantized",
                f"serve the published quantized variant {variant} ({plan.weight_dtype} weights) on "
                f"{_where(plan)}: {_fit(plan)}",
                plan, variant,
            ))
    return found[:2]


def _kv_cache(setting: _Setting) -> list[Remedy]:
    plan = setting.plan
    found: list[Remedy] = []
    if plan.fits is False and plan.weights_gib_per_gpu >= plan.requested_gib_per_gpu:
        return found  # the weights are the problem: no KV-cache setting helps
    if plan.message.startswith("Free memory on"):
        free = _free_at_start(setting)
        utilization = math.floor(free / setting.gpu.total_memory_gib * 100) / 100  # the highest that can start
        if utilization >= plan.gpu_memory_utilization:
            utilization = round(plan.gpu_memory_utilization - 0.01, 2)
        while utilization >= 0.5:
            lower = setting.replan(gpu_memory_utilization=utilization)
            if lower is not None and not lower.message.startswith("Free memory on"):
                if setting.good(lower):
                    found.append(Remedy(
                        "utilization", f"a GPU memory utilization of {utilization:g}: {_fit(lower)}", lower,
                    ))
                break
            utilization = round(utilization - 0.01, 2)
        return found
    if plan.kv_cache_dtype == "auto":
        fp8 = setting.replan(kv_cache_dtype="fp8")
        if fp8 is not None and setting.good(fp8):
            found.append(Remedy("kv-cache-dtype", f"an fp8 KV cache on {_where(fp8)}: {_fit(fp8)}", fp8))
    longest = plan.max_model_len_that_fits
    if plan.fits:  # the concurrency floor: a length that holds min_concurrency requests
        longest = int(plan.max_model_len * plan.max_concurrency / max(setting.min_concurrency, 1e-9))
    length = longest // 256 * 256
    while length >= MIN_MAX_MODEL_LEN and length < plan.max_model_len:
        shorter = setting.replan(max_model_len=length)
        if shorter is not None and setting.good(shorter):
            found.append(Remedy(
                "max-model-len", f"a maximum model length of {length:,} tokens on {_where(shorter)}: {_fit(shorter)}",
                shorter,
            ))
            break
        length -= 256
    return found


def _tensor_parallel(setting: _Setting, node: int, node_given: bool) -> list[Remedy]:
    """The smallest tensor parallel size inside one node that fits (one stage)."""
    plan = setting.plan
    for size in valid_tensor_parallel_sizes(setting.facts, node):
        if plan.pipeline_parallel_size == 1 and size <= plan.tensor_parallel_size:
            continue  # not more GPUs than the refused layout
        wider = setting.replan(tensor_parallel_size=size, pipeline_parallel_size=1)
        if wider is not None and setting.good(wider):
            where = f"one node of {_gpus(node, plan.gpu)}" if node_given else f"one node of at least {size} GPUs"
            return [Remedy("tensor-parallel", f"tensor parallel {size} inside {where}: {_fit(wider)}", wider)]
    return []


def _larger_gpu(setting: _Setting) -> list[Remedy]:
    gpu = setting.gpu
    larger = sorted(
        (lookup_gpu(name) for name in known_gpus()),
        key=lambda other: other.total_memory_gib,
    )
    for other in larger:
        if other.total_memory_gib <= gpu.total_memory_gib or other.resource != gpu.resource:
            continue
        plan = setting.replan(gpu=other)
        if plan is not None and setting.good(plan):
            return [Remedy(
                "larger-gpu",
                f"a larger GPU: {_where(plan)} ({other.total_memory_gib:.2f} GiB each): {_fit(plan)}",
                plan,
            )]
    return []


def _pipeline(setting: _Setting, node: int, max_nodes: int) -> list[Remedy]:
    plan = setting.plan
    try:
        advice = advise_layout(
            setting.facts, setting.gpu, node, setting.min_concurrency, plan.max_model_len,
            plan.gpu_memory_utilization, plan.kv_cache_dtype, plan.weight_dtype, plan.vllm_version,
            plan.model_id, max_nodes,
        )
    except (NoLayoutError, ValueError):
        return []
    chosen = _chosen(advice)
    if chosen is None or chosen <= 1:
        return []
    found = advice.plan
    return [Remedy(
        "pipeline",
        f"pipeline parallel {found.pipeline_parallel_size} across {chosen} nodes of {_gpus(node, found.gpu)} "
        f"(tensor parallel {found.tensor_parallel_size} in each): {_fit(found)}",
        found,
    )]


def _chosen(advice: LayoutAdvice) -> int | None:
    """Nodes of the advice's chosen layout."""
    plan = advice.plan
    for candidate in advice.candidates:
        if candidate.fits and (candidate.tensor_parallel_size, candidate.pipeline_parallel_size) == (
            plan.tensor_parallel_size, plan.pipeline_parallel_size,
        ):
            return candidate.nodes
    return None


def explain(
    plan: CapacityPlan,
    facts: ModelFacts,
    gpu: GpuType | str,
    *,
    gpus_per_node: int | None = None,
    min_concurrency: float = 1.0,
    max_nodes: int = 16,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    hybrid_kv_cache_manager: bool = True,
) -> Refusal:
    """Why ``plan`` does not fit (or holds fewer than ``min_concurrency`` requests), and what does.

    ``plan`` comes from :func:`plan_capacity` of ``facts`` on ``gpu``; the remedies are planned
    with its settings, one change at a time (see the module docstring for their order).
    ``gpus_per_node`` bounds the tensor parallel sizes and the nodes of the pipeline remedy
    (unset: nodes of :data:`~pulumi_vllm.capacity.layout.DEFAULT_GPUS_PER_NODE`).
    """
    gpu = lookup_gpu(gpu) if isinstance(gpu, str) else gpu
    extra: dict[str, Any] = {"hybrid_kv_cache_manager": hybrid_kv_cache_manager}
    if max_num_seqs is not None:
        extra["max_num_seqs"] = max_num_seqs
    if max_num_batched_tokens is not None:
        extra["max_num_batched_tokens"] = max_num_batched_tokens
    setting = _Setting(facts, gpu, plan, min_concurrency, extra)
    node = gpus_per_node or DEFAULT_GPUS_PER_NODE
    fixes = [*_quantized(setting), *_kv_cache(setting)]
    inside = _tensor_parallel(setting, node, gpus_per_node is not None)
    fixes += inside
    fixes += _larger_gpu(setting)
    if not inside:  # pipeline stages across nodes only when one node's GPUs are not enough
        fixes += _pipeline(setting, node, max_nodes)
    message = plan.message if not plan.fits else ""
    return Refusal(_reason(setting), tuple(fix.text for fix in fixes), message, tuple(fixes))


def prefer_one_node(
    advice: LayoutAdvice,
    facts: ModelFacts,
    gpu: GpuType | str,
    gpus_per_node: int,
    min_concurrency: float = 1.0,
    max_nodes: int = 16,
) -> tuple[CapacityPlan, Refusal] | None:
    """When ``advice`` spreads the model over several nodes although a quantized variant or a larger GPU
    would fit one node of ``gpus_per_node``: the closest one-node plan and its refusal (pipeline last).

    ``None`` when the advice stays on one node, or when only more nodes help.
    """
    nodes = _chosen(advice)
    if nodes is None or nodes <= 1:
        return None
    single = [c.plan for c in advice.candidates if c.nodes == 1 and c.plan is not None]
    if not single:
        return None
    closest = max(single, key=lambda p: (p.tensor_parallel_size, p.kv_cache_gib_per_gpu))
    refusal = explain(closest, facts, gpu, gpus_per_node=gpus_per_node, min_concurrency=min_concurrency,
                      max_nodes=max_nodes)
    if not any(fix.kind in ("quantized", "larger-gpu") for fix in refusal.fixes):
        return None
    return closest, refusal
