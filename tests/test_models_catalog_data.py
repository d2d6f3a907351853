"""The catalog as data: size, self-consistency of every entry, and quantized names resolving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pulumi_vllm.models import catalog
from pulumi_vllm.models.facts import facts_from_config_json

DATA = Path(catalog.__file__).with_name("catalog.json")
FAMILIES = {
    "Llama 3": "meta-llama/Llama-3.1-8B-Instruct", "Llama 4 Scout": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
    "Llama 4 Maverick": "meta-llama/Llama-4-Maverick-17B-128E-Instruct", "Qwen 2.5": "Qwen/Qwen2.5-14B-Instruct",
    "Qwen 2.5 Coder": "Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen 3": "Qwen/Qwen3-4B", "Qwen 3 MoE": "Qwen/Qwen3-30B-A3B",
    "Qwen 3 Coder": "Qwen/Qwen3-Coder-480B-A35B-Instruct", "Qwen3-Next": "Qwen/Qwen3-Next-80B-A3B-Instruct",
    "DeepSeek R1": "deepseek-ai/DeepSeek-R1", "R1 Llama 8B": "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
    "R1 Llama 70B": "deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "R1 Qwen 1.5B": "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
    "R1 Qwen 32B": "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B", "Mistral": "mistralai/Mistral-7B-Instruct-v0.3",
    "Mixtral": "mistralai/Mixtral-8x22B-Instruct-v0.1", "Mistral Small": "mistralai/Mistral-Small-24B-Instruct-2501",
    "Mistral Large": "mistralai/Mistral-Large-Instruct-2411", "Gemma 2": "google/gemma-2-9b-it",
    "Gemma 3": "google/gemma-3-27b-it", "Phi 3": "microsoft/Phi-3-medium-128k-instruct", "Phi 4": "microsoft/phi-4",
    "gpt-oss": "openai/gpt-oss-120b", "Granite": "ibm-granite/granite-3.1-8b-instruct",
    "Kimi K2": "moonshotai/Kimi-K2-Instruct", "GLM": "zai-org/GLM-4.5-Air",
}


def test_catalog_holds_at_least_80_models_of_every_family() -> None:
    assert len(catalog.known_models()) >= 80
    assert {name for name, model in FAMILIES.items() if catalog.lookup(model) is None} == set()


@pytest.mark.parametrize("model_id", catalog.known_models())
def test_every_entry_is_self_consistent(model_id: str) -> None:
    facts = catalog.lookup(model_id)
    given = catalog.shape_fields(model_id)
    assert facts is not None
    assert facts.source == f"https://huggingface.co/{model_id}/blob/main/config.json"
    assert facts.num_hidden_layers > 0 and facts.vocab_size > 0
    assert facts.num_attention_heads % facts.num_key_value_heads == 0
    if "head_dim" not in given:  # derived as vLLM derives it: only valid when it divides evenly
        assert facts.hidden_size % facts.num_attention_heads == 0
    if facts.num_experts_per_token is not None:
        assert facts.num_experts and facts.num_experts_per_token <= facts.num_experts
    if facts.num_experts:
        assert facts.num_experts_per_token is not None, "MoE entries carry their router top-k"
    if facts.sliding_window is not None:
        assert facts.max_position_embeddings and facts.sliding_window < facts.max_position_embeddings
        assert 0 < facts.window_layers <= facts.num_hidden_layers
    if facts.use_mla:
        assert facts.kv_lora_rank and facts.qk_rope_head_dim
    assert facts.full_attention_layers >= 0 and (facts.full_attention_layers or facts.window_layers)
    if facts.linear_layers:
        assert facts.linear_num_value_heads and facts.linear_num_key_heads
        assert facts.linear_num_value_heads % facts.linear_num_key_heads == 0


def test_the_data_file_has_no_unused_shapes() -> None:
    data = json.loads(DATA.read_text())
    assert set(data["shapes"]) == {entry["shape"] for entry in data["models"]}


@pytest.mark.parametrize(
    ("name", "base", "quantization"),
    [
        ("RedHatAI/Llama-3.3-70B-Instruct-quantized.w4a16", "meta-llama/Llama-3.3-70B-Instruct", "compressed-tensors"),
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct-FP8", "Qwen/Qwen3-Coder-30B-A3B-Instruct", "fp8"),
        ("casperhansen/mixtral-instruct-awq", None, None),
        ("TheBloke/Mistral-7B-Instruct-v0.2-GPTQ", "mistralai/Mistral-7B-Instruct-v0.2", "gptq"),
        ("RedHatAI/gemma-2-9b-it-FP8", "google/gemma-2-9b-it", "fp8"),
        ("someone/DeepSeek-R1-Distill-Qwen-7B-AWQ", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "awq"),
        ("RedHatAI/phi-4-quantized.w8a8", "microsoft/phi-4", "compressed-tensors"),
    ],
)
def test_quantization_suffixes_resolve_to_their_base(name: str, base: str | None, quantization: str | None) -> None:
    facts = catalog.lookup(name)
    if base is None:  # a name that is not a catalog model plus a suffix stays unknown
        assert facts is None
        return
    expected = catalog.lookup(base)
    assert facts is not None and expected is not None
    assert facts.quantization == quantization
    assert facts.model_copy(update={"quantization": None}) == expected.model_copy(update={"quantization": None})


def test_config_json_layer_kinds_match_the_catalog() -> None:
    """The reader derives window and linear layers from config.json as the catalog records them."""
    gemma3 = {"model_type": "gemma3", "text_config": {
        "model_type": "gemma3_text", "num_hidden_layers": 62, "num_attention_heads": 32, "num_key_value_heads": 16,
        "head_dim": 128, "hidden_size": 5376, "vocab_size": 262208, "sliding_window": 1024,
        "max_position_embeddings": 131072, "sliding_window_pattern": 6}}
    gpt_oss = {"model_type": "gpt_oss", "num_hidden_layers": 36, "num_attention_heads": 64, "num_key_value_heads": 8,
               "head_dim": 64, "hidden_size": 2880, "vocab_size": 201088, "sliding_window": 128,
               "max_position_embeddings": 131072, "num_local_experts": 128, "num_experts_per_tok": 4,
               "layer_types": ["sliding_attention", "full_attention"] * 18}
    qwen3_next = {"model_type": "qwen3_next", "num_hidden_layers": 48, "num_attention_heads": 16,
                  "num_key_value_heads": 2, "head_dim": 256, "hidden_size": 2048, "vocab_size": 151936,
                  "max_position_embeddings": 262144, "num_experts": 512, "num_experts_per_tok": 10,
                  "full_attention_interval": 4, "linear_num_key_heads": 16, "linear_num_value_heads": 32,
                  "linear_key_head_dim": 128, "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4}
    gemma2 = {"model_type": "gemma2", "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8,
              "head_dim": 256, "hidden_size": 3584, "vocab_size": 256000, "sliding_window": 4096,
              "max_position_embeddings": 8192}
    qwen2 = {"model_type": "qwen2", "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
             "hidden_size": 3584, "vocab_size": 152064, "sliding_window": 131072, "use_sliding_window": False,
             "max_position_embeddings": 32768}
    for config, model_id in [
        (gemma3, "google/gemma-3-27b-it"), (gpt_oss, "openai/gpt-oss-120b"),
        (qwen3_next, "Qwen/Qwen3-Next-80B-A3B-Instruct"), (gemma2, "google/gemma-2-9b-it"),
        (qwen2, "Qwen/Qwen2.5-7B-Instruct"),
    ]:
        read, known = facts_from_config_json(config), catalog.lookup(model_id)
        assert known is not None
        for field in ("sliding_window", "window_layers", "linear_layers", "num_experts_per_token",
                      "linear_num_value_heads", "full_attention_layers"):
            assert getattr(read, field) == getattr(known, field), (model_id, field)
