"""The capacity planner: KV-cache formula pieces, vLLM's verdicts, GPU names, release accounting, layouts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulumi_vllm import config
from pulumi_vllm.capacity.gpus import custom_gpu, known_gpus, lookup_gpu
from pulumi_vllm.capacity.layout import NoLayoutError, suggest_layout
from pulumi_vllm.capacity.planner import (
    BLOCK_SIZE,
    GIB,
    PINNED_VLLM_VERSION,
    accounting_for,
    kv_cache_bytes_per_token,
    parse_vllm_version,
    pipeline_stage_layers,
    plan_capacity,
    resolve_weight_dtype,
)
from pulumi_vllm.distributed.parallelism import check_parallelism, plan_topology
from pulumi_vllm.models import catalog

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
QWEN_7B = "Qwen/Qwen2.5-7B-Instruct"
H100 = lookup_gpu("H100")
L4 = lookup_gpu("L4")


def facts(model_id: str):
    found = catalog.lookup(model_id)
    assert found is not None, model_id
    return found


# --- bytes per token -------------------------------------------------------------------------
# Pairs vLLM printed in one start-up (vLLM 0.19, H100): "Available KV cache memory" and "GPU KV
# cache size"; the cache holds exactly tokens x bytes per token, give or take the rounding of the
# GiB figure to two decimals and the unused tail of the last block.


@pytest.mark.parametrize(
    ("model_id", "kv_cache_dtype", "tokens", "gib"),
    [
        (LLAMA_8B, "auto", 476_016, 58.11),
        (LLAMA_8B, "fp8", 952_032, 58.11),
        (QWEN_7B, "auto", 1_096_000, 58.53),
        (QWEN_7B, "fp8", 2_192_000, 58.53),
    ],
)
def test_bytes_per_token_match_vllm_logs(model_id: str, kv_cache_dtype: str, tokens: int, gib: float) -> None:
    per_token = kv_cache_bytes_per_token(facts(model_id), 1, kv_cache_dtype)
    assert tokens * per_token / GIB == pytest.approx(gib, abs=0.005 + per_token * BLOCK_SIZE / GIB)


def test_fp8_kv_cache_halves_bytes_per_token() -> None:
    llama = facts(LLAMA_8B)
    assert kv_cache_bytes_per_token(llama, 1, "fp8") * 2 == kv_cache_bytes_per_token(llama, 1, "auto")


def test_tensor_parallelism_splits_kv_heads() -> None:
    llama = facts(LLAMA_8B)  # 8 kv heads
    assert kv_cache_bytes_per_token(llama, 2) * 2 == kv_cache_bytes_per_token(llama, 1)
    assert kv_cache_bytes_per_token(llama, 8) * 8 == kv_cache_bytes_per_token(llama, 1)


@given(st.integers(min_value=1, max_value=256))
def test_kv_heads_per_rank_never_below_one(tensor_parallel_size: int) -> None:
    llama = facts(LLAMA_8B)
    one_head = 2 * llama.head_dim * 2 * llama.num_hidden_layers  # K and V of one head, 16 bits, every layer
    per_rank = kv_cache_bytes_per_token(llama, tensor_parallel_size)
    assert per_rank >= one_head
    if tensor_parallel_size >= llama.num_key_value_heads:
        assert per_rank == one_head  # replicated heads: every rank still keeps a whole one


def test_mla_caches_one_latent_per_layer_on_every_rank() -> None:
    deepseek = facts("deepseek-ai/DeepSeek-V3")
    # DeepSeek-V2/V3 papers: (d_c + d_h^R) = 512 + 64 = 576 cached values per token and layer.
    assert kv_cache_bytes_per_token(deepseek) == 576 * 2 * deepseek.num_hidden_layers
    assert kv_cache_bytes_per_token(deepseek, 8) == kv_cache_bytes_per_token(deepseek, 1)
    assert kv_cache_bytes_per_token(deepseek, 1, "fp8") == 576 * deepseek.num_hidden_layers


def test_unknown_kv_cache_dtype_is_rejected() -> None:
    with pytest.raises(ValueError, match="fp8"):
        kv_cache_bytes_per_token(facts(LLAMA_8B), 1, "int3")


# --- pipeline stages and blocks ---------------------------------------------------------------


def test_pipeline_stages_follow_vllm_get_pp_indices() -> None:
    # vLLM gives the remainder to the stages before the last, from the back: 10 layers on 4 -> 2,3,3,2.
    assert pipeline_stage_layers(10, 4) == [2, 3, 3, 2]
    assert pipeline_stage_layers(32, 3) == [11, 11, 10]
    assert pipeline_stage_layers(32, 1) == [32]


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=1, max_value=32))
def test_pipeline_stages_cover_every_layer_evenly(layers: int, stages: int) -> None:
    split = pipeline_stage_layers(layers, stages)
    assert len(split) == stages and sum(split) == layers
    assert max(split) - min(split) <= 1


def test_stage_with_most_layers_limits_the_cache() -> None:
    plan = plan_capacity(facts(LLAMA_8B), H100, 1, 3, max_model_len=8192)
    layers = [stage.layers for stage in plan.stages]
    assert layers == [11, 11, 10]
    tightest = min(plan.stages, key=lambda stage: stage.kv_cache_blocks)
    assert tightest.layers == max(layers)
    assert plan.kv_cache_tokens == tightest.kv_cache_blocks * BLOCK_SIZE
    assert plan.weights_gib_per_gpu == max(stage.weights_gib for stage in plan.stages)
    # the first stage holds the embedding besides its 11 layers; the middle one only its 11 layers
    assert plan.stages[1].weights_gib < plan.stages[0].weights_gib
    assert tightest is plan.stages[0]


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=0.3, max_value=0.99), st.sampled_from([1, 2, 4, 8]))
def test_tokens_are_whole_blocks_of_the_available_memory(utilization: float, tensor_parallel_size: int) -> None:
    plan = plan_capacity(facts(LLAMA_8B), H100, tensor_parallel_size, 1, 8192, utilization)
    per_token = kv_cache_bytes_per_token(facts(LLAMA_8B), tensor_parallel_size)
    assert plan.kv_cache_tokens % BLOCK_SIZE == 0
    available = max(plan.kv_cache_gib_per_gpu * GIB, 0)
    assert plan.kv_cache_tokens * per_token <= available < (plan.kv_cache_tokens + BLOCK_SIZE) * per_token
    assert plan.max_concurrency == pytest.approx(plan.kv_cache_tokens / 8192)


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=0.05, max_value=0.98),
    st.floats(min_value=0.0, max_value=0.2),
    st.sampled_from([LLAMA_8B, QWEN_7B, "meta-llama/Llama-3.1-70B-Instruct", "deepseek-ai/DeepSeek-V3"]),
    st.sampled_from(["H100", "L4", "A10G", "H200"]),
)
def test_tokens_never_negative_and_grow_with_utilization(low: float, step: float, model_id: str, gpu: str) -> None:
    high = min(low + step, 1.0)
    lower = plan_capacity(facts(model_id), lookup_gpu(gpu), gpu_memory_utilization=low, max_model_len=4096)
    higher = plan_capacity(facts(model_id), lookup_gpu(gpu), gpu_memory_utilization=high, max_model_len=4096)
    assert lower.kv_cache_tokens >= 0
    assert higher.kv_cache_tokens >= lower.kv_cache_tokens


# --- verdicts ---------------------------------------------------------------------------------


def test_405b_on_one_l4_has_no_room_for_cache_blocks() -> None:
    plan = plan_capacity(facts("meta-llama/Llama-3.1-405B-Instruct"), L4, max_model_len=8192)
    assert not plan.fits
    assert plan.kv_cache_tokens == 0
    assert plan.message.startswith("No available memory for the cache blocks. Try increasing `gpu_memory_utilization`")
    assert any("CUDA out of memory" in note for note in plan.notes)
    assert "does not fit" in plan.summary_line()


def test_too_long_max_model_len_names_the_longest_that_fits() -> None:
    llama = facts(LLAMA_8B)
    plan = plan_capacity(llama, L4, max_model_len=131072)
    assert not plan.fits
    longest = plan.max_model_len_that_fits
    assert 0 < longest < 131072
    assert f"the estimated maximum model length is {longest}." in plan.message
    assert "To serve at least one request with the model's max seq len (131072)" in plan.message
    assert plan_capacity(llama, L4, max_model_len=longest).fits
    assert not plan_capacity(llama, L4, max_model_len=longest + 1).fits


def test_v0_engine_wording_for_old_releases() -> None:
    plan = plan_capacity(facts(LLAMA_8B), L4, max_model_len=131072, vllm_version="0.6.3")
    assert plan.message.startswith("The model's max seq len (131072) is larger than the maximum number of tokens")
    assert f"stored in KV cache ({plan.max_model_len_that_fits})" in plan.message


def test_utilization_above_free_memory_fails_at_start_up() -> None:
    plan = plan_capacity(facts(LLAMA_8B), H100, max_model_len=8192, gpu_memory_utilization=0.999)
    assert not plan.fits
    assert "on startup is less than desired GPU memory utilization (0.999" in plan.message
    assert plan.kv_cache_tokens > 0  # the pool size is still reported


def test_fitting_plan_reports_vllm_lines() -> None:
    plan = plan_capacity(facts(LLAMA_8B), H100, max_model_len=8192, gpu_memory_utilization=0.95)
    assert plan.fits
    assert plan.message == (
        f"GPU KV cache size: {plan.kv_cache_tokens:,} tokens. Maximum concurrency for 8,192 tokens per "
        f"request: {plan.max_concurrency:.2f}x"
    )
    assert plan.summary_line() == (
        f"capacity: {plan.kv_cache_tokens:,} KV-cache tokens, {plan.max_concurrency:.1f}x concurrency at 8192 "
        f"tokens (weights {plan.weights_gib_per_gpu:.2f} GiB/GPU on H100-80GB)"
    )
    assert set(plan.as_json()) == {
        "weights_gib_per_gpu", "kv_cache_gib_per_gpu", "kv_cache_tokens", "max_concurrency", "fits", "message",
        "tensor_parallel_size", "pipeline_parallel_size",
    }


def test_gpu_can_be_given_by_name() -> None:
    assert plan_capacity(facts(LLAMA_8B), "h100", max_model_len=8192) == plan_capacity(
        facts(LLAMA_8B), H100, max_model_len=8192
    )


def test_invalid_layout_is_rejected_with_the_parallelism_rule() -> None:
    with pytest.raises(ValueError, match="divisible by tensor parallel size"):
        plan_capacity(facts(LLAMA_8B), H100, tensor_parallel_size=3)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        plan_capacity(facts(LLAMA_8B), H100, gpu_memory_utilization=1.5)


# --- published reference points (vLLM 0.19, H100, utilization 0.95, max_model_len 8192) ---------


@pytest.mark.parametrize(
    ("model_id", "tensor_parallel_size", "weights_gib", "tokens"),
    [
        (LLAMA_8B, 1, 14.99, 476_016),
        ("mistralai/Mixtral-8x7B-Instruct-v0.1", 2, 43.51, 465_936),
        ("Qwen/Qwen2.5-72B-Instruct", 2, 67.80, 19_920),
    ],
)
def test_published_reference_points(model_id: str, tensor_parallel_size: int, weights_gib: float, tokens: int) -> None:
    plan = plan_capacity(facts(model_id), H100, tensor_parallel_size, 1, 8192, 0.95, vllm_version="0.19.0")
    assert plan.fits
    assert plan.weights_gib_per_gpu == pytest.approx(weights_gib, rel=0.01)
    assert plan.kv_cache_tokens == pytest.approx(tokens, rel=0.05)


# --- weights ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "quantization", "expected"),
    [
        ("meta-llama/Llama-3.1-405B-Instruct-FP8", None, "fp8"),
        ("org/Some-Model-AWQ", None, "int4"),
        ("org/Some-Model-GPTQ-Int8", "gptq", "int8"),
        ("org/Some-Model-GPTQ-Int4", "gptq", "int4"),
        ("org/Some-Model", "fbgemm_fp8", "fp8"),
        ("org/Some-Model-w8a8", None, "int8"),
        ("org/Some-Model", None, "bfloat16"),
    ],
)
def test_weight_dtype_inference(model_id: str, quantization: str | None, expected: str) -> None:
    base = facts(LLAMA_8B).model_copy(update={"quantization": quantization})
    assert resolve_weight_dtype(base, None, model_id) == expected


def test_weight_dtype_falls_back_to_torch_dtype_and_explicit_wins() -> None:
    opt = facts("facebook/opt-125m")  # stored in float16
    assert resolve_weight_dtype(opt) == "float16"
    assert resolve_weight_dtype(opt, "FP8") == "fp8"
    with pytest.raises(ValueError, match="accepted"):
        resolve_weight_dtype(opt, "int3")


def test_quantized_weights_keep_embeddings_in_16_bits() -> None:
    llama = facts(LLAMA_8B)
    bf16 = plan_capacity(llama, H100, max_model_len=8192)
    fp8 = plan_capacity(llama, H100, max_model_len=8192, weight_dtype="fp8")
    embeddings_gib = 2 * llama.vocab_size * llama.hidden_size * 2 / GIB
    # halving everything but the embeddings
    assert fp8.weights_gib_per_gpu == pytest.approx((bf16.weights_gib_per_gpu + embeddings_gib) / 2, rel=0.01)


# --- GPU names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("H100", "H100-80GB"), ("h100-80gb", "H100-80GB"), ("NVIDIA H100 80GB HBM3", "H100-80GB"),
        ("h200", "H200"), ("A100-40GB", "A100-40GB"), ("a100_80gb", "A100-80GB"), ("l40s", "L40S"),
        ("L4", "L4"), ("a10g", "A10G"), ("B200", "B200"), ("h100-nvl", "H100-NVL"), ("RTX 4090", "RTX-4090"),
    ],
)
def test_gpu_names_as_users_write_them(name: str, canonical: str) -> None:
    assert lookup_gpu(name).name == canonical


@given(st.sampled_from(known_gpus()), st.lists(st.booleans(), min_size=16, max_size=16))
def test_gpu_names_are_case_insensitive(name: str, upper: list[bool]) -> None:
    mixed = "".join(c.upper() if flip else c.lower() for c, flip in zip(name, upper + [False] * len(name)))
    assert lookup_gpu(mixed) == lookup_gpu(name)


def test_unknown_gpu_lists_accepted_names() -> None:
    with pytest.raises(ValueError) as error:
        lookup_gpu("H9000")
    for name in known_gpus():
        assert name in str(error.value)
    with pytest.raises(ValueError, match="A100-40GB or A100-80GB"):
        lookup_gpu("A100")


def test_custom_gpu_memory() -> None:
    assert lookup_gpu("custom:47.5").total_memory_gib == 47.5
    assert lookup_gpu("40GiB").total_memory_gib == 40
    assert custom_gpu(96).total_memory_gib == 96
    with pytest.raises(ValueError, match="custom:<GiB>"):
        lookup_gpu("48GB")  # a 48 GB card shows CUDA less than 48 GiB: say which
    with pytest.raises(ValueError):
        custom_gpu(0)


def test_h100_total_is_what_cuda_reports() -> None:
    # 85017493504 bytes measured on an H100 80GB HBM3; published vLLM logs show 79.19 GiB.
    assert lookup_gpu("H100").total_memory_gib == pytest.approx(85017493504 / GIB, abs=0.02)
    assert lookup_gpu("H100").default_max_num_seqs == 1024
    assert lookup_gpu("A100-80GB").default_max_num_seqs == 256  # vLLM keeps A100s on the small defaults


# --- release accounting -----------------------------------------------------------------------


def test_pinned_version_is_the_projects() -> None:
    assert PINNED_VLLM_VERSION == config.VLLM_VERSION


def test_cuda_graph_memory_is_in_the_budget_only_from_0_21() -> None:
    llama = facts(LLAMA_8B)
    before = plan_capacity(llama, H100, max_model_len=8192, vllm_version="0.20.2")
    after = plan_capacity(llama, H100, max_model_len=8192, vllm_version="0.21.0")
    assert not accounting_for("0.20.2").cuda_graphs_in_budget and accounting_for("0.21.0").cuda_graphs_in_budget
    assert before.stages[0].cuda_graph_gib == 0 < after.stages[0].cuda_graph_gib
    assert after.kv_cache_gib_per_gpu == pytest.approx(before.kv_cache_gib_per_gpu - after.stages[0].cuda_graph_gib)
    assert after.kv_cache_tokens < before.kv_cache_tokens
    pinned = plan_capacity(llama, H100, max_model_len=8192)
    assert pinned.kv_cache_tokens == after.kv_cache_tokens


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("0.32.0", (0, 32, 0)), ("v0.19.1", (0, 19, 1)), ("0.20.2rc1.dev9+g01d4d1ad3", (0, 20, 2)), ("1.0", (1, 0, 0))],
)
def test_version_parsing(text: str, parsed: tuple[int, int, int]) -> None:
    assert parse_vllm_version(text) == parsed


def test_bad_version_is_rejected() -> None:
    with pytest.raises(ValueError, match="not a vLLM version"):
        parse_vllm_version("latest")


# --- layout suggestions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "gpu", "min_concurrency"),
    [
        ("meta-llama/Llama-3.1-70B-Instruct", "H100", 1.0),
        ("meta-llama/Llama-3.1-70B-Instruct", "H100", 8.0),
        ("meta-llama/Llama-3.1-405B-Instruct", "H200", 1.0),
        (LLAMA_8B, "L4", 2.0),
    ],
)
def test_suggested_layout_is_valid_and_smallest(model_id: str, gpu: str, min_concurrency: float) -> None:
    """Without a node size the advice keeps to the fewest GPUs (on nodes of 8)."""
    model = facts(model_id)
    plan = suggest_layout(model, lookup_gpu(gpu), None, min_concurrency, max_model_len=8192, model_id=model_id)
    tp, pp = plan.tensor_parallel_size, plan.pipeline_parallel_size
    assert plan.fits and plan.max_concurrency >= min_concurrency
    assert check_parallelism(model, tp, pp, model_id) == []
    plan_topology(tp, pp, gpus_per_node=8)  # raises if it cannot be laid out
    for smaller_tp in range(1, 9):
        for smaller_pp in range(1, model.num_hidden_layers + 1):
            if smaller_tp * smaller_pp >= tp * pp or check_parallelism(model, smaller_tp, smaller_pp):
                continue
            smaller = plan_capacity(model, lookup_gpu(gpu), smaller_tp, smaller_pp, 8192)
            assert not (smaller.fits and smaller.max_concurrency >= min_concurrency), (smaller_tp, smaller_pp)


def test_no_layout_carries_the_closest_plan() -> None:
    with pytest.raises(NoLayoutError) as error:
        suggest_layout(facts("meta-llama/Llama-3.1-405B-Instruct"), L4, 4, max_model_len=8192, max_nodes=1)
    assert error.value.closest is not None
    assert error.value.closest.tensor_parallel_size * error.value.closest.pipeline_parallel_size <= 4
    assert "no layout of up to 1 nodes of 4 L4 GPUs" in str(error.value)


def test_concurrency_is_blocks_per_request() -> None:
    plan = plan_capacity(facts(LLAMA_8B), H100, max_model_len=1000)
    blocks = plan.kv_cache_tokens // BLOCK_SIZE
    assert plan.max_concurrency == pytest.approx(blocks / math.ceil(1000 / BLOCK_SIZE))


# --- layout advice on nodes: tensor parallelism inside a node, pipeline stages across nodes ----

LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
LLAMA_405B = "meta-llama/Llama-3.1-405B-Instruct"


def _layout(plan) -> tuple[int, int]:
    return plan.tensor_parallel_size, plan.pipeline_parallel_size


def advise_layout(*args, **kwargs):  # type: ignore[no-untyped-def]
    from pulumi_vllm.capacity.layout import advise_layout as advise

    return advise(*args, **kwargs)


def test_70b_on_a_node_of_8_h100_uses_tensor_parallel_8() -> None:
    # The fewest-GPUs rule picked TP 1 x PP 3 here: three pipeline stages inside one NVLink node.
    advice = advise_layout(facts(LLAMA_70B), H100, 8, max_model_len=32768, model_id=LLAMA_70B)
    assert _layout(advice.plan) == (8, 1)
    assert advice.plan.fits
    assert advice.reason.startswith("tensor parallel 8 inside one node: fits with ")
    assert advice.reason.endswith("x concurrency at 32,768 tokens; pipeline stages only across nodes")
    weighed = {(c.tensor_parallel_size, c.pipeline_parallel_size): c for c in advice.candidates}
    assert weighed[(1, 3)].fits  # smaller layouts fit too, and are listed, but not chosen
    assert weighed[(4, 1)].fits


def test_suggest_layout_returns_the_advice_plan() -> None:
    plan = suggest_layout(facts(LLAMA_70B), H100, 8, max_model_len=32768, model_id=LLAMA_70B)
    assert _layout(plan) == (8, 1)


def test_heads_that_do_not_divide_the_node_take_the_largest_valid_tensor_parallel_size() -> None:
    model = facts(QWEN_7B)
    assert model.num_attention_heads == 28
    advice = advise_layout(model, L4, 8, max_model_len=32768, model_id=QWEN_7B)
    assert _layout(advice.plan) == (4, 1)
    assert advice.reason.startswith("tensor parallel 4, not 8: 8 does not divide the model's 28 attention heads; fits")
    rejected = advice.candidates[0]
    assert (rejected.tensor_parallel_size, rejected.pipeline_parallel_size) == (8, 1)
    assert rejected.plan is None and rejected.nodes is None and not rejected.fits
    assert rejected.reason == "8 does not divide the model's 28 attention heads"


def test_heads_that_do_not_divide_the_node_fall_back_to_stages_inside_the_node() -> None:
    model = facts(LLAMA_70B).model_copy(update={"num_attention_heads": 60, "num_key_value_heads": 4})
    advice = advise_layout(model, lookup_gpu("A100-40GB"), 8, max_model_len=8192)
    assert _layout(advice.plan) == (4, 2)
    assert advice.candidates[1].tensor_parallel_size == 4 and not advice.candidates[1].fits  # TP 4 x PP 1
    chosen = next(c for c in advice.candidates if c.fits)
    assert chosen.nodes == 1
    assert advice.reason.startswith(
        "tensor parallel 4, not 8: 8 does not divide the model's 60 attention heads, "
        "2 pipeline stages inside the node: one stage is not enough (TP 4 x PP 1: no memory left for the KV cache"
    )


@pytest.mark.parametrize("gpus_per_node", [8, 4])
def test_model_too_big_for_one_node_pipelines_across_nodes_with_a_full_node_of_tensor_parallel(
    gpus_per_node: int,
) -> None:
    model = facts(LLAMA_405B)
    advice = advise_layout(model, H100, gpus_per_node, max_model_len=8192, model_id=LLAMA_405B)
    tp, pp = _layout(advice.plan)
    assert tp == gpus_per_node and pp > 1
    assert plan_topology(tp, pp, gpus_per_node=gpus_per_node).pods == pp  # one stage per node
    for fewer in range(1, pp):
        assert not plan_capacity(model, H100, tp, fewer, 8192).fits
    # Across nodes smaller tensor parallel sizes are not weighed: they would only add stages inside nodes.
    assert [_layout(c.plan) for c in advice.candidates] == [(tp, stages) for stages in range(1, pp + 1)]
    assert advice.reason.startswith(
        f"tensor parallel {gpus_per_node} inside each node, pipeline {pp} across {pp} nodes: "
        f"one node is not enough (TP {gpus_per_node} x PP 1: "
    )


def test_required_concurrency_adds_nodes_not_stages_inside_a_node() -> None:
    advice = advise_layout(facts(LLAMA_70B), H100, 8, 50, max_model_len=32768, model_id=LLAMA_70B)
    assert _layout(advice.plan) == (8, 2)
    assert advice.plan.max_concurrency >= 50
    assert "one node is not enough (TP 8 x PP 1: 38.82x concurrency, below the required 50x)" in advice.reason


@pytest.mark.parametrize("model_id", [LLAMA_8B, QWEN_7B, LLAMA_70B, LLAMA_405B, "Qwen/Qwen3-32B", "facebook/opt-125m"])
@pytest.mark.parametrize("gpu", ["H100", "L4"])
@pytest.mark.parametrize("gpus_per_node", [8, 4, 2])
def test_tensor_parallelism_fills_the_node_before_any_pipeline_stage(
    model_id: str, gpu: str, gpus_per_node: int,
) -> None:
    model = facts(model_id)
    if (model_id, gpu, gpus_per_node) == (LLAMA_405B, "L4", 2):  # 16 x 2 L4s: 705 GiB, under the 756 GiB of weights
        with pytest.raises(NoLayoutError):
            advise_layout(model, gpu, gpus_per_node, max_model_len=8192, model_id=model_id)
        return
    advice = advise_layout(model, gpu, gpus_per_node, max_model_len=8192, model_id=model_id)
    tp, pp = _layout(advice.plan)
    largest = max(size for size in range(1, gpus_per_node + 1) if not check_parallelism(model, size, 1))
    assert tp == largest  # every model here fits with its largest valid size on some number of nodes
    if pp > 1:  # only when the largest valid size on one stage does not fit
        assert not plan_capacity(model, gpu, tp, 1, 8192).fits
    if tp == gpus_per_node:
        assert plan_topology(tp, pp, gpus_per_node=gpus_per_node).pods == pp


def test_every_layout_sized_is_listed_once_in_the_order_weighed(monkeypatch: pytest.MonkeyPatch) -> None:
    from pulumi_vllm.capacity import layout

    sized: list[tuple[int, int]] = []

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        plan = plan_capacity(*args, **kwargs)
        sized.append(_layout(plan))
        return plan

    monkeypatch.setattr(layout, "plan_capacity", recording)
    advice = layout.advise_layout(facts(LLAMA_70B), H100, 8, max_model_len=32768, model_id=LLAMA_70B)
    listed = [(c.tensor_parallel_size, c.pipeline_parallel_size) for c in advice.candidates]
    assert listed == sized == [(8, 1), (4, 1), (2, 1), (2, 2), (1, 1), (1, 2), (1, 3)]
    for candidate in advice.candidates:
        assert candidate.plan is not None
        assert candidate.fits == (candidate.plan.fits and candidate.plan.max_concurrency >= 1)
        assert (candidate.reason == "") == candidate.fits
    assert [c.reason for c in advice.candidates if not c.fits] == [
        # Weights from the architecture (70.55B parameters, capacity/weights.py), not the rounded published 70.6B.
        "no memory left for the KV cache after 65.74 GiB of weights per GPU",
        "the weights alone (131.45 GiB per GPU) exceed the GPU's 79.19 GiB",
        "the KV cache holds 15,392 tokens, less than one request of 32,768",
    ]


def test_without_a_node_size_the_fewest_gpus_win() -> None:
    advice = advise_layout(facts(LLAMA_70B), H100, None, max_model_len=32768, model_id=LLAMA_70B)
    assert _layout(advice.plan) == (1, 3)
    assert advice.reason.startswith(
        "fewest GPUs: tensor parallel 1 x pipeline 3 on 3 GPUs is the smallest valid layout that fits"
    )
    assert [(c.tensor_parallel_size, c.pipeline_parallel_size) for c in advice.candidates] == [
        (1, 1), (2, 1), (1, 2), (1, 3),
    ]


def test_no_layout_lists_what_was_weighed() -> None:
    with pytest.raises(NoLayoutError) as error:
        advise_layout(facts(LLAMA_405B), L4, 4, max_model_len=8192, max_nodes=1)
    weighed = error.value.candidates
    assert weighed and not any(c.fits for c in weighed)
    assert all(c.gpus <= 4 for c in weighed)
    assert error.value.closest in [c.plan for c in weighed]


@pytest.mark.parametrize("gpus_per_node", [8, None])
def test_layouts_weighed_stay_within_max_nodes(gpus_per_node: int | None) -> None:
    with pytest.raises(NoLayoutError) as error:
        advise_layout(facts(LLAMA_405B), L4, gpus_per_node, max_model_len=8192, max_nodes=2)
    nodes = [c.nodes for c in error.value.candidates if c.nodes is not None]
    assert nodes and max(nodes) <= 2
