"""Layout advice: which tensor x pipeline layout a model should use on nodes of a given GPU count.

Built on :func:`~pulumi_vllm.capacity.planner.plan_capacity`: the layouts the parallelism rules
accept are sized one by one, and one is chosen.

The rule is vLLM's own advice for one model replica ("Distributed Inference and Serving", now
"Parallelism and Scaling": https://docs.vllm.ai/en/latest/serving/parallelism_scaling/ and
https://docs.vllm.ai/en/v0.8.3/serving/distributed_serving.html): a model that fits on one node
uses tensor parallelism over that node's GPUs; a model too large for one node sets the tensor
parallel size to the GPUs per node and the pipeline parallel size to the number of nodes. Tensor
parallel ranks exchange activations at every layer and need the node's fast interconnect
(NVLink); pipeline stages exchange activations only between stages, so they go across nodes. A
tensor parallel size must divide the attention heads (and the key/value heads and the padded
vocabulary); when the node's GPU count does not, the largest size that does is used, and
pipeline stages inside the node are the fallback for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from pulumi_vllm.capacity.accounting import PINNED_VLLM_VERSION, accounting_for, no_blocks_message
from pulumi_vllm.capacity.gpus import GpuType, lookup_gpu
from pulumi_vllm.capacity.planner import CapacityPlan, plan_capacity
from pulumi_vllm.distributed.parallelism import (
    TopologyError,
    check_parallelism,
    check_tensor_parallel,
    plan_topology,
    valid_tensor_parallel_sizes,
)
from pulumi_vllm.models.facts import ModelFacts

__all__ = [
    "DEFAULT_GPUS_PER_NODE", "LayoutAdvice", "LayoutCandidate", "NoLayoutError", "advise_layout", "suggest_layout",
]

DEFAULT_GPUS_PER_NODE = 8
"""Node size assumed when none is given (an HGX/DGX node of 8 GPUs)."""


@dataclass(frozen=True)
class LayoutCandidate:
    """One layout the advice weighed, and whether it fits with the required concurrency."""

    tensor_parallel_size: int
    pipeline_parallel_size: int
    nodes: int | None
    """Nodes (one pod each) the layout spreads over; ``None`` when the parallelism rules reject it."""
    plan: CapacityPlan | None
    """The capacity plan; ``None`` when the parallelism rules reject the layout."""
    fits: bool
    """vLLM starts and holds at least the required concurrency."""
    reason: str
    """Why it does not fit (empty when it does)."""

    @property
    def gpus(self) -> int:
        """GPUs in total: tensor parallel size times pipeline parallel size."""
        return self.tensor_parallel_size * self.pipeline_parallel_size

    def as_json(self, chosen: bool = False) -> dict[str, object]:
        """One entry of the ``layouts`` list of ``pulumi-vllm size --json``."""
        return {
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "gpus": self.gpus,
            "nodes": self.nodes,
            "kv_cache_tokens": self.plan.kv_cache_tokens if self.plan else None,
            "max_concurrency": round(self.plan.max_concurrency, 2) if self.plan else None,
            "fits": self.fits,
            "reason": self.reason,
            "chosen": chosen,
        }


@dataclass(frozen=True)
class LayoutAdvice:
    """The chosen plan, the one-line reason for it, and every layout weighed on the way."""

    plan: CapacityPlan
    reason: str
    candidates: tuple[LayoutCandidate, ...]
    gpus_per_node: int | None
    """The node size given (``None``: fewest GPUs first on nodes of :data:`DEFAULT_GPUS_PER_NODE`)."""

class NoLayoutError(ValueError):
    """No layout within the limits fits; ``closest`` is the plan with the largest KV cache tried,
    ``candidates`` every layout weighed."""

    def __init__(
        self, message: str, closest: CapacityPlan | None, candidates: tuple[LayoutCandidate, ...] = ()
    ) -> None:
        super().__init__(message)
        self.closest = closest
        self.candidates = candidates


def _tensor_parallel_reason(facts: ModelFacts, size: int) -> str:
    """Why the parallelism rules reject tensor parallel ``size`` (empty when they accept it)."""
    findings = check_tensor_parallel(facts, size)
    if not findings:
        return ""
    if facts.num_attention_heads % size:
        return f"{size} does not divide the model's {facts.num_attention_heads} attention heads"
    return findings[0].message.split(". ", 1)[0]  # the rule's own first sentence (kv heads, vocabulary)


def _shortfall(plan: CapacityPlan, min_concurrency: float) -> str:
    """Why ``plan`` is not good enough, in a few words (empty when it fits with ``min_concurrency``)."""
    if plan.fits:
        if plan.max_concurrency >= min_concurrency:
            return ""
        return f"{plan.max_concurrency:.2f}x concurrency, below the required {min_concurrency:g}x"
    if plan.message.startswith("Free memory on"):  # vLLM's start-up check, whatever the layout
        return plan.message.split(". ", 1)[0]
    total = plan.requested_gib_per_gpu / plan.gpu_memory_utilization
    if plan.weights_gib_per_gpu > total:  # the real reason behind vLLM's "No available memory" here
        return f"the weights alone ({plan.weights_gib_per_gpu:.2f} GiB per GPU) exceed the GPU's {total:.2f} GiB"
    if plan.message == no_blocks_message(accounting_for(plan.vllm_version)):
        return f"no memory left for the KV cache after {plan.weights_gib_per_gpu:.2f} GiB of weights per GPU"
    return f"the KV cache holds {plan.kv_cache_tokens:,} tokens, less than one request of {plan.max_model_len:,}"


def _layouts(facts: ModelFacts, tp: int, node: int, max_nodes: int) -> list[tuple[int, int, int]]:
    """(tensor, pipeline, nodes) for tensor parallel ``tp`` on up to ``max_nodes`` nodes of ``node``
    GPUs, fewest nodes first."""
    found = []
    for pp in range(1, min(facts.num_hidden_layers, node * max_nodes // tp) + 1):
        try:
            nodes = plan_topology(tp, pp, gpus_per_node=node).pods
        except TopologyError:
            continue
        if nodes <= max_nodes:
            found.append((tp, pp, nodes))
    return sorted(found, key=lambda layout: (layout[2], layout[1]))


def advise_layout(
    facts: ModelFacts,
    gpu: GpuType | str,
    gpus_per_node: int | None = None,
    min_concurrency: float = 1.0,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    kv_cache_dtype: str = "auto",
    weight_dtype: str | None = None,
    vllm_version: str = PINNED_VLLM_VERSION,
    model_id: str = "",
    max_nodes: int = 16,
) -> LayoutAdvice:
    """The layout for one replica, the reason for it, and the layouts weighed.

    A layout passes the parallelism rules, lays out on nodes of ``gpus_per_node`` GPUs, and fits
    with at least ``min_concurrency`` requests of max_model_len. With ``gpus_per_node`` given:

    1. the largest valid tensor parallel size up to ``gpus_per_node`` (the whole node when the
       model's heads allow it), a smaller one only when no layout of that size fits;
    2. for that size, the fewest nodes, then the fewest pipeline stages: pipeline parallelism > 1
       only when one node's GPUs do not hold the model (inside a node only when the tensor
       parallel size cannot reach the node's GPU count).

    When the choice fits on one node, each smaller valid tensor parallel size is sized too on that
    node, up to its fewest stages that fit, for comparison. Without ``gpus_per_node``: the fewest
    GPUs first, then the fewest stages, on nodes of :data:`DEFAULT_GPUS_PER_NODE`.

    Raises:
        NoLayoutError: nothing up to ``max_nodes`` nodes fits (carries the closest plan and the
            layouts weighed).
        ValueError: ``gpus_per_node`` or ``max_nodes`` below 1.
    """
    gpu = lookup_gpu(gpu) if isinstance(gpu, str) else gpu
    if (gpus_per_node is not None and gpus_per_node < 1) or max_nodes < 1:
        raise ValueError(f"gpus_per_node and max_nodes must be at least 1, got {gpus_per_node}, {max_nodes}")
    node = gpus_per_node or DEFAULT_GPUS_PER_NODE
    sizes = valid_tensor_parallel_sizes(facts, node)
    candidates: list[LayoutCandidate] = []
    chosen: LayoutCandidate | None = None

    def weigh(tp: int, pp: int, nodes: int) -> LayoutCandidate | None:
        if any(f.verifiable for f in check_parallelism(facts, tp, pp, model_id)):
            return None
        plan = plan_capacity(
            facts, gpu, tp, pp, max_model_len, gpu_memory_utilization, kv_cache_dtype, weight_dtype,
            vllm_version, model_id,
        )
        why = _shortfall(plan, min_concurrency)
        candidate = LayoutCandidate(tp, pp, nodes, plan, not why, why)
        candidates.append(candidate)
        return candidate

    if gpus_per_node is None:
        every = sorted(
            (layout for tp in sizes for layout in _layouts(facts, tp, node, max_nodes)),
            key=lambda layout: (layout[0] * layout[1], layout[1]),
        )
        for tp, pp, nodes in every:
            weighed = weigh(tp, pp, nodes)
            if weighed is not None and weighed.fits:
                chosen = weighed
                break
    else:
        if node not in sizes:
            candidates.append(LayoutCandidate(node, 1, None, None, False, _tensor_parallel_reason(facts, node)))
        for tp in reversed(sizes):
            if chosen is not None and (chosen.nodes or 0) > 1:
                break  # across nodes a smaller tensor parallel size only adds stages inside the nodes
            for layout_tp, pp, nodes in _layouts(facts, tp, node, max_nodes):
                if chosen is not None and nodes > (chosen.nodes or 0):
                    break  # more nodes than the chosen layout: never better
                weighed = weigh(layout_tp, pp, nodes)
                if weighed is not None and weighed.fits:
                    chosen = chosen or weighed
                    break

    weighed_all = tuple(candidates)
    if chosen is None or chosen.plan is None:
        sized = [c.plan for c in weighed_all if c.plan is not None]
        closest = max(sized, key=lambda plan: (plan.fits, plan.kv_cache_tokens), default=None)
        best = f" The largest KV cache found: {closest.summary_line()}" if closest else ""
        raise NoLayoutError(
            f"no layout of up to {max_nodes} nodes of {node} {gpu.name} GPUs fits "
            f"{model_id or 'the model'} with {min_concurrency:g}x concurrency.{best}",
            closest,
            weighed_all,
        )
    reason = _reason(facts, chosen, chosen.plan, gpus_per_node, weighed_all, max_nodes)
    return LayoutAdvice(chosen.plan, reason, weighed_all, gpus_per_node)


def _reason(
    facts: ModelFacts, chosen: LayoutCandidate, plan: CapacityPlan, gpus_per_node: int | None,
    candidates: tuple[LayoutCandidate, ...], max_nodes: int,
) -> str:
    """One line: why ``chosen`` and not a layout with more tensor parallelism or fewer nodes."""
    tp, pp, nodes = chosen.tensor_parallel_size, chosen.pipeline_parallel_size, chosen.nodes or 1
    fit = f"fits with {plan.max_concurrency:.2f}x concurrency at {plan.max_model_len:,} tokens"
    if gpus_per_node is None:
        return (
            f"fewest GPUs: tensor parallel {tp} x pipeline {pp} on {chosen.gpus} GPUs is the smallest "
            f"valid layout that {fit} (no node size given)"
        )
    if tp == gpus_per_node:
        head = f"tensor parallel {tp} inside {'one node' if pp == 1 else 'each node'}"
    else:
        why_not = [_tensor_parallel_reason(facts, gpus_per_node)]
        largest = max(valid_tensor_parallel_sizes(facts, gpus_per_node))
        if tp < largest:
            why_not.append(f"no layout with tensor parallel {largest} fits on up to {max_nodes} nodes")
        head = f"tensor parallel {tp}, not {gpus_per_node}: " + ", and ".join(filter(None, why_not))
    if pp > 1:
        single = next(c for c in candidates if c.tensor_parallel_size == tp and c.plan is not None)
        where, enough = (
            (f"{pp} pipeline stages inside the node", "one stage")
            if nodes == 1 else (f"pipeline {pp} across {nodes} nodes", "one node")
        )
        head += (
            f", {where}: {enough} is not enough "
            f"(TP {single.tensor_parallel_size} x PP {single.pipeline_parallel_size}: {single.reason})"
        )
    if tp == gpus_per_node and pp == 1:
        return f"{head}: {fit}; pipeline stages only across nodes"
    return f"{head}; {fit}"


def suggest_layout(
    facts: ModelFacts,
    gpu: GpuType | str,
    gpus_per_node: int | None = None,
    min_concurrency: float = 1.0,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    kv_cache_dtype: str = "auto",
    weight_dtype: str | None = None,
    vllm_version: str = PINNED_VLLM_VERSION,
    model_id: str = "",
    max_nodes: int = 16,
) -> CapacityPlan:
    """The plan of :func:`advise_layout`'s choice (see there for the rule).

    Raises:
        NoLayoutError: nothing up to ``max_nodes`` nodes fits (carries the closest plan).
        ValueError: ``gpus_per_node`` or ``max_nodes`` below 1.
    """
    return advise_layout(
        facts, gpu, gpus_per_node, min_concurrency, max_model_len, gpu_memory_utilization, kv_cache_dtype,
        weight_dtype, vllm_version, model_id, max_nodes,
    ).plan
