"""Sliding-window, linear-attention and MoE sizing, checked against the installed vLLM's own code.

The planner's KV-cache layout (:mod:`pulumi_vllm.capacity.kv_layout`) is compared with what vLLM
0.32's classes compute for the same layers: ``_get_kv_cache_groups_uniform_page_size`` groups them,
each group's spec gives one request's blocks (``max_memory_usage_bytes`` / ``page_size_bytes``, as
``get_max_concurrency_for_kv_cache_config`` divides them), and a block of the shared pool is the
largest group's pages. No published vLLM start-up log of these models with the figures needed was
found; the published hybrid logs found (``Setting attention block size to N tokens``, e.g.
github.com/syv-ai/qwen38-27b-rtx3090/issues/102) confirm the block-size formula, not these models.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest

from pulumi_vllm.capacity.kv_layout import kv_cache_layout, linear_state_bytes
from pulumi_vllm.capacity.planner import kv_cache_bytes_per_token, plan_capacity
from pulumi_vllm.models.catalog import lookup
from pulumi_vllm.models.facts import ModelFacts

torch = pytest.importorskip("torch")
interface = pytest.importorskip("vllm.v1.kv_cache_interface")
utils = pytest.importorskip("vllm.v1.core.kv_cache_utils")
mamba_utils = pytest.importorskip("vllm.model_executor.layers.mamba.mamba_utils")


def _facts(model_id: str) -> ModelFacts:
    facts = lookup(model_id)
    assert facts is not None
    return facts


def _layer_kinds(model_id: str) -> list[str]:
    """Each layer's kind in the order the model's config.json lays them out."""
    facts = _facts(model_id)
    n = facts.num_hidden_layers
    if model_id.startswith("google/gemma-2"):
        return ["sliding" if i % 2 == 0 else "full" for i in range(n)]
    if model_id.startswith("google/gemma-3"):
        return ["full" if (i + 1) % 6 == 0 else "sliding" for i in range(n)]
    if model_id.startswith("openai/gpt-oss"):
        return ["sliding", "full"] * (n // 2)
    if model_id.startswith("Qwen/Qwen3-Next"):
        return ["full" if (i + 1) % 4 == 0 else "linear" for i in range(n)]
    return ["sliding"] * n if facts.sliding_window else ["full"] * n


def _vllm_layout(model_id: str, tp: int, max_len: int, in_flight: int) -> tuple[int, int, int]:
    """``(block size, bytes per block, blocks per request)`` as vLLM's own classes compute them."""
    facts = _facts(model_id)
    kv_heads = max(1, facts.num_key_value_heads // tp)
    block_size = 16
    state_shapes: Any = None
    if facts.linear_layers:
        state_shapes = mamba_utils.MambaStateShapeCalculator.gated_delta_net_state_shape(
            tp, facts.linear_num_key_heads, facts.linear_num_value_heads, facts.linear_key_head_dim,
            facts.linear_value_head_dim, facts.linear_conv_kernel_dim,
        )
        mamba_page = interface.MambaSpec(
            shapes=state_shapes, dtypes=(torch.bfloat16, torch.bfloat16), block_size=-1
        ).page_size_bytes
        one_token = interface.FullAttentionSpec(
            block_size=1, num_kv_heads=kv_heads, head_size=facts.head_dim, dtype=torch.bfloat16
        ).page_size_bytes
        # Platform._align_hybrid_block_size with a 16-token kernel alignment.
        block_size = 16 * math.ceil(mamba_page / (16 * one_token))
    full = interface.FullAttentionSpec(
        block_size=block_size, num_kv_heads=kv_heads, head_size=facts.head_dim, dtype=torch.bfloat16
    )
    specs: dict[str, Any] = {}
    for index, kind in enumerate(_layer_kinds(model_id)):
        if kind == "full":
            specs[f"layer.{index}"] = full
        elif kind == "sliding":
            specs[f"layer.{index}"] = interface.SlidingWindowSpec(
                block_size=block_size, num_kv_heads=kv_heads, head_size=facts.head_dim, dtype=torch.bfloat16,
                sliding_window=facts.sliding_window,
            )
        else:
            specs[f"layer.{index}"] = interface.MambaSpec(
                shapes=state_shapes, dtypes=(torch.bfloat16, torch.bfloat16), block_size=block_size,
                page_size_padded=full.page_size_bytes,
            )
    groups = (
        utils._get_kv_cache_groups_uniform_spec(specs) if len(set(specs.values())) == 1
        else utils._get_kv_cache_groups_uniform_page_size(specs)
    )
    config = SimpleNamespace(
        model_config=SimpleNamespace(max_model_len=max_len),
        parallel_config=SimpleNamespace(decode_context_parallel_size=1),
        cache_config=SimpleNamespace(mamba_cache_mode="align"),
        max_in_flight_tokens=in_flight,
    )
    per_request = sum(
        utils.cdiv(g.kv_cache_spec.max_memory_usage_bytes(config), g.kv_cache_spec.page_size_bytes) for g in groups
    )
    pages = max(len(g.layer_names) for g in groups) if len(groups) > 1 else len(specs)
    return block_size, pages * full.page_size_bytes, per_request


CASES = [
    ("google/gemma-3-27b-it", 1, 131072, 2 * 8192),
    ("google/gemma-3-27b-it", 2, 32768, 2 * 2048),
    ("google/gemma-3-1b-it", 1, 32768, 2 * 2048),
    ("google/gemma-2-9b-it", 1, 8192, 2 * 8192),
    ("openai/gpt-oss-120b", 1, 131072, 2 * 8192),
    ("openai/gpt-oss-20b", 1, 8192, 2 * 2048),
    ("mistralai/Mistral-7B-v0.1", 1, 32768, 2 * 2048),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", 1, 262144, 2 * 8192),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", 4, 65536, 2 * 8192),
    ("meta-llama/Llama-3.1-8B-Instruct", 1, 8192, 2 * 8192),
]


@pytest.mark.parametrize(("model_id", "tp", "max_len", "in_flight"), CASES)
def test_layout_matches_vllms_groups_and_blocks(model_id: str, tp: int, max_len: int, in_flight: int) -> None:
    facts = _facts(model_id)
    ours = kv_cache_layout(
        facts, facts.num_hidden_layers, tp, kv_cache_bytes_per_token(facts, tp, num_layers=1), 2, max_len, in_flight
    )
    assert (ours.block_size, ours.bytes_per_block, ours.blocks_per_request) == _vllm_layout(
        model_id, tp, max_len, in_flight
    )


def test_gated_deltanet_state_matches_vllms_shapes() -> None:
    facts = _facts("Qwen/Qwen3-Next-80B-A3B-Instruct")
    for tp in (1, 2, 4, 8):
        shapes = mamba_utils.MambaStateShapeCalculator.gated_delta_net_state_shape(
            tp, facts.linear_num_key_heads, facts.linear_num_value_heads, facts.linear_key_head_dim,
            facts.linear_value_head_dim, facts.linear_conv_kernel_dim,
        )
        assert linear_state_bytes(facts, tp, 2) == sum(math.prod(shape) for shape in shapes) * 2


def test_sliding_windows_raise_capacity_only_where_the_window_is_short() -> None:
    """Gemma 3's 1024-token window saves most of its 52 sliding layers' cache at 128k context;
    Gemma 2's 4096-token window saves nothing at its 8192 context once 2 x 8192 tokens are in flight."""
    gemma3 = _facts("google/gemma-3-27b-it")
    hybrid = plan_capacity(gemma3, "H200", max_model_len=131072, model_id="google/gemma-3-27b-it")
    unified = plan_capacity(gemma3, "H200", max_model_len=131072, model_id="google/gemma-3-27b-it",
                            hybrid_kv_cache_manager=False)
    assert hybrid.max_concurrency > 3 * unified.max_concurrency
    gemma2 = _facts("google/gemma-2-9b-it")
    with_window = plan_capacity(gemma2, "H100", model_id="google/gemma-2-9b-it")
    without = plan_capacity(gemma2, "H100", model_id="google/gemma-2-9b-it", hybrid_kv_cache_manager=False)
    assert with_window.max_concurrency <= without.max_concurrency


def test_linear_attention_layers_hold_no_per_token_kv() -> None:
    """Qwen3-Next: only its 12 full-attention layers grow with the context."""
    facts = _facts("Qwen/Qwen3-Next-80B-A3B-Instruct")
    plan = plan_capacity(facts, "H200", tensor_parallel_size=4, max_model_len=262144, model_id="Qwen/Qwen3-Next-80B-A3B-Instruct")
    as_dense = facts.model_copy(update={"linear_attention_layers": None})
    dense = plan_capacity(as_dense, "H200", tensor_parallel_size=4, max_model_len=262144)
    assert plan.fits and plan.max_concurrency > 3 * dense.max_concurrency
    assert any("linear-attention" in note for note in plan.notes)


def test_moe_activation_uses_the_models_own_top_k() -> None:
    """Qwen3-30B-A3B routes each token to 8 experts: more activation than Mixtral's assumed 2."""
    facts = _facts("Qwen/Qwen3-30B-A3B")
    # The first of two pipeline stages runs no sampler, so its activation is the forward pass alone.
    own = plan_capacity(facts, "H100", pipeline_parallel_size=2, max_model_len=32768)
    top2 = facts.model_copy(update={"num_experts_per_token": 2})
    as_top2 = plan_capacity(top2, "H100", pipeline_parallel_size=2, max_model_len=32768)
    assert own.stages[0].activation_gib > as_top2.stages[0].activation_gib
    assert own.stages[0].kv_cache_blocks < as_top2.stages[0].kv_cache_blocks
