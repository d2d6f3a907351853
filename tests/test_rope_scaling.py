"""Long context by RoPE scaling: ``engine.hfOverrides`` gives the context vLLM 0.32 derives, and the plan sizes it.

The arithmetic is checked against vLLM's own ``ModelConfig``, built offline on CPU from a local
``config.json`` with the overrides the command line carries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine.argv import engine_args_from_config, vllm_command
from pulumi_vllm.models.catalog import lookup
from pulumi_vllm.models.rope import (
    apply_rope,
    check_hf_overrides,
    effective_context,
    rendered_overrides,
    rope_warnings,
)
from pulumi_vllm.plan import plan_serving

QWEN3_32B = "Qwen/Qwen3-32B"
YARN = {"rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}


def _facts() -> Any:
    facts = lookup(QWEN3_32B)
    assert facts is not None and facts.max_position_embeddings == 40960
    return facts


def test_yarn_context_is_original_times_factor_made_explicit_for_vllm() -> None:
    assert rendered_overrides(YARN) == {**YARN, "max_position_embeddings": 131072}
    tokens, how = effective_context(_facts(), YARN)
    assert tokens == 131072
    assert "original_max_position_embeddings x factor" in how


def test_an_explicit_max_position_embeddings_is_kept() -> None:
    overrides = {**YARN, "max_position_embeddings": 65536}
    assert rendered_overrides(overrides) == overrides
    assert effective_context(_facts(), overrides)[0] == 65536


@pytest.mark.parametrize("rope_type", ["linear", "dynamic"])
def test_linear_and_dynamic_multiply_the_models_context(rope_type: str) -> None:
    overrides = {"rope_parameters": {"rope_type": rope_type, "factor": 2.0, "rope_theta": 1000000}}
    assert rendered_overrides(overrides) == overrides
    tokens, how = effective_context(_facts(), overrides)
    assert tokens == 81920
    assert f"{rope_type} RoPE factor 2" in how


def test_nested_per_layer_parameters() -> None:
    overrides = {"rope_parameters": {"full_attention": {"rope_type": "linear", "factor": 3.0},
                                     "sliding_attention": {"rope_type": "default"}}}
    assert effective_context(_facts(), overrides)[0] == 40960 * 3


def test_apply_rope_changes_only_the_context() -> None:
    facts = _facts()
    scaled = apply_rope(facts, YARN)
    assert scaled is not None and scaled.max_position_embeddings == 131072
    assert scaled.model_copy(update={"max_position_embeddings": 40960}) == facts
    assert apply_rope(facts, {}) is facts


@pytest.mark.parametrize(
    ("overrides", "wanted"),
    [
        ({"rope_scaling": {"type": "yarn", "factor": 4.0}}, "has no rope_type (it gives type 'yarn': write rope_type)"),
        ({**YARN, "rope_parameters": YARN["rope_scaling"]}, "rope_scaling and rope_parameters are both set"),
        ({"rope_scaling": {"rope_type": "linear", "factor": 0.5}}, "factor: 0.5 is not accepted"),
        ({"rope_scaling": "yarn"}, "is not accepted: a map such as"),
        ({"max_position_embeddings": "long"}, "max_position_embeddings: 'long' is not accepted"),
    ],
)
def test_overrides_vllm_would_fail_on_are_refused(overrides: dict[str, Any], wanted: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_hf_overrides(overrides)
    assert wanted in str(caught.value)
    with pytest.raises(ConfigError) as config_error:
        parse_stack_config({"model": {"id": QWEN3_32B}, "engine": {"hfOverrides": overrides}})
    assert "pulumi-vllm:engine.hfOverrides" in str(config_error.value)


def test_qwen3_32b_at_131072_with_yarn_is_accepted_sized_and_rendered() -> None:
    config = parse_stack_config({
        "model": {"id": QWEN3_32B},
        "engine": {"maxModelLen": 131072, "hfOverrides": YARN},
        "parallelism": {"tensorParallelSize": 2},
        "resources": {"gpuType": "H100-80GB"},
    })
    plan = plan_serving(config)
    assert plan.facts is not None and plan.facts.max_position_embeddings == 131072
    assert plan.capacity is not None and plan.capacity.fits
    assert plan.capacity.max_model_len == 131072
    assert any("has no rope_theta" in warning for warning in plan.warnings)
    args = list(vllm_command(engine_args_from_config(config)).args)
    assert json.loads(args[args.index("--hf-overrides") + 1]) == {**YARN, "max_position_embeddings": 131072}
    assert args[args.index("--max-model-len") + 1] == "131072"


def test_beyond_the_derived_context_the_refusal_names_both_remedies() -> None:
    for engine in ({"maxModelLen": 131072}, {"maxModelLen": 200000, "hfOverrides": YARN}):
        with pytest.raises(ConfigError) as caught:
            plan_serving(parse_stack_config({"model": {"id": QWEN3_32B}, "engine": engine}))
        message = str(caught.value)
        assert message.startswith("pulumi-vllm:engine.maxModelLen:")
        assert "User-specified max_model_len" in message
        assert "RoPE scaling in engine.hfOverrides" in message and "VLLM_ALLOW_LONG_MAX_MODEL_LEN" in message


def test_a_map_with_rope_theta_warns_of_nothing() -> None:
    assert rope_warnings({"rope_parameters": {**YARN["rope_scaling"], "rope_theta": 1000000}}) == []


# --- against vLLM's own arithmetic --------------------------------------------------------------

QWEN3_CONFIG = {
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "head_dim": 128, "hidden_size": 5120,
    "intermediate_size": 25600, "max_position_embeddings": 40960, "num_attention_heads": 64,
    "num_hidden_layers": 64, "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_theta": 1000000,
    "vocab_size": 151936, "torch_dtype": "bfloat16", "tie_word_embeddings": False,
}


@pytest.fixture(scope="module")
def qwen3_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("qwen3-32b")
    (folder / "config.json").write_text(json.dumps(QWEN3_CONFIG))
    return folder


def _vllm_max_model_len(folder: Path, overrides: dict[str, Any], max_model_len: int | None = None) -> int:
    from vllm.config import ModelConfig

    config = ModelConfig(model=str(folder), tokenizer=str(folder), skip_tokenizer_init=True,
                         hf_overrides=overrides, max_model_len=max_model_len)
    return int(config.max_model_len)


@pytest.mark.vllm
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        YARN,
        {"rope_parameters": {**YARN["rope_scaling"], "rope_theta": 1000000}},
        {"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
        {"rope_scaling": {"rope_type": "dynamic", "factor": 2.0}},
        {**YARN, "max_position_embeddings": 65536},
    ],
    ids=["none", "yarn", "yarn-rope-parameters", "linear", "dynamic", "yarn-explicit"],
)
def test_the_context_is_the_one_vllm_derives(qwen3_folder: Path, overrides: dict[str, Any]) -> None:
    """vLLM's ModelConfig, given the overrides the command line carries, derives the same context."""
    tokens, _ = effective_context(_facts(), overrides)
    assert tokens is not None
    assert _vllm_max_model_len(qwen3_folder, rendered_overrides(overrides)) == tokens
    # ... and accepts it as --max-model-len.
    assert _vllm_max_model_len(qwen3_folder, rendered_overrides(overrides), tokens) == tokens


@pytest.mark.vllm
def test_vllm_refuses_the_yarn_map_alone_at_131072(qwen3_folder: Path) -> None:
    """Why the overrides get max_position_embeddings: without it vLLM 0.32 keeps 40960 and refuses 131072."""
    with pytest.raises(ValueError, match=r"User-specified max_model_len \(131072\) is greater than the derived"):
        _vllm_max_model_len(qwen3_folder, YARN, 131072)
