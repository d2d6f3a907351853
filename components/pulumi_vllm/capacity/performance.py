"""A performance model of vLLM serving: throughput, time to first token and inter-token latency of one layout.

Decode is a roofline: one scheduler step reads the weights the running batch touches (every expert a token
of the batch is routed to) and the KV cache of every running sequence, at the GPU's memory bandwidth times an
efficiency that falls as the matrices get smaller (tensor parallelism divides every matrix by its size: a
42 MB matrix reads at about half the streaming rate of a 470 MB one on an H100), and computes two FLOPs per
active parameter per token at the dense tensor rate; it adds the tensor-parallel all-reduces (two per layer,
start-up latency plus a ring over the interconnect) and a CPU cost per step and per sequence, which async
scheduling (vLLM's default since 0.14.0, not with pipeline parallelism) overlaps with the GPU's part instead of
adding to it. Prefill is the prompt's FLOPs (weights, the LM head once per prompt as vLLM scores only its last
position, and attention over the prompt's own tokens, ``n ** 2 / 2`` pairs however it is chunked or batched) at
the dense rate of the weight and activation precision (attention at the 16-bit one), with the rate rising with
the tokens in the step (each chunk on its own). A fused-MoE layer reads its experts more efficiently the more tokens each one gets (one per
decode token, many per prompt chunk), and is bound by its own roofline (expert reads or expert FLOPs), beside
the dense kernels' one; FLOPs follow parameters, not bytes (a checkpoint may quantise only its experts).

Continuous batching and chunked prefill follow vLLM's V1 scheduler: running decodes take one token of the step's
``max_num_batched_tokens`` budget each, prompt chunks fill the rest. At a steady rate, the step time, the running
batch and the arrival rate are solved together (Little's law); TTFT is a fixed per-request part
(``request_overhead_ms``), half the step in flight when a prompt arrives while others decode, the prefill chunks,
and an M/D/1 queue in front of a full batch. A closed loop and a run of a known number of requests
(``Workload.requests``: at a rate, or all at once) are simulated step by step as the scheduler runs them
(:func:`_simulate_run`): a closed loop's clients send their next request when the previous one is done, admission
is up to ``max_num_seqs`` and the KV cache, prompt chunks run beside the decodes, a front end hands the engine one
request per ``frontend_ms_per_request``; TTFT and ITL percentiles are those of the simulated requests and steps.
The median ITL of a steady state is a step that carries a prompt once half the steps do. The dense tensor rate is
the spec sheet's times the GPU's measured matrix-product share (``GpuPerformance.tensor_scale``).
The model is of vLLM's V1 engine.

The GPU figures (bandwidth, tensor rates, interconnect, each with its page) and the fitted efficiency constants
are data: ``gpu_performance.json`` beside this module. Published measurements and the error of this model
against them are in ``bench/performance_references.py`` and ``bench/performance_bench.py``.

The bytes a step reads come from ``capacity.weights`` (weights as vLLM loads them: what every token reads,
and the routed experts, of which ``num_experts_per_token / num_experts`` per token); :func:`active_parameters`
estimates them from :class:`ModelFacts` alone where that breakdown is not available.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from pulumi_vllm.capacity.accounting import resolve_weight_dtype
from pulumi_vllm.capacity.planner import kv_cache_bytes_per_token
from pulumi_vllm.models.facts import ModelFacts

DATA_FILE = Path(__file__).with_name("gpu_performance.json")

_REFERENCE_BANDWIDTH_GB_S = 3350.0
"""The H100 SXM's bandwidth, on which the default matrix-size curve was measured."""

WEIGHT_BYTES = {"float32": 2.0, "bfloat16": 2.0, "float16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5625, "fp4": 0.53}
"""Bytes a decode step reads per weight (float32 checkpoints are served in 16 bits; int4 and fp4 carry their
group scales)."""

_MLA_ATTENTION_PER_HEAD_DIM = 1.6
"""DeepSeek-V3's multi-head latent attention holds about 1.6 x hidden x heads x 128 parameters per layer
(187M: the q and kv low-rank projections and the output projection, from its config.json ranks)."""


@dataclass(frozen=True)
class GpuPerformance:
    """What one GPU moves and computes, and where the figures come from."""

    name: str
    memory_bandwidth_gb_s: float
    bf16_tflops: float
    fp8_tflops: float | None
    interconnect: str
    interconnect_gb_s: float
    interconnect_latency_us: float
    streaming_fraction: float
    half_efficiency_matrix_mb: float
    source: str
    overrides: tuple[tuple[str, float], ...] = ()
    """Fitted constants this device replaces (the CPU profile's step and request costs)."""
    vendor: str = "nvidia"
    """``nvidia`` or ``amd`` (ROCm kernels reach a different share of the hardware: ``amd_software_factor``)."""
    tensor_scale: float = 1.0
    """The share of its dense tensor rate this GPU's largest measured BF16 matrix product reaches, over the share the
    reference GPU's reaches (``matmul_bf16_tflops`` in the data, one harness for all): a card held back by its power
    limit (the L4 reaches 59% of its rate, the H100 SXM 81%) computes a prompt slower than its rate says, one that
    holds its boost clock (the RTX 4090, 100%) faster. 1 where no measurement is given."""


@dataclass(frozen=True)
class Constants:
    """The efficiency constants fitted on published measurements (see ``gpu_performance.json``)."""

    decode_bandwidth_factor: float
    kv_bandwidth_factor: float
    step_overhead_ms: float
    per_sequence_overhead_us: float
    request_overhead_ms: float
    moe_bandwidth_factor: float
    prefill_efficiency_factor: float = 1.0
    """Share of the measured GEMM rate curve (``prefill_peak_fraction``, ``half_efficiency_prefill_tokens``) a
    prompt chunk reaches; 1 (not fitted): the curve as measured."""
    amd_software_factor: float = 1.0
    """Share of the NVIDIA-fitted efficiency vLLM's ROCm kernels reach on AMD GPUs (weights, KV cache, compute)."""
    int4_moe_factor: float = 1.0
    """Share of the bandwidth efficiency 4-bit (AWQ/GPTQ) fused-MoE kernels reach against 16- and 8-bit ones."""
    ttft_decode_steps: float = 0.5
    """Decode steps a prompt that arrives while other sequences decode waits for before it is scheduled: half a
    step, the mean remainder of the step in flight for a prompt arriving at a random moment (not fitted). An idle
    engine schedules it at once, and so it is for a closed loop of equal lengths, whose clients all finish in the
    same step and find the engine idle."""
    moe_compute_factor: float = 1.0
    """The fused-MoE kernel's compute-bound rate on a prompt chunk's expert products, as a share of a large dense
    GEMM's (its memory-bound side is the expert read, ``moe_bandwidth_factor``)."""
    moe_half_tokens_per_expert: float = 0.0
    """Tokens per touched expert at which the fused-MoE kernel recovers half of what it loses against the dense
    efficiency with one token per expert (``moe_bandwidth_factor``, ``int4_moe_factor``): a prompt chunk gives every
    expert several tokens and reads them at nearly the dense rate, a decode step gives each one token. 0: the
    loss applies whatever the tokens."""
    frontend_ms_per_request: float = 0.0
    """The part of ``request_overhead_ms`` the front end's event loop spends on each request serially (parsing,
    the chat template, tokenising, handing it to the engine): a run of many requests at once reaches the engine
    no faster than one per this time. The rest of ``request_overhead_ms`` overlaps with other requests."""
    half_efficiency_prefill_tokens: float = 256.0
    prefill_peak_fraction: float = 0.8
    measured: tuple[str, ...] = ()
    """Constants set from the user's own measurement (:func:`calibrate_request_overhead`), which a device
    profile's overrides do not replace."""


@cache
def _data() -> dict[str, Any]:
    return dict(json.loads(DATA_FILE.read_text(encoding="utf-8")))


def fitted_constants() -> Constants:
    """The constants as stored in ``gpu_performance.json``."""
    data = _data()
    fitted: dict[str, Any] = {key: float(value) for key, value in data["fitted"].items() if key != "fitted_on"}
    defaults = data["defaults"]
    return Constants(
        **fitted,
        half_efficiency_prefill_tokens=float(defaults["half_efficiency_prefill_tokens"]),
        prefill_peak_fraction=float(defaults["prefill_peak_fraction"]),
    )


def known_performance_gpus() -> list[str]:
    """GPU names (as the GPU catalog spells them) the model has figures for."""
    return sorted(_data()["gpus"])


def gpu_performance(name: str) -> GpuPerformance:
    """The figures of one GPU by its catalog name (``H100-80GB``) or an alias the catalog accepts.

    Raises:
        ValueError: no sourced figures for that GPU (the message lists those known).
    """
    data = _data()
    canonical = name
    if name not in data["gpus"]:
        try:
            from pulumi_vllm.capacity.gpus import lookup_gpu

            canonical = lookup_gpu(name).name
        except ValueError:
            canonical = name
    row = data["gpus"].get(canonical)
    if row is None:
        raise ValueError(
            f"no performance figures for GPU {name!r}; the model knows: {', '.join(known_performance_gpus())}"
        )
    defaults = data["defaults"]
    reference = data["gpus"][defaults["matmul_reference_gpu"]]
    tensor_scale = 1.0
    if row.get("matmul_bf16_tflops"):
        tensor_scale = (float(row["matmul_bf16_tflops"]) / float(row["bf16_tflops"])) / (
            float(reference["matmul_bf16_tflops"]) / float(reference["bf16_tflops"]))
    return GpuPerformance(
        name=canonical,
        memory_bandwidth_gb_s=float(row["memory_bandwidth_gb_s"]),
        bf16_tflops=float(row["bf16_tflops"]),
        fp8_tflops=None if row.get("fp8_tflops") is None else float(row["fp8_tflops"]),
        interconnect=str(row["interconnect"]),
        interconnect_gb_s=float(row["interconnect_gb_s"]),
        interconnect_latency_us=float(data["interconnect_latency_us"][row["interconnect"]]),
        streaming_fraction=float(row.get("streaming_fraction", defaults["streaming_fraction"])),
        # Bytes in flight scale with bandwidth (Little's law for memory): a GPU with a tenth of the H100's
        # bandwidth reaches the same share of it with matrices a tenth the size.
        half_efficiency_matrix_mb=float(row.get(
            "half_efficiency_matrix_mb",
            defaults["half_efficiency_matrix_mb"] * float(row["memory_bandwidth_gb_s"]) / _REFERENCE_BANDWIDTH_GB_S,
        )),
        source=str(row["source"]),
        overrides=tuple((str(key), float(value)) for key, value in row.get("overrides", {}).items()),
        vendor=str(row.get("vendor", "nvidia")),
        tensor_scale=tensor_scale,
    )


@dataclass(frozen=True)
class ServingLayout:
    """One vLLM deployment as the performance model sees it."""

    gpu: str
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    replicas: int = 1
    weight_dtype: str | None = None
    """``None``: as vLLM loads the checkpoint (:func:`resolve_weight_dtype`)."""
    kv_cache_dtype: str = "auto"
    max_num_seqs: int = 256
    max_num_batched_tokens: int = 8192
    chunked_prefill: bool = True
    kv_cache_tokens: int | None = None
    """Tokens one engine's KV cache holds (the capacity planner's figure); ``None``: not a limit."""
    model_id: str = ""
    async_scheduling: bool = True
    """vLLM schedules step N+1 while step N runs on the GPU, so the CPU's part of a step (``step_overhead_ms``,
    ``per_sequence_overhead_us``) overlaps the GPU's instead of adding to it: on by default since vLLM 0.14.0
    (https://github.com/vllm-project/vllm/releases/tag/v0.14.0, pull request 27614), but not with pipeline
    parallelism, where it stays off whatever this says."""

    @property
    def gpus(self) -> int:
        """GPUs of the whole deployment."""
        return self.tensor_parallel_size * self.pipeline_parallel_size * self.data_parallel_size * self.replicas

    @property
    def engines(self) -> int:
        """Independent vLLM engines the traffic is spread over (data-parallel ranks times replicas)."""
        return self.data_parallel_size * self.replicas


@dataclass(frozen=True)
class Workload:
    """Requests of ``input_tokens`` in and ``output_tokens`` out, at a Poisson ``rate`` (requests/s over the
    whole deployment) or a closed loop of ``concurrency`` clients (``vllm bench serve --max-concurrency``)."""

    input_tokens: int
    output_tokens: int
    rate: float | None = None
    concurrency: int | None = None
    requests: int | None = None
    """The run sends this many requests and stops (``--num-prompts``), so it is predicted as a finite run: at a
    ``rate``, arrivals over ``requests / rate`` seconds; in a closed loop, the clients' requests one after another.
    Throughput is over the makespan. ``None``: at a rate, a steady state; in a closed loop, a long run
    (:data:`CLOSED_LOOP_ROUNDS` requests per client) whose throughput is taken while every client still has a
    request to send."""
    varied_lengths: bool = False
    """Output lengths vary from request to request (they stop at end of sequence): a closed loop's clients drift
    apart and their prompts arrive one by one. ``False`` (every request the same lengths, as ``vllm bench serve``
    with a random dataset): clients that started together finish in the same step and send their next prompts
    together, which are prefilled in the same steps. In a run of a known request count, varied outputs are spread
    exponentially around ``output_tokens`` (:func:`_output_lengths`)."""
    prefix_hit_rate: float = 0.0
    """Share of each prompt's tokens found in vLLM's prefix cache (a system prompt, a document or a conversation's
    history sent before; vLLM reports it as the prefix cache hit rate): only the rest is prefilled, each computed
    token still attending to the whole prompt before it. The cache is counted as if every request held its whole
    prompt (vLLM shares a common prefix's blocks, so it holds more requests than the model says)."""

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens of each request found in the prefix cache (at least one token is always computed)."""
        return min(self.input_tokens - 1, math.floor(self.prefix_hit_rate * self.input_tokens))

    def __post_init__(self) -> None:
        if self.input_tokens < 1 or self.output_tokens < 1:
            raise ValueError(
                f"input_tokens and output_tokens must be at least 1, got {self.input_tokens} and {self.output_tokens}"
            )
        if (self.rate is None) == (self.concurrency is None):
            raise ValueError("give exactly one of rate (requests/s) and concurrency (clients)")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"rate must be above 0 requests/s, got {self.rate}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.requests is not None and self.requests < 1:
            raise ValueError(f"requests (a finite run) must be at least 1, got {self.requests}")
        if not 0 <= self.prefix_hit_rate < 1:
            raise ValueError(f"prefix_hit_rate must be at least 0 and below 1, got {self.prefix_hit_rate}")


@dataclass(frozen=True)
class Percentiles:
    """A latency's median and 90th percentile, in milliseconds."""

    p50: float
    p90: float

    def as_json(self) -> dict[str, float]:
        """``{"p50": ..., "p90": ...}`` rounded to 0.01 ms."""
        return {"p50": round(self.p50, 2), "p90": round(self.p90, 2)}


@dataclass(frozen=True)
class Prediction:
    """What the model predicts for one layout under one workload."""

    output_tokens_per_s: float
    requests_per_s: float
    ttft_ms: Percentiles
    itl_ms: Percentiles
    saturated: bool
    """The offered rate exceeds what the layout serves: the queue grows without bound."""
    capacity_requests_per_s: float
    """Requests/s the whole deployment serves at its batch limit (max_num_seqs or the KV cache)."""
    max_running_per_engine: int
    """Sequences one engine runs at once at the batch limit."""
    running_per_engine: float
    """Sequences one engine runs on average under this workload."""
    kv_cache_usage: float | None
    """Share of the KV cache the running sequences hold (``None`` without a KV-cache size)."""
    notes: tuple[str, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """The figures under the names ``pulumi-vllm size --json`` prints."""
        return {
            "output_tokens_per_s": round(self.output_tokens_per_s, 2),
            "requests_per_s": round(self.requests_per_s, 4),
            "ttft_ms": self.ttft_ms.as_json(),
            "itl_ms": self.itl_ms.as_json(),
            "saturated": self.saturated,
            "capacity_requests_per_s": round(self.capacity_requests_per_s, 4),
            "running_per_engine": round(self.running_per_engine, 2),
            "max_running_per_engine": self.max_running_per_engine,
            "kv_cache_usage": None if self.kv_cache_usage is None else round(self.kv_cache_usage, 4),
        }


@dataclass(frozen=True)
class _Model:
    """Per-engine quantities derived once from the facts, the layout and the GPU."""

    layers_per_stage: float
    hidden: int
    active_params: float
    dense_bytes: float
    """Bytes every step reads whatever the batch (embeddings, attention, shared MLP), per GPU."""
    dense_matrix_mb: float
    expert_bytes: float
    """Bytes of all routed experts, per GPU (0 for dense models)."""
    expert_matrix_mb: float
    """One routed expert's weights in one layer, per GPU."""
    experts: int
    experts_per_token: int
    expert_active_params: float
    """Routed-expert parameters one token multiplies (``active_params`` less the always-read ones)."""
    kv_bytes_per_token: float
    """KV-cache bytes of one token of context on one GPU (its layers and heads)."""
    attention_flops_per_token_context: float
    """FLOPs of attention per prompt token per token of its context, on one GPU (QK and PV of every head)."""
    decode_attention_flops_per_token_context: float
    """The same for a decoded token: equal but for multi-head latent attention, whose decode runs absorbed over
    the latent cache (QK over ``kv_lora_rank + qk_rope_head_dim``, PV over ``kv_lora_rank``) while its prefill
    runs unabsorbed, on up-projected keys (``head_dim``) and values (``v_head_dim``)."""
    lm_head_params: float
    """Parameters of the LM head (vocabulary x hidden), part of ``active_params``: a decode token multiplies them,
    a prompt only for its last token (vLLM computes logits at ``logits_indices``, one position per request)."""
    compute_tflops: float
    bandwidth_gb_s: float
    weight_dtype: str
    gpu: GpuPerformance
    tp: int
    pp: int
    overlapped: bool = False
    """Async scheduling: the step's CPU part runs beside its GPU part (``ServingLayout.async_scheduling``)."""
    attention_tflops: float = 0.0
    """Dense rate attention's products run at: 16-bit (queries, keys and values are bf16 whatever the weights' format,
    with the default KV cache), the GPU's ``bf16_tflops`` times its ``tensor_scale``; 0: ``compute_tflops``."""
    ridge_scale: float = 1.0
    """This GPU's and weight format's roofline ridge in tokens per step, over the measured H100's in bf16: the
    tokens at which a matrix product stops being bound by its weight reads (``half_efficiency_prefill_tokens``)."""


def active_parameters(facts: ModelFacts) -> tuple[float, float, float]:
    """``(always-read parameters, routed-expert parameters, active parameters per token)``.

    Embeddings and LM head (untied), attention and everything that is not a routed expert are read for every
    token; the routed experts hold the rest of ``num_parameters``, of which ``num_experts_per_token /
    num_experts`` are active. DeepSeek's shared experts and first dense layers count as routed here, so its
    active count comes out about 9% below the published 37B.
    """
    from pulumi_vllm.capacity.planner import estimate_num_parameters

    total = facts.num_parameters or estimate_num_parameters(facts)
    hidden = facts.hidden_size
    embeddings = 2 * facts.vocab_size * hidden
    if facts.use_mla:
        attention = _MLA_ATTENTION_PER_HEAD_DIM * hidden * facts.num_attention_heads * 128
    else:
        heads, kv, dim = facts.num_attention_heads, facts.num_key_value_heads, facts.head_dim
        attention = 2 * hidden * heads * dim + 2 * hidden * kv * dim
    if not facts.num_experts or not facts.num_experts_per_token:
        return total, 0.0, total
    always = min(total, embeddings + facts.num_hidden_layers * attention)
    routed = total - always
    return always, routed, always + routed * facts.num_experts_per_token / facts.num_experts


def _compute_tflops(gpu: GpuPerformance, weight_dtype: str) -> float:
    """Dense rate of the precision the matrix products run in: fp8 and int8 weights with 8-bit activations
    where the GPU has them (W8A8), otherwise 16-bit (4-bit weights are dequantised: W4A16), times the GPU's
    ``tensor_scale``."""
    if weight_dtype in ("fp8", "int8") and gpu.fp8_tflops:
        return gpu.fp8_tflops * gpu.tensor_scale
    return gpu.bf16_tflops * gpu.tensor_scale


def weight_split(facts: ModelFacts, weight_dtype: str) -> tuple[float, float, float]:
    """``(bytes every step reads, bytes of all routed experts, active parameters per token)`` of one model copy.

    From :func:`pulumi_vllm.capacity.weights.weight_breakdown` (weights as vLLM loads them: shared experts,
    dense layers, MLA ranks, padding) where it knows the model; else from :func:`active_parameters`.
    """
    per_weight = WEIGHT_BYTES[weight_dtype]
    try:
        from pulumi_vllm.capacity.weights import active_weight_bytes_per_token, weight_breakdown

        breakdown = weight_breakdown(facts, weight_dtype)
        routed = sum(layer.expert_bytes for layer in breakdown.layers) * breakdown.expert_pad(1)
        active_bytes = active_weight_bytes_per_token(facts, weight_dtype)
    except (ImportError, AttributeError, ValueError, KeyError):
        always, routed_params, active = active_parameters(facts)
        return always * per_weight, routed_params * per_weight, active
    if not facts.num_experts or not facts.num_experts_per_token:
        return active_bytes, 0.0, active_bytes / per_weight
    picked = min(facts.num_experts_per_token, facts.num_experts) / facts.num_experts
    always_bytes = max(0.0, active_bytes - routed * picked)
    return always_bytes, routed, active_bytes / per_weight


def _derive(facts: ModelFacts, layout: ServingLayout) -> _Model:
    gpu = gpu_performance(layout.gpu)
    dtype = resolve_weight_dtype(facts, layout.weight_dtype, layout.model_id)
    per_weight = WEIGHT_BYTES[dtype]
    tp, pp = layout.tensor_parallel_size, layout.pipeline_parallel_size
    always_bytes, routed_bytes, active = weight_split(facts, dtype)
    always, routed = always_bytes / per_weight, routed_bytes / per_weight
    kv = kv_cache_bytes_per_token(facts, tp, layout.kv_cache_dtype) / pp
    experts = facts.num_experts or 0
    layers = facts.num_hidden_layers
    dense_matrices = 4 * layers + 1  # qkv, o, gate_up, down per layer; the LM head
    # vLLM's fused MoE kernel runs one grouped product over the experts a step touches in a layer: its
    # efficiency follows the bytes of all those experts, not of one (see step_seconds).
    expert_matrix = routed / max(1, experts) / layers if experts else 0.0
    q_dim = facts.num_attention_heads * facts.head_dim
    prefill_attention = decode_attention = 4.0 * q_dim * layers
    if facts.use_mla and facts.kv_lora_rank:
        heads = facts.num_attention_heads
        prefill_attention = 2.0 * heads * (facts.head_dim + (facts.v_head_dim or facts.head_dim)) * layers
        decode_attention = 2.0 * heads * (2 * facts.kv_lora_rank + (facts.qk_rope_head_dim or 0)) * layers
    expert_active = max(0.0, active - always) if experts else 0.0
    if experts and facts.num_experts_per_token:
        # FLOPs follow parameters, not bytes: a checkpoint that quantises only its experts (gpt-oss's MXFP4 experts
        # beside bf16 attention) would otherwise count its 16-bit weights as twice or four times as many
        # parameters. The input embedding is gathered, not multiplied.
        always_params, routed_params, _ = active_parameters(facts)
        expert_active = routed_params * min(facts.num_experts_per_token, experts) / experts
        active = max(0.0, always_params - facts.vocab_size * facts.hidden_size) + expert_active
    return _Model(
        layers_per_stage=layers / pp,
        hidden=facts.hidden_size,
        active_params=active,
        dense_bytes=always * per_weight / (tp * pp),
        dense_matrix_mb=always * per_weight / dense_matrices / tp / 1e6,
        expert_bytes=routed * per_weight / (tp * pp),
        expert_matrix_mb=expert_matrix * per_weight / tp / 1e6,
        experts=experts,
        experts_per_token=facts.num_experts_per_token or 0,
        expert_active_params=expert_active,
        kv_bytes_per_token=kv,
        attention_flops_per_token_context=prefill_attention / (tp * pp),
        decode_attention_flops_per_token_context=decode_attention / (tp * pp),
        lm_head_params=float(facts.vocab_size * facts.hidden_size),
        compute_tflops=_compute_tflops(gpu, dtype),
        attention_tflops=_compute_tflops(gpu, "bfloat16"),
        bandwidth_gb_s=gpu.memory_bandwidth_gb_s,
        weight_dtype=dtype,
        gpu=gpu,
        tp=tp,
        pp=pp,
        overlapped=layout.async_scheduling and pp == 1,
        # A product of m tokens by a weight matrix does 2 m FLOPs per weight and reads the weight's bytes once: it
        # turns compute-bound at m = (FLOP/s over bytes/s) x bytes per weight / 2 tokens, 295 on an H100 in bf16,
        # where the GEMM curve was measured (its rate is half the peak at about 256). A GPU with less bandwidth per
        # FLOP, or weights of fewer bytes (int4 reads a quarter of bf16's), turns compute-bound at fewer tokens.
        ridge_scale=(_compute_tflops(gpu, dtype) / gpu.memory_bandwidth_gb_s) / (989.0 / _REFERENCE_BANDWIDTH_GB_S)
        * per_weight / 2.0,
    )


def _matrix_efficiency(model: _Model, matrix_mb: float) -> float:
    return model.gpu.streaming_fraction * matrix_mb / (matrix_mb + model.gpu.half_efficiency_matrix_mb)


def _allreduce_s(model: _Model, tokens: float) -> float:
    """Two all-reduces per layer of the tokens' hidden states (bf16) over the tensor-parallel group."""
    if model.tp == 1:
        return 0.0
    message = tokens * model.hidden * 2
    ring = 2 * (model.tp - 1) / model.tp * message / (model.gpu.interconnect_gb_s * 1e9)
    return 2 * model.layers_per_stage * (model.gpu.interconnect_latency_us * 1e-6 + ring)


def step_seconds(
    model: _Model, constants: Constants, decode_seqs: float, context_tokens: float, prefill_tokens: float,
    prefill_requests: float | None = None, prefill_pairs: float | None = None,
) -> float:
    """One scheduler step of one pipeline stage: ``decode_seqs`` sequences of ``context_tokens`` average
    context each decode one token, and ``prefill_tokens`` prompt tokens of ``prefill_requests`` prompts
    (``None``: one, if any) are prefilled. The LM head multiplies one position per request of the step, not every
    prompt token. ``prefill_pairs``: the (query, key) pairs the prompt tokens attend to, each to the tokens of its
    own prompt up to itself (``None``: one prompt from its start, ``prefill_tokens ** 2 / 2``); a prompt of ``n``
    tokens has ``n ** 2 / 2`` however it is chunked or batched with others."""
    software = constants.amd_software_factor if model.gpu.vendor == "amd" else 1.0
    bandwidth = model.bandwidth_gb_s * 1e9 * software
    tokens = decode_seqs + prefill_tokens
    ceiling = model.gpu.streaming_fraction
    dense_share = min(ceiling, _matrix_efficiency(model, model.dense_matrix_mb) * constants.decode_bandwidth_factor)
    weights = model.dense_bytes / (bandwidth * dense_share)
    per_expert = 0.0
    expert_read = 0.0
    int4 = constants.int4_moe_factor if model.weight_dtype == "int4" else 1.0
    if model.experts:
        touched = 1 - (1 - model.experts_per_token / model.experts) ** max(tokens, 1.0)
        touched_experts = max(model.experts_per_token, model.experts * touched)
        grouped_mb = model.expert_matrix_mb * touched_experts
        # Tokens each touched expert multiplies: 1 for a lone decode, many for a prompt chunk.
        per_expert = max(1.0, tokens) * model.experts_per_token / touched_experts
        kernel = constants.moe_bandwidth_factor * int4
        if constants.moe_half_tokens_per_expert > 0:
            grown = (per_expert - 1) / (per_expert - 1 + constants.moe_half_tokens_per_expert)
            kernel += (1 - kernel) * grown
        expert_share = min(ceiling, _matrix_efficiency(model, grouped_mb) * constants.decode_bandwidth_factor * kernel)
        expert_read = model.expert_bytes * touched / (bandwidth * expert_share)
    kv_read = decode_seqs * context_tokens * model.kv_bytes_per_token / (
        bandwidth * model.gpu.streaming_fraction * constants.kv_bandwidth_factor
    )
    peak = model.compute_tflops * 1e12 * software * constants.prefill_efficiency_factor
    attention_peak = (model.attention_tflops or model.compute_tflops) * 1e12 * software * (
        constants.prefill_efficiency_factor)
    half = constants.half_efficiency_prefill_tokens * model.ridge_scale
    if prefill_requests is None:
        prefill_requests = 1.0 if prefill_tokens > 0 else 0.0
    head = min(model.lm_head_params, max(0.0, model.active_params - model.expert_active_params))
    flops = 2 * (model.active_params - model.expert_active_params - head) / (model.tp * model.pp) * tokens
    flops += 2 * head / (model.tp * model.pp) * (decode_seqs + min(prefill_tokens, prefill_requests))
    if prefill_pairs is None:
        prefill_pairs = prefill_tokens * prefill_tokens / 2
    # Attention multiplies 16-bit queries, keys and values whatever the weights' format: an FP8 model's products
    # run at the FP8 rate, its attention at the 16-bit one.
    attention_flops = model.attention_flops_per_token_context * prefill_pairs
    attention_flops += model.decode_attention_flops_per_token_context * decode_seqs * context_tokens
    work = flops / peak + attention_flops / attention_peak
    compute = work / (constants.prefill_peak_fraction * tokens / (tokens + half)) if tokens > 0 else 0.0
    overhead = constants.step_overhead_ms * 1e-3 + constants.per_sequence_overhead_us * 1e-6 * decode_seqs
    # Each kernel is bound by its own roofline: the dense and attention kernels by their reads or their FLOPs, the
    # grouped expert products by their expert reads (which already slow down with few rows per expert) or their
    # FLOPs at the grouped kernel's compute-bound rate. A max over the sum would let a prompt chunk's expert FLOPs
    # hide behind the dense reads; a rate curve in rows per expert would count the memory bound twice.
    expert_time = 0.0
    if model.experts:
        expert_flops = 2 * model.expert_active_params / (model.tp * model.pp) * tokens
        # A 4-bit fused-MoE kernel dequantises in its inner loop: its products, not only its reads, run at
        # ``int4_moe_factor`` of the 16-bit kernel's.
        expert_compute = expert_flops / (peak * constants.prefill_peak_fraction * constants.moe_compute_factor * int4)
        expert_time = max(expert_read, expert_compute)
    device = max(weights + kv_read, compute) + expert_time + _allreduce_s(model, tokens)
    # With async scheduling the CPU prepares the next step while the GPU runs this one: the slower of the two.
    return max(device, overhead) if model.overlapped else device + overhead / model.pp


@dataclass(frozen=True)
class _Steady:
    step_s: float
    decode_step_s: float
    running: float
    requests_per_s: float
    ttft_s: float
    mixed_step_s: float = 0.0
    """A step that carries the prompts arriving in it as well as the running decodes."""
    prompt_step_share: float = 0.0
    """Share of the decode steps that carry a prompt (``1 - exp(-prompts arriving per step)``)."""


def _steady_state(
    model: _Model, layout: ServingLayout, constants: Constants, workload: Workload, clients: float | None,
    rate: float | None,
) -> _Steady:
    """Solve step time, running batch and throughput of one engine together (fixed point).

    ``clients``: a closed loop of that many (requests/s follow from the latency); ``rate``: requests/s offered.
    """
    inputs, outputs = workload.input_tokens, workload.output_tokens
    cached = workload.cached_tokens
    computed = inputs - cached  # prompt tokens prefilled: those the prefix cache does not hold
    position = (inputs + cached) / 2  # the mean position a computed prompt token attends to
    context = inputs + outputs / 2
    budget = layout.max_num_batched_tokens
    pp = model.pp
    step = step_seconds(model, constants, 1, context, 0)
    throughput = 0.0
    running = 1.0
    ttft = 0.0
    decode_step = step
    # A closed loop of equal lengths runs in lockstep: every client finishes in the same step and sends its next
    # prompt at once, so the prompts are prefilled together (in each one's TTFT) while nothing decodes, and the
    # decode steps that follow carry no prompt chunks.
    lockstep = clients is not None and not workload.varied_lengths
    for _ in range(200):
        # The others, decoding while this prompt is prefilled (none in lockstep).
        decoding = 0.0 if lockstep else max(0.0, running - 1) / pp
        # Prompts prefilled together with this one: every client's in lockstep; with varied lengths (or at a rate)
        # they come one by one.
        together = max(1.0, clients or 1.0) if lockstep else 1.0
        prompt_tokens = computed * together
        chunk_room = max(1.0, budget - decoding) if layout.chunked_prefill else float(max(budget, prompt_tokens))
        # The prompt tokens go in full chunks of the room left by the decodes and a last, shorter one (each chunk
        # on the GEMM rate curve of its own tokens). Each prompt attends to itself only (``together * computed *
        # position`` pairs over all chunks, shared in proportion to their tokens), not to the others of its step.
        full = math.floor(prompt_tokens / chunk_room)
        rest = prompt_tokens - full * chunk_room
        pairs = together * computed * position
        prefill_s = 0.0
        for size, count in ((chunk_room, full), (rest, 1 if rest > 0 else 0)):
            if count:
                prefill_s += count * step_seconds(
                    model, constants, decoding, context, size, max(1.0, size / computed), pairs * size / prompt_tokens)
        # A prompt that arrives while others decode waits for the step in flight (and the engine's output
        # processing of it) before it is scheduled; an idle engine takes it at once.
        busy = min(1.0, decoding * pp)
        ttft = (prefill_s + constants.ttft_decode_steps * busy * step) * pp
        ttft += constants.request_overhead_ms * 1e-3
        e2e = ttft + (outputs - 1) * step * pp
        if clients is not None:
            throughput = clients / e2e
        else:
            throughput = rate or 0.0
        running_next = throughput * (outputs - 1) * step * pp if outputs > 1 else 0.0
        running_next = min(running_next, float(layout.max_num_seqs))
        # Prompt tokens of the other requests per micro-batch step (a request's own prompt is in its TTFT).
        if lockstep:
            others = 0.0
        else:
            others = (clients - 1) / clients if clients is not None else running / (running + 1)
        prefill_per_step = throughput * computed * step * max(0.0, others)
        decode_step = step_seconds(model, constants, running_next / pp, context, 0)
        others_chunk = min(prefill_per_step, budget)
        new_step = step_seconds(model, constants, running_next / pp, context, others_chunk, others_chunk / computed,
                                others_chunk * position)
        if abs(new_step - step) < 1e-7 and abs(running_next - running) < 1e-4:
            step, running = new_step, running_next
            break
        step = 0.5 * step + 0.5 * new_step
        running = 0.5 * running + 0.5 * running_next
    # A prompt is scheduled whole (up to the budget) in the first step after it arrives, so the steps that carry one
    # are longer than the rest; the median gap between tokens is one of them once most steps do.
    arriving = throughput * step * pp * max(0.0, others)
    mixed_tokens = min(float(budget), computed * max(1.0, arriving))
    mixed = step_seconds(model, constants, running / pp, context, mixed_tokens, max(1.0, arriving),
                         mixed_tokens * position) if arriving > 0 else decode_step
    return _Steady(step * pp, decode_step * pp, running, throughput, ttft, mixed * pp, 1 - math.exp(-arriving))


def _limit(layout: ServingLayout, workload: Workload) -> int:
    """Sequences one engine runs at once in a steady state: max_num_seqs, or fewer when the KV cache holds fewer
    requests of the mean length a running one has (its prompt and half its output: vLLM's V1 scheduler allocates a
    sequence's cache as it grows, and preempts the latest-admitted sequence when the cache runs out)."""
    limit = layout.max_num_seqs
    if layout.kv_cache_tokens is not None:
        held = workload.input_tokens + workload.output_tokens / 2
        limit = min(limit, max(1, math.floor(layout.kv_cache_tokens / held)))
    return max(1, limit)


@dataclass(eq=False)
class _Request:
    """One request in a simulated run (compared by identity: two requests may hold the same figures)."""

    arrival: float
    outputs: int
    prompt: int
    """Tokens to prefill: the prompt, or, once preempted, the prompt and the tokens generated before (recomputed)."""
    prefilled: int = 0
    generated: int = 0
    resumed_at: int = 0
    """Tokens generated when the request was last preempted (0: never): those are part of ``prompt`` now."""
    started: bool = False
    """Its first token came (a recomputed prompt does not count again)."""
    cached: int = 0
    """Tokens of its prompt the prefix cache holds: its workload's cached prefix, or, once preempted, those of its
    freed cache not yet reused by others (prefix caching finds them again)."""

    @property
    def held(self) -> int:
        """KV-cache tokens it holds: the prompt computed so far and the tokens generated since."""
        return self.prefilled + self.generated - self.resumed_at

    @property
    def decoding(self) -> bool:
        return self.prefilled >= self.prompt


def _output_lengths(count: int, mean: int, varied: bool) -> list[int]:
    """Each request's output tokens: ``mean`` for all, or, where lengths vary (requests stop at end of sequence),
    spread as an exponential distribution of that mean (the most even spread a mean alone allows: a run's longest
    request is several times its mean, and the run lasts until it finishes), in an order that mixes long and
    short ones."""
    if not varied or count == 1:
        return [mean] * count
    quantiles = [-math.log(1 - (index + 0.5) / count) for index in range(count)]
    scale = mean * count / sum(quantiles)
    lengths = [max(1, round(scale * quantile)) for quantile in quantiles]
    order = sorted(range(count), key=lambda index: (index * 2654435761) % 4294967296)
    return [lengths[index] for index in order]


CLOSED_LOOP_ROUNDS = 8
"""Requests per client of a closed loop whose request count is not given: enough that the median request is
one of the later rounds (clients that start together drift apart once their prompts take more than one step)."""


@dataclass(frozen=True)
class _Run:
    """What a simulated finite run of one engine gives."""

    makespan_s: float
    ttft_s: tuple[float, ...]
    itl_p50_s: float
    itl_p90_s: float
    running: float
    """Sequences decoding, averaged over the run's time."""
    waited: bool
    """Some request found the batch full (``max_num_seqs`` or the KV cache) and waited for room, or was preempted."""
    requests_per_s: float = 0.0
    """Requests finished per second: over the makespan, or, for a closed loop without a request count, until its
    last request is sent (while every client is busy)."""
    preemptions: int = 0
    """Times the KV cache ran out and a running sequence was preempted (its cache freed, its tokens recomputed)."""


def _percentile(values: tuple[float, ...], share: float) -> float:
    """The ``share`` percentile of sorted ``values``, interpolated between the two nearest as NumPy's default (and
    so ``vllm bench serve``) does: the median of an even count is the mean of the middle two."""
    if not values:
        return 0.0
    position = share * (len(values) - 1)
    below = math.floor(position)
    above = min(below + 1, len(values) - 1)
    return values[below] + (values[above] - values[below]) * (position - below)


def _weighted_percentile(samples: list[tuple[float, float]], share: float) -> float:
    """The value below which ``share`` of the weight lies, of ``(value, weight)`` pairs."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    total = sum(weight for _, weight in ordered)
    seen = 0.0
    for value, weight in ordered:
        seen += weight
        if seen >= share * total:
            return value
    return ordered[-1][0]


def _simulate_run(model: _Model, layout: ServingLayout, constants: Constants, workload: Workload,
                  engines: int) -> _Run:
    """One engine's share of a run of ``workload.requests`` requests, step by step as vLLM's V1 scheduler runs it.

    Requests arrive evenly at the run's rate (all at once at an unbounded one); in a closed loop, each client sends
    its first request at the start and its next one when the last token of the previous one reaches it (the
    non-serial part of the request overhead after the engine finished it). The front end, one event loop,
    takes ``frontend_ms_per_request`` of serial work to hand each to the engine; the rest of ``request_overhead_ms``
    is latency that overlaps with other requests. Each
    step gives every decoding sequence one token of the ``max_num_batched_tokens`` budget, continues the prompts
    being prefilled, then admits waiting requests in arrival order while the batch has room (``max_num_seqs``
    sequences, and KV cache for the prompt's first chunk), chunking a prompt to the budget left; the step takes
    :func:`step_seconds` of what it carries. A request's first token comes with its prompt's last chunk.
    The KV cache is allocated as vLLM's V1 scheduler does, to what each sequence has computed (in tokens, not
    16-token blocks): when a running sequence finds no room for its next token or chunk, the latest-admitted
    sequence is preempted (its cache freed, the request queued first, no request admitted that step); when it is
    admitted again, prefix caching (on by default) finds the part of its freed cache that no other sequence has
    grown into since (the longest-freed is reused first) and the rest of its prompt and output so far is computed
    again. Steps that only decode are taken together until the next request finishes, the cache runs out or a
    request can be admitted.
    """
    closed = workload.concurrency is not None
    if closed:
        assert workload.concurrency is not None
        clients = max(1, round(workload.concurrency / engines))
        count = (max(1, round(workload.requests / engines)) if workload.requests is not None
                 else clients * CLOSED_LOOP_ROUNDS)
        rate = math.inf
    else:
        assert workload.rate is not None and workload.requests is not None
        count = max(1, round(workload.requests / engines))
        clients = count
        rate = workload.rate / engines
    inputs, outputs = workload.input_tokens, workload.output_tokens
    budget = layout.max_num_batched_tokens
    pp = model.pp
    serial = max(0.0, min(constants.frontend_ms_per_request, constants.request_overhead_ms)) * 1e-3
    latency = constants.request_overhead_ms * 1e-3 - serial
    cache = layout.kv_cache_tokens
    prefix = workload.cached_tokens
    lengths = _output_lengths(count, outputs, workload.varied_lengths)
    if cache is not None:
        # vLLM refuses a request longer than its context; a cache below one request runs each alone.
        cache = max(cache, inputs + max(lengths))
    arrivals = [index / rate if math.isfinite(rate) else 0.0 for index in range(min(count, clients))]
    pending = 0  # next request the front end has not handed over yet
    front = 0.0  # when the front end is next free
    ready: list[_Request] = []  # handed to the engine, not yet scheduled (preempted ones first)
    running: list[_Request] = []
    ttft: list[float] = []
    gaps: list[tuple[float, float]] = []
    now = 0.0
    busy_time = running_time = 0.0
    waited = False
    preemptions = 0
    done = 0
    finish_times: list[float] = []
    evictable: list[_Request] = []  # preempted, their freed cache still findable, oldest first

    def evict(free: float) -> None:
        """Take the cache the running sequences grew into (leaving ``free`` tokens) from the preempted sequences'
        freed cache, the longest-freed first (vLLM's free queue is least recently used first)."""
        if not evictable:
            return
        short = sum(request.cached for request in evictable) - free
        while short > 0 and evictable:
            taken = min(math.ceil(short), evictable[0].cached)
            evictable[0].cached -= taken
            short -= taken
            if not evictable[0].cached:
                evictable.pop(0)

    def hand_over(until: float) -> None:
        nonlocal pending, front
        while pending < len(arrivals) and max(arrivals[pending], front) + serial <= until:
            front = max(arrivals[pending], front) + serial
            ready.append(_Request(arrivals[pending], lengths[pending], inputs, cached=prefix))
            pending += 1

    def preempt() -> int:
        """Free the latest-admitted sequence's cache and queue it first, to recompute what it had (V1's default
        policy, first come first served); the tokens it freed."""
        nonlocal preemptions, waited
        waited = True
        victim = running.pop()
        victim.cached = victim.held
        victim.resumed_at = victim.generated
        victim.prompt = inputs + victim.generated
        victim.prefilled = 0
        ready.insert(0, victim)
        evictable.append(victim)
        preemptions += 1
        return victim.cached

    for _ in range(1_000_000):
        if done == count:
            break
        hand_over(now)
        if not running and not ready:
            now = max(arrivals[pending], front) + serial
            continue
        left = budget
        preempted = False
        # Every running sequence gets a slot for what it computes this step (decodes first, then the prompts being
        # prefilled), preempting the latest-admitted ones while the cache has no room.
        decoding: list[_Request] = []
        prefilling: list[_Request] = []
        held = decoding_held = 0
        for request in running:
            # ``request.held`` and ``request.decoding``, inlined: this loop runs every simulated step.
            tokens = request.prefilled + request.generated - request.resumed_at
            held += tokens
            if request.prefilled >= request.prompt:
                decoding.append(request)
                decoding_held += tokens
            else:
                prefilling.append(request)
        free = math.inf if cache is None else cache - held
        if free < len(decoding):
            kept: list[_Request] = []
            for request in decoding:
                while free < 1 and request in running:
                    free += preempt()
                    preempted = True
                if request not in running:
                    break
                kept.append(request)
                free -= 1
            decoding = [request for request in kept if request in running]
            prefilling = [request for request in prefilling if request in running]
        else:
            free -= len(decoding)
        left -= len(decoding)
        chunks: list[tuple[_Request, int]] = []
        for request in prefilling:
            if left <= 0:
                break
            chunk = min(request.prompt - request.prefilled, left)
            while free < chunk and request in running:
                free += preempt()
                preempted = True
            if request not in running:
                break
            chunks.append((request, chunk))
            left -= chunk
            free -= chunk
        if preempted:
            decoding = [request for request in decoding if request in running]
            chunks = [(request, chunk) for request, chunk in chunks if request in running]
        # Waiting requests are admitted in order, unless a sequence was preempted this step, while a sequence slot
        # and cache for the prompt's first chunk are free.
        while ready and left > 0 and not preempted:
            # A request finds its prompt's cached prefix, and a preempted sequence what is left of its freed cache
            # (prefix caching, vLLM's default), and computes the rest; at least its last token is computed.
            found = min(ready[0].cached, ready[0].prompt - 1)
            chunk = min(ready[0].prompt - found, left)
            if len(running) >= layout.max_num_seqs or free - found < chunk:
                waited = True
                break
            request = ready.pop(0)
            if request in evictable:
                evictable.remove(request)
            request.cached = 0
            request.prefilled = found
            running.append(request)
            chunks.append((request, chunk))
            left -= chunk
            free -= found + chunk
        if preempted:
            decoding_held = sum(request.held for request in decoding)
        context = decoding_held / len(decoding) if decoding else 0.0
        steps = 1
        if not chunks and decoding and len(decoding) == len(running):
            # Only decodes: take the steps together until a sequence finishes, the cache runs out or the next
            # request can be admitted.
            steps = min(request.outputs - request.generated for request in decoding)
            if math.isfinite(free):
                steps = max(1, min(steps, 1 + int(free // len(decoding))))
            room = not ready and len(running) < layout.max_num_seqs
            if room and pending < len(arrivals):
                probe = step_seconds(model, constants, len(decoding) / pp, context, 0) * pp
                arrival = max(arrivals[pending], front) + serial
                steps = max(1, min(steps, math.ceil((arrival - now) / probe) if probe > 0 else 1))
            context += (steps - 1) / 2
        prefill = sum(chunk for _, chunk in chunks)
        pairs = sum(chunk * (request.prefilled + chunk / 2) for request, chunk in chunks)
        step = step_seconds(model, constants, len(decoding) / pp, context, prefill / pp, len(chunks) / pp,
                            pairs / pp) * pp
        now += step * steps
        busy_time += step * steps
        running_time += len(decoding) * step * steps
        if decoding:
            gaps.append((step, float(len(decoding) * steps)))
        for request in decoding:
            request.generated += steps
        for request, chunk in chunks:
            request.prefilled += chunk
        evict(free - (steps - 1) * len(decoding))
        for request, chunk in chunks:
            if request.decoding:
                request.generated += 1
                if not request.started:
                    request.started = True
                    ttft.append(now - request.arrival + latency)
        finished = [request for request in running if request.generated >= request.outputs]
        done += len(finished)
        for _request in finished:
            if closed and len(arrivals) < count:
                arrivals.append(now + latency)
            finish_times.append(now)
        running = [request for request in running if request.generated < request.outputs]
    makespan = now + latency
    requests_per_s = len(ttft) / makespan
    if closed and workload.requests is None and count > clients:
        # A long run's rate, without the last round, in which clients run out of requests one by one.
        last_sent = arrivals[-1]
        requests_per_s = sum(1 for time in finish_times if time <= last_sent) / max(last_sent, 1e-12)
    return _Run(
        makespan_s=makespan, ttft_s=tuple(sorted(ttft)), itl_p50_s=_weighted_percentile(gaps, 0.5),
        itl_p90_s=_weighted_percentile(gaps, 0.9), running=running_time / max(busy_time, 1e-12), waited=waited,
        requests_per_s=requests_per_s, preemptions=preemptions,
    )


def predict(
    facts: ModelFacts, layout: ServingLayout, workload: Workload, constants: Constants | None = None,
) -> Prediction:
    """Throughput, TTFT and ITL of ``layout`` under ``workload``.

    Raises:
        ValueError: a GPU without figures, an unknown dtype, or a layout with a size below 1.
    """
    for name in ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size", "replicas"):
        if getattr(layout, name) < 1:
            raise ValueError(f"{name} must be at least 1, got {getattr(layout, name)}")
    model = _derive(facts, layout)
    constants = constants or fitted_constants()
    overrides: dict[str, Any] = {key: value for key, value in model.gpu.overrides if key not in constants.measured}
    constants = replace(constants, **overrides)
    limit = _limit(layout, workload)
    bounded = replace(layout, max_num_seqs=limit)
    # Arrivals at a rate come one by one, never as a closed loop's lockstep burst.
    arrivals = workload if workload.rate is None else replace(workload, varied_lengths=True)
    capacity = _steady_state(model, bounded, constants, arrivals, clients=float(limit), rate=None)
    engines = layout.engines
    notes: list[str] = []
    if workload.concurrency is not None or workload.requests is not None:
        run = _simulate_run(model, layout, constants, workload, engines)
        throughput = run.requests_per_s * engines
        ttft50 = _percentile(run.ttft_s, 0.5)
        ttft90 = _percentile(run.ttft_s, 0.9)
        saturated = run.waited
        itl50, itl90, running = run.itl_p50_s, run.itl_p90_s, run.running
        if run.preemptions:
            notes.append(
                f"the KV cache runs out: {run.preemptions} preemptions per engine over the run (vLLM frees the "
                "latest-admitted sequence's cache and recomputes it later; a larger cache or fewer clients avoid it)"
            )
    else:
        assert workload.rate is not None
        per_engine_rate = workload.rate / engines
        utilisation = per_engine_rate / capacity.requests_per_s
        saturated = utilisation >= 1
        if saturated:
            state = capacity
            throughput = capacity.requests_per_s * engines
            ttft50 = ttft90 = math.inf
            notes.append(
                f"the offered {workload.rate:g} requests/s exceed the {capacity.requests_per_s * engines:.3g} this "
                "layout serves: the queue and the TTFT grow without bound"
            )
        else:
            state = _steady_state(model, bounded, constants, workload, clients=None, rate=per_engine_rate)
            throughput = workload.rate
            service = 1 / capacity.requests_per_s
            wait = utilisation / (2 * (1 - utilisation)) * service  # M/D/1 queue in front of a full batch
            ttft50 = state.ttft_s + 0.69 * wait
            ttft90 = state.ttft_s * (1 + utilisation) + 2.3 * wait
    # Every sequence gains one token per step, so the gaps between tokens are the steps: the median is a step that
    # carries a prompt once half of them do, the 90th percentile once a tenth do.
    # (A simulated run has its own.)
    if workload.concurrency is None and workload.requests is None:
        share = state.prompt_step_share
        itl50 = state.mixed_step_s if share >= 0.5 else state.decode_step_s
        itl90 = max(state.mixed_step_s, state.step_s) if share > 0.1 else max(itl50, state.step_s)
        running = state.running
    usage = None
    if layout.kv_cache_tokens:
        context = workload.input_tokens + workload.output_tokens / 2
        usage = min(1.0, running * context / layout.kv_cache_tokens)
    return Prediction(
        output_tokens_per_s=throughput * workload.output_tokens,
        requests_per_s=throughput,
        ttft_ms=Percentiles(ttft50 * 1e3, ttft90 * 1e3),
        itl_ms=Percentiles(itl50 * 1e3, max(itl50, itl90) * 1e3),
        saturated=saturated,
        capacity_requests_per_s=capacity.requests_per_s * engines,
        max_running_per_engine=limit,
        running_per_engine=running,
        kv_cache_usage=usage,
        notes=tuple(notes),
    )



def calibrate_request_overhead(
    facts: ModelFacts, layout: ServingLayout, workload: Workload, measured_ttft_ms: float,
    constants: Constants | None = None,
) -> Constants:
    """``constants`` with ``request_overhead_ms`` set so that the predicted median TTFT of ``workload`` on ``layout``
    is the measured one (``pulumi-vllm bench`` against the deployed endpoint).

    The fixed part of a TTFT belongs to the front end and the client (HTTP, the chat template, tokenising, a proxy
    or gateway in front, the host's CPU), which no GPU figure gives and which differs between hosts by several
    times: a user who measures one run on their own host predicts the others with it. Bisection over 0 to 500 ms
    (the TTFT grows with it); the bound when the measurement lies beyond it.
    """
    base = replace(constants or fitted_constants(), measured=("request_overhead_ms",))

    def ttft(value: float) -> float:
        return predict(facts, layout, workload, replace(base, request_overhead_ms=value)).ttft_ms.p50

    low, high = 0.0, 500.0
    if ttft(low) >= measured_ttft_ms:
        return replace(base, request_overhead_ms=low)
    if ttft(high) <= measured_ttft_ms:
        return replace(base, request_overhead_ms=high)
    for _ in range(40):
        middle = (low + high) / 2
        if ttft(middle) < measured_ttft_ms:
            low = middle
        else:
            high = middle
    return replace(base, request_overhead_ms=(low + high) / 2)


@dataclass(frozen=True)
class AutoscalingTargets:
    """KEDA thresholds and replica bounds derived from the predicted per-replica capacity at the objective."""

    min_replicas: int
    """Replicas that serve the traffic target within the objective (the search's count)."""
    max_replicas: int
    """Half as many again, for bursts above the target."""
    waiting_requests_per_replica: float
    """Requests that may wait per replica before another is added: those that arrive within the TTFT headroom
    (the objective less the predicted p90), at least 1."""
    kv_cache_usage_percent: float | None
    """The predicted KV-cache use per replica at the target, plus 10 points (10-95); ``None`` without a KV size."""
    running_requests_per_replica: float
    """Sequences one replica runs at the target (for dashboards; KEDA scales on the two signals above)."""
    replica_requests_per_s: float
    """Requests/s one replica serves at the target."""

    def as_config(self) -> dict[str, Any]:
        """The ``autoscaling`` section's keys, in the stack file's camelCase."""
        config: dict[str, Any] = {
            "enabled": True,
            "minReplicas": self.min_replicas,
            "maxReplicas": self.max_replicas,
            "waitingRequestsPerReplica": self.waiting_requests_per_replica,
        }
        if self.kv_cache_usage_percent is not None:
            config["kvCacheUsagePercent"] = self.kv_cache_usage_percent
        return config


def autoscaling_targets(
    prediction: Prediction, replicas: int, rate: float, ttft_p90_objective_ms: float | None = None,
) -> AutoscalingTargets:
    """The targets for ``replicas`` serving ``rate`` requests/s with ``prediction`` (the search's layout at the
    objective)."""
    per_replica = rate / replicas
    if ttft_p90_objective_ms is not None and math.isfinite(prediction.ttft_ms.p90):
        headroom_s = max(0.0, ttft_p90_objective_ms - prediction.ttft_ms.p90) / 1e3
    else:
        headroom_s = prediction.itl_ms.p50 / 1e3 * 10  # about ten decode steps of waiting
    waiting = max(1.0, round(per_replica * headroom_s, 1))
    usage = prediction.kv_cache_usage
    kv = None if usage is None else float(min(95, max(10, round(usage * 100 + 10))))
    return AutoscalingTargets(
        min_replicas=replicas,
        max_replicas=max(replicas + 1, math.ceil(replicas * 1.5)),
        waiting_requests_per_replica=waiting,
        kv_cache_usage_percent=kv,
        running_requests_per_replica=round(prediction.running_per_engine, 2),
        replica_requests_per_s=per_replica,
    )
