"""Weights as vLLM loads them: a per-part breakdown in bytes, from the checkpoint or from the config.

vLLM allocates each layer's parameters in ``create_weights`` of the layer's quantization method and
may rewrite them in ``process_weights_after_loading``; "Model loading took X GiB" is what is left.
The breakdown has one :class:`WeightPart` per piece a pipeline stage holds: the embedding (first
stage), the vision or audio tower (first stage), every decoder layer (layers differ: DeepSeek's
``first_k_dense_replace`` dense layers, Llama 4's interleaved experts), the LM head and final norm
(last stage), and the multi-token-prediction layers (loaded only as a speculative draft).

Two sources, best first:

(a) ``facts.checkpoint``, every tensor of the safetensors files with dtype and shape: each is
    counted as stored (quantized tensors and their scales are loaded as they are), except 32-bit
    weights, which vLLM loads in the model dtype, 16-bit linear weights quantized at load time
    (``--quantization fp8`` on a bf16 checkpoint), and MXFP4 experts, padded as below.
(b) the architecture (``intermediate_size``, experts, MLA ranks, towers...) turned into parameters
    per part, each stored in the precision the checkpoint's ``quantization_config`` gives it.

Bytes per weight of a quantized linear layer, as each method's ``create_weights`` allocates them
(vllm/model_executor/layers/quantization/, vLLM 0.32):

- ``fp8.py`` ``Fp8LinearMethod``: float8 weight, one float32 scale per tensor, or per
  ``weight_block_size`` block (``weight_scale_inv``, DeepSeek-V3 and Qwen3 FP8: 128 x 128);
  ``fbgemm_fp8.py`` and compressed-tensors W8A8: a float32 scale per output channel.
- ``awq.py`` ``AWQLinearMethod``: int32 ``qweight`` of 8 weights, ``qzeros`` of 8 zero points per
  group, float16 ``scales`` per group: 0.5 + 0.5/g + 2/g bytes; ``gptq.py`` the same plus ``g_idx``;
  compressed-tensors W4A16 (``CompressedTensorsWNA16``): packed weights and bfloat16 scales, zero
  points only when asymmetric.
- ``modelopt.py`` NVFP4: two weights per byte and a float8 scale per 16 (0.5 + 1/16).
- ``mxfp4.py`` ``Mxfp4MoEMethod.create_weights``: experts only (attention, router, embeddings stay
  bf16), two weights per byte and an e8m0 scale per 32; for the Marlin backend the expert
  dimensions are padded (``intermediate_size`` to a multiple of 128, ``hidden_size`` to 256).
  Marlin is taken here: it is the larger layout and the one vLLM falls back to without Triton
  kernels; on H100 vLLM 0.10.1 logged 65.97 GiB for gpt-oss-120b (vllm-project/vllm#23278), which
  this padding reproduces within 0.5 %.
- bitsandbytes NF4: two weights per byte and a float32 ``absmax`` per 64 (0.5 + 4/64; with double
  quantization an 8-bit absmax, 0.5 + 1/64).

Parts every method keeps in 16 bits: embeddings and LM head (``VocabParallelEmbedding`` /
``ParallelLMHead`` are not quantized), norms, MoE routers (``quant_config=None`` in the models'
gate layers), vision towers unless the checkpoint stores them quantized, and whatever the
``ignore`` / ``modules_to_not_convert`` lists name. MLA models add, per layer, the bfloat16
``W_UK_T`` and ``W_UV`` that ``MLAAttention.process_weights_after_loading``
(vllm/model_executor/layers/attention/mla_attention.py) splits out of ``kv_b_proj``.

Tensor parallelism follows vLLM's layers: column and row parallel layers and the vocabulary are
split over the ranks; norms, routers and MLA's ``q_a_proj`` / ``kv_a_proj_with_mqa`` (replicated
linear layers) stay whole on each rank; key/value projections split until each rank holds one head.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_vllm.capacity.accounting import DEFAULT_MLP_RATIO
from pulumi_vllm.distributed.parallelism import padded_vocab_size
from pulumi_vllm.models.checkpoint import CheckpointTensors, TensorEntry
from pulumi_vllm.models.facts import ModelFacts

GIB = 1 << 30
PARAMETER_MISMATCH = 0.05
"""Relative difference between a given ``num_parameters`` and the architecture's count beyond which the
given count is used (every catalog entry agrees within 2 %)."""
MXFP4_MARLIN_HIDDEN_MULTIPLE = 256
MXFP4_MARLIN_INTERMEDIATE_MULTIPLE = 128
"""Marlin's padding of MXFP4 expert dimensions (``Mxfp4MoEMethod.create_weights``, mxfp4.py)."""


@dataclass(frozen=True)
class WeightPart:
    """One piece of the model as loaded, whole (before tensor parallelism)."""

    name: str
    """``embedding``, ``lm_head``, ``layer 3``, ``vision tower``, ``mtp``, ``final norm``."""
    sharded_bytes: float = 0.0
    """Bytes split evenly over the tensor-parallel ranks."""
    replicated_bytes: float = 0.0
    """Bytes every rank keeps whole (norms, routers, replicated projections)."""
    kv_bytes: float = 0.0
    """Key/value projection bytes: split over the ranks until each holds one kv head."""
    parameters: float = 0.0
    """Parameters of the part (logical weights, not stored elements)."""
    expert_bytes: float = 0.0
    """Bytes of routed experts within ``sharded_bytes`` (read only for the experts a token picks)."""

    @property
    def total_bytes(self) -> float:
        """Bytes of the whole part (one copy)."""
        return self.sharded_bytes + self.replicated_bytes + self.kv_bytes

    def per_rank(self, tensor_parallel_size: int, kv_heads: int) -> float:
        """Bytes one tensor-parallel rank holds."""
        kv_share = max(1, kv_heads // tensor_parallel_size) / kv_heads if kv_heads else 1 / tensor_parallel_size
        return self.sharded_bytes / tensor_parallel_size + self.replicated_bytes + self.kv_bytes * kv_share

    def plus(self, other: WeightPart) -> WeightPart:
        """This part with ``other``'s bytes and parameters added."""
        return WeightPart(
            self.name, self.sharded_bytes + other.sharded_bytes, self.replicated_bytes + other.replicated_bytes,
            self.kv_bytes + other.kv_bytes, self.parameters + other.parameters, self.expert_bytes + other.expert_bytes,
        )


@dataclass(frozen=True)
class WeightBreakdown:
    """Every part of a model as vLLM loads it, and how sure the figures are."""

    embedding: WeightPart
    lm_head: WeightPart
    """Zero bytes when tied to the embedding (a separate copy only on a last pipeline stage of several)."""
    layers: tuple[WeightPart, ...]
    towers: WeightPart
    """Vision and audio encoders with their projectors (first pipeline stage)."""
    final: WeightPart
    """Final norm and anything else outside the layers (last stage)."""
    mtp: WeightPart
    """Multi-token-prediction layers of the checkpoint, not loaded unless they are the draft."""
    weight_format: str
    """The precision of the quantized parts (``bfloat16``, ``fp8``, ``fp8 block 128x128``, ``mxfp4``...)."""
    source: str
    """``checkpoint`` (tensor headers), ``config`` (architecture), ``num_parameters`` (published count
    spread over the layers) or ``estimate`` (hidden size alone)."""
    tied_embeddings: bool = False
    kv_heads: int = 1
    notes: tuple[str, ...] = field(default=())
    expert_padding: tuple[int, int] | None = None
    """``(hidden_size, intermediate_size)`` of experts whose dimensions vLLM pads on each rank (MXFP4 on
    Marlin); the parts hold the unpadded bytes."""

    def expert_pad(self, tensor_parallel_size: int) -> float:
        """How much larger the experts are on one rank than their unpadded share (1 without padding):
        ``Mxfp4MoEMethod.create_weights`` rounds the rank's intermediate size up to a multiple of 128 and
        the hidden size to 256."""
        if self.expert_padding is None:
            return 1.0
        hidden, width = self.expert_padding
        share = width / tensor_parallel_size
        return (_round_up(hidden, MXFP4_MARLIN_HIDDEN_MULTIPLE) * _round_up(
            -(-width // tensor_parallel_size), MXFP4_MARLIN_INTERMEDIATE_MULTIPLE)) / (hidden * share)

    def layer_bytes(self, index: int, tensor_parallel_size: int) -> float:
        """Bytes one rank holds of decoder layer ``index``, padding included."""
        layer = self.layers[index]
        extra = layer.expert_bytes / tensor_parallel_size * (self.expert_pad(tensor_parallel_size) - 1)
        return layer.per_rank(tensor_parallel_size, self.kv_heads) + extra

    @property
    def estimated(self) -> bool:
        """Whether the figures rest on assumptions beyond the config (no tensors, no published count)."""
        return self.source == "estimate"

    @property
    def num_parameters(self) -> float:
        """Parameters loaded (MTP layers excluded, tied embeddings counted once)."""
        parts = (self.embedding, self.lm_head, self.towers, self.final, *self.layers)
        return sum(part.parameters for part in parts)

    @property
    def total_bytes(self) -> float:
        """Bytes of one whole copy of the model as loaded on one GPU (MTP excluded, padding included)."""
        parts = (self.embedding, self.lm_head, self.towers, self.final, *self.layers)
        padding = sum(layer.expert_bytes for layer in self.layers) * (self.expert_pad(1) - 1)
        return sum(part.total_bytes for part in parts) + padding

    def stage_bytes(
        self, first_layer: int, num_layers: int, pipeline_index: int, pipeline_parallel_size: int,
        tensor_parallel_size: int,
    ) -> float:
        """Bytes one GPU of a pipeline stage holds: its layers, the embedding and towers on the first
        stage, the LM head and final norm on the last (a tied head is a separate copy there when the
        stages are several, as vLLM's ``ParallelLMHead`` on the last rank)."""
        tp, kv = tensor_parallel_size, self.kv_heads
        total = sum(self.layer_bytes(index, tp) for index in range(first_layer, first_layer + num_layers))
        if pipeline_index == 0:
            total += self.embedding.per_rank(tp, kv) + self.towers.per_rank(tp, kv)
        if pipeline_index == pipeline_parallel_size - 1:
            total += self.final.per_rank(tp, kv) + self.lm_head.per_rank(tp, kv)
            if self.tied_embeddings and pipeline_parallel_size > 1:
                total += self.embedding.per_rank(tp, kv)
        return total

    def describe(self) -> str:
        """One line: total, format and where the figures come from."""
        return (
            f"weights {self.total_bytes / GIB:.2f} GiB ({self.num_parameters / 1e9:.2f}B parameters, "
            f"{self.weight_format}, from the {self.source})"
        )


# --- formats -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Format:
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


def _format(facts: ModelFacts, weight_dtype: str) -> _Format:
    """The format of the quantized parts, from the checkpoint's ``quantization_config`` (or its method
    name and the resolved ``weight_dtype`` when only the name is known)."""
    config: Mapping[str, Any] = facts.quantization_config or {}
    method = str(config.get("quant_method") or facts.quantization or "").lower()
    ignore = _ignore_list(config)
    if weight_dtype in ("bfloat16", "float16", "float32"):
        return _Format(weight_dtype, 4.0 if weight_dtype == "float32" else 2.0, 4.0 if weight_dtype == "float32" else 2.0)
    if method == "mxfp4" or (weight_dtype == "fp4" and facts.quantization in ("mxfp4", "gpt_oss_mxfp4")):
        return _Format("mxfp4 experts", 2.0, 0.5 + 1 / 32, attention=False, dense_mlp=False, ignore=ignore,
                       mxfp4_padding=True)
    if weight_dtype == "fp4":
        return _Format("nvfp4", 0.5 + 1 / 16, 0.5 + 1 / 16, ignore=ignore)
    if method == "compressed-tensors" and config:
        name, per = _compressed_tensors(config, facts.hidden_size)
        return _Format(name, per, per, ignore=ignore)
    if method == "bitsandbytes":
        if config.get("load_in_8bit"):
            return _Format("int8", 1.0, 1.0, ignore=ignore)
        double = config.get("bnb_4bit_use_double_quant", False)
        per = 0.5 + (1 / 64 if double else 4 / 64)
        return _Format("nf4", per, per, ignore=ignore)
    if method in ("awq", "awq_marlin", "gptq", "gptq_marlin", "auto_gptq", "auto_awq", "moe_wna16") or (
        weight_dtype == "int4"
    ):
        bits = int(config.get("bits") or config.get("w_bit") or (8 if weight_dtype == "int8" else 4))
        group = int(config.get("group_size") or config.get("q_group_size") or 128)
        if group <= 0:  # GPTQ's -1: one group per input row
            group = 4096
        zeros = method.startswith(("awq", "gptq", "auto_gptq")) or not config.get("sym", True)
        return _Format(f"int{bits} group {group}", _int4(group, zeros, bits), _int4(group, zeros, bits), ignore=ignore)
    if weight_dtype == "fp8" and method == "fbgemm_fp8":  # a float32 scale per output channel
        per = 1 + 4 / facts.hidden_size
        return _Format("fp8 per channel", per, per, ignore=ignore)
    if weight_dtype == "fp8":
        name, per = _fp8(config)
        online = not facts.quantization
        return _Format(name, per, per, ignore=ignore, online=online)
    if method == "experts_int8":
        return _Format("int8 experts", 2.0, 1.0, attention=False, dense_mlp=False, online=True)
    return _Format(weight_dtype, 1.0, 1.0, ignore=ignore, online=not facts.quantization)


def linear_bytes_per_weight(facts: ModelFacts, weight_dtype: str) -> tuple[str, float, float]:
    """``(format, bytes per weight of a quantized linear layer, of an MoE expert)`` as vLLM allocates
    them for this checkpoint in ``weight_dtype`` (scales and zero points included)."""
    fmt = _format(facts, weight_dtype)
    return fmt.name, fmt.linear, fmt.experts


def _ignored(names: Iterable[str], ignore: tuple[str, ...]) -> bool:
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


# --- parameters from the architecture ---------------------------------------------------------------


def _attention(facts: ModelFacts) -> tuple[float, float, float]:
    """(sharded, replicated, key/value) parameters of one attention block, norms included."""
    hidden, heads = facts.hidden_size, facts.num_attention_heads
    if facts.use_mla and facts.kv_lora_rank:
        rope = facts.qk_rope_head_dim or 0
        nope = facts.qk_nope_head_dim or max(facts.head_dim - rope, 0)
        value = facts.v_head_dim or nope
        q_head = nope + rope
        replicated = hidden * (facts.kv_lora_rank + rope) + facts.kv_lora_rank  # kv_a_proj_with_mqa, kv_a_layernorm
        if facts.q_lora_rank:
            replicated += hidden * facts.q_lora_rank + facts.q_lora_rank  # q_a_proj, q_a_layernorm
            sharded = facts.q_lora_rank * heads * q_head
        else:
            sharded = hidden * heads * q_head
        sharded += facts.kv_lora_rank * heads * (nope + value) + heads * value * hidden  # kv_b_proj, o_proj
        return sharded, replicated + 2 * hidden, 0.0
    query = heads * facts.head_dim
    kv = 2 * facts.num_key_value_heads * facts.head_dim
    return 2 * hidden * query, 2 * hidden, hidden * kv


def _linear_attention(facts: ModelFacts) -> float:
    """Parameters of one Gated DeltaNet layer (Qwen3-Next: ``in_proj_qkvz``, ``in_proj_ba``, conv, out)."""
    keys = (facts.linear_num_key_heads or 0) * (facts.linear_key_head_dim or 0)
    values = (facts.linear_num_value_heads or 0) * (facts.linear_value_head_dim or 0)
    hidden = facts.hidden_size
    return hidden * (2 * keys + 2 * values) + hidden * 2 * (facts.linear_num_value_heads or 0) + (
        (2 * keys + values) * (facts.linear_conv_kernel_dim or 4)
    ) + values * hidden


def _is_moe_layer(facts: ModelFacts, index: int) -> bool:
    if not facts.num_experts or facts.num_experts <= 1:
        return False
    if facts.first_k_dense_replace and index < facts.first_k_dense_replace:
        return False
    step = facts.moe_layer_step or 1
    return (index + 1) % step == 0


def _layer_names(index: int, kind: str) -> tuple[str, ...]:
    base = f"model.layers.{index}"
    return {
        "attention": (f"{base}.self_attn.q_proj", f"{base}.self_attn", f"{base}.attn"),
        "mlp": (f"{base}.mlp.gate_proj", f"{base}.mlp.down_proj", f"{base}.mlp"),
        "shared": (f"{base}.mlp.shared_experts.gate_proj", f"{base}.mlp.shared_expert.gate_proj"),
        "experts": (f"{base}.mlp.experts.0.gate_proj", f"{base}.mlp.experts", f"{base}.block_sparse_moe.experts"),
    }[kind]


def _config_layers(facts: ModelFacts, fmt: _Format, dtype_bytes: float) -> tuple[list[WeightPart], list[str]]:
    """One part per decoder layer from the architecture."""
    notes: list[str] = []
    hidden, projections = facts.hidden_size, facts.mlp_projections
    expert_width = facts.moe_intermediate_size or facts.intermediate_size or 0
    dense_width = facts.dense_intermediate_size or facts.intermediate_size or 0
    linear_layers = _linear_layer_indices(facts)
    layers: list[WeightPart] = []
    for index in range(facts.num_hidden_layers):
        attention_names = _layer_names(index, "attention")
        attention_bytes = fmt.linear if fmt.attention and not _ignored(attention_names, fmt.ignore) else dtype_bytes
        if index in linear_layers:
            sharded_att, replicated, kv = _linear_attention(facts), 2.0 * hidden, 0.0
        else:
            sharded_att, replicated, kv = _attention(facts)
        sharded = sharded_att * attention_bytes
        kv_bytes = kv * attention_bytes
        params = sharded_att + replicated + kv
        replicated_bytes = replicated * dtype_bytes
        expert_bytes = 0.0
        if _is_moe_layer(facts, index):
            experts = facts.num_experts or 1
            per_expert = projections * hidden * expert_width
            per_weight = fmt.experts if not _ignored(_layer_names(index, "experts"), fmt.ignore) else dtype_bytes
            expert_bytes = experts * per_expert * per_weight  # padding per rank: WeightBreakdown.expert_padding
            sharded += expert_bytes
            router = hidden * experts
            replicated_bytes += router * dtype_bytes  # the gate: never quantized, on every rank
            params += experts * per_expert + router
            shared = facts.shared_expert_intermediate_size or 0
            if shared:
                shared_bytes = fmt.linear if fmt.dense_mlp and not _ignored(_layer_names(index, "shared"), fmt.ignore) else dtype_bytes
                sharded += projections * hidden * shared * shared_bytes
                params += projections * hidden * shared
        else:
            mlp_bytes = fmt.linear if fmt.dense_mlp and not _ignored(_layer_names(index, "mlp"), fmt.ignore) else dtype_bytes
            sharded += projections * hidden * dense_width * mlp_bytes
            params += projections * hidden * dense_width
        if facts.use_mla and facts.kv_lora_rank:
            # W_UK_T and W_UV, bfloat16 copies split out of kv_b_proj after loading (mla_attention.py).
            rope = facts.qk_rope_head_dim or 0
            nope = facts.qk_nope_head_dim or max(facts.head_dim - rope, 0)
            sharded += facts.num_attention_heads * facts.kv_lora_rank * (nope + (facts.v_head_dim or nope)) * 2
        layers.append(WeightPart(f"layer {index}", sharded, replicated_bytes, kv_bytes, params, expert_bytes))
    if not expert_width and not dense_width:
        notes.append("intermediate_size unknown")
    return layers, notes


def _linear_layer_indices(facts: ModelFacts) -> set[int]:
    count = facts.linear_layers
    if not count:
        return set()
    interval = max(1, round(facts.num_hidden_layers / max(facts.full_attention_layers, 1)))
    return {i for i in range(facts.num_hidden_layers) if (i + 1) % interval != 0}


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _spread_layers(facts: ModelFacts, layer_params: float, fmt: _Format, dtype_bytes: float) -> list[WeightPart]:
    """Layers of equal size from a total parameter count (no MLP width known)."""
    attention_sharded, replicated, kv = _attention(facts)
    rest = max(layer_params - attention_sharded - replicated - kv, 0.0)
    per_weight = fmt.experts if facts.num_experts and facts.num_experts > 1 else fmt.linear
    attention_bytes = fmt.linear if fmt.attention else dtype_bytes
    part = WeightPart(
        "layer", attention_sharded * attention_bytes + rest * per_weight, replicated * dtype_bytes,
        kv * attention_bytes, layer_params, rest * per_weight if facts.num_experts and facts.num_experts > 1 else 0.0,
    )
    return [WeightPart(f"layer {i}", part.sharded_bytes, part.replicated_bytes, part.kv_bytes, part.parameters,
                       part.expert_bytes) for i in range(facts.num_hidden_layers)]


def _ends(facts: ModelFacts, dtype_bytes: float) -> tuple[WeightPart, WeightPart, WeightPart]:
    """Embedding, LM head and final norm from the config: the vocabulary padded as vLLM pads it."""
    rows = padded_vocab_size(facts.vocab_size)
    params = facts.vocab_size * facts.hidden_size
    embedding = WeightPart("embedding", rows * facts.hidden_size * dtype_bytes, parameters=params)
    head = (
        WeightPart("lm_head") if facts.tie_word_embeddings
        else WeightPart("lm_head", rows * facts.hidden_size * dtype_bytes, parameters=params)
    )
    final = WeightPart("final norm", replicated_bytes=facts.hidden_size * dtype_bytes, parameters=facts.hidden_size)
    return embedding, head, final


def _towers(facts: ModelFacts, dtype_bytes: float) -> WeightPart:
    params = (facts.vision_parameters or 0.0) + (facts.audio_parameters or 0.0)
    return WeightPart("towers", params * dtype_bytes, parameters=params)


def _mtp(facts: ModelFacts, layers: list[WeightPart]) -> WeightPart:
    """Multi-token-prediction layers: a decoder layer each plus its projection and norms (DeepSeek's
    ``eh_proj`` of 2 x hidden x hidden), sharing the target's embedding and head."""
    if not facts.mtp_layers or not layers:
        return WeightPart("mtp")
    last = layers[-1]
    extra = 2 * facts.hidden_size * facts.hidden_size
    part = WeightPart("mtp", last.sharded_bytes + extra * 2, last.replicated_bytes, last.kv_bytes,
                      last.parameters + extra, last.expert_bytes)
    total = WeightPart("mtp")
    for _ in range(facts.mtp_layers):
        total = total.plus(part)
    return total


def _dtype_bytes(weight_dtype: str) -> float:
    return 4.0 if weight_dtype == "float32" else 2.0


def weight_breakdown(facts: ModelFacts, weight_dtype: str) -> WeightBreakdown:
    """Every part of the model as vLLM loads it in ``weight_dtype`` (see the module docstring).

    ``weight_dtype`` is the resolved precision (:func:`pulumi_vllm.capacity.accounting.resolve_weight_dtype`);
    the checkpoint's ``quantization_config`` refines it (block or group sizes, ignored modules).
    """
    fmt = _format(facts, weight_dtype)
    dtype_bytes = _dtype_bytes(weight_dtype)
    if facts.checkpoint is not None:
        return _from_checkpoint(facts, facts.checkpoint, fmt, dtype_bytes)
    embedding, head, final = _ends(facts, dtype_bytes)
    notes: list[str] = []
    structural = facts.intermediate_size or facts.moe_intermediate_size
    if structural and facts.num_parameters is not None:
        counted = estimate_num_parameters(facts)
        if abs(counted - facts.num_parameters) > PARAMETER_MISMATCH * facts.num_parameters:
            # A count given beside the architecture (a stack's model.facts) that the architecture does
            # not add up to: the given count wins, spread over the layers.
            notes.append(
                f"num_parameters {facts.num_parameters / 1e9:.2f}B differs from the {counted / 1e9:.2f}B the "
                "architecture adds up to; the weights follow num_parameters"
            )
            structural = None
    if structural:
        layers, more = _config_layers(facts, fmt, dtype_bytes)
        notes.extend(more)
        source = "config"
    else:
        ends = embedding.parameters + head.parameters
        if facts.num_parameters is not None:
            total = facts.num_parameters - (facts.vision_parameters or 0) - (facts.audio_parameters or 0)
            source = "num_parameters"
        else:
            total = estimate_num_parameters(facts)
            source = "estimate"
            notes.append(
                f"num_parameters unknown: estimated {total / 1e9:.1f}B from the hidden size alone (no "
                f"intermediate_size: MLP taken as {DEFAULT_MLP_RATIO} x hidden); give the model's full config.json"
            )
        layers = _spread_layers(facts, max(total - ends, 0) / facts.num_hidden_layers, fmt, dtype_bytes)
    return WeightBreakdown(
        embedding, head, tuple(layers), _towers(facts, dtype_bytes), final, _mtp(facts, layers), fmt.name, source,
        facts.tie_word_embeddings, facts.num_key_value_heads, tuple(notes), _expert_padding(facts, fmt),
    )


def _expert_padding(facts: ModelFacts, fmt: _Format) -> tuple[int, int] | None:
    width = facts.moe_intermediate_size or facts.intermediate_size
    if not fmt.mxfp4_padding or not width or not facts.num_experts:
        return None
    return facts.hidden_size, width


def estimate_num_parameters(facts: ModelFacts) -> float:
    """The parameter count from the architecture: the embedding and LM head (one when tied), every
    decoder layer as :func:`weight_breakdown` counts it (MLP widths, experts, shared experts, dense
    layers, MLA ranks, linear attention), and the vision and audio towers. Without any MLP width the
    MLP is taken as DEFAULT_MLP_RATIO x hidden per expert."""
    if facts.intermediate_size or facts.moe_intermediate_size:
        layers, _ = _config_layers(facts, _format(facts, "bfloat16"), 2.0)
        per_layers = sum(part.parameters for part in layers)
    else:
        attention_sharded, replicated, kv = _attention(facts)
        width = DEFAULT_MLP_RATIO * facts.hidden_size
        mlp = facts.mlp_projections * facts.hidden_size * width * (facts.num_experts or 1)
        per_layers = facts.num_hidden_layers * (attention_sharded + replicated + kv + mlp)
    embeddings = (1 if facts.tie_word_embeddings else 2) * facts.vocab_size * facts.hidden_size
    return embeddings + per_layers + (facts.vision_parameters or 0) + (facts.audio_parameters or 0) + facts.hidden_size


# --- from the checkpoint's tensors ------------------------------------------------------------------

_TOWER = re.compile(
    r"(^|\.)(visual|vision_tower|vision_model|vision_encoder|multi_modal_projector|mm_projector|audio_tower|"
    r"audio_model|audio_encoder|vision_embed_tokens|image_newline|embed_vision|embed_audio)(\.|$)"
)
_EMBEDDING = re.compile(r"(^|\.)(embed_tokens|wte|tok_embeddings|word_embeddings|embed_in|wpe|embed_positions)\.")
_HEAD = re.compile(r"(^|\.)(lm_head|embed_out)\.|^output\.weight$")
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks|block|decoder\.layers)\.(\d+)\.")
_REPLICATED = re.compile(
    r"norm|\.gate\.|\.router\.|e_score_correction|q_a_proj|kv_a_proj|\.sinks$|inv_freq"
)
_KV = re.compile(r"\.(k_proj|v_proj)\.")
_SCALE = re.compile(r"scale|absmax|zero|g_idx|quant|_scales$|shape$")
_QUANTIZED_DTYPES = ("F8_E4M3", "F8_E5M2", "F8_E8M0", "I8", "U8", "I32", "U32", "F4", "I16")


def _loaded_bytes(tensor: TensorEntry, fmt: _Format, dtype_bytes: float, facts: ModelFacts) -> tuple[float, float]:
    """(bytes as loaded, parameters) of one stored tensor."""
    dtype = tensor.dtype.upper()
    elements = tensor.num_elements
    if dtype in _QUANTIZED_DTYPES:
        stored = float(tensor.nbytes)
        packing = {"I32": 8, "U32": 8, "U8": 2, "F4": 1}.get(dtype, 1) if not _SCALE.search(tensor.name) else 0
        params = float(elements * packing) if packing else 0.0
        return stored, params
    if _SCALE.search(tensor.name):
        return float(tensor.nbytes), 0.0
    per_element = dtype_bytes
    linear = len(tensor.shape) == 2 and tensor.name.endswith("weight") and not (
        _EMBEDDING.search(tensor.name) or _HEAD.search(tensor.name) or _REPLICATED.search(tensor.name)
        or _TOWER.search(tensor.name)
    )
    if fmt.online and linear and not _ignored((tensor.name.removesuffix(".weight"),), fmt.ignore):
        per_element = fmt.linear
    return elements * per_element, float(elements)


def _from_checkpoint(facts: ModelFacts, checkpoint: CheckpointTensors, fmt: _Format, dtype_bytes: float) -> WeightBreakdown:
    """The breakdown from every stored tensor (see the module docstring, source (a))."""
    layers = [WeightPart(f"layer {i}") for i in range(facts.num_hidden_layers)]
    parts = {name: WeightPart(name) for name in ("embedding", "lm_head", "towers", "final norm", "mtp")}
    vocab_pad = padded_vocab_size(facts.vocab_size) / facts.vocab_size
    for tensor in checkpoint.tensors:
        name = tensor.name
        loaded, params = _loaded_bytes(tensor, fmt, dtype_bytes, facts)
        replicated = len(tensor.shape) <= 1 or bool(_REPLICATED.search(name))
        piece = WeightPart(
            "",
            0.0 if replicated or _KV.search(name) else loaded,
            loaded if replicated else 0.0,
            loaded if _KV.search(name) and not replicated else 0.0,
            params,
            loaded if "experts" in name and "shared" not in name and not replicated else 0.0,
        )
        found = _LAYER.search(name)
        if _TOWER.search(name):
            key = "towers"
        elif found and int(found.group(1)) >= facts.num_hidden_layers:
            key = "mtp"  # DeepSeek's layer 61: skipped unless it is the draft (get_spec_layer_idx_from_weight_name)
        elif found:
            index = int(found.group(1))
            layers[index] = layers[index].plus(piece)
            continue
        elif _EMBEDDING.search(name):
            key = "embedding"
            piece = WeightPart("", piece.sharded_bytes * vocab_pad, parameters=params)
        elif _HEAD.search(name):
            key = "lm_head"
            piece = WeightPart("", piece.sharded_bytes * vocab_pad, parameters=params)
        else:
            key = "final norm"
        parts[key] = parts[key].plus(piece)
    if facts.use_mla and facts.kv_lora_rank:
        rope = facts.qk_rope_head_dim or 0
        nope = facts.qk_nope_head_dim or max(facts.head_dim - rope, 0)
        absorbed = facts.num_attention_heads * facts.kv_lora_rank * (nope + (facts.v_head_dim or nope)) * 2
        layers = [layer.plus(WeightPart("", absorbed)) for layer in layers]
    tied = parts["lm_head"].parameters == 0
    return WeightBreakdown(
        parts["embedding"], parts["lm_head"], tuple(layers), parts["towers"], parts["final norm"], parts["mtp"],
        fmt.name, "checkpoint", tied, facts.num_key_value_heads, (), _expert_padding(facts, fmt),
    )


def active_weight_bytes_per_token(facts: ModelFacts, weight_dtype: str) -> float:
    """Weight bytes one decoded token reads on one model copy: every layer's attention, dense MLP,
    shared experts and router, only ``num_experts_per_token`` of the routed experts, the LM head
    (the whole vocabulary is scored), not the embedding (one row is gathered) nor the towers.

    For performance models: decoding is bound by reading these bytes once per step (per batch).
    """
    breakdown = weight_breakdown(facts, weight_dtype)
    experts = facts.num_experts or 1
    picked = min(facts.num_experts_per_token or 1, experts) / experts
    total = 0.0
    pad = breakdown.expert_pad(1)
    for layer in breakdown.layers:
        total += layer.total_bytes - layer.expert_bytes + layer.expert_bytes * pad * picked
    head = breakdown.lm_head if breakdown.lm_head.total_bytes else breakdown.embedding
    return total + head.total_bytes + breakdown.final.total_bytes


@dataclass(frozen=True)
class DraftWeights:
    """The weights a speculative-decoding draft adds (``--speculative-config``)."""

    method: str
    part: WeightPart
    kv_heads: int
    note: str

    def bytes_per_rank(self, tensor_parallel_size: int) -> float:
        """Bytes one rank holds (the draft runs with the target's tensor-parallel size by default)."""
        return self.part.per_rank(tensor_parallel_size, self.kv_heads)


_NO_WEIGHTS = ("ngram", "ngram_gpu", "suffix")
_MTP = ("mtp", "deepseek_mtp", "qwen3_next_mtp", "glm4_moe_mtp", "ernie_mtp", "longcat_flash_mtp", "mimo_mtp")


def draft_weights(
    facts: ModelFacts, weight_dtype: str, speculative_config: Mapping[str, Any], draft_facts: ModelFacts | None = None,
) -> DraftWeights | None:
    """What the draft of ``speculative_config`` (vLLM's ``SpeculativeConfig`` fields) loads beside the
    target, or ``None`` when it loads nothing (n-gram and suffix lookups).

    - MTP (``method`` ``mtp`` or a model's own ``*_mtp``, or no model given for a checkpoint with
      ``num_nextn_predict_layers``): the checkpoint's MTP layers, sharing the target's embedding
      and LM head (vLLM's ``SpecDecodeBaseProposer.load_model`` shares them when they are alike).
    - EAGLE / EAGLE-3 heads without their own facts: one decoder layer of the target plus the
      input projection (2 x hidden x hidden; 3 x for EAGLE-3).
    - A draft model (``draft_facts``): its whole weights, in its own precision.
    """
    method = str(speculative_config.get("method") or "").lower()
    if method in _NO_WEIGHTS:
        return None
    model = speculative_config.get("model")
    target = weight_breakdown(facts, weight_dtype)
    if method in _MTP or (not model and facts.mtp_layers):
        if not facts.mtp_layers:
            return DraftWeights(method or "mtp", WeightPart("mtp"), facts.num_key_value_heads,
                                "speculative MTP named but the model has no num_nextn_predict_layers: nothing counted")
        part = target.mtp
        return DraftWeights(method or "mtp", part, facts.num_key_value_heads,
                            f"speculative draft (MTP, {facts.mtp_layers} layer(s)): {part.total_bytes / GIB:.2f} GiB")
    if draft_facts is not None:
        from pulumi_vllm.capacity.accounting import resolve_weight_dtype

        draft = weight_breakdown(draft_facts, resolve_weight_dtype(draft_facts, None, str(model or "")))
        part = WeightPart("draft")
        for piece in (draft.embedding, draft.lm_head, draft.towers, draft.final, *draft.layers):
            part = part.plus(piece)
        return DraftWeights(method or "draft_model", part, draft_facts.num_key_value_heads,
                            f"speculative draft {model}: {part.total_bytes / GIB:.2f} GiB")
    if method.startswith("eagle") or model:
        layer = target.layers[-1]
        inputs = (3 if method == "eagle3" else 2) * facts.hidden_size * facts.hidden_size * _dtype_bytes(weight_dtype)
        part = layer.plus(WeightPart("", inputs))
        return DraftWeights(method or "draft_model", part, facts.num_key_value_heads,
                            f"speculative draft {model or method}: not in the catalog, taken as one decoder layer "
                            f"of the target plus its input projection ({part.total_bytes / GIB:.2f} GiB, estimated)")
    return None


def weights_gib(facts: ModelFacts, weight_dtype: str) -> float:
    """Total weights of one copy in GiB (MTP excluded), for quick checks."""
    return weight_breakdown(facts, weight_dtype).total_bytes / GIB


__all__ = [
    "DEFAULT_MLP_RATIO",
    "DraftWeights",
    "WeightBreakdown",
    "WeightPart",
    "active_weight_bytes_per_token",
    "draft_weights",
    "estimate_num_parameters",
    "linear_bytes_per_weight",
    "weight_breakdown",
    "weights_gib",
]
