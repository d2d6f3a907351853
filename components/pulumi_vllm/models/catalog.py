"""Built-in catalog of architecture facts for widely deployed open models.

Every entry copies its numbers from the model's Hugging Face ``config.json`` (linked in
``source``); ``num_parameters`` is the count published on the model card / safetensors index.
The catalog is only the last resort: explicit stack config and a local ``config.json`` win (see
:func:`pulumi_vllm.models.resolve.resolve_facts`).
"""

from __future__ import annotations

from typing import Any

from pulumi_vllm.models.facts import ModelFacts


def _config_url(model_id: str) -> str:
    return f"https://huggingface.co/{model_id}/blob/main/config.json"


# Shared shapes: Instruct and base checkpoints of one model have identical architectures.
_LLAMA_31_8B: dict[str, Any] = {
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_size": 4096,
    "vocab_size": 128256,
    "num_parameters": 8.03e9,
    "max_position_embeddings": 131072,
}
_LLAMA_70B: dict[str, Any] = {
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_size": 8192,
    "vocab_size": 128256,
    "num_parameters": 70.6e9,
    "max_position_embeddings": 131072,
}
_LLAMA_31_405B: dict[str, Any] = {
    "num_hidden_layers": 126,
    "num_attention_heads": 128,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_size": 16384,
    "vocab_size": 128256,
    "num_parameters": 405.9e9,
    "max_position_embeddings": 131072,
}
_LLAMA_32_1B: dict[str, Any] = {
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "hidden_size": 2048,
    "vocab_size": 128256,
    "num_parameters": 1.24e9,
    "max_position_embeddings": 131072,
}
_LLAMA_32_3B: dict[str, Any] = {
    "num_hidden_layers": 28,
    "num_attention_heads": 24,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_size": 3072,
    "vocab_size": 128256,
    "num_parameters": 3.21e9,
    "max_position_embeddings": 131072,
}
_QWEN25_7B: dict[str, Any] = {
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "hidden_size": 3584,
    "vocab_size": 152064,
    "num_parameters": 7.62e9,
    "max_position_embeddings": 32768,
}
_QWEN25_72B: dict[str, Any] = {
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_size": 8192,
    "vocab_size": 152064,
    "num_parameters": 72.7e9,
    "max_position_embeddings": 32768,
}

_ENTRIES: list[tuple[str, dict[str, Any]]] = [
    ("meta-llama/Llama-3.1-8B-Instruct", _LLAMA_31_8B),
    ("meta-llama/Llama-3.1-8B", _LLAMA_31_8B),
    ("meta-llama/Llama-3.1-70B-Instruct", _LLAMA_70B),
    ("meta-llama/Llama-3.1-70B", _LLAMA_70B),
    ("meta-llama/Llama-3.3-70B-Instruct", _LLAMA_70B),
    ("meta-llama/Llama-3.1-405B-Instruct", _LLAMA_31_405B),
    ("meta-llama/Llama-3.1-405B", _LLAMA_31_405B),
    # Meta's own FP8 release: weights in fp8 with per-channel scales (quant_method fbgemm_fp8).
    (
        "meta-llama/Llama-3.1-405B-Instruct-FP8",
        {**_LLAMA_31_405B, "quantization": "fbgemm_fp8"},
    ),
    ("meta-llama/Llama-3.1-405B-FP8", {**_LLAMA_31_405B, "quantization": "fbgemm_fp8"}),
    ("meta-llama/Llama-3.2-1B-Instruct", _LLAMA_32_1B),
    ("meta-llama/Llama-3.2-1B", _LLAMA_32_1B),
    ("meta-llama/Llama-3.2-3B-Instruct", _LLAMA_32_3B),
    ("meta-llama/Llama-3.2-3B", _LLAMA_32_3B),
    ("Qwen/Qwen2.5-7B-Instruct", _QWEN25_7B),
    ("Qwen/Qwen2.5-7B", {**_QWEN25_7B, "max_position_embeddings": 131072}),
    ("Qwen/Qwen2.5-72B-Instruct", _QWEN25_72B),
    ("Qwen/Qwen2.5-72B", {**_QWEN25_72B, "max_position_embeddings": 131072}),
    (
        "Qwen/Qwen3-8B",
        {
            "num_hidden_layers": 36,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_size": 4096,
            "vocab_size": 151936,
            "num_parameters": 8.19e9,
            "max_position_embeddings": 40960,
        },
    ),
    # Qwen3 sets head_dim explicitly: 128, not hidden_size / heads (5120 / 40 = 128 here by chance).
    (
        "Qwen/Qwen3-14B",
        {
            "num_hidden_layers": 40,
            "num_attention_heads": 40,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_size": 5120,
            "vocab_size": 151936,
            "num_parameters": 14.8e9,
            "max_position_embeddings": 40960,
        },
    ),
    # 64 heads x 128 = 8192 != hidden 5120: the explicit head_dim matters.
    (
        "Qwen/Qwen3-32B",
        {
            "num_hidden_layers": 64,
            "num_attention_heads": 64,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_size": 5120,
            "vocab_size": 151936,
            "num_parameters": 32.8e9,
            "max_position_embeddings": 40960,
        },
    ),
    (
        "mistralai/Mistral-7B-Instruct-v0.3",
        {
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_size": 4096,
            "vocab_size": 32768,
            "num_parameters": 7.25e9,
            "max_position_embeddings": 32768,
        },
    ),
    (
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        {
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 8,
            "head_dim": 128,
            "hidden_size": 4096,
            "vocab_size": 32000,
            "num_parameters": 46.7e9,
            "max_position_embeddings": 32768,
            "num_experts": 8,
        },
    ),
    # Gemma 2 27B: head_dim 128 although hidden_size / heads = 144.
    (
        "google/gemma-2-27b-it",
        {
            "num_hidden_layers": 46,
            "num_attention_heads": 32,
            "num_key_value_heads": 16,
            "head_dim": 128,
            "hidden_size": 4608,
            "vocab_size": 256000,
            "num_parameters": 27.2e9,
            "max_position_embeddings": 8192,
        },
    ),
    # MLA: the cache holds one latent (kv_lora_rank) plus the rotary key part per token and layer.
    # head_dim is the query/key head size qk_nope_head_dim + qk_rope_head_dim = 128 + 64.
    # 671B main-model weights (the checkpoint adds a 14B multi-token-prediction module).
    (
        "deepseek-ai/DeepSeek-V3",
        {
            "num_hidden_layers": 61,
            "num_attention_heads": 128,
            "num_key_value_heads": 128,
            "head_dim": 192,
            "hidden_size": 7168,
            "vocab_size": 129280,
            "num_parameters": 671e9,
            "max_position_embeddings": 163840,
            "use_mla": True,
            "kv_lora_rank": 512,
            "qk_rope_head_dim": 64,
            "num_experts": 256,
            "quantization": "fp8",
        },
    ),
    (
        "facebook/opt-125m",
        {
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "num_key_value_heads": 12,
            "head_dim": 64,
            "hidden_size": 768,
            "vocab_size": 50272,
            "num_parameters": 125e6,
            "max_position_embeddings": 2048,
            "torch_dtype": "float16",
        },
    ),
]

_CATALOG: dict[str, ModelFacts] = {
    model_id: ModelFacts(
        **{"torch_dtype": "bfloat16", **fields, "source": _config_url(model_id)}
    )
    for model_id, fields in _ENTRIES
}

# Lower-cased full id and bare name (after the org) -> canonical id.
_INDEX: dict[str, str] = {}
for _model_id in _CATALOG:
    _INDEX[_model_id.lower()] = _model_id
    _INDEX.setdefault(_model_id.rsplit("/", 1)[-1].lower(), _model_id)

# Suffixes that name a re-packaging of the same architecture, with the quantization they imply
# (None: no change). Stripped longest first, repeatedly: "-Instruct-AWQ" loses both parts.
_SUFFIX_QUANTIZATION: dict[str, str | None] = {
    "-fp8-dynamic": "fp8",
    "-fp8": "fp8",
    "-awq-int4": "awq",
    "-awq": "awq",
    "-gptq-int4": "gptq",
    "-gptq-int8": "gptq",
    "-gptq": "gptq",
    "-instruct": None,
    "-it": None,
}


def known_models() -> list[str]:
    """Hugging Face ids of every model in the built-in catalog, sorted."""
    return sorted(_CATALOG)


def _exact(name: str) -> ModelFacts | None:
    key = name.strip().lower()
    canonical = _INDEX.get(key) or _INDEX.get(key.rsplit("/", 1)[-1])
    return _CATALOG[canonical] if canonical else None


def lookup(model_id: str) -> ModelFacts | None:
    """Facts for ``model_id`` from the catalog, or ``None`` if the model is unknown.

    Matches the Hugging Face id case-insensitively, or the bare name after the org
    (``Llama-3.1-8B-Instruct``). A re-packaged checkpoint of a catalog model (suffix ``-FP8``,
    ``-AWQ``, ``-GPTQ-Int4``, ``-Instruct``, ``-it``...) shares its architecture, so it gets the
    same numbers with ``quantization`` taken from the suffix; its ``source`` still names the
    catalog entry the numbers come from.
    """
    found = _exact(model_id)
    if found is not None:
        return found
    name = model_id.strip().rsplit("/", 1)[-1].lower()
    # "Meta-Llama-3.1-8B-Instruct" was the repository's first name and lives on in re-uploads.
    name = name.removeprefix("meta-")
    quantization: str | None = None
    suffixes = sorted(_SUFFIX_QUANTIZATION, key=len, reverse=True)
    while True:
        # A base checkpoint matches its chat variant and vice versa: same architecture.
        for candidate in (name, f"{name}-instruct", f"{name}-it"):
            base = _exact(candidate)
            if base is not None:
                return _derived(base, quantization)
        suffix = next(
            (s for s in suffixes if name.endswith(s) and len(name) > len(s)), None
        )
        if suffix is None:
            return None
        name = name[: -len(suffix)]
        quantization = quantization or _SUFFIX_QUANTIZATION[suffix]


def _derived(base: ModelFacts, quantization: str | None) -> ModelFacts:
    """``base`` with the quantization implied by a name suffix (if any)."""
    if quantization is None:
        return base
    return base.model_copy(update={"quantization": quantization})
