"""Expert and data parallelism in the capacity planner (vLLM's FusedMoEParallelConfig.make, determine_expert_map)."""

from __future__ import annotations

import pytest

from pulumi_vllm.capacity.planner import plan_capacity
from pulumi_vllm.capacity.weights import weight_breakdown
from pulumi_vllm.models import catalog

QWEN3_MOE = "Qwen/Qwen3-30B-A3B"


@pytest.fixture(scope="module")
def moe():
    facts = catalog.lookup(QWEN3_MOE)
    assert facts is not None and facts.num_experts == 128
    return facts


def _gib(facts, **kwargs) -> float:
    return plan_capacity(facts, "H100-80GB", max_model_len=8192, model_id=QWEN3_MOE, **kwargs).weights_gib_per_gpu


def test_expert_parallel_spreads_whole_experts_over_tensor_times_data_ranks(moe) -> None:
    whole = _gib(moe)
    breakdown = weight_breakdown(moe, "bfloat16")
    experts = sum(layer.expert_bytes for layer in breakdown.layers) / (1 << 30)
    for ranks in (2, 4, 8):
        ep = _gib(moe, data_parallel_size=ranks, enable_expert_parallel=True)
        # Attention, embeddings and the LM head stay whole on a TP1 rank; the experts are divided.
        assert ep == pytest.approx(whole - experts * (1 - 1 / ranks), rel=1e-6)
    plan = plan_capacity(moe, "H100-80GB", max_model_len=8192, data_parallel_size=4, enable_expert_parallel=True)
    assert (plan.data_parallel_size, plan.expert_parallel_size) == (4, 4)
    assert any("expert parallelism over 4 ranks" in note for note in plan.notes)


def test_the_fullest_rank_takes_the_remainder(moe) -> None:
    # 128 experts over 3 ranks: 43, 43, 42 (determine_expert_map); the planner sizes the 43.
    breakdown = weight_breakdown(moe, "bfloat16")
    experts = sum(layer.expert_bytes for layer in breakdown.layers) / (1 << 30)
    whole = _gib(moe)
    ep3 = _gib(moe, data_parallel_size=3, enable_expert_parallel=True)
    assert ep3 == pytest.approx(whole - experts * (1 - 43 / 128), rel=1e-6)


def test_without_expert_parallel_data_parallel_still_splits_the_moe_layers(moe) -> None:
    # FusedMoEParallelConfig.make flattens TP x DP for the MoE layers even without EP.
    split = _gib(moe, data_parallel_size=2)
    ep = _gib(moe, data_parallel_size=2, enable_expert_parallel=True)
    assert split == pytest.approx(ep, rel=1e-6)
    assert split < _gib(moe)


def test_tensor_parallel_with_expert_parallel_matches_tensor_parallel_alone(moe) -> None:
    assert _gib(moe, tensor_parallel_size=2, enable_expert_parallel=True) == pytest.approx(
        _gib(moe, tensor_parallel_size=2), rel=1e-6)


def test_a_dense_model_is_unchanged_by_expert_parallel() -> None:
    facts = catalog.lookup("meta-llama/Llama-3.1-8B-Instruct")
    assert facts is not None
    plain = plan_capacity(facts, "H100-80GB", max_model_len=8192)
    ep = plan_capacity(facts, "H100-80GB", max_model_len=8192, data_parallel_size=2, enable_expert_parallel=True)
    assert ep.weights_gib_per_gpu == plain.weights_gib_per_gpu and ep.kv_cache_tokens == plain.kv_cache_tokens
    assert ep.expert_parallel_size == 1


def test_a_bad_data_parallel_size_is_refused(moe) -> None:
    with pytest.raises(ValueError, match="data_parallel_size"):
        plan_capacity(moe, "H100-80GB", data_parallel_size=0)


def test_size_takes_data_and_expert_parallel_flags(capsys) -> None:
    import json

    from pulumi_vllm.cli import main

    args = ["size", "--model", QWEN3_MOE, "--gpu", "H100", "--max-model-len", "8192", "--json"]
    assert main(args) == 0
    whole = json.loads(capsys.readouterr().out)["weights_gib_per_gpu"]
    assert main([*args, "--data-parallel-size", "4", "--enable-expert-parallel"]) == 0
    assert json.loads(capsys.readouterr().out)["weights_gib_per_gpu"] < whole / 2
