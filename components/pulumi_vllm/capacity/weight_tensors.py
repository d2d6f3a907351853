"""The breakdown from the checkpoint's own tensors (names, dtypes and shapes of the safetensors headers).

Each tensor counts as stored (quantized tensors and their scales are loaded as they are), except
32-bit weights, which vLLM loads in the model dtype, and 16-bit linear weights quantized at load time
(``--quantization fp8`` on a bf16 checkpoint). Layers past ``num_hidden_layers`` are multi-token
prediction (DeepSeek's layer 61), which vLLM skips unless it is the speculative draft.
"""

from __future__ import annotations

import re

from pulumi_vllm.capacity.weight_formats import WeightFormat, expert_padding, is_ignored
from pulumi_vllm.capacity.weight_parts import WeightBreakdown, WeightPart
from pulumi_vllm.distributed.parallelism import padded_vocab_size
from pulumi_vllm.models.checkpoint import CheckpointTensors, TensorEntry
from pulumi_vllm.models.facts import ModelFacts

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


def _loaded_bytes(tensor: TensorEntry, fmt: WeightFormat, dtype_bytes: float, facts: ModelFacts) -> tuple[float, float]:
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
    if fmt.online and linear and not is_ignored((tensor.name.removesuffix(".weight"),), fmt.ignore):
        per_element = fmt.linear
    return elements * per_element, float(elements)


def breakdown_from_checkpoint(facts: ModelFacts, checkpoint: CheckpointTensors, fmt: WeightFormat, dtype_bytes: float) -> WeightBreakdown:
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
    tied = parts["lm_head"].parameters == 0 or facts.tie_word_embeddings
    if facts.tie_word_embeddings:
        parts["lm_head"] = WeightPart("lm_head")  # a tied head's stored copy is not loaded (load_weights skips it)
    return WeightBreakdown(
        parts["embedding"], parts["lm_head"], tuple(layers), parts["towers"], parts["final norm"], parts["mtp"],
        fmt.name, "checkpoint", tied, facts.num_key_value_heads, (), expert_padding(facts, fmt),
    )
