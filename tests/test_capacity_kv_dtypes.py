"""KV-cache dtypes: every ``--kv-cache-dtype`` choice of the pinned vLLM is accepted and sized."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pulumi_vllm.capacity.planner import KV_CACHE_DTYPES, kv_cache_bytes_per_token, kv_slot_bytes, plan_capacity
from pulumi_vllm.config.model import EngineSpec
from pulumi_vllm.models import catalog

FLAGS = Path(__file__).resolve().parents[1] / "components" / "pulumi_vllm" / "engine" / "serve_flags.json"


def test_the_planner_and_the_config_know_every_choice_of_vllms_parser() -> None:
    choices = json.loads(FLAGS.read_text())["flags"]["--kv-cache-dtype"]["choices"]
    assert set(KV_CACHE_DTYPES) == set(choices)
    field = EngineSpec.model_fields["kv_cache_dtype"]
    assert set(field.annotation.__args__) == set(choices)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("dtype", "slot"),
    [
        ("auto", 512), ("bfloat16", 512), ("fp8", 256), ("fp8_inc", 256),
        # 128 data bytes and a float32 scale, for the key and for the value (triton_attn.py customize_spec)
        ("int8_per_token_head", 264), ("fp8_per_token_head", 264), ("int4_per_token_head", 136),
        # 64 bytes of fp4 and 8 fp8 scales, key and value (nvfp4_kv_cache_full_dim)
        ("nvfp4", 144), ("nvfp4_4over6", 144),
        # 64 bytes of codes and 4 E8M0 scales each (ultraquant slot_size: 136 B for D=128)
        ("ultraquant_4bit", 136),
        # fp8 key 128 B; 4-bit value 64 B + 4 (TurboQuantConfig.slot_size_aligned)
        ("turboquant_k8v4", 196), ("turboquant_4bit_nc", 134), ("turboquant_3bit_nc", 102),
    ],
)
def test_slot_bytes_of_a_128_wide_head(dtype: str, slot: int) -> None:
    assert kv_slot_bytes(dtype, 128, 128) == slot


def test_deepseek_sparse_mla_layouts_are_mla_only() -> None:
    assert kv_slot_bytes("fp8_ds_mla", 576, 0) == 656
    assert kv_slot_bytes("nvfp4_ds_mla", 576, 0) == 352
    with pytest.raises(ValueError, match="sparse-MLA"):
        kv_slot_bytes("fp8_ds_mla", 128, 128)


def test_a_four_bit_cache_holds_more_tokens_than_fp8() -> None:
    facts = catalog.lookup("meta-llama/Llama-3.1-8B-Instruct")
    assert facts is not None
    assert kv_cache_bytes_per_token(facts, 1, "nvfp4") < kv_cache_bytes_per_token(facts, 1, "fp8")
    fp8 = plan_capacity(facts, "H100-80GB", max_model_len=8192, kv_cache_dtype="fp8")
    nvfp4 = plan_capacity(facts, "H100-80GB", max_model_len=8192, kv_cache_dtype="nvfp4")
    assert nvfp4.kv_cache_tokens > 1.7 * fp8.kv_cache_tokens
