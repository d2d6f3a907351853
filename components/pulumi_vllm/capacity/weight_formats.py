"""Bytes per weight of each quantization format, as vLLM 0.32's methods allocate them.

Each figure follows the method's ``create_weights`` (vllm/model_executor/layers/quantization/):

- ``fp8.py`` ``Fp8LinearMethod``: float8 weight, one float32 scale per tensor, or per
  ``weight_block_size`` block (``weight_scale_inv``, DeepSeek-V3 and Qwen3 FP8: 128 x 128);
  ``fbgemm_fp8.py`` and compressed-tensors W8A8: a float32 scale per output channel.
- ``auto_awq.py`` ``AutoAWQLinearMethod`` and ``auto_gptq.py`` ``AutoGPTQLinearMethod``: int32 packed
  weights (8 a word), int32 zero points (8 a word) and 16-bit scales per group: 0.5 + 0.5/g + 2/g
  bytes (no ``g_idx`` without ``desc_act``); compressed-tensors W4A16 (``CompressedTensorsWNA16``):
  packed weights and 16-bit scales, zero points only when asymmetric.
- ``modelopt.py`` NVFP4: two weights per byte and a float8 scale per 16 (0.5 + 1/16).
- ``mxfp4.py`` ``Mxfp4MoEMethod.create_weights``: experts only (attention, router, embeddings stay
  bf16), two weights per byte and an e8m0 scale per 32; for the Marlin backend each rank's expert
  dimensions are padded (its intermediate size to a multiple of 128, the hidden size to 256).
  Marlin is taken here: it is the larger layout and the one vLLM falls back to without Triton
  kernels; on H100 vLLM 0.10.1 logged 65.97 GiB for gpt-oss-120b (vllm-project/vllm#23278), which
  this padding reproduces within 0.5 %.
- bitsandbytes NF4: two weights per byte and a float32 ``absmax`` per 64 (0.5 + 4/64; with double
  quantization an 8-bit absmax, 0.5 + 1/64).

Every method keeps in 16 bits what the ``ignore`` / ``modules_to_not_convert`` lists name (exact
names, prefixes, ``re:`` patterns as compressed-tensors writes them, globs as modelopt and gpt-oss do).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_vllm.models.facts import ModelFacts

MXFP4_MARLIN_HIDDEN_MULTIPLE = 256
MXFP4_MARLIN_INTERMEDIATE_MULTIPLE = 128
"""Marlin's padding of MXFP4 expert dimensions (``Mxfp4MoEMethod.create_weights``, mxfp4.py)."""


def round_up(value: int, multiple: int) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (vLLM's ``round_up``)."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class WeightFormat:
    """Bytes per weight of a quantized linear layer, and which layers the method quantizes."""

    name: str
    linear: float
    """Bytes per weight of a quantized linear layer (scales included)."""
    experts: float
    """Bytes per weight of an MoE expert."""
    attention: bool = True
    """Whether attention projections are quantized."""
    dense_mlp: bool = True
    """Whether dense MLPs (and shared experts) are quantized."""
    ignore: tuple[str, ...] = ()
    """Module names kept in 16 bits (``ignore``, ``modules_to_not_convert``...)."""
    mxfp4_padding: bool = False
    online: bool = False
    """Quantized at load time from 16-bit tensors (``--quantization fp8`` on a bf16 checkpoint)."""


def _ignore_list(config: Mapping[str, Any]) -> tuple[str, ...]:
    for key in ("ignore", "ignored_layers", "modules_to_not_convert", "llm_int8_skip_modules", "exclude_modules"):
        value = config.get(key)
        if isinstance(value, list):
            return tuple(str(item) for item in value)
    return ()


def _int4(group: int, zero_points: bool, bits: int = 4) -> float:
    per = bits / 8
    return per + 2 / group + (per / group if zero_points else 0.0)


def _fp8(config: Mapping[str, Any]) -> tuple[str, float]:
    block = config.get("weight_block_size")
    if isinstance(block, list) and len(block) == 2 and all(isinstance(n, int) and n > 0 for n in block):
        return f"fp8 block {block[0]}x{block[1]}", 1 + 4 / (block[0] * block[1])
    return "fp8", 1.0


def _compressed_tensors(config: Mapping[str, Any], in_features: int) -> tuple[str, float]:
    """Weight precision of a compressed-tensors checkpoint, from its first config group (a float32
    scale per output channel adds 4 / ``in_features`` bytes per weight)."""
    groups = config.get("config_groups")
    weights: Mapping[str, Any] = {}
    if isinstance(groups, Mapping):
        first: Any = next(iter(groups.values()), {})
        weights = (first.get("weights") or {}) if isinstance(first, Mapping) else {}
    bits = int(weights.get("num_bits") or 8)
    kind = str(weights.get("type") or "float")
    if config.get("format") == "nvfp4-pack-quantized" or (bits == 4 and kind == "float"):
        return "nvfp4", 0.5 + 1 / 16
    if bits == 8:
        channel = 4 / in_features if weights.get("strategy") == "channel" else 0.0
        return ("fp8" if kind == "float" else "int8"), 1.0 + channel
    group = int(weights.get("group_size") or 128)
    return f"int{bits} group {group}", _int4(group, not weights.get("symmetric", True), bits)


def weight_format(facts: ModelFacts, weight_dtype: str) -> WeightFormat:
    """The format of the quantized parts, from the checkpoint's ``quantization_config`` (or its method
    name and the resolved ``weight_dtype`` when only the name is known)."""
    config: Mapping[str, Any] = facts.quantization_config or {}
    method = str(config.get("quant_method") or facts.quantization or "").lower()
    ignore = _ignore_list(config)
    if weight_dtype in ("bfloat16", "float16", "float32"):
        return WeightFormat(weight_dtype, 4.0 if weight_dtype == "float32" else 2.0, 4.0 if weight_dtype == "float32" else 2.0)
    if method == "mxfp4" or (weight_dtype == "fp4" and facts.quantization in ("mxfp4", "gpt_oss_mxfp4")):
        return WeightFormat("mxfp4 experts", 2.0, 0.5 + 1 / 32, attention=False, dense_mlp=False, ignore=ignore,
                       mxfp4_padding=True)
    if weight_dtype == "fp4":
        return WeightFormat("nvfp4", 0.5 + 1 / 16, 0.5 + 1 / 16, ignore=ignore)
    if method == "compressed-tensors" and config:
        name, per = _compressed_tensors(config, facts.hidden_size)
        return WeightFormat(name, per, per, ignore=ignore)
    if method == "bitsandbytes":
        if config.get("load_in_8bit"):
            return WeightFormat("int8", 1.0, 1.0, ignore=ignore)
        double = config.get("bnb_4bit_use_double_quant", False)
        per = 0.5 + (1 / 64 if double else 4 / 64)
        return WeightFormat("nf4", per, per, ignore=ignore)
    if method in ("awq", "awq_marlin", "gptq", "gptq_marlin", "auto_gptq", "auto_awq", "moe_wna16") or (
        weight_dtype == "int4"
    ):
        bits = int(config.get("bits") or config.get("w_bit") or (8 if weight_dtype == "int8" else 4))
        group = int(config.get("group_size") or config.get("q_group_size") or 128)
        if group <= 0:  # GPTQ's -1: one group per input row
            group = 4096
        zeros = method.startswith(("awq", "gptq", "auto_gptq")) or not config.get("sym", True)
        return WeightFormat(f"int{bits} group {group}", _int4(group, zeros, bits), _int4(group, zeros, bits), ignore=ignore)
    if weight_dtype == "fp8" and method == "fbgemm_fp8":  # a float32 scale per output channel
        per = 1 + 4 / facts.hidden_size
        return WeightFormat("fp8 per channel", per, per, ignore=ignore)
    if weight_dtype == "fp8":
        name, per = _fp8(config)
        online = not facts.quantization
        return WeightFormat(name, per, per, ignore=ignore, online=online)
    if method == "experts_int8":
        return WeightFormat("int8 experts", 2.0, 1.0, attention=False, dense_mlp=False, online=True)
    return WeightFormat(weight_dtype, 1.0, 1.0, ignore=ignore, online=not facts.quantization)


def linear_bytes_per_weight(facts: ModelFacts, weight_dtype: str) -> tuple[str, float, float]:
    """``(format, bytes per weight of a quantized linear layer, of an MoE expert)`` as vLLM allocates
    them for this checkpoint in ``weight_dtype`` (scales and zero points included)."""
    fmt = weight_format(facts, weight_dtype)
    return fmt.name, fmt.linear, fmt.experts


def is_ignored(names: Iterable[str], ignore: tuple[str, ...]) -> bool:
    """Whether any module name is in the ignore list (exact, a prefix of it, or a ``re:`` pattern)."""
    for name in names:
        for pattern in ignore:
            if pattern.startswith("re:"):
                if re.match(pattern[3:], name):
                    return True
            elif "*" in pattern:  # modelopt's and gpt-oss's globs ("model.layers.*.self_attn")
                if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*"):
                    return True
            elif name == pattern or name.startswith(pattern + ".") or name.endswith("." + pattern) or (
                "." not in pattern and f".{pattern}." in f".{name}."
            ):
                return True
    return False



def expert_padding(facts: ModelFacts, fmt: WeightFormat) -> tuple[int, int] | None:
    """``(hidden_size, intermediate_size)`` of experts vLLM pads on each rank in this format, else ``None``."""
    width = facts.moe_intermediate_size or facts.intermediate_size
    if not fmt.mxfp4_padding or not width or not facts.num_experts:
        return None
    return facts.hidden_size, width
