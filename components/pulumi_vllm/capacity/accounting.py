"""vLLM's memory accounting per release: the constants the capacity planner uses, and vLLM's errors.

Constants say where they come from: vLLM source, our own measurement (H100 80GB HBM3, driver
580.159, CUDA 13.0, PyTorch 2.11), or fitted to published start-up logs (named). Each
accounting era is one :class:`Accounting`; ``vllm_version`` picks it. Also here: the weight
precision vLLM loads a checkpoint in, and vLLM's start-up errors in each release's wording.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pulumi_vllm.models.facts import ModelFacts

GIB = 1 << 30
BLOCK_SIZE = 16
"""vLLM's default KV-cache block size in tokens (CacheConfig.block_size on CUDA)."""
PINNED_VLLM_VERSION = "0.32.0"
"""The release the project pins (``pulumi_vllm.config.VLLM_VERSION``; a test keeps them equal)."""
DEFAULT_MAX_MODEL_LEN = 2048
"""vLLM's fallback when config.json names no context length (``_get_and_verify_max_len``)."""

# Fitted: the peak of the dummy sampler run is this many float32 copies of the logits of
# min(max_num_seqs, max_num_batched_tokens) requests over the padded vocabulary, plus the hidden
# states of the profiling batch. 3.72 is the mean over the vLLM 0.17-0.19 H100 logs of
# llm-d-incubation/llm-d-planner docs/accuracy/vllm-v0.19.0-accuracy-report.md (Llama-3.1-8B
# 1.89 GiB, Qwen2.5-7B 2.21, Qwen3-8B 2.21, Qwen3-14B 2.23, phi-4 1.52: 3.70-3.77 each); 9.59 fits
# the older releases (Qwen3-14B 5.64 GiB on 0.15/0.16 in the same report; Llama-3.1-8B 4.76,
# Qwen3-0.6B 5.56, Qwen3-32B 5.64 in llm-d/llm-d-benchmark config_explorer/empirical-vllm-memory-results.md).
SAMPLER_LOGIT_COPIES_FROM_0_17 = 3.72
SAMPLER_LOGIT_COPIES_BEFORE_0_17 = 9.59
# Fitted: the forward pass of the profiling batch holds this many hidden-size activations per
# token next to the MLP's gate/up/down intermediates (CodeLlama-7B 0.77 GiB, Llama-3.1-8B first
# pipeline stages 1.05-1.10 GiB, Mixtral TP2 1.21 GiB, same v0.19 report).
FORWARD_HIDDEN_COPIES = 6
# The V0 engine ran the profiling batch eagerly (no torch.compile): at the MLP's peak the input, residual and
# normed hidden states (3 hidden-size activations) sit beside gate_up's output (2 x width) and the activation's
# (1 x width), the "3 x width" every era counts. Fitted: 3.07 from the RTX 3090 V0 log of 20000 tokens
# (activation 2.07 GiB, vllm-project/vllm#10517; bench/references.py marks it fitted), rounded to that count.
V0_FORWARD_HIDDEN_COPIES = 3
# Fitted: the V0 worker's non-torch memory on one GPU, "non_torch_memory" 0.35 GiB in the same log.
V0_SINGLE_GPU_NON_TORCH_GIB = 0.35
MOE_TOP_K = 2
"""Experts per token assumed for mixture-of-experts activations (ModelFacts has no router top-k;
2 is Mixtral's). The fused-MoE kernel also keeps top-k hidden-size buffers per token."""
DEFAULT_MLP_RATIO = 3.5
"""MLP width / hidden size used only when num_parameters is unknown (Llama 3: 14336 / 4096)."""
INT4_GROUP_OVERHEAD = 2.5 / 128
"""Bytes per weight that group-128 int4 (AWQ/GPTQ) adds: an fp16 scale and a packed zero point."""
# Read from the same v0.19 report's "non-torch forward increase memory": one GPU (0.25 GiB; 0.13 before 0.18), of
# a pipeline stage with its point-to-point buffers (0.07 GiB at PP 2 and 4), and what tensor
# parallelism adds (NCCL and custom all-reduce: 2.06-2.11 GiB per GPU at TP2, 2.13-2.21 at TP4,
# so 2.01 + 0.08 per doubling; 0.55 GiB at TP2 on older releases, llm-d-benchmark results above).
PIPELINE_STAGE_NON_TORCH_GIB = 0.07
TENSOR_PARALLEL_PER_DOUBLING_GIB = 0.08
# GPUs without NVLink (PCIe only). vLLM sets up its custom all-reduce only when every pair of the group's GPUs
# is linked by NVLink or the group has two GPUs: CustomAllreduce.__init__ (vllm/distributed/device_communicators/
# custom_all_reduce.py) returns disabled for "more than two PCIe-only GPUs", CudaPlatform.is_fully_connected
# (vllm/platforms/cuda.py) asking NVML for an NVLink P2P status between every pair. At two GPUs it allocates
# a metadata buffer of meta_size + max_size (8 MiB), an IPC buffer of max(max_size, all-gather 2 MiB,
# reduce-scatter 16 MiB) and 8 MiB of rank_data: 0.03 GiB. What the NVLink H100 runs add beyond that (2.01 GiB
# at TP2) is taken to be NCCL's NVLink transport (not measured apart), which a PCIe ring does not set up; its
# PCIe buffers are taken as those of the NVLink-free point-to-point groups of the pipeline runs
# (PIPELINE_STAGE_NON_TORCH_GIB).
PCIE_CUSTOM_ALL_REDUCE_GIB = (8 + 16 + 8) / 1024  # MiB: metadata + max_size, IPC buffer, rank_data
CUDA_GRAPH_GIB_PER_LAYER = 0.84 / 32
"""vLLM >= 0.21 reserves its CUDA-graph estimate inside the budget (VLLM_MEMORY_PROFILER_ESTIMATE_
CUDAGRAPHS, default 1 "since v0.21.0" per gpu_worker.py's log line). Fitted: 0.84 GiB estimated
for the 32-layer Llama-3.1-8B with default capture sizes on H100 (report above); published 0.2x
logs show 0.17-0.83 GiB for dense 7-8B models."""
# Used only for the start-up check (requested memory must be free when the worker starts): memory
# in use at vLLM's start-up snapshot, 78.57 of 79.18 GiB free on one H100 and 77.64 at TP2
# (llm-d-benchmark results above); the CUDA context alone is 0.51 GiB (measured, see the module docstring).
STARTUP_IN_USE_GIB = 79.18 - 78.57
STARTUP_DISTRIBUTED_GIB = 78.57 - 77.64
DOCS_LINK = "See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details."


@dataclass(frozen=True)
class Accounting:
    """How one range of vLLM releases sizes the KV cache."""

    since: tuple[int, int, int]
    """First release of the range."""
    sampler_logit_copies: float
    """Float32 logit copies at the peak of the dummy sampler run (see SAMPLER_LOGIT_COPIES_*)."""
    single_gpu_non_torch_gib: float
    """Non-torch memory of a single-GPU worker."""
    tensor_parallel_non_torch_gib: float
    """Non-torch memory tensor parallelism adds per GPU at TP2."""
    cuda_graphs_in_budget: bool
    """Whether the CUDA-graph estimate is taken out of the requested memory."""
    wording: str
    """vLLM's error wording: ``v0`` (V0 engine), ``v1`` (0.8+), ``v1-cpu`` (0.22+, see below)."""
    forward_hidden_copies: float = FORWARD_HIDDEN_COPIES
    """Hidden-size activations per token at the forward pass's peak (see FORWARD_HIDDEN_COPIES)."""


# Release ranges: the V0 engine's wording before 0.8 (V1 became the default there); the dummy
# sampler's peak shrank in 0.17 and single-GPU non-torch memory grew in 0.18 (Qwen3-14B across
# 0.15-0.18 in the llm-d-planner report); the CUDA-graph estimate sits inside the budget from 0.21;
# the errors were reworded by vllm-project/vllm#42479 (merged 2026-05-13, so from 0.22 on).
_ACCOUNTING = (
    Accounting((0, 0, 0), SAMPLER_LOGIT_COPIES_BEFORE_0_17, V0_SINGLE_GPU_NON_TORCH_GIB, 0.48, False, "v0",
               V0_FORWARD_HIDDEN_COPIES),
    Accounting((0, 8, 0), SAMPLER_LOGIT_COPIES_BEFORE_0_17, 0.13, 0.48, False, "v1"),
    Accounting((0, 17, 0), SAMPLER_LOGIT_COPIES_FROM_0_17, 0.13, 2.01, False, "v1"),
    Accounting((0, 18, 0), SAMPLER_LOGIT_COPIES_FROM_0_17, 0.25, 2.01, False, "v1"),
    Accounting((0, 21, 0), SAMPLER_LOGIT_COPIES_FROM_0_17, 0.25, 2.01, True, "v1"),
    Accounting((0, 22, 0), SAMPLER_LOGIT_COPIES_FROM_0_17, 0.25, 2.01, True, "v1-cpu"),
)


def parse_vllm_version(version: str) -> tuple[int, int, int]:
    """``"v0.19.1"``, ``"0.32.0"`` or ``"0.20.2rc1.dev9+g01d"`` as ``(major, minor, patch)``.

    Raises:
        ValueError: not a version number.
    """
    found = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", str(version))
    if not found:
        raise ValueError(f"not a vLLM version: {version!r} (expected e.g. 0.32.0)")
    major, minor, patch = found.groups()
    return int(major), int(minor), int(patch or 0)


def accounting_for(vllm_version: str) -> Accounting:
    """The accounting of the release range ``vllm_version`` falls in."""
    version = parse_vllm_version(vllm_version)
    return [era for era in _ACCOUNTING if era.since <= version][-1]


def non_torch_gib(
    era: Accounting, tensor_parallel_size: int, pipeline_parallel_size: int, nvlink: bool = True,
) -> float:
    """Memory outside PyTorch per GPU that appears while profiling (NCCL, custom all-reduce), in GiB.

    ``nvlink`` false (GPUs on PCIe only): tensor parallelism adds NCCL's PCIe buffers and, at two GPUs, the
    custom all-reduce's (see PCIE_CUSTOM_ALL_REDUCE_GIB), not the NVLink figures.
    """
    if tensor_parallel_size == 1 and pipeline_parallel_size == 1:
        return era.single_gpu_non_torch_gib
    tensor_parallel = 0.0
    if tensor_parallel_size > 1 and not nvlink:
        tensor_parallel = PCIE_CUSTOM_ALL_REDUCE_GIB if tensor_parallel_size == 2 else 0.0
    elif tensor_parallel_size > 1:
        doublings = math.log2(tensor_parallel_size / 2)
        tensor_parallel = era.tensor_parallel_non_torch_gib + TENSOR_PARALLEL_PER_DOUBLING_GIB * doublings
    return PIPELINE_STAGE_NON_TORCH_GIB + tensor_parallel


_WEIGHT_ALIASES = {
    "fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16",
    "fp16": "float16", "float16": "float16", "half": "float16", "fp8": "fp8", "int8": "int8",
    "w8a8": "int8", "int4": "int4", "w4a16": "int4", "awq": "int4", "gptq": "int4", "fp4": "fp4",
}
# The weight precision of every method vLLM 0.32 accepts as --quantization
# (engine/quantization_methods.json, read from vLLM's QUANTIZATION_METHODS; a test keeps this map
# covering it). Methods whose precision only the checkpoint tells (compressed-tensors, quark, torchao,
# online, humming) get 8 bits, the larger of what they ship, until the checkpoint says otherwise.
_QUANTIZATION_DTYPE = {
    "awq": "int4", "auto_awq": "int4", "awq_marlin": "int4", "gptq": "int4", "auto_gptq": "int4",
    "gptq_marlin": "int4", "moe_wna16": "int4", "inc": "int4", "bitsandbytes": "int4",
    "fp8": "fp8", "fbgemm_fp8": "fp8", "ptpc_fp8": "fp8", "modelopt": "fp8", "modelopt_mxfp8": "fp8",
    "modelopt_mixed": "fp8", "mxfp8": "fp8", "deepseek_v4_fp8": "fp8", "fp8_per_tensor": "fp8",
    "fp8_per_block": "fp8", "fp8_per_channel": "fp8", "compressed-tensors": "fp8", "quark": "fp8",
    "online": "fp8", "humming": "int8", "torchao": "int8", "experts_int8": "int8",
    "int8_per_channel_weight_only": "int8",
    "mxfp4": "fp4", "gpt_oss_mxfp4": "fp4", "modelopt_fp4": "fp4", "nvfp4_per_token": "fp4", "fp_quant": "fp4",
}
"""Weight precision per quantization method name (vLLM's ``--quantization`` values)."""
_ID_DTYPE = (  # most specific first; matched against the lower-cased model id
    (r"int8|w8a8|8bit", "int8"), (r"int4|w4a16|awq|gptq|4bit", "int4"),
    (r"nvfp4|mxfp4", "fp4"), (r"fp8", "fp8"),
)


def resolve_weight_dtype(facts: ModelFacts, weight_dtype: str | None = None, model_id: str = "") -> str:
    """The weight precision vLLM will load: explicit (a quantization method vLLM accepts, e.g.
    ``fp8_per_tensor``, or a precision such as ``int4``), else the checkpoint's quantization (refined
    by the model id, e.g. ``-GPTQ-Int8``), else a ``-FP8``/``-AWQ``/``-Int4`` id, else torch_dtype
    (float32 checkpoints are served in 16 bits by vLLM's ``dtype=auto``).

    Raises:
        ValueError: an unknown explicit ``weight_dtype``.
    """
    if weight_dtype is not None:
        name = weight_dtype.strip()
        canonical = _QUANTIZATION_DTYPE.get(name) or _WEIGHT_ALIASES.get(name.lower())
        if canonical is None:
            raise ValueError(
                f"unknown weight dtype or quantization method {weight_dtype!r}; accepted: a quantization "
                f"method ({', '.join(_QUANTIZATION_DTYPE)}) or a precision ({', '.join(sorted(_WEIGHT_ALIASES))})"
            )
        return canonical
    name = model_id.lower().rsplit("/", 1)[-1]
    from_id = next((dtype for pattern, dtype in _ID_DTYPE if re.search(pattern, name)), None)
    from_config = _dtype_from_quantization_config(facts.quantization_config or {})
    if from_config:
        return from_config
    if facts.quantization:
        # An unknown method counts as 8-bit: never smaller than it is for 4-bit checkpoints.
        return from_id or _QUANTIZATION_DTYPE.get(facts.quantization.lower(), "int8")
    if from_id:
        return from_id
    return "float16" if facts.torch_dtype in ("float16", "half") else "bfloat16"


def _dtype_from_quantization_config(config: dict[str, object]) -> str | None:
    """The weight precision a checkpoint's ``quantization_config`` states, when it states one: the bits of
    GPTQ/AWQ, the first config group of compressed-tensors, bitsandbytes' 8 or 4 bits."""
    method = str(config.get("quant_method") or "").lower()
    bits = config.get("bits") or config.get("w_bit")
    if method in ("gptq", "awq", "auto_gptq", "auto_awq", "gptq_marlin", "awq_marlin") and isinstance(bits, int):
        return {8: "int8", 4: "int4"}.get(bits)
    if method == "bitsandbytes":
        return "int8" if config.get("load_in_8bit") else "int4"
    groups = config.get("config_groups")
    if method == "compressed-tensors" and isinstance(groups, dict) and groups:
        first = next(iter(groups.values()))
        weights = first.get("weights") if isinstance(first, dict) else None
        if isinstance(weights, dict):
            width, kind = weights.get("num_bits"), weights.get("type")
            if width == 8:
                return "fp8" if kind == "float" else "int8"
            if width == 4:
                return "fp4" if kind == "float" else "int4"
    return None


def _gib(value: float) -> str:
    return f"{value:.2f}"  # vLLM's format_gib


def no_blocks_message(era: Accounting) -> str:
    """vLLM's error when a worker has no memory left for one cache block."""
    if era.wording == "v1-cpu":
        return (
            "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
            "initializing the engine (this flag also controls CPU memory reservation on the CPU "
            f"backend, despite its name). {DOCS_LINK}"
        )
    return (
        "No available memory for the cache blocks. Try increasing `gpu_memory_utilization` "
        "when initializing the engine."
    )


def too_long_message(era: Accounting, max_model_len: int, needed: float, available: float, longest: int) -> str:
    """vLLM's error when one request of ``max_model_len`` tokens does not fit (``needed``, ``available`` in bytes)."""
    if era.wording == "v0":  # raise_if_cache_size_invalid, V0 engine
        return (
            f"The model's max seq len ({max_model_len}) is larger than the maximum number of tokens "
            f"that can be stored in KV cache ({longest}). Try increasing `gpu_memory_utilization` or "
            "decreasing `max_model_len` when initializing the engine."
        )
    # check_enough_kv_cache_memory, vllm/v1/core/kv_cache_utils.py
    estimate = (
        f"Based on the available memory, the estimated maximum model length is {longest}. "
        if longest > 0 else ""
    )
    whose, flag, tail = "models's", "`gpu_memory_utilization`", ""
    if era.wording == "v1-cpu":
        whose, tail = "model's", f" {DOCS_LINK}"
        flag += " (which also controls CPU memory on the CPU backend)"
    return (
        f"To serve at least one request with the {whose} max seq len ({max_model_len}), "
        f"({_gib(needed / GIB)} GiB KV cache is needed, which is larger than the available KV cache "
        f"memory ({_gib(available / GIB)} GiB). {estimate}Try increasing {flag} or decreasing "
        f"`max_model_len` when initializing the engine.{tail}"
    )


def startup_message(era: Accounting, free: float, total: float, util: float, requested: float) -> str:
    """vLLM's error when less memory is free at start-up than it requests (figures in GiB)."""
    device = "device cuda:0" if era.wording == "v1-cpu" else "device"
    return (
        f"Free memory on {device} ({round(free, 2)}/{round(total, 2)} GiB) on startup is less than "
        f"desired GPU memory utilization ({util}, {round(requested, 2)} GiB). Decrease GPU memory "
        "utilization or reduce GPU memory used by other processes."
    )

