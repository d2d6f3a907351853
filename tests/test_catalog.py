"""Model facts: the built-in catalog, the config.json loader and the precedence of sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pulumi_vllm.models import catalog
from pulumi_vllm.models.facts import ModelFacts, facts_from_config_json
from pulumi_vllm.models.resolve import resolve_facts

# Excerpts of published config.json files (architecture fields only), used to check that the
# loader and the catalog agree on the same model.
LLAMA_31_8B_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "max_position_embeddings": 131072,
    "model_type": "llama",
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "torch_dtype": "bfloat16",
    "vocab_size": 128256,
}
QWEN3_32B_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen3ForCausalLM"],
    "head_dim": 128,
    "hidden_size": 5120,
    "max_position_embeddings": 40960,
    "num_attention_heads": 64,
    "num_hidden_layers": 64,
    "num_key_value_heads": 8,
    "torch_dtype": "bfloat16",
    "vocab_size": 151936,
}
OPT_125M_CONFIG: dict[str, Any] = {
    "architectures": ["OPTForCausalLM"],
    "ffn_dim": 3072,
    "hidden_size": 768,
    "max_position_embeddings": 2048,
    "model_type": "opt",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "torch_dtype": "float16",
    "vocab_size": 50272,
    "word_embed_proj_dim": 768,
}
DEEPSEEK_V3_CONFIG: dict[str, Any] = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "hidden_size": 7168,
    "kv_lora_rank": 512,
    "max_position_embeddings": 163840,
    "n_routed_experts": 256,
    "num_attention_heads": 128,
    "num_hidden_layers": 61,
    "num_key_value_heads": 128,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "quantization_config": {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
    },
    "torch_dtype": "bfloat16",
    "v_head_dim": 128,
    "vocab_size": 129280,
}
MIXTRAL_CONFIG: dict[str, Any] = {
    "hidden_size": 4096,
    "max_position_embeddings": 32768,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "num_local_experts": 8,
    "torch_dtype": "bfloat16",
    "vocab_size": 32000,
}

ARCHITECTURE_FIELDS = (
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_size",
    "vocab_size",
    "max_position_embeddings",
    "use_mla",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "num_experts",
    "torch_dtype",
    "quantization",
)


def architecture(facts: ModelFacts) -> dict[str, Any]:
    """The fields a config.json determines (everything but parameter count and source)."""
    return {name: getattr(facts, name) for name in ARCHITECTURE_FIELDS}


# --- catalog ---------------------------------------------------------------------------------


def test_catalog_has_the_widely_deployed_models() -> None:
    required = {
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-8B",
        "meta-llama/Llama-3.1-70B-Instruct",
        "meta-llama/Llama-3.1-405B-Instruct",
        "meta-llama/Llama-3.1-405B-Instruct-FP8",
        "Qwen/Qwen2.5-7B-Instruct",
        "Qwen/Qwen2.5-72B-Instruct",
        "Qwen/Qwen3-8B",
        "Qwen/Qwen3-14B",
        "Qwen/Qwen3-32B",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "google/gemma-2-27b-it",
        "deepseek-ai/DeepSeek-V3",
        "facebook/opt-125m",
    }
    assert required <= set(catalog.known_models())
    assert catalog.known_models() == sorted(catalog.known_models())


@pytest.mark.parametrize("model_id", catalog.known_models())
def test_every_entry_cites_its_config_json(model_id: str) -> None:
    facts = catalog.lookup(model_id)
    assert facts is not None
    assert facts.source == f"https://huggingface.co/{model_id}/blob/main/config.json"
    assert (
        facts.num_parameters is not None and facts.max_position_embeddings is not None
    )
    assert (
        facts.num_attention_heads % facts.num_key_value_heads == 0
    )  # whole query groups


@pytest.mark.parametrize(
    ("model_id", "explicit_head_dim"),
    [
        # Models whose head_dim is not hidden_size / heads: the catalog must not derive it.
        ("google/gemma-2-27b-it", 128),  # 4608 / 32 = 144
        ("Qwen/Qwen3-32B", 128),  # 5120 / 64 = 80
        ("meta-llama/Llama-3.2-1B", 64),
    ],
)
def test_explicit_head_dims(model_id: str, explicit_head_dim: int) -> None:
    facts = catalog.lookup(model_id)
    assert facts is not None
    assert facts.head_dim == explicit_head_dim


@pytest.mark.parametrize(
    "model_id",
    [
        "meta-llama/Llama-3.1-8B-Instruct",
        "meta-llama/Llama-3.1-70B",
        "Qwen/Qwen2.5-7B-Instruct",
        "mistralai/Mistral-7B-Instruct-v0.3",
        "mistralai/Mixtral-8x7B-Instruct-v0.1",
        "facebook/opt-125m",
    ],
)
def test_derived_head_dims(model_id: str) -> None:
    facts = catalog.lookup(model_id)
    assert facts is not None
    assert facts.head_dim * facts.num_attention_heads == facts.hidden_size


def test_deepseek_v3_is_mla_moe_fp8() -> None:
    facts = catalog.lookup("deepseek-ai/DeepSeek-V3")
    assert facts is not None
    assert (facts.use_mla, facts.kv_lora_rank, facts.qk_rope_head_dim) == (
        True,
        512,
        64,
    )
    assert (facts.num_experts, facts.quantization, facts.num_hidden_layers) == (
        256,
        "fp8",
        61,
    )


@pytest.mark.parametrize(
    ("config", "model_id"),
    [
        (LLAMA_31_8B_CONFIG, "meta-llama/Llama-3.1-8B-Instruct"),
        (QWEN3_32B_CONFIG, "Qwen/Qwen3-32B"),
        (OPT_125M_CONFIG, "facebook/opt-125m"),
        (DEEPSEEK_V3_CONFIG, "deepseek-ai/DeepSeek-V3"),
        (MIXTRAL_CONFIG, "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    ],
)
def test_catalog_agrees_with_config_json(config: dict[str, Any], model_id: str) -> None:
    from_catalog = catalog.lookup(model_id)
    assert from_catalog is not None
    assert architecture(facts_from_config_json(config)) == architecture(from_catalog)


@pytest.mark.parametrize(
    ("name", "canonical", "quantization"),
    [
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", None),
        ("META-LLAMA/llama-3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct", None),
        ("Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct", None),
        (
            "hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4",
            "meta-llama/Llama-3.1-8B-Instruct",
            "awq",
        ),
        (
            "neuralmagic/Meta-Llama-3.1-70B-Instruct-FP8",
            "meta-llama/Llama-3.1-70B-Instruct",
            "fp8",
        ),
        ("Qwen/Qwen2.5-14B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-14B-Instruct", "gptq"),
        ("Qwen/Qwen3-14B-FP8", "Qwen/Qwen3-14B", "fp8"),
        ("google/gemma-2-27b", "google/gemma-2-27b-it", None),
        ("RedHatAI/gemma-3-27b-it-quantized.w4a16", "google/gemma-3-27b-it", "compressed-tensors"),
        ("RedHatAI/Qwen3-32B-W4A16", "Qwen/Qwen3-32B", "compressed-tensors"),
        ("nm-testing/Mistral-Small-24B-Instruct-2501-FP8-dynamic", "mistralai/Mistral-Small-24B-Instruct-2501", "fp8"),
        ("unsloth/DeepSeek-R1-Distill-Llama-8B-bnb-4bit", "deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "bitsandbytes"),
        ("nvidia/Llama-3.3-70B-Instruct-FP4", "meta-llama/Llama-3.3-70B-Instruct", "modelopt_fp4"),
        # Meta's own FP8 checkpoint is a catalog entry with the quantization its config declares.
        (
            "meta-llama/Llama-3.1-405B-Instruct-FP8",
            "meta-llama/Llama-3.1-405B-Instruct-FP8",
            "fbgemm_fp8",
        ),
    ],
)
def test_lookup_variants(name: str, canonical: str, quantization: str | None) -> None:
    facts = catalog.lookup(name)
    base = catalog.lookup(canonical)
    assert facts is not None and base is not None
    assert facts.quantization == quantization
    assert facts.source == base.source
    assert architecture(facts) | {"quantization": None} == architecture(base) | {
        "quantization": None
    }


@pytest.mark.parametrize(
    "name", ["acme/unknown-model", "", "-FP8", "Llama-3.1-9B-Instruct", "opt"]
)
def test_lookup_unknown(name: str) -> None:
    assert catalog.lookup(name) is None


@given(st.text(max_size=60))
def test_lookup_never_raises(name: str) -> None:
    result = catalog.lookup(name)
    assert result is None or isinstance(result, ModelFacts)


# --- config.json loader ----------------------------------------------------------------------


def test_missing_head_dim_and_kv_heads_are_derived() -> None:
    facts = facts_from_config_json(
        {
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "hidden_size": 512,
            "vocab_size": 1000,
        }
    )
    assert (facts.head_dim, facts.num_key_value_heads) == (64, 8)
    assert (facts.use_mla, facts.num_experts, facts.quantization) == (False, None, None)
    assert facts.source == "<dict>"


def test_opt_uses_plain_multi_head_attention() -> None:
    facts = facts_from_config_json(OPT_125M_CONFIG, source="opt")
    assert facts.num_key_value_heads == facts.num_attention_heads == 12
    assert (facts.head_dim, facts.torch_dtype, facts.source) == (64, "float16", "opt")


def test_text_config_of_a_multimodal_model() -> None:
    config = {
        "architectures": ["LlavaForConditionalGeneration"],
        "text_config": {**LLAMA_31_8B_CONFIG, "torch_dtype": None},
        "vision_config": {"hidden_size": 1024, "num_attention_heads": 16},
        "torch_dtype": "float16",
        "quantization_config": {"quant_method": "AWQ", "bits": 4},
    }
    facts = facts_from_config_json(config)
    assert (facts.num_hidden_layers, facts.hidden_size, facts.num_key_value_heads) == (
        32,
        4096,
        8,
    )
    assert (facts.torch_dtype, facts.quantization) == ("float16", "awq")


def test_mla_head_dim_is_nope_plus_rope() -> None:
    facts = facts_from_config_json(DEEPSEEK_V3_CONFIG)
    assert facts.use_mla and facts.head_dim == 128 + 64


@pytest.mark.parametrize(
    "expert_key", ["num_local_experts", "n_routed_experts", "num_experts"]
)
def test_expert_count_spellings(expert_key: str) -> None:
    facts = facts_from_config_json({**LLAMA_31_8B_CONFIG, expert_key: 64})
    assert facts.num_experts == 64


def test_gpt2_style_names() -> None:
    facts = facts_from_config_json(
        {
            "n_layer": 12,
            "n_head": 12,
            "n_embd": 768,
            "vocab_size": 50257,
            "n_positions": 1024,
        }
    )
    assert (facts.num_hidden_layers, facts.head_dim, facts.max_position_embeddings) == (
        12,
        64,
        1024,
    )


@pytest.mark.parametrize(
    "field", ["num_hidden_layers", "num_attention_heads", "hidden_size", "vocab_size"]
)
def test_missing_required_field_names_field_and_file(
    tmp_path: Path, field: str
) -> None:
    config = {k: v for k, v in LLAMA_31_8B_CONFIG.items() if k != field}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=field) as error:
        facts_from_config_json(path)
    assert str(path) in str(error.value)


def test_reads_a_file_or_a_model_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(QWEN3_32B_CONFIG))
    from_folder = facts_from_config_json(tmp_path)
    from_file = facts_from_config_json(str(tmp_path / "config.json"))
    assert from_folder == from_file
    assert from_folder.source == str(tmp_path / "config.json")
    assert architecture(from_folder) == architecture(
        facts_from_config_json(QWEN3_32B_CONFIG)
    )


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        facts_from_config_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        facts_from_config_json(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        facts_from_config_json(tmp_path / "list.json")


@given(
    layers=st.integers(1, 200),
    kv_heads=st.integers(1, 64),
    group=st.integers(1, 8),
    head_dim=st.sampled_from([64, 80, 96, 128, 256]),
    vocab=st.integers(1, 300_000),
    explicit_head_dim=st.booleans(),
)
def test_loader_round_trip(
    layers: int,
    kv_heads: int,
    group: int,
    head_dim: int,
    vocab: int,
    explicit_head_dim: bool,
) -> None:
    heads = kv_heads * group
    config: dict[str, Any] = {
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "hidden_size": heads * head_dim,
        "vocab_size": vocab,
    }
    if explicit_head_dim:
        config["head_dim"] = head_dim
    facts = facts_from_config_json(config)
    assert (facts.num_hidden_layers, facts.num_attention_heads) == (layers, heads)
    assert (facts.num_key_value_heads, facts.head_dim, facts.vocab_size) == (
        kv_heads,
        head_dim,
        vocab,
    )


# --- precedence ------------------------------------------------------------------------------


def test_catalog_is_the_fallback() -> None:
    facts, origin = resolve_facts("meta-llama/Llama-3.1-8B-Instruct")
    assert origin == "catalog"
    assert facts == catalog.lookup("meta-llama/Llama-3.1-8B-Instruct")


def test_unknown_model() -> None:
    assert resolve_facts("acme/mystery-7b") == (None, "unknown")


def test_config_json_beats_catalog(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**LLAMA_31_8B_CONFIG, "num_hidden_layers": 31}))
    facts, origin = resolve_facts("meta-llama/Llama-3.1-8B-Instruct", config_json=path)
    assert origin == f"config.json:{path}"
    assert facts is not None and facts.num_hidden_layers == 31


def test_local_model_folder_is_read(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(OPT_125M_CONFIG))
    facts, origin = resolve_facts(str(tmp_path))
    assert origin == f"config.json:{tmp_path / 'config.json'}"
    assert facts is not None and facts.num_hidden_layers == 12


def test_explicit_values_override_everything(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(LLAMA_31_8B_CONFIG))
    facts, origin = resolve_facts(
        "meta-llama/Llama-3.1-8B-Instruct",
        explicit={"num_key_value_heads": 4},
        config_json=path,
    )
    assert origin == "config"
    assert facts is not None
    assert (facts.num_key_value_heads, facts.num_attention_heads) == (4, 32)
    assert str(path) in facts.source

    facts, origin = resolve_facts("Qwen/Qwen3-14B", explicit={"quantization": "awq"})
    assert origin == "config" and facts is not None
    assert (facts.quantization, facts.num_attention_heads) == ("awq", 40)


def test_explicit_values_alone_must_be_complete() -> None:
    complete = {
        "num_hidden_layers": 4,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "head_dim": 32,
        "hidden_size": 256,
        "vocab_size": 1000,
    }
    facts, origin = resolve_facts("acme/tiny", explicit=complete)
    assert origin == "config" and facts is not None and facts.source == "stack config"
    incomplete = {
        k: v for k, v in complete.items() if k not in ("head_dim", "vocab_size")
    }
    with pytest.raises(ValueError, match="missing: head_dim, vocab_size"):
        resolve_facts("acme/tiny", explicit=incomplete)


def test_explicit_values_are_validated() -> None:
    with pytest.raises(ValueError, match="num_layers"):
        resolve_facts("Qwen/Qwen3-8B", explicit={"num_layers": 3})
    with pytest.raises(ValueError, match="num_attention_heads"):
        resolve_facts("Qwen/Qwen3-8B", explicit={"num_attention_heads": 0})


def test_missing_config_json_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        resolve_facts("Qwen/Qwen3-8B", config_json=tmp_path / "config.json")


@pytest.mark.parametrize("bad", [0, -1, "32", 3.5, True, [32]])
def test_bad_values_name_the_field(bad: Any) -> None:
    with pytest.raises(ValueError, match="num_attention_heads"):
        facts_from_config_json({**LLAMA_31_8B_CONFIG, "num_attention_heads": bad})


_CONFIG_KEYS = [
    "num_hidden_layers",
    "n_layer",
    "num_attention_heads",
    "num_key_value_heads",
    "hidden_size",
    "vocab_size",
    "head_dim",
    "kv_lora_rank",
    "qk_rope_head_dim",
    "qk_nope_head_dim",
    "num_local_experts",
    "max_position_embeddings",
    "torch_dtype",
    "multi_query",
]
_JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 100_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
)


@given(
    config=st.dictionaries(st.sampled_from(_CONFIG_KEYS), _JSON_VALUES),
    quantization=st.one_of(
        st.none(), st.dictionaries(st.just("quant_method"), _JSON_VALUES)
    ),
)
def test_loader_only_raises_value_errors(
    config: dict[str, Any], quantization: dict[str, Any] | None
) -> None:
    if quantization is not None:
        config = {**config, "quantization_config": quantization}
    try:
        facts = facts_from_config_json(config)
    except ValueError:
        return
    assert facts.num_attention_heads >= 1 and facts.head_dim >= 1
