"""Capacity planner: how much KV cache vLLM will keep, and whether a model starts at all.

This follows vLLM's own accounting (``Worker.determine_available_memory`` in
vllm/v1/worker/gpu_worker.py and ``memory_profiling`` in vllm/utils/mem_utils.py): each worker
may use ``total_memory * gpu_memory_utilization`` ("requested memory"); from that it subtracts
the weights, the peak activation of one profiling forward pass plus a dummy sampler run, the
non-torch memory that appeared since start-up (NCCL and custom all-reduce buffers, which grow with
tensor parallelism), and, from vLLM 0.21, an estimate of the CUDA graph pool. What is left is cut
into blocks of 16 tokens (``get_num_blocks`` in vllm/v1/core/kv_cache_utils.py: available //
page size // layers), and every worker keeps as many blocks as the tightest one.

The constants and their sources, each release range's :class:`Accounting`, the weight precision
vLLM loads and its error wording live in :mod:`pulumi_vllm.capacity.accounting`; the public
names there are importable from here too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.capacity.accounting import (
    BLOCK_SIZE,
    CUDA_GRAPH_GIB_PER_LAYER,
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_MLP_RATIO,
    DOCS_LINK,
    FORWARD_HIDDEN_COPIES,
    GIB,
    INT4_GROUP_OVERHEAD,
    MOE_TOP_K,
    PINNED_VLLM_VERSION,
    PIPELINE_STAGE_NON_TORCH_GIB,
    SAMPLER_LOGIT_COPIES_BEFORE_0_17,
    SAMPLER_LOGIT_COPIES_FROM_0_17,
    STARTUP_DISTRIBUTED_GIB,
    STARTUP_IN_USE_GIB,
    TENSOR_PARALLEL_PER_DOUBLING_GIB,
    Accounting,
    accounting_for,
    no_blocks_message,
    non_torch_gib,
    parse_vllm_version,
    resolve_weight_dtype,
    startup_message,
    too_long_message,
)
from pulumi_vllm.capacity.drafts import DraftWeights, draft_weights
from pulumi_vllm.capacity.gpus import GpuType, lookup_gpu
from pulumi_vllm.capacity.kv_layout import KvCacheLayout, kv_cache_layout
from pulumi_vllm.capacity.weights import WeightBreakdown, estimate_num_parameters, weight_breakdown
from pulumi_vllm.distributed.parallelism import (
    check_parallelism,
    padded_vocab_size,
)
from pulumi_vllm.engine.quantization import QUANTIZATION_METHODS, QUANTIZATION_METHODS_VERSION
from pulumi_vllm.models import catalog
from pulumi_vllm.models.facts import ModelFacts

__all__ = [
    "BLOCK_SIZE",
    "CUDA_GRAPH_GIB_PER_LAYER",
    "DEFAULT_MAX_MODEL_LEN",
    "DEFAULT_MLP_RATIO",
    "DOCS_LINK",
    "FORWARD_HIDDEN_COPIES",
    "GIB",
    "INT4_GROUP_OVERHEAD",
    "KV_CACHE_DTYPES",
    "MOE_TOP_K",
    "PINNED_VLLM_VERSION",
    "PIPELINE_STAGE_NON_TORCH_GIB",
    "SAMPLER_LOGIT_COPIES_BEFORE_0_17",
    "SAMPLER_LOGIT_COPIES_FROM_0_17",
    "STARTUP_DISTRIBUTED_GIB",
    "STARTUP_IN_USE_GIB",
    "TENSOR_PARALLEL_PER_DOUBLING_GIB",
    "Accounting",
    "CapacityPlan",
    "KvCacheLayout",
    "StagePlan",
    "WeightBreakdown",
    "accounting_for",
    "encoder_budget_tokens",
    "estimate_num_parameters",
    "kv_cache_bytes_per_token",
    "kv_cache_layout",
    "kv_slot_bytes",
    "parse_vllm_version",
    "pipeline_stage_layers",
    "plan_capacity",
    "resolve_weight_dtype",
    "speculative_config_from_args",
    "weight_breakdown",
]


_KV_BYTES: dict[str, float | None] = {
    "auto": None, "bfloat16": 2, "float16": 2,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1,
    "int8_per_token_head": 1, "fp8_per_token_head": 1, "int4_per_token_head": 0.5,
    "nvfp4": 0.5 + 1 / 16, "nvfp4_4over6": 0.5 + 1 / 16, "ultraquant_4bit": 0.5 + 1 / 32,
    "turboquant_k8v4": None, "turboquant_4bit_nc": None, "turboquant_k3v4_nc": None, "turboquant_3bit_nc": None,
    "fp8_ds_mla": None, "nvfp4_ds_mla": None,
}
"""Bytes per cached element of every ``--kv-cache-dtype`` vLLM 0.32 lists (``CacheDType``, vllm/config/cache.py;
element types in ``STR_DTYPE_TO_TORCH_DTYPE``, vllm/utils/torch_utils.py). None: ``auto`` (the model's dtype) or a
packed slot whose size :func:`kv_slot_bytes` computes. The packed formats, from vLLM 0.32's sources:

* ``*_per_token_head``: one byte per element (half for int4) and an inline float32 scale per key and per value
  (``TritonAttentionBackend.customize_spec``, vllm/v1/attention/backends/triton_attn.py; MLA:
  ``customize_spec`` in vllm/model_executor/layers/attention/mla_attention.py);
* ``nvfp4``/``nvfp4_4over6``: fp4 data plus an fp8 scale per 16 (``nvfp4_kv_cache_full_dim``,
  vllm/utils/torch_utils.py; ``FlashInferBackend.customize_spec``);
* ``ultraquant_4bit``: fp4 codes plus an E8M0 scale per 32 for keys and values (``slot_size``,
  vllm/v1/attention/ops/ultraquant/format.py);
* ``turboquant_*``: fp8 or Lloyd-Max keys with a float16 norm, uniform values with float16 scale and zero, the slot
  rounded up to even bytes (``TurboQuantConfig.slot_size_aligned``, vllm/model_executor/layers/quantization/
  turboquant/config.py; bits per preset in ``TQ_PRESETS``);
* ``fp8_ds_mla``/``nvfp4_ds_mla``: DeepSeek sparse-MLA blobs of 656 and 352 bytes per token and layer
  (``MLAAttention.get_kv_cache_spec``, mla_attention.py).
"""
KV_CACHE_DTYPES: tuple[str, ...] = tuple(_KV_BYTES)
"""Every ``--kv-cache-dtype`` choice of vLLM 0.32 (engine/serve_flags.json; a test keeps them equal)."""
_TURBOQUANT_BITS = {"turboquant_k8v4": (8, 4), "turboquant_4bit_nc": (4, 4), "turboquant_k3v4_nc": (3, 4),
                    "turboquant_3bit_nc": (3, 3)}
_DS_MLA_BYTES = {"fp8_ds_mla": 656, "nvfp4_ds_mla": 352}


def kv_slot_bytes(kv_cache_dtype: str, key_dim: int, value_dim: int, model_dtype_bytes: int = 2) -> int:
    """Bytes one token's key and value of one KV head (or one MLA latent: ``value_dim`` 0) take in one layer.

    Raises:
        ValueError: an unknown ``kv_cache_dtype``, or a DeepSeek sparse-MLA layout for a model without MLA.
    """
    if kv_cache_dtype not in _KV_BYTES:
        raise ValueError(f"unknown kv_cache_dtype {kv_cache_dtype!r}; accepted: {', '.join(_KV_BYTES)}")
    if kv_cache_dtype in _DS_MLA_BYTES:
        if value_dim:
            raise ValueError(f"kv_cache_dtype {kv_cache_dtype!r} is the DeepSeek sparse-MLA layout; this model has "
                             "no MLA")
        return _DS_MLA_BYTES[kv_cache_dtype]
    if kv_cache_dtype in _TURBOQUANT_BITS:
        key_bits, value_bits = _TURBOQUANT_BITS[kv_cache_dtype]
        key = key_dim if key_bits == 8 else math.ceil(key_dim * key_bits / 8) + 2
        value = math.ceil(value_dim * value_bits / 8) + 4 if value_dim else 0
        slot = key + value
        return slot + slot % 2
    if kv_cache_dtype.startswith("nvfp4"):
        return sum(dim // 2 + dim // 16 for dim in (key_dim, value_dim) if dim)
    if kv_cache_dtype == "ultraquant_4bit":
        return sum(dim // 2 + dim // 32 for dim in (key_dim, value_dim) if dim)
    per_element = _KV_BYTES[kv_cache_dtype] or model_dtype_bytes
    if kv_cache_dtype == "int4_per_token_head":
        return key_dim // 2 + value_dim // 2 + 2 * 4
    scales = 2 * 4 if kv_cache_dtype.endswith("_per_token_head") else 0
    return int((key_dim + value_dim) * per_element) + scales


def kv_cache_bytes_per_token(
    facts: ModelFacts, tensor_parallel_size: int = 1, kv_cache_dtype: str = "auto",
    num_layers: int | None = None, model_dtype_bytes: int = 2,
) -> int:
    """KV-cache bytes one token takes on one GPU holding ``num_layers`` layers (default: all).

    Standard attention: kv heads per rank x one key-and-value slot (:func:`kv_slot_bytes`) per layer,
    kv heads per rank never below 1 (vLLM replicates them when tensor parallelism exceeds them).
    MLA: one latent of kv_lora_rank + qk_rope_head_dim per layer, the same on every rank.
    ``auto`` stores the cache in the model's dtype (``model_dtype_bytes``: 4 when served in float32).

    Raises:
        ValueError: an unknown ``kv_cache_dtype``.
    """
    layers = facts.num_hidden_layers if num_layers is None else num_layers
    if facts.use_mla and facts.kv_lora_rank:
        per_layer = kv_slot_bytes(kv_cache_dtype, facts.kv_lora_rank + (facts.qk_rope_head_dim or 0), 0,
                                  model_dtype_bytes)
    else:
        heads_per_rank = max(1, facts.num_key_value_heads // tensor_parallel_size)
        per_layer = heads_per_rank * kv_slot_bytes(kv_cache_dtype, facts.head_dim, facts.head_dim, model_dtype_bytes)
    return per_layer * layers


def pipeline_stage_layers(num_layers: int, pipeline_parallel_size: int) -> list[int]:
    """Layers per pipeline stage as vLLM splits them (``get_pp_indices``, vllm/distributed/utils.py):
    even shares, the remainder going to the stages before the last, from the back."""
    partitions = [num_layers // pipeline_parallel_size] * pipeline_parallel_size
    for i in range(2, num_layers % pipeline_parallel_size + 2):
        partitions[-i] += 1
    return partitions


@dataclass(frozen=True)
class StagePlan:
    """Memory of one GPU in one pipeline stage (all tensor-parallel ranks of a stage are alike)."""

    layers: int
    """Decoder layers of this stage."""
    weights_gib: float
    """Weights per GPU (the first stage adds the embedding, the last the LM head)."""
    activation_gib: float
    """Peak activation of the profiling run (the last stage also runs the dummy sampler)."""
    non_torch_gib: float
    """Memory outside PyTorch that appears while profiling (NCCL, custom all-reduce)."""
    cuda_graph_gib: float
    """CUDA-graph estimate kept inside the budget (0 before vLLM 0.21)."""
    kv_cache_gib: float
    """Requested memory minus the rest, as vLLM logs "Available KV cache memory" (may be negative)."""
    kv_cache_blocks: int
    """Blocks this stage's memory holds (each block: one page for every layer of a KV-cache group)."""
    kv: KvCacheLayout
    """How vLLM groups this stage's layers in the KV cache, and what one request takes."""


@dataclass(frozen=True)
class CapacityPlan:
    """What vLLM will do with one model on one layout: memory per GPU, KV-cache size, verdict."""

    model_id: str
    gpu: str
    """GPU type name."""
    vllm_version: str
    """Release whose accounting was used."""
    tensor_parallel_size: int
    pipeline_parallel_size: int
    max_model_len: int
    gpu_memory_utilization: float
    kv_cache_dtype: str
    weight_dtype: str
    """Weight precision assumed (explicit, or inferred from the model)."""
    requested_gib_per_gpu: float
    """total memory x gpu_memory_utilization: vLLM's budget per GPU."""
    weights_gib_per_gpu: float
    """Weights of the largest pipeline stage, per GPU."""
    kv_cache_gib_per_gpu: float
    """KV-cache memory of the tightest stage, per GPU (vLLM's "Available KV cache memory")."""
    kv_cache_tokens: int
    """Tokens the KV cache holds (whole blocks of the tightest stage), vLLM's "GPU KV cache size"."""
    max_concurrency: float
    """Requests of max_model_len tokens the cache holds at once (blocks / blocks per request)."""
    fits: bool
    """Whether vLLM starts with these settings."""
    message: str
    """vLLM's own start-up error when it does not, else its KV-cache size lines."""
    max_model_len_that_fits: int
    """Longest max_model_len the KV cache holds one request of."""
    stages: tuple[StagePlan, ...]
    """One entry per pipeline stage."""
    notes: tuple[str, ...] = ()
    """Assumptions and warnings (estimated parameters, weights larger than the GPU...)."""
    weights_estimated: bool = False
    """Whether the weights rest on an estimate (no published parameter count, no checkpoint tensors)."""
    data_parallel_size: int = 1
    """Engine replicas (``--data-parallel-size``); every figure above is per GPU of one replica."""
    expert_parallel_size: int = 1
    """Ranks the routed experts are distributed over (tensor x data parallel with ``--enable-expert-parallel``,
    else 1: each expert's matrices are split instead)."""

    def summary_line(self) -> str:
        """One line for the render summary (saying so when the weights are estimated)."""
        where = f"{self.gpu}, TP {self.tensor_parallel_size} x PP {self.pipeline_parallel_size}"
        caveat = (
            "; weights estimated from config.json (no num_parameters, no checkpoint tensors)"
            if self.weights_estimated else ""
        )
        if not self.fits:
            return f"capacity: does not fit on {where}: {self.message}{caveat}"
        return (
            f"capacity: {self.kv_cache_tokens:,} KV-cache tokens, {self.max_concurrency:.1f}x "
            f"concurrency at {self.max_model_len} tokens (weights {self.weights_gib_per_gpu:.2f} "
            f"GiB/GPU on {self.gpu}){caveat}"
        )

    def as_json(self) -> dict[str, object]:
        """The figures ``pulumi-vllm size --json`` prints, under exactly these keys."""
        return {
            "weights_gib_per_gpu": round(self.weights_gib_per_gpu, 2),
            "kv_cache_gib_per_gpu": round(self.kv_cache_gib_per_gpu, 2),
            "kv_cache_tokens": self.kv_cache_tokens,
            "max_concurrency": round(self.max_concurrency, 2),
            "fits": self.fits,
            "message": self.message,
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
        }


def _verdict(
    era: Accounting, stages: list[StagePlan], free_gib: float, gpu: GpuType, utilization: float,
    requested_gib: float, max_len: int,
) -> str:
    """vLLM's start-up error for these stages, in the order vLLM meets them; empty when it starts."""
    if requested_gib > free_gib:  # Worker.init_device
        return startup_message(era, free_gib, gpu.total_memory_gib, utilization, requested_gib)
    if any(stage.kv_cache_gib <= 0 for stage in stages):  # check_enough_kv_cache_memory, per worker
        return no_blocks_message(era)
    for stage in stages:
        # _max_memory_usage_bytes_from_groups: one request's blocks in every group x bytes per block.
        needed = stage.kv.blocks_per_request * stage.kv.bytes_per_block
        if needed > stage.kv_cache_gib * GIB:
            # vLLM's estimate: the longest length whose blocks fit (_estimate_max_model_len_from_groups).
            longest = stage.kv.longest_request(stage.kv_cache_blocks, max_len)
            return too_long_message(era, max_len, needed, stage.kv_cache_gib * GIB, longest)
    return ""


def plan_capacity(
    facts: ModelFacts,
    gpu: GpuType | str,
    tensor_parallel_size: int = 1,
    pipeline_parallel_size: int = 1,
    max_model_len: int | None = None,
    gpu_memory_utilization: float = 0.9,
    kv_cache_dtype: str = "auto",
    weight_dtype: str | None = None,
    vllm_version: str = PINNED_VLLM_VERSION,
    model_id: str = "",
    *,
    max_num_seqs: int | None = None,
    max_num_batched_tokens: int | None = None,
    hybrid_kv_cache_manager: bool = True,
    speculative_config: Mapping[str, Any] | None = None,
    data_parallel_size: int = 1,
    enable_expert_parallel: bool = False,
) -> CapacityPlan:
    """Memory per GPU, KV-cache capacity and vLLM's start-up verdict for one layout.

    ``gpu`` is a :class:`GpuType` or a name for :func:`pulumi_vllm.capacity.gpus.lookup_gpu`.
    ``max_model_len`` defaults to the model's context length; ``max_num_seqs`` and
    ``max_num_batched_tokens`` to vLLM's defaults for ``vllm serve`` on ``gpu``.
    ``hybrid_kv_cache_manager`` false is ``--disable-hybrid-kv-cache-manager`` (sliding-window
    layers then hold the whole context, see :mod:`pulumi_vllm.capacity.kv_layout`).
    ``speculative_config`` is ``--speculative-config`` (see :func:`speculative_config_from_args`): its
    draft's weights are added to the last stage. The weights come from
    :func:`pulumi_vllm.capacity.weights.weight_breakdown`.

    ``data_parallel_size`` and ``enable_expert_parallel`` are ``--data-parallel-size`` and
    ``--enable-expert-parallel``. vLLM's ``FusedMoEParallelConfig.make`` (vllm/model_executor/layers/fused_moe/
    config.py) flattens the tensor x data parallel ranks for the MoE layers: without expert parallelism each
    routed expert's matrices are split over all of them; with it each rank keeps whole experts, ``num_experts //
    (TP x DP)`` of them and one more on the first ``num_experts % (TP x DP)`` ranks (``determine_expert_map``,
    fused_moe/expert_map_manager.py), sized here for the fullest rank. Attention, embeddings and dense layers
    stay split over the tensor-parallel ranks only, one copy per data-parallel replica.

    Raises:
        ValueError: a layout vLLM rejects (the parallelism rules' messages), a utilization outside
            (0, 1], or an unknown GPU, dtype or version.
    """
    gpu = lookup_gpu(gpu) if isinstance(gpu, str) else gpu
    tp, pp, dp = tensor_parallel_size, pipeline_parallel_size, data_parallel_size
    if dp < 1:
        raise ValueError(f"data_parallel_size must be at least 1, got {dp}")
    if not 0 < gpu_memory_utilization <= 1:
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
    broken = [f.message for f in check_parallelism(facts, tp, pp, model_id) if f.verifiable]
    if broken:
        raise ValueError(" ".join(broken))
    era = accounting_for(vllm_version)
    dtype = resolve_weight_dtype(facts, weight_dtype, model_id)
    notes: list[str] = []
    max_len = max_model_len or facts.max_position_embeddings or DEFAULT_MAX_MODEL_LEN
    if facts.max_position_embeddings and max_len > facts.max_position_embeddings:
        notes.append(f"max_model_len {max_len} exceeds the model's {facts.max_position_embeddings}; vLLM refuses it")
    breakdown = weight_breakdown(facts, dtype)
    notes.extend(breakdown.notes)
    listed = parse_vllm_version(vllm_version) >= parse_vllm_version(QUANTIZATION_METHODS_VERSION)
    if facts.quantization and facts.quantization not in QUANTIZATION_METHODS and listed:
        # ModelConfig._verify_quantization (vllm/config/model.py) refuses a method it does not list.
        notes.append(
            f"the checkpoint's quantization_config names {facts.quantization!r}, which vLLM "
            f"{QUANTIZATION_METHODS_VERSION} does not list: it refuses to start (Unknown quantization method: "
            f"{facts.quantization}); sized as {breakdown.weight_format}"
        )
    weights_estimated = facts.checkpoint is None and facts.num_parameters is None
    if weights_estimated and breakdown.source == "config":
        notes.append(
            f"num_parameters unknown: estimated {breakdown.num_parameters / 1e9:.1f}B from the architecture in "
            "config.json (no checkpoint tensors read); the weights may be off by a few percent"
        )

    hidden, vocab, layers = facts.hidden_size, facts.vocab_size, facts.num_hidden_layers
    routed = facts.num_experts or 0
    moe_ranks = tp * dp  # FusedMoEParallelConfig.flatten_tp_across_dp_and_pcp
    expert_parallel = enable_expert_parallel and moe_ranks > 1 and routed > 1
    expert_fraction = -(-routed // moe_ranks) / routed if expert_parallel else None
    moe_split = 1 if expert_parallel else moe_ranks  # the fused-MoE kernel's share of each expert's width
    if expert_parallel:
        notes.append(
            f"expert parallelism over {moe_ranks} ranks: {-(-routed // moe_ranks)} of {routed} routed experts on "
            "the fullest rank; all-to-all buffers are not counted"
        )
    act_bytes = 4 if dtype == "float32" else 2
    token_bytes = kv_cache_bytes_per_token(facts, tp, kv_cache_dtype, 1, act_bytes)
    rotary_dim = facts.qk_rope_head_dim if facts.use_mla and facts.qk_rope_head_dim else facts.head_dim
    # RotaryEmbedding keeps a [max_position, rotary_dim] cos/sin cache in the model dtype per worker.
    rotary_bytes = (facts.max_position_embeddings or max_len) * rotary_dim * act_bytes
    draft = _draft(facts, dtype, speculative_config) if speculative_config else None
    if draft is not None:
        notes.append(draft.note)

    tokens = max_num_batched_tokens or gpu.default_max_num_batched_tokens
    requests = min(max_num_seqs or gpu.default_max_num_seqs, tokens)
    sampler = era.sampler_logit_copies * requests * padded_vocab_size(vocab) * 4 + tokens * hidden * act_bytes
    experts = facts.num_experts or 1
    mlp_width = float(facts.moe_intermediate_size or facts.intermediate_size or 0)
    if not mlp_width:  # only a parameter count: the width its layers imply
        layer_params = sum(part.parameters for part in breakdown.layers) / layers
        attention = 2 * hidden * facts.num_attention_heads * facts.head_dim + 2 * hidden * facts.num_key_value_heads * facts.head_dim
        mlp_width = max(layer_params - attention, 0) / (facts.mlp_projections * hidden) / experts
    # The fused-MoE kernel (fused_experts_impl, vllm/model_executor/layers/fused_moe/fused_moe.py)
    # allocates its intermediate caches as tokens x top_k x width: the model's own router top-k.
    top_k = min(facts.num_experts_per_token or MOE_TOP_K, experts) if experts > 1 else 1
    active_width = mlp_width * top_k
    hidden_copies = era.forward_hidden_copies + (top_k if experts > 1 else 0)
    moe_width = active_width / moe_split if experts > 1 else active_width / tp
    forward = tokens * (hidden * hidden_copies + 3 * moe_width) * act_bytes
    encoder_peak, encoder_cache = _encoder_profile(facts, tokens, act_bytes, tp)
    if encoder_peak:
        notes.append(
            f"vision encoder profiled with {encoder_budget_tokens(tokens):,} tokens of images: "
            f"{encoder_peak / GIB:.2f} GiB at its peak"
        )

    in_flight = tokens * (pp if pp > 1 else 2)  # VllmConfig.max_in_flight_tokens, async scheduling on
    requested = gpu.total_memory_gib * gpu_memory_utilization * GIB
    non_torch = non_torch_gib(era, tp, pp, gpu.nvlink) * GIB
    stages: list[StagePlan] = []
    first_layer = 0
    for index, stage_layers in enumerate(pipeline_stage_layers(layers, pp)):
        weights = breakdown.stage_bytes(
            first_layer, stage_layers, index, pp, tp, moe_ranks, expert_fraction,
        ) + rotary_bytes
        first_layer += stage_layers
        if draft is not None and index == pp - 1:
            weights += draft.bytes_per_rank(tp)
        activation = max(forward, sampler) if index == pp - 1 else forward
        if index == 0 and encoder_peak:
            # profile_run: the encoder's dummy batch first, its outputs kept in the encoder cache
            # through the decoder's dummy run (gpu_model_runner.py, profile_run).
            activation = max(activation + encoder_cache, encoder_peak)
        graphs = CUDA_GRAPH_GIB_PER_LAYER * stage_layers * GIB if era.cuda_graphs_in_budget else 0.0
        available = requested - weights - activation - non_torch - graphs
        kv = kv_cache_layout(facts, stage_layers, tp, token_bytes, act_bytes, max_len, in_flight, hybrid_kv_cache_manager)
        blocks = int(available) // kv.bytes_per_block if available > 0 else 0
        stages.append(StagePlan(
            stage_layers, weights / GIB, activation / GIB, non_torch / GIB, graphs / GIB, available / GIB, blocks,
            kv,
        ))

    tightest = min(stages, key=lambda s: s.kv_cache_blocks / s.kv.blocks_per_request)
    blocks = tightest.kv_cache_blocks
    concurrency = blocks / tightest.kv.blocks_per_request
    if tightest.kv.hybrid:
        notes.append(tightest.kv.describe())
    # get_kv_cache_capacity: tokens are concurrency x max_model_len; with one uniform group that is
    # the blocks' tokens (as logged before the hybrid manager).
    cache_tokens = int(concurrency * max_len) if tightest.kv.hybrid else blocks * tightest.kv.block_size
    free = gpu.total_memory_gib - STARTUP_IN_USE_GIB - (STARTUP_DISTRIBUTED_GIB if tp * pp > 1 else 0)
    weights_gib = max(s.weights_gib for s in stages)
    if weights_gib > gpu.total_memory_gib:
        notes.append(
            f"the weights alone ({weights_gib:.2f} GiB per GPU) exceed the GPU's {gpu.total_memory_gib} GiB: "
            "loading fails with CUDA out of memory before vLLM sizes the cache"
        )
    message = _verdict(era, stages, free, gpu, gpu_memory_utilization, requested / GIB, max_len)
    fits = not message
    if fits:
        message = (
            f"GPU KV cache size: {cache_tokens:,} tokens. Maximum concurrency for "
            f"{max_len:,} tokens per request: {concurrency:.2f}x"
        )
    return CapacityPlan(
        model_id=model_id, gpu=gpu.name, vllm_version=vllm_version, tensor_parallel_size=tp,
        pipeline_parallel_size=pp, max_model_len=max_len, gpu_memory_utilization=gpu_memory_utilization,
        kv_cache_dtype=kv_cache_dtype, weight_dtype=dtype, requested_gib_per_gpu=requested / GIB,
        weights_gib_per_gpu=weights_gib, kv_cache_gib_per_gpu=tightest.kv_cache_gib,
        kv_cache_tokens=cache_tokens, max_concurrency=concurrency, fits=fits, message=message,
        max_model_len_that_fits=tightest.kv.longest_request(blocks, max_len), stages=tuple(stages), notes=tuple(notes),
        weights_estimated=weights_estimated, data_parallel_size=dp,
        expert_parallel_size=moe_ranks if expert_parallel else 1,
    )


VISION_MAX_TOKENS_PER_ITEM = 16384
"""Tokens of the largest image vLLM profiles the encoder with when the processor's limit is unknown:
Qwen2-VL/Qwen2.5-VL's default ``max_pixels`` 12845056 / (14 x 14 patches x 2 x 2 merged) = 16384."""


def encoder_budget_tokens(max_num_batched_tokens: int) -> int:
    """The encoder budget vLLM profiles with: ``compute_mm_encoder_budget`` (vllm/v1/core/
    encoder_cache_manager.py) takes ``max(max_num_encoder_input_tokens, largest item)``, and
    ``SchedulerConfig`` sets ``max_num_encoder_input_tokens`` to ``max_num_batched_tokens``."""
    return max(max_num_batched_tokens, VISION_MAX_TOKENS_PER_ITEM)


def _encoder_profile(facts: ModelFacts, tokens: int, act_bytes: int, tensor_parallel_size: int) -> tuple[float, float]:
    """(peak of the vision encoder's profiling run, bytes of its outputs in the encoder cache).

    The dummy batch fills the encoder budget; each language-model token is ``vision_merge`` patches
    through the encoder, each holding FORWARD_HIDDEN_COPIES encoder-width activations and its MLP
    intermediates (split over the tensor-parallel ranks); the outputs, one hidden-size vector per
    token, stay cached. (0, 0) without a vision tower's width.
    """
    if not facts.vision_hidden_size or not facts.vision_parameters:
        return 0.0, 0.0
    budget = encoder_budget_tokens(tokens)
    patches = budget * facts.vision_merge
    inner = facts.vision_intermediate_size or 4 * facts.vision_hidden_size
    peak = patches * (facts.vision_hidden_size * FORWARD_HIDDEN_COPIES + 3 * inner / tensor_parallel_size) * act_bytes
    return peak, float(budget * facts.hidden_size * act_bytes)


def _draft(facts: ModelFacts, weight_dtype: str, speculative_config: Mapping[str, Any]) -> DraftWeights | None:
    """The draft's weights, its facts from the catalog when it names a known model."""
    model = speculative_config.get("model")
    draft_facts = catalog.lookup(str(model)) if isinstance(model, str) and model else None
    return draft_weights(facts, weight_dtype, speculative_config, draft_facts)


def speculative_config_from_args(args: Sequence[str]) -> dict[str, Any] | None:
    """The JSON of ``--speculative-config`` (or ``--speculative_config``, ``=`` or a separate word) in a
    vLLM command line, ``None`` when absent or not a JSON object."""
    for index, arg in enumerate(args):
        flag, _, inline = arg.partition("=")
        if flag.replace("_", "-") != "--speculative-config":
            continue
        text = inline if inline else (args[index + 1] if index + 1 < len(args) else "")
        try:
            value = json.loads(text)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None
