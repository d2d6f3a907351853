"""Weights as vLLM loads them: a per-part breakdown in bytes, from the checkpoint or from the config.

vLLM allocates each layer's parameters in ``create_weights`` of the layer's quantization method and
may rewrite them in ``process_weights_after_loading``; "Model loading took X GiB" is what is left.
The parts are :mod:`pulumi_vllm.capacity.weight_parts`'s, their precision per format
:mod:`pulumi_vllm.capacity.weight_formats`'s. Two sources, best first:

(a) ``facts.checkpoint``, every tensor of the safetensors files with dtype and shape
    (:mod:`pulumi_vllm.capacity.weight_tensors`);
(b) the architecture (``intermediate_size``, experts, shared experts, dense layers, MLA ranks,
    towers...) turned into parameters per part, each stored in the precision the checkpoint's
    ``quantization_config`` gives it.

Parts every method keeps in 16 bits: embeddings and LM head (``VocabParallelEmbedding`` /
``ParallelLMHead`` are not quantized), norms, MoE routers (``quant_config=None`` in the models'
gate layers) and vision towers unless the checkpoint stores them quantized. MLA models add, per
layer, the bfloat16 ``W_UK_T`` and ``W_UV`` that ``MLAAttention.process_weights_after_loading``
(vllm/model_executor/layers/attention/mla_attention.py) splits out of ``kv_b_proj``.
"""

from __future__ import annotations

from pulumi_vllm.capacity.accounting import DEFAULT_MLP_RATIO
from pulumi_vllm.capacity.weight_formats import (
    WeightFormat,
    expert_padding,
    is_ignored,
    linear_bytes_per_weight,
    weight_format,
)
from pulumi_vllm.capacity.weight_parts import GIB, WeightBreakdown, WeightPart
from pulumi_vllm.capacity.weight_tensors import breakdown_from_checkpoint
from pulumi_vllm.distributed.parallelism import padded_vocab_size
from pulumi_vllm.models.facts import ModelFacts

PARAMETER_MISMATCH = 0.05
"""Relative difference between a given ``num_parameters`` and the architecture's count beyond which the
given count is used (every catalog entry agrees within 2 %)."""


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


def _config_layers(facts: ModelFacts, fmt: WeightFormat, dtype_bytes: float) -> tuple[list[WeightPart], list[str]]:
    """One part per decoder layer from the architecture."""
    notes: list[str] = []
    hidden, projections = facts.hidden_size, facts.mlp_projections
    expert_width = facts.moe_intermediate_size or facts.intermediate_size or 0
    dense_width = facts.dense_intermediate_size or facts.intermediate_size or 0
    linear_layers = _linear_layer_indices(facts)
    layers: list[WeightPart] = []
    for index in range(facts.num_hidden_layers):
        attention_names = _layer_names(index, "attention")
        attention_bytes = fmt.linear if fmt.attention and not is_ignored(attention_names, fmt.ignore) else dtype_bytes
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
            per_weight = fmt.experts if not is_ignored(_layer_names(index, "experts"), fmt.ignore) else dtype_bytes
            expert_bytes = experts * per_expert * per_weight  # padding per rank: WeightBreakdown.expert_padding
            sharded += expert_bytes
            router = hidden * experts
            replicated_bytes += router * dtype_bytes  # the gate: never quantized, on every rank
            params += experts * per_expert + router
            shared = facts.shared_expert_intermediate_size or 0
            if shared:
                shared_bytes = fmt.linear if fmt.dense_mlp and not is_ignored(_layer_names(index, "shared"), fmt.ignore) else dtype_bytes
                sharded += projections * hidden * shared * shared_bytes
                params += projections * hidden * shared
        else:
            mlp_bytes = fmt.linear if fmt.dense_mlp and not is_ignored(_layer_names(index, "mlp"), fmt.ignore) else dtype_bytes
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



def _spread_layers(facts: ModelFacts, layer_params: float, fmt: WeightFormat, dtype_bytes: float) -> list[WeightPart]:
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


def unquantized_bytes(weight_dtype: str) -> float:
    """Bytes of a 16-bit (or float32) weight in ``weight_dtype``."""
    return 4.0 if weight_dtype == "float32" else 2.0


def weight_breakdown(facts: ModelFacts, weight_dtype: str) -> WeightBreakdown:
    """Every part of the model as vLLM loads it in ``weight_dtype`` (see the module docstring).

    ``weight_dtype`` is the resolved precision (:func:`pulumi_vllm.capacity.accounting.resolve_weight_dtype`);
    the checkpoint's ``quantization_config`` refines it (block or group sizes, ignored modules).
    """
    fmt = weight_format(facts, weight_dtype)
    dtype_bytes = unquantized_bytes(weight_dtype)
    if facts.checkpoint is not None:
        return breakdown_from_checkpoint(facts, facts.checkpoint, fmt, dtype_bytes)
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
        facts.tie_word_embeddings, facts.num_key_value_heads, tuple(notes), expert_padding(facts, fmt),
    )



def estimate_num_parameters(facts: ModelFacts) -> float:
    """The parameter count from the architecture: the embedding and LM head (one when tied), every
    decoder layer as :func:`weight_breakdown` counts it (MLP widths, experts, shared experts, dense
    layers, MLA ranks, linear attention), and the vision and audio towers. Without any MLP width the
    MLP is taken as DEFAULT_MLP_RATIO x hidden per expert."""
    if facts.intermediate_size or facts.moe_intermediate_size:
        layers, _ = _config_layers(facts, weight_format(facts, "bfloat16"), 2.0)
        per_layers = sum(part.parameters for part in layers)
    else:
        attention_sharded, replicated, kv = _attention(facts)
        width = DEFAULT_MLP_RATIO * facts.hidden_size
        mlp = facts.mlp_projections * facts.hidden_size * width * (facts.num_experts or 1)
        per_layers = facts.num_hidden_layers * (attention_sharded + replicated + kv + mlp)
    embeddings = (1 if facts.tie_word_embeddings else 2) * facts.vocab_size * facts.hidden_size
    return embeddings + per_layers + (facts.vision_parameters or 0) + (facts.audio_parameters or 0) + facts.hidden_size


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


def weights_gib(facts: ModelFacts, weight_dtype: str) -> float:
    """Total weights of one copy in GiB (MTP excluded), for quick checks."""
    return weight_breakdown(facts, weight_dtype).total_bytes / GIB


__all__ = [
    "DEFAULT_MLP_RATIO",
    "GIB",
    "WeightBreakdown",
    "WeightPart",
    "active_weight_bytes_per_token",
    "estimate_num_parameters",
    "linear_bytes_per_weight",
    "unquantized_bytes",
    "weight_breakdown",
    "weights_gib",
]
