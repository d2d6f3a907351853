"""Model architecture facts: the numbers the parallelism rules and the capacity planner need.

A :class:`ModelFacts` comes from one of three places, in this order of precedence: explicit values in
the stack config, the model's ``config.json``, or the built-in catalog (:mod:`pulumi_vllm.models.catalog`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pulumi_vllm.models.checkpoint import CheckpointTensors


class ModelFacts(BaseModel):
    """Architecture facts of one model, in Hugging Face ``config.json`` terms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_hidden_layers: int = Field(gt=0)
    """Transformer layers (decoder blocks)."""
    num_attention_heads: int = Field(gt=0)
    """Query attention heads."""
    num_key_value_heads: int = Field(gt=0)
    """Key/value heads (equal to the attention heads without grouped-query attention)."""
    head_dim: int = Field(gt=0)
    """Size of one attention head (usually hidden_size / num_attention_heads)."""
    hidden_size: int = Field(gt=0)
    """Model (embedding) width."""
    vocab_size: int = Field(gt=0)
    """Vocabulary size before vLLM pads it to a multiple of 64."""
    num_parameters: float | None = Field(default=None, gt=0)
    """Total parameter count (all experts of a mixture-of-experts model)."""
    max_position_embeddings: int | None = Field(default=None, gt=0)
    """Longest context the model supports."""
    use_mla: bool = False
    """Multi-head latent attention (DeepSeek-V2/V3): the KV cache stores a compressed latent."""
    kv_lora_rank: int | None = Field(default=None, gt=0)
    """MLA latent size (cached per token and layer, with qk_rope_head_dim)."""
    qk_rope_head_dim: int | None = Field(default=None, gt=0)
    """MLA rotary part of the key, cached beside the latent."""
    num_experts: int | None = Field(default=None, gt=0)
    """Routed experts of a mixture-of-experts model, if any."""
    num_experts_per_token: int | None = Field(default=None, gt=0)
    """Experts the router picks per token (``num_experts_per_tok``; Mixtral 2, DeepSeek-V3 8, gpt-oss 4)."""
    sliding_window: int | None = Field(default=None, gt=0)
    """Tokens a sliding-window attention layer attends to (Gemma 2/3, gpt-oss, Mistral 7B v0.1)."""
    sliding_window_layers: int | None = Field(default=None, ge=0)
    """How many layers use ``sliding_window`` (the rest attend to the full context); ``None``: all."""
    linear_attention_layers: int | None = Field(default=None, ge=0)
    """Layers with linear attention (Gated DeltaNet in Qwen3-Next): a fixed state per request, no per-token KV."""
    linear_num_key_heads: int | None = Field(default=None, gt=0)
    """Key heads of a linear-attention layer."""
    linear_num_value_heads: int | None = Field(default=None, gt=0)
    """Value heads of a linear-attention layer."""
    linear_key_head_dim: int | None = Field(default=None, gt=0)
    """Key head size of a linear-attention layer."""
    linear_value_head_dim: int | None = Field(default=None, gt=0)
    """Value head size of a linear-attention layer."""
    linear_conv_kernel_dim: int | None = Field(default=None, gt=0)
    """Width of a linear-attention layer's short convolution (its conv state keeps width - 1 tokens)."""
    intermediate_size: int | None = Field(default=None, gt=0)
    """MLP width of a dense layer (of one expert in Mixtral, gpt-oss and Llama 4, which have no
    ``moe_intermediate_size``)."""
    moe_intermediate_size: int | None = Field(default=None, gt=0)
    """Width of one routed expert (DeepSeek, Qwen MoE, GLM-4.5)."""
    dense_intermediate_size: int | None = Field(default=None, gt=0)
    """MLP width of the dense layers of a model whose ``intermediate_size`` is the expert's (Llama 4's
    ``intermediate_size_mlp``)."""
    shared_expert_intermediate_size: int | None = Field(default=None, ge=0)
    """Total width of the always-active shared experts (``shared_expert_intermediate_size``, or
    ``n_shared_experts`` x ``moe_intermediate_size``)."""
    first_k_dense_replace: int | None = Field(default=None, ge=0)
    """Leading decoder layers with a dense MLP instead of experts (DeepSeek-V3: 3, Kimi K2: 1)."""
    moe_layer_step: int | None = Field(default=None, gt=0)
    """Every n-th layer has experts, the others a dense MLP (``interleave_moe_layer_step``,
    ``decoder_sparse_step``; Llama 4 Maverick 2)."""
    mlp_projections: int = Field(default=3, ge=2, le=3)
    """Matrices of one MLP: 3 for gated (SwiGLU, GeGLU), 2 for OPT/GPT-2 style."""
    tie_word_embeddings: bool = False
    """Whether the LM head shares the embedding's weights (one matrix loaded, not two)."""
    q_lora_rank: int | None = Field(default=None, gt=0)
    """MLA query compression rank (DeepSeek-V3: 1536; null in V2-Lite: a plain query projection)."""
    qk_nope_head_dim: int | None = Field(default=None, gt=0)
    """MLA non-rotary part of a query/key head."""
    v_head_dim: int | None = Field(default=None, gt=0)
    """MLA value head size."""
    mtp_layers: int | None = Field(default=None, ge=0)
    """Multi-token-prediction layers in the checkpoint (``num_nextn_predict_layers``), loaded only as a
    speculative draft."""
    vision_parameters: float | None = Field(default=None, ge=0)
    """Parameters of the vision tower and its projector (estimated from ``vision_config`` or published)."""
    audio_parameters: float | None = Field(default=None, ge=0)
    """Parameters of the audio tower and its projector."""
    vision_hidden_size: int | None = Field(default=None, gt=0)
    """Width of the vision encoder (its profiling activations grow with it)."""
    vision_intermediate_size: int | None = Field(default=None, gt=0)
    """MLP width of the vision encoder."""
    vision_merge: int = Field(default=1, gt=0)
    """Encoder patches per language-model token (Qwen2-VL's ``spatial_merge_size`` squared)."""
    quantization_config: dict[str, Any] | None = None
    """The checkpoint's ``quantization_config`` as config.json writes it (group size, block size,
    modules kept unquantized)."""
    torch_dtype: str = "bfloat16"
    """Dtype the checkpoint is stored in."""
    quantization: str | None = None
    """Weight quantization of the checkpoint (``fp8``, ``awq``, ``gptq``, ...), if any."""
    source: str = ""
    """Where these numbers come from (a URL or ``config.json`` path)."""
    checkpoint: CheckpointTensors | None = None
    """Every tensor of the checkpoint as stored, when read from its safetensors headers."""

    @property
    def window_layers(self) -> int:
        """Layers that hold only ``sliding_window`` tokens in the KV cache (0 without a window)."""
        if self.sliding_window is None:
            return 0
        if self.sliding_window_layers is None:
            return self.num_hidden_layers
        return self.sliding_window_layers

    @property
    def linear_layers(self) -> int:
        """Layers with linear attention (0 for pure-attention models)."""
        return self.linear_attention_layers or 0

    @property
    def full_attention_layers(self) -> int:
        """Layers that keep the KV of every token of the context."""
        return self.num_hidden_layers - self.window_layers - self.linear_layers


# Alternative spellings of the same quantity in older or non-Llama config.json files (GPT-2,
# Falcon, MPT...), tried in order after the Hugging Face standard name.
_ALIASES: dict[str, tuple[str, ...]] = {
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "num_key_value_heads": (
        "num_key_value_heads",
        "num_kv_heads",
        "n_head_kv",
        "multi_query_group_num",
    ),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "vocab_size": ("vocab_size", "padded_vocab_size"),
    "max_position_embeddings": (
        "max_position_embeddings",
        "n_positions",
        "max_sequence_length",
        "seq_length",
        "max_seq_len",
    ),
}
# Mixtral, DeepSeek and Qwen-MoE each name their routed-expert count differently.
_EXPERT_KEYS = ("num_local_experts", "n_routed_experts", "num_experts")


def _first(config: dict[str, Any], field: str) -> Any:
    """The first non-null value among ``field``'s spellings, or ``None``."""
    for key in _ALIASES.get(field, (field,)):
        value = config.get(key)
        if value is not None:
            return value
    return None


def _load_config_json(data: dict[str, Any] | str | Path) -> tuple[dict[str, Any], str]:
    """``(parsed config.json, where it came from)`` for a dict, a file or a model folder."""
    if isinstance(data, dict):
        return data, "<dict>"
    path = Path(data)
    if path.is_dir():
        path = path / "config.json"
    try:
        parsed = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"config.json not found: {path}") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(parsed, dict):
        # A malformed file rather than a wrong argument type, like the errors above.
        message = f"{path} must hold a JSON object, got {type(parsed).__name__}"
        raise ValueError(message)  # noqa: TRY004
    return parsed, str(path)


def facts_from_config_json(
    data: dict[str, Any] | str | Path, source: str = ""
) -> ModelFacts:
    """Read a Hugging Face ``config.json`` (a parsed dict, the file, or the model folder).

    Multimodal models keep the language model's numbers in ``text_config``; those win over the
    top level, which still supplies ``torch_dtype`` and ``quantization_config``. Without
    ``num_key_value_heads`` the model has plain multi-head attention (kv heads = heads); without
    ``head_dim`` a head is ``hidden_size // num_attention_heads``, as vLLM computes it.

    Raises:
        ValueError: the file is missing or unreadable, or a required field is absent (the message
            names the field and the file).
    """
    top, where = _load_config_json(data)
    text = top.get("text_config")
    config = {**top, **text} if isinstance(text, dict) else dict(top)

    def number(field: str, value: Any) -> int | None:
        """``value`` as a positive int, ``None`` when absent; anything else is an error."""
        if value is None:
            return None
        integral = isinstance(value, float) and value.is_integer()
        if (
            isinstance(value, bool)
            or not (isinstance(value, int) or integral)
            or value < 1
        ):
            raise ValueError(
                f"config.json ({where}) has {field} {value!r}; expected a positive integer"
            )
        return int(value)

    def required(field: str) -> int:
        value = number(field, _first(config, field))
        if value is None:
            spellings = " / ".join(_ALIASES.get(field, (field,)))
            raise ValueError(
                f"config.json ({where}) has no {field} (looked for {spellings})"
            )
        return value

    layers = required("num_hidden_layers")
    heads = required("num_attention_heads")
    hidden = required("hidden_size")
    vocab = required("vocab_size")
    kv_heads = number("num_key_value_heads", _first(config, "num_key_value_heads"))
    if kv_heads is None:
        # Falcon-style multi-query attention is a flag, not a count.
        kv_heads = 1 if config.get("multi_query") is True else heads

    # DeepSeek-V2/V3 (MLA) set kv_lora_rank; other models omit it or write null.
    kv_lora_rank = number("kv_lora_rank", config.get("kv_lora_rank"))
    qk_rope_head_dim = number("qk_rope_head_dim", config.get("qk_rope_head_dim"))
    qk_nope_head_dim = number("qk_nope_head_dim", config.get("qk_nope_head_dim"))
    use_mla = kv_lora_rank is not None
    head_dim = number("head_dim", config.get("head_dim"))
    if head_dim is None and use_mla and qk_nope_head_dim and qk_rope_head_dim:
        # MLA query/key heads are the non-rotary part plus the rotary part.
        head_dim = qk_nope_head_dim + qk_rope_head_dim
    if head_dim is None:
        head_dim = max(1, hidden // heads)

    # 0 or null experts (dense checkpoints of MoE families) means no experts.
    experts = next((config[k] for k in _EXPERT_KEYS if config.get(k)), None)
    quantization_config = top.get("quantization_config") or config.get(
        "quantization_config"
    )
    quantization = None
    if isinstance(quantization_config, dict) and quantization_config.get(
        "quant_method"
    ):
        quantization = str(quantization_config["quant_method"]).lower()
    # transformers 5 writes "dtype"; older releases "torch_dtype".
    dtype = top.get("torch_dtype") or top.get("dtype") or config.get("torch_dtype")

    max_positions = number("max_position_embeddings", _first(config, "max_position_embeddings"))
    window, window_layers, linear_layers = _layer_kinds(config, layers, max_positions, number)
    linear: dict[str, Any] = {
        name: number(name, config.get(name))
        for name in (
            "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
            "linear_value_head_dim", "linear_conv_kernel_dim",
        )
    } if linear_layers else {}

    structure = _structure(top, config, number)
    return ModelFacts(
        **structure,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        vocab_size=vocab,
        max_position_embeddings=max_positions,
        use_mla=use_mla,
        kv_lora_rank=kv_lora_rank,
        qk_rope_head_dim=qk_rope_head_dim if use_mla else None,
        num_experts=number("num_experts", experts),
        num_experts_per_token=number("num_experts_per_tok", config.get("num_experts_per_tok")) if experts else None,
        sliding_window=window,
        sliding_window_layers=window_layers,
        linear_attention_layers=linear_layers or None,
        **linear,
        torch_dtype=dtype if isinstance(dtype, str) else "bfloat16",
        quantization=quantization,
        quantization_config=quantization_config if isinstance(quantization_config, dict) else None,
        source=source or where,
    )


# Model types whose MLP is two matrices (up, down) rather than a gated three.
_UNGATED_MLP = ("opt", "gpt2", "gpt_neox", "gptj", "phi", "falcon", "bloom", "mpt", "gpt_bigcode", "starcoder2")


def _structure(top: dict[str, Any], config: dict[str, Any], number: Any) -> dict[str, Any]:
    """The fields the parameter count needs beyond attention: MLP widths, experts' layout, tied
    embeddings, MLA ranks, multi-token-prediction layers and the vision or audio tower."""
    moe_width = number("moe_intermediate_size", config.get("moe_intermediate_size"))
    shared = number("shared_expert_intermediate_size", config.get("shared_expert_intermediate_size"))
    shared_count = config.get("n_shared_experts") or config.get("num_shared_experts")
    if shared is None and shared_count and moe_width:
        shared = int(shared_count) * moe_width
    model_type = str(config.get("model_type") or "")
    if shared is None and model_type.startswith("llama4"):
        shared = number("intermediate_size", config.get("intermediate_size"))  # one shared expert per MoE layer
    tied = top.get("tie_word_embeddings", config.get("tie_word_embeddings"))
    if tied is None:
        tied = model_type.startswith(("gemma", "opt"))  # those families tie by default in transformers
    vision = top.get("vision_config") if isinstance(top.get("vision_config"), dict) else None
    audio = top.get("audio_config") if isinstance(top.get("audio_config"), dict) else None
    text_hidden = number("hidden_size", _first(config, "hidden_size"))
    return {
        "intermediate_size": number("intermediate_size", config.get("intermediate_size") or config.get("ffn_dim")),
        "moe_intermediate_size": moe_width,
        "dense_intermediate_size": number("intermediate_size_mlp", config.get("intermediate_size_mlp")),
        "shared_expert_intermediate_size": shared,
        "first_k_dense_replace": config.get("first_k_dense_replace") or None,
        "moe_layer_step": number(
            "interleave_moe_layer_step", config.get("interleave_moe_layer_step") or config.get("decoder_sparse_step")
        ),
        "mlp_projections": 2 if model_type in _UNGATED_MLP else 3,
        "tie_word_embeddings": bool(tied),
        "q_lora_rank": number("q_lora_rank", config.get("q_lora_rank")),
        "qk_nope_head_dim": number("qk_nope_head_dim", config.get("qk_nope_head_dim")),
        "v_head_dim": number("v_head_dim", config.get("v_head_dim")),
        "mtp_layers": config.get("num_nextn_predict_layers") or None,
        "vision_parameters": tower_parameters(vision, text_hidden) if vision else None,
        "audio_parameters": tower_parameters(audio, text_hidden) if audio else None,
        "vision_hidden_size": _tower_width(vision) if vision else None,
        "vision_intermediate_size": number(
            "vision_config.intermediate_size", (vision or {}).get("intermediate_size")
        ),
        "vision_merge": int((vision or {}).get("spatial_merge_size") or 1) ** 2,
    }


def _tower_width(tower: dict[str, Any]) -> int | None:
    width = tower.get("hidden_size") or tower.get("embed_dim") or tower.get("width") or tower.get("d_model")
    return int(width) if isinstance(width, int | float) and width > 0 else None


def tower_parameters(tower: dict[str, Any], text_hidden: int | None = None) -> float | None:
    """Parameters of a vision or audio encoder described by its ``vision_config`` / ``audio_config``.

    A ViT or Whisper-style encoder: per layer the four attention projections (h x h each) and an MLP
    of two matrices (three when gated: ``silu``/``swiglu``, as Qwen2.5-VL's), plus the patch embedding
    (channels x temporal x patch^2 x h), learned positions ((image / patch)^2 x h) and the projector
    into the language model (Qwen2-VL's patch merger: (h m^2)^2 + h m^2 x out for merge size m; else
    h x out). ``None`` when the config gives no width or depth.
    """
    width = _tower_width(tower)
    depth = tower.get("depth") or tower.get("num_hidden_layers") or tower.get("encoder_layers") or tower.get("layers")
    if not width or not isinstance(depth, int | float) or depth <= 0:
        return None
    inner = tower.get("intermediate_size") or tower.get("encoder_ffn_dim") or tower.get("mlp_dim") or 4 * width
    act = str(tower.get("hidden_act") or tower.get("activation_function") or "")
    matrices = 3 if act in ("silu", "swiglu") else 2
    layer = 4 * width * width + matrices * width * inner + 9 * width  # projections, MLP, norms and biases
    patch = int(tower.get("patch_size") or 0)
    channels = int(tower.get("in_chans") or tower.get("in_channels") or tower.get("num_channels") or 3)
    temporal = int(tower.get("temporal_patch_size") or 1)
    embed = channels * temporal * patch * patch * width if patch else 0
    image = int(tower.get("image_size") or 0)
    positions = (image // patch) ** 2 * width if image and patch else 0
    out = int(tower.get("out_hidden_size") or tower.get("output_dim") or text_hidden or width)
    merge = int(tower.get("spatial_merge_size") or 1)
    merged = width * merge * merge
    projector = merged * merged + merged * out if merge > 1 else width * out
    return float(depth * layer + embed + positions + projector)


def _layer_kinds(
    config: dict[str, Any], layers: int, max_positions: int | None, number: Any
) -> tuple[int | None, int | None, int]:
    """``(sliding window, layers using it, linear-attention layers)`` as the config describes them.

    ``layer_types`` (gpt-oss, recent Gemma 3 and Qwen3-Next configs) names each layer's kind;
    older configs give a pattern instead: Gemma 2 alternates sliding and full layers starting
    with a sliding one, Gemma 3 makes every ``sliding_window_pattern``-th layer full, Qwen3-Next
    every ``full_attention_interval``-th. A window that covers the whole context (or
    ``use_sliding_window: false``, Qwen2) is no window.
    """
    kinds = config.get("layer_types")
    linear = 0
    window = number("sliding_window", config.get("sliding_window")) if config.get("use_sliding_window", True) else None
    window_layers: int | None = None
    if isinstance(kinds, list) and len(kinds) == layers:
        linear = sum(kind == "linear_attention" for kind in kinds)
        window_layers = sum(kind == "sliding_attention" for kind in kinds)
    else:
        model_type = str(config.get("model_type") or "")
        interval = number("full_attention_interval", config.get("full_attention_interval"))
        if interval:
            linear = layers - layers // interval
        if model_type == "gemma2":
            window_layers = (layers + 1) // 2
        elif model_type.startswith("gemma3"):
            pattern = number("sliding_window_pattern", config.get("sliding_window_pattern")) or 6
            window_layers = layers - layers // pattern
    if window is None or (max_positions is not None and window >= max_positions) or window_layers == 0:
        return None, None, linear
    return window, window_layers, linear
