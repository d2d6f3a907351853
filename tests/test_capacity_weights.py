"""Weights as vLLM loads them (capacity/weights.py): formats, parts, published figures, parameter counts.

The tests without a marker check the arithmetic against vLLM's source (file and function named at each)
and against published start-up logs or safetensors totals. The ``vllm`` tests build vLLM's own linear
layers in a subprocess (gloo on loopback, one rank) and compare the bytes vLLM allocates per weight.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pulumi_vllm.capacity.accounting import resolve_weight_dtype
from pulumi_vllm.capacity.drafts import draft_weights
from pulumi_vllm.capacity.planner import (
    GIB,
    encoder_budget_tokens,
    kv_cache_bytes_per_token,
    plan_capacity,
    speculative_config_from_args,
)
from pulumi_vllm.capacity.weights import (
    active_weight_bytes_per_token,
    estimate_num_parameters,
    linear_bytes_per_weight,
    weight_breakdown,
)
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine.quantization import QUANTIZATION_METHODS, check_quantization
from pulumi_vllm.models import catalog
from pulumi_vllm.models.checkpoint import CheckpointTensors, TensorEntry
from pulumi_vllm.models.facts import ModelFacts, facts_from_config_json
from pulumi_vllm.plan import plan_serving

REPO = Path(__file__).resolve().parents[1]
PUBLISHED_TOLERANCE = 0.05
"""Weights within 5 % of the published figure (start-up log, or safetensors total where no log exists)."""
PARAMETER_TOLERANCE = 0.02
"""The parameter count from the architecture within 2 % of every catalog entry's published count."""

# https://huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct/blob/main/config.json, as published.
QWEN25_VL_7B_CONFIG = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"], "attention_dropout": 0.0, "bos_token_id": 151643,
    "eos_token_id": 151645, "vision_start_token_id": 151652, "vision_end_token_id": 151653,
    "vision_token_id": 151654, "image_token_id": 151655, "video_token_id": 151656, "hidden_act": "silu",
    "hidden_size": 3584, "initializer_range": 0.02, "intermediate_size": 18944, "max_position_embeddings": 128000,
    "max_window_layers": 28, "model_type": "qwen2_5_vl", "num_attention_heads": 28, "num_hidden_layers": 28,
    "num_key_value_heads": 4, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": False, "torch_dtype": "bfloat16", "transformers_version": "4.41.2", "use_cache": True,
    "use_sliding_window": False,
    "vision_config": {
        "depth": 32, "hidden_act": "silu", "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16,
        "in_chans": 3, "out_hidden_size": 3584, "patch_size": 14, "spatial_merge_size": 2, "spatial_patch_size": 14,
        "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 2,
        "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]}, "vocab_size": 152064,
}
QWEN25_VL_7B_PARAMETERS = 8_292_166_656
"""The safetensors parameter total Hugging Face lists for Qwen/Qwen2.5-VL-7B-Instruct (bf16: 15.45 GiB)."""


def facts(model_id: str) -> ModelFacts:
    found = catalog.lookup(model_id)
    assert found is not None, model_id
    return found


def within(predicted: float, published: float, tolerance: float = PUBLISHED_TOLERANCE) -> bool:
    return abs(predicted - published) <= tolerance * published


# --- parameter counts from the architecture ---------------------------------------------------------


@pytest.mark.parametrize("model_id", catalog.known_models())
def test_parameters_from_the_architecture_match_every_catalog_entry(model_id: str) -> None:
    model = facts(model_id)
    assert model.num_parameters is not None
    estimate = estimate_num_parameters(model)
    assert within(estimate, model.num_parameters, PARAMETER_TOLERANCE), (estimate / 1e9, model.num_parameters / 1e9)


def test_qwen25_vl_7b_from_its_config_json_counts_the_vision_tower() -> None:
    model = facts_from_config_json(QWEN25_VL_7B_CONFIG)
    assert model.intermediate_size == 18944 and model.vision_parameters is not None
    assert 0.6e9 < model.vision_parameters < 0.72e9  # the ViT of 32 blocks of 1280 and its patch merger
    assert within(estimate_num_parameters(model), QWEN25_VL_7B_PARAMETERS, 0.005)
    # 28 layers x 2 (K, V) x 4 kv heads x 128 x 2 bytes: the KV cache is not overstated.
    assert kv_cache_bytes_per_token(model) == 28 * 2 * 4 * 128 * 2


def test_qwen25_vl_7b_is_sized_within_5_percent_and_says_the_estimate_is_uncertain() -> None:
    model = facts_from_config_json(QWEN25_VL_7B_CONFIG)
    plan = plan_capacity(model, "H100", max_model_len=32768, model_id="Qwen/Qwen2.5-VL-7B-Instruct")
    published_gib = QWEN25_VL_7B_PARAMETERS * 2 / GIB  # safetensors total in bf16 (no start-up log found)
    assert within(plan.weights_gib_per_gpu, published_gib)
    assert plan.weights_estimated
    assert "weights estimated from config.json (no num_parameters, no checkpoint tensors)" in plan.summary_line()
    assert any(note.startswith("num_parameters unknown: estimated 8.3B") for note in plan.notes)
    # The vision encoder is profiled on the first stage with the encoder budget's images.
    assert any(note.startswith("vision encoder profiled with 16,384 tokens") for note in plan.notes)
    text_only = model.model_copy(update={"vision_hidden_size": None})
    assert plan.stages[0].activation_gib > plan_capacity(text_only, "H100", max_model_len=32768).stages[0].activation_gib


# The fields of https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json and
# https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json that the count reads.
DEEPSEEK_V3_CONFIG = {
    "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3", "hidden_size": 7168,
    "intermediate_size": 18432, "moe_intermediate_size": 2048, "n_routed_experts": 256, "n_shared_experts": 1,
    "first_k_dense_replace": 3, "moe_layer_freq": 1, "num_experts_per_tok": 8, "num_hidden_layers": 61,
    "num_attention_heads": 128, "num_key_value_heads": 128, "q_lora_rank": 1536, "kv_lora_rank": 512,
    "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128, "vocab_size": 129280,
    "max_position_embeddings": 163840, "num_nextn_predict_layers": 1, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                            "weight_block_size": [128, 128]},
}
GPT_OSS_120B_CONFIG = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
    "num_local_experts": 128, "num_experts_per_tok": 4, "experts_per_token": 4, "num_hidden_layers": 36,
    "num_attention_heads": 64, "num_key_value_heads": 8, "head_dim": 64, "vocab_size": 201088,
    "max_position_embeddings": 131072, "sliding_window": 128, "tie_word_embeddings": False,
    "layer_types": ["sliding_attention", "full_attention"] * 18, "torch_dtype": "bfloat16",
    "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]},
}


@pytest.mark.parametrize(
    ("config", "published", "weights_gib"),
    [(DEEPSEEK_V3_CONFIG, 671e9, 629.7), (GPT_OSS_120B_CONFIG, 117e9, 65.8)],
)
def test_config_json_of_moe_and_mla_models_counts_as_the_catalog(config: dict, published: float,
                                                                   weights_gib: float) -> None:
    model = facts_from_config_json(config)
    assert within(estimate_num_parameters(model), published, PARAMETER_TOLERANCE)
    breakdown = weight_breakdown(model, resolve_weight_dtype(model))
    assert breakdown.total_bytes / GIB == pytest.approx(weights_gib, rel=0.005)


def test_the_capacity_line_of_a_stack_says_the_weights_are_estimated(tmp_path: Path) -> None:
    # The render summary prints plan.capacity.summary_line() (render/summary.py).
    (tmp_path / "config.json").write_text(json.dumps(QWEN25_VL_7B_CONFIG))
    config = parse_stack_config({
        "model": {"id": "Qwen/Qwen2.5-VL-7B-Instruct", "configJson": str(tmp_path / "config.json")},
        "resources": {"gpuType": "L40S"}, "engine": {"maxModelLen": 32768},
    })
    plan = plan_serving(config)
    assert plan.capacity is not None and plan.capacity.weights_estimated
    line = plan.capacity.summary_line()
    assert line.startswith("capacity: ") and line.endswith("weights estimated from config.json (no num_parameters, no checkpoint tensors)")


def test_a_published_count_or_checkpoint_removes_the_caveat() -> None:
    plan = plan_capacity(facts("Qwen/Qwen3-32B"), "H100", max_model_len=8192)
    assert not plan.weights_estimated and "estimated" not in plan.summary_line()


def test_config_without_mlp_width_is_marked_as_a_rough_estimate() -> None:
    bare = facts_from_config_json({"hidden_size": 256, "num_attention_heads": 4, "num_hidden_layers": 2,
                                   "vocab_size": 512})
    breakdown = weight_breakdown(bare, "bfloat16")
    assert breakdown.source == "estimate" and breakdown.estimated
    assert any("no intermediate_size" in note for note in breakdown.notes)


def test_a_given_count_the_architecture_does_not_add_up_to_wins() -> None:
    model = facts("meta-llama/Llama-3.1-8B-Instruct").model_copy(update={"num_parameters": 12e9})
    breakdown = weight_breakdown(model, "bfloat16")
    assert breakdown.source == "num_parameters"
    assert within(breakdown.num_parameters, 12e9, 0.001)
    assert any("differs from the 8.03B" in note for note in breakdown.notes)


def test_encoder_budget_follows_compute_mm_encoder_budget() -> None:
    # vllm/v1/core/encoder_cache_manager.py compute_mm_encoder_budget: max(max_num_batched_tokens, largest item).
    assert encoder_budget_tokens(8192) == 16384
    assert encoder_budget_tokens(32768) == 32768


# --- parts and layers ----------------------------------------------------------------------------


def test_deepseek_v3_layers_differ_and_mla_keeps_its_absorbed_copies() -> None:
    model = facts("deepseek-ai/DeepSeek-V3")
    breakdown = weight_breakdown(model, resolve_weight_dtype(model))
    assert breakdown.weight_format == "fp8 block 128x128"
    dense, moe = breakdown.layers[0], breakdown.layers[3]
    assert dense.expert_bytes == 0 < moe.expert_bytes  # first_k_dense_replace = 3
    assert all(layer.expert_bytes == 0 for layer in breakdown.layers[:3])
    # MLAAttention.process_weights_after_loading (mla_attention.py): W_UK_T and W_UV in bf16, per layer
    # 128 heads x 512 x (128 + 128) x 2 bytes.
    absorbed = 128 * 512 * 256 * 2
    assert dense.sharded_bytes > absorbed
    assert breakdown.mtp.parameters > 0 and breakdown.mtp not in breakdown.layers  # not loaded unless the draft
    assert within(breakdown.num_parameters, 671e9, 0.01)


def test_deepseek_v3_tp8_matches_the_published_per_device_figure() -> None:
    # HabanaAI/vllm-fork#809 (DeepSeek-R1, the same architecture and FP8 checkpoint, TP8):
    # "Pre-loading model weights on hpu:0 took 79.41 GiB of device memory".
    plan = plan_capacity(facts("deepseek-ai/DeepSeek-R1"), "H200", 8, max_model_len=32768,
                         model_id="deepseek-ai/DeepSeek-R1")
    assert within(plan.weights_gib_per_gpu, 79.41)


def test_routers_norms_and_mla_down_projections_stay_whole_on_every_rank() -> None:
    model = facts("deepseek-ai/DeepSeek-V3")
    layer = weight_breakdown(model, "fp8").layers[5]
    hidden = model.hidden_size
    # q_a_proj (hidden x 1536) and kv_a_proj_with_mqa (hidden x 576) are ReplicatedLinear in deepseek_v2.py;
    # the gate (hidden x 256 experts) is never quantized: all in bf16.
    replicated = (hidden * 1536 + hidden * 576 + hidden * 256) * 2
    assert layer.replicated_bytes == pytest.approx(replicated, rel=0.01)
    assert layer.per_rank(8, model.num_key_value_heads) < layer.total_bytes / 8 + layer.replicated_bytes + 1


def test_pipeline_stages_hold_embedding_and_tower_first_head_last() -> None:
    model = facts_from_config_json(QWEN25_VL_7B_CONFIG)
    breakdown = weight_breakdown(model, "bfloat16")
    first = breakdown.stage_bytes(0, 14, 0, 2, 1)
    last = breakdown.stage_bytes(14, 14, 1, 2, 1)
    layers_first = sum(layer.total_bytes for layer in breakdown.layers[:14])
    assert first == pytest.approx(layers_first + breakdown.embedding.total_bytes + breakdown.towers.total_bytes)
    assert last == pytest.approx(
        sum(layer.total_bytes for layer in breakdown.layers[14:]) + breakdown.lm_head.total_bytes
        + breakdown.final.total_bytes
    )


def test_tied_embeddings_load_once_but_a_last_stage_keeps_its_own_head() -> None:
    model = facts("Qwen/Qwen3-0.6B")
    breakdown = weight_breakdown(model, "bfloat16")
    assert breakdown.lm_head.total_bytes == 0 and breakdown.tied_embeddings
    single = breakdown.stage_bytes(0, 28, 0, 1, 1)
    two = breakdown.stage_bytes(0, 14, 0, 2, 1) + breakdown.stage_bytes(14, 14, 1, 2, 1)
    assert two == pytest.approx(single + breakdown.embedding.total_bytes)


def test_kv_projections_are_replicated_once_ranks_exceed_kv_heads() -> None:
    model = facts("meta-llama/Llama-3.1-8B-Instruct")  # 8 kv heads
    layer = weight_breakdown(model, "bfloat16").layers[0]
    assert layer.per_rank(8, 8) - layer.sharded_bytes / 8 - layer.replicated_bytes == pytest.approx(layer.kv_bytes / 8)
    assert layer.per_rank(16, 8) - layer.sharded_bytes / 16 - layer.replicated_bytes == pytest.approx(layer.kv_bytes / 8)


# --- formats: bytes per weight, as each method's create_weights allocates them ---------------------

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def _with(model_id: str, quantization: str | None, config: dict | None = None) -> ModelFacts:
    return facts(model_id).model_copy(update={"quantization": quantization, "quantization_config": config})


AWQ = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True, "version": "gemm"}
GPTQ = {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False, "sym": True}
FP8_STATIC = {"quant_method": "fp8", "activation_scheme": "static"}
FP8_DYNAMIC = {"quant_method": "fp8", "activation_scheme": "dynamic"}
FP8_BLOCK = {"quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [128, 128]}
CT_W4A16 = {
    "quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
    "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": None, "weights": {
        "num_bits": 4, "type": "int", "symmetric": True, "group_size": 128, "strategy": "group", "dynamic": False,
        "actorder": None}}},
}
CT_W8A8_INT = {
    "quant_method": "compressed-tensors", "format": "int-quantized", "ignore": ["lm_head"],
    "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
        "num_bits": 8, "type": "int", "symmetric": True, "strategy": "channel", "dynamic": False},
        "input_activations": {"num_bits": 8, "type": "int", "symmetric": True, "strategy": "token", "dynamic": True}}},
}
CT_W8A8_FP8 = {
    "quant_method": "compressed-tensors", "format": "float-quantized", "ignore": ["lm_head"],
    "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
        "num_bits": 8, "type": "float", "symmetric": True, "strategy": "channel", "dynamic": False},
        "input_activations": {"num_bits": 8, "type": "float", "symmetric": True, "strategy": "token",
                              "dynamic": True}}},
}
# (name, quantization_config, vLLM config class, bytes per weight for a 4096 x 4096 layer). The figures are what
# the methods' create_weights allocate, scales included:
FORMATS = [
    # auto_awq.py AutoAWQLinearMethod: int32 qweight [in, out/8], qzeros [in/128, out/8], bf16 scales [in/128, out]
    ("awq", AWQ, "auto_awq:AutoAWQConfig", 0.5 + 0.5 / 128 + 2 / 128),
    # auto_gptq.py AutoGPTQLinearMethod: qweight [in/8, out], qzeros, scales (no g_idx without desc_act)
    ("gptq", GPTQ, "auto_gptq:AutoGPTQConfig", 0.5 + 0.5 / 128 + 2 / 128),
    # fp8.py Fp8LinearMethod: float8 weight, one float32 weight_scale (and input_scale when static)
    ("fp8", FP8_STATIC, "fp8:Fp8Config", 1.0),
    ("fp8", FP8_DYNAMIC, "fp8:Fp8Config", 1.0),
    # compressed_tensors_wNa16.py: int32 weight_packed [out, in/8], bf16 weight_scale [out, in/128]
    ("compressed-tensors", CT_W4A16, "compressed_tensors.compressed_tensors:CompressedTensorsConfig", 0.5 + 2 / 128),
    # compressed_tensors_w8a8_int8.py / _fp8.py: 8-bit weight, float32 scale per output channel [out, 1]
    ("compressed-tensors", CT_W8A8_INT, "compressed_tensors.compressed_tensors:CompressedTensorsConfig", 1 + 4 / 4096),
    ("compressed-tensors", CT_W8A8_FP8, "compressed_tensors.compressed_tensors:CompressedTensorsConfig", 1 + 4 / 4096),
]


@pytest.mark.parametrize(("method", "config", "expected"), [(m, c, e) for m, c, _, e in FORMATS])
def test_bytes_per_weight_follow_each_methods_create_weights(method: str, config: dict, expected: float) -> None:
    model = _with(LLAMA_8B, method, config)
    name, linear, _ = linear_bytes_per_weight(model, resolve_weight_dtype(model))
    assert linear == pytest.approx(expected, rel=1e-3), name


def test_fp8_block_scales_are_one_float32_per_block() -> None:
    # fp8.py Fp8LinearMethod.create_weights: weight_scale_inv float32 [ceil(out/128), ceil(in/128)] (block_quant).
    model = _with("Qwen/Qwen3-30B-A3B-FP8", "fp8", FP8_BLOCK)
    name, linear, experts = linear_bytes_per_weight(model, "fp8")
    assert name == "fp8 block 128x128" and linear == experts == pytest.approx(1 + 4 / (128 * 128))


def test_nvfp4_is_two_weights_a_byte_and_an_fp8_scale_per_16() -> None:
    # modelopt.py KNvfp4Static.create_weights: uint8 weight [out, in/2], float8 weight_scale [out, in/16].
    model = _with("meta-llama/Llama-3.1-8B-Instruct", "modelopt_fp4")
    name, linear, _ = linear_bytes_per_weight(model, resolve_weight_dtype(model))
    assert name == "nvfp4" and linear == pytest.approx(0.5 + 1 / 16)


def test_bitsandbytes_nf4_keeps_an_absmax_per_64() -> None:
    plain = _with(LLAMA_8B, "bitsandbytes", {"quant_method": "bitsandbytes", "load_in_4bit": True})
    double = _with(LLAMA_8B, "bitsandbytes", {"quant_method": "bitsandbytes", "load_in_4bit": True,
                                              "bnb_4bit_use_double_quant": True})
    assert linear_bytes_per_weight(plain, "int4")[1] == pytest.approx(0.5 + 4 / 64)
    assert linear_bytes_per_weight(double, "int4")[1] == pytest.approx(0.5 + 1 / 64)


def test_a_method_vllm_no_longer_lists_is_noted() -> None:
    # vLLM 0.32's QUANTIZATION_METHODS has no bitsandbytes: a -bnb-4bit checkpoint is refused at start-up.
    plan = plan_capacity(facts("unsloth/Llama-3.1-8B-Instruct-bnb-4bit"), "L4", max_model_len=4096)
    assert any("'bitsandbytes', which vLLM 0.32.0 does not list" in note for note in plan.notes)
    assert not any("does not list" in note for note in plan_capacity(facts(LLAMA_8B), "L4", max_model_len=4096).notes)


def test_ignored_modules_stay_in_16_bits() -> None:
    config = {**FP8_BLOCK, "modules_to_not_convert": ["self_attn"]}
    quantized = weight_breakdown(_with("Qwen/Qwen3-32B", "fp8", FP8_BLOCK), "fp8").layers[0]
    kept = weight_breakdown(_with("Qwen/Qwen3-32B", "fp8", config), "fp8").layers[0]
    model = facts("Qwen/Qwen3-32B")
    attention = 2 * model.hidden_size * model.num_attention_heads * model.head_dim + (
        2 * model.hidden_size * model.num_key_value_heads * model.head_dim
    )
    assert kept.total_bytes - quantized.total_bytes == pytest.approx(attention * (2 - (1 + 4 / 16384)), rel=1e-3)


def test_mxfp4_quantizes_only_the_experts_padded_as_marlin_pads_them() -> None:
    model = facts("openai/gpt-oss-120b")
    breakdown = weight_breakdown(model, resolve_weight_dtype(model))
    layer = breakdown.layers[0]
    # mxfp4.py Mxfp4MoEMethod.create_weights (Marlin): intermediate 2880 -> 2944 (x128), hidden 2880 -> 3072 (x256);
    # w13 [128, 2 x 2944, 3072 / 2] + w2 [128, 3072, 2944 / 2] bytes, scales one byte per 32 (bf16 biases aside).
    weights = 128 * (2 * 2944 * 3072 // 2 + 3072 * 2944 // 2)
    scales = 128 * (2 * 2944 * 3072 // 32 + 3072 * 2944 // 32)
    non_expert = layer.total_bytes - layer.expert_bytes
    assert breakdown.layer_bytes(0, 1) - non_expert == pytest.approx(weights + scales, rel=1e-6)
    # At tensor parallel 2 each rank pads its 1440 to 1536: w13 [128, 2 x 1536, 1536] + w2 [128, 3072, 768].
    rank = 128 * (2 * 1536 * 3072 // 2 + 3072 * 1536 // 2) * (1 + 1 / 16)
    assert breakdown.layer_bytes(0, 2) - layer.per_rank(2, 8) + layer.expert_bytes / 2 == pytest.approx(rank, rel=1e-6)
    # Attention stays bf16: q, k, v, o of 2880 x (4096 + 2 x 512) and 4096 x 2880.
    attention = (2880 * (4096 + 1024) + 4096 * 2880) * 2
    assert non_expert == pytest.approx(attention + 2880 * 128 * 2 + 2 * 2880 * 2, rel=1e-3)


# --- published weights ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "tensor_parallel_size", "weight_dtype", "published_gib", "source"),
    [
        # "Model loading took 65.97 GiB" (vLLM 0.10.1, H100, Marlin: vllm-project/vllm#23278) and 64.38 GiB
        # (vllm-project/vllm#33155; llm-d-benchmark config_explorer/empirical-vllm-memory-results.md).
        ("openai/gpt-oss-120b", 1, None, 65.97, "log"),
        ("openai/gpt-oss-120b", 1, None, 64.38, "log"),
        # 13.72 GiB on an A100 (vLLM 0.19, https://myoceane.fr/index.php/ai-vllm-a100-gemma-4/).
        ("openai/gpt-oss-20b", 1, None, 13.72, "log"),
        # 61.03 GiB (llm-d-benchmark empirical results, H100); 30.59 at TP2.
        ("Qwen/Qwen3-32B", 1, None, 61.03, "log"),
        ("Qwen/Qwen3-32B", 2, None, 30.59, "log"),
        # 14.25 GiB per GPU at TP4 on A10s (vLLM 0.8.5, vllm-project/vllm#17469).
        ("Qwen/Qwen3-30B-A3B", 4, None, 14.25, "log"),
        # safetensors header total of Qwen/Qwen3-30B-A3B: 61,064,216,576 bytes (no TP1 log found;
        # https://flytomelight.github.io/llm-cal/zh/models/qwen-qwen3-30b-a3b-h100/).
        ("Qwen/Qwen3-30B-A3B", 1, None, 61_064_216_576 / GIB, "safetensors"),
        # Llama-3.1-8B with --quantization fp8, GPTQ w4a16 and w8a8 (vLLM 0.19, llm-d-planner accuracy report).
        (LLAMA_8B, 1, "fp8", 8.49, "log"),
        (LLAMA_8B, 1, "int4", 5.38, "log"),
        ("RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic", 2, None, 33.88, "log"),
    ],
)
def test_weights_within_5_percent_of_published(
    model_id: str, tensor_parallel_size: int, weight_dtype: str | None, published_gib: float, source: str,
) -> None:
    plan = plan_capacity(facts(model_id), "H100", tensor_parallel_size, max_model_len=4096, weight_dtype=weight_dtype,
                         model_id=model_id)
    assert within(plan.weights_gib_per_gpu, published_gib), (plan.weights_gib_per_gpu, published_gib, source)


def test_qwen3_30b_w4a16_matches_its_published_log() -> None:
    # nytopop/Qwen3-30B-A3B.w4a16 (compressed-tensors W4A16, group 128) on an RTX 3090, vLLM 0.8.5:
    # "Model loading took 15.6841 GiB" (vllm-project/vllm#17327).
    model = _with("Qwen/Qwen3-30B-A3B", "compressed-tensors", CT_W4A16)
    plan = plan_capacity(model, "custom:23.56", max_model_len=8192, model_id="nytopop/Qwen3-30B-A3B.w4a16")
    assert plan.weight_dtype == "int4"
    assert within(plan.weights_gib_per_gpu, 15.6841)


def test_gpt_oss_120b_at_131072_tokens_on_one_h100_does_not_fit_at_0_9() -> None:
    # The case: called a fit with 59.49 GiB of weights. Users hit OOM (#23278) or a cache too small
    # for one request at 0.95 (#27508, "Available KV cache memory: 1.71 GiB").
    plan = plan_capacity(facts("openai/gpt-oss-120b"), "H100", max_model_len=131072, model_id="openai/gpt-oss-120b")
    assert not plan.fits
    assert plan.weights_gib_per_gpu > 64


# --- the checkpoint's own tensors ------------------------------------------------------------------


def _qwen3_moe_fp8_checkpoint(model: ModelFacts) -> CheckpointTensors:
    """Qwen/Qwen3-30B-A3B-FP8's tensors as its safetensors headers list them (per-expert FP8 weights with
    float32 weight_scale_inv of 128 x 128 blocks; embeddings, head, norms and routers in bf16)."""
    hidden, experts, width = model.hidden_size, model.num_experts or 0, model.moe_intermediate_size or 0
    q, kv = model.num_attention_heads * model.head_dim, model.num_key_value_heads * model.head_dim

    def fp8(name: str, rows: int, cols: int) -> list[TensorEntry]:
        return [TensorEntry(name=f"{name}.weight", dtype="F8_E4M3", shape=(rows, cols)),
                TensorEntry(name=f"{name}.weight_scale_inv", dtype="F32", shape=(-(-rows // 128), -(-cols // 128)))]

    tensors = [TensorEntry(name="model.embed_tokens.weight", dtype="BF16", shape=(model.vocab_size, hidden)),
               TensorEntry(name="lm_head.weight", dtype="BF16", shape=(model.vocab_size, hidden)),
               TensorEntry(name="model.norm.weight", dtype="BF16", shape=(hidden,))]
    for i in range(model.num_hidden_layers):
        base = f"model.layers.{i}"
        tensors += fp8(f"{base}.self_attn.q_proj", q, hidden) + fp8(f"{base}.self_attn.k_proj", kv, hidden)
        tensors += fp8(f"{base}.self_attn.v_proj", kv, hidden) + fp8(f"{base}.self_attn.o_proj", hidden, q)
        tensors += [TensorEntry(name=f"{base}.{n}.weight", dtype="BF16", shape=(s,)) for n, s in (
            ("input_layernorm", hidden), ("post_attention_layernorm", hidden), ("self_attn.q_norm", model.head_dim),
            ("self_attn.k_norm", model.head_dim))]
        tensors.append(TensorEntry(name=f"{base}.mlp.gate.weight", dtype="BF16", shape=(experts, hidden)))
        for e in range(experts):
            tensors += fp8(f"{base}.mlp.experts.{e}.gate_proj", width, hidden)
            tensors += fp8(f"{base}.mlp.experts.{e}.up_proj", width, hidden)
            tensors += fp8(f"{base}.mlp.experts.{e}.down_proj", hidden, width)
    return CheckpointTensors(tensors=tuple(tensors), source="synthetic: Qwen/Qwen3-30B-A3B-FP8 layout")


def test_qwen3_30b_fp8_from_its_tensors_agrees_with_the_config() -> None:
    model = facts("Qwen/Qwen3-30B-A3B-FP8").model_copy(update={"quantization_config": FP8_BLOCK})
    from_config = weight_breakdown(model, "fp8")
    checkpoint = _qwen3_moe_fp8_checkpoint(model)
    from_tensors = weight_breakdown(model.model_copy(update={"checkpoint": checkpoint}), "fp8")
    assert from_tensors.source == "checkpoint" and from_config.source == "config"
    assert within(from_tensors.total_bytes, from_config.total_bytes, 0.01)
    # Tensors as stored (vocabulary padding aside): the file total is what vLLM keeps.
    assert within(from_tensors.total_bytes, checkpoint.total_bytes, 0.001)
    # Half of the bf16 checkpoint's 56.87 GiB, give or take the 16-bit embeddings, head and routers.
    assert 28 < from_tensors.total_bytes / GIB < 30.5
    plan = plan_capacity(model.model_copy(update={"checkpoint": checkpoint}), "H100", max_model_len=8192)
    assert not plan.weights_estimated


def _gpt_oss_checkpoint(model: ModelFacts) -> CheckpointTensors:
    """openai/gpt-oss-120b's tensors as its safetensors headers list them: each layer's experts as U8 MXFP4
    ``*_blocks`` (16 bytes of 32 weights) and ``*_scales`` (one e8m0 byte per 32) with bf16 biases; attention,
    sinks, router, norms, embedding and head in bf16."""
    hidden, experts, width = model.hidden_size, model.num_experts or 0, model.intermediate_size or 0
    q, kv = model.num_attention_heads * model.head_dim, model.num_key_value_heads * model.head_dim
    tensors = [TensorEntry(name="model.embed_tokens.weight", dtype="BF16", shape=(model.vocab_size, hidden)),
               TensorEntry(name="lm_head.weight", dtype="BF16", shape=(model.vocab_size, hidden)),
               TensorEntry(name="model.norm.weight", dtype="BF16", shape=(hidden,))]
    for i in range(model.num_hidden_layers):
        base = f"model.layers.{i}"
        tensors += [
            TensorEntry(name=f"{base}.self_attn.q_proj.weight", dtype="BF16", shape=(q, hidden)),
            TensorEntry(name=f"{base}.self_attn.k_proj.weight", dtype="BF16", shape=(kv, hidden)),
            TensorEntry(name=f"{base}.self_attn.v_proj.weight", dtype="BF16", shape=(kv, hidden)),
            TensorEntry(name=f"{base}.self_attn.o_proj.weight", dtype="BF16", shape=(hidden, q)),
            TensorEntry(name=f"{base}.self_attn.sinks", dtype="BF16", shape=(model.num_attention_heads,)),
            TensorEntry(name=f"{base}.input_layernorm.weight", dtype="BF16", shape=(hidden,)),
            TensorEntry(name=f"{base}.post_attention_layernorm.weight", dtype="BF16", shape=(hidden,)),
            TensorEntry(name=f"{base}.mlp.router.weight", dtype="BF16", shape=(experts, hidden)),
            TensorEntry(name=f"{base}.mlp.experts.gate_up_proj_blocks", dtype="U8",
                        shape=(experts, 2 * width, hidden // 32, 16)),
            TensorEntry(name=f"{base}.mlp.experts.gate_up_proj_scales", dtype="U8",
                        shape=(experts, 2 * width, hidden // 32)),
            TensorEntry(name=f"{base}.mlp.experts.gate_up_proj_bias", dtype="BF16", shape=(experts, 2 * width)),
            TensorEntry(name=f"{base}.mlp.experts.down_proj_blocks", dtype="U8", shape=(experts, hidden, width // 32, 16)),
            TensorEntry(name=f"{base}.mlp.experts.down_proj_scales", dtype="U8", shape=(experts, hidden, width // 32)),
            TensorEntry(name=f"{base}.mlp.experts.down_proj_bias", dtype="BF16", shape=(experts, hidden)),
        ]
    return CheckpointTensors(tensors=tuple(tensors), source="synthetic: openai/gpt-oss-120b layout")


def test_gpt_oss_from_its_tensors_agrees_with_the_config() -> None:
    model = facts("openai/gpt-oss-120b")
    checkpoint = _gpt_oss_checkpoint(model)
    # The file itself: 60.8 GiB, as the 65 GB of safetensors published (before vLLM's padding).
    assert 60 < checkpoint.total_bytes / GIB < 62
    from_tensors = weight_breakdown(model.model_copy(update={"checkpoint": checkpoint}), "fp4")
    from_config = weight_breakdown(model, "fp4")
    assert within(from_tensors.total_bytes, from_config.total_bytes, 0.005)
    assert within(from_tensors.num_parameters, model.num_parameters or 0, 0.01)
    assert from_tensors.layers[0].expert_bytes > from_tensors.layers[0].total_bytes * 0.9


def test_float32_tensors_load_in_the_model_dtype_and_online_fp8_quantizes_linear_weights() -> None:
    model = facts("Qwen/Qwen3-0.6B").model_copy(update={"num_hidden_layers": 1, "quantization": None})
    tensors = (
        TensorEntry(name="model.embed_tokens.weight", dtype="F32", shape=(model.vocab_size, model.hidden_size)),
        TensorEntry(name="model.layers.0.mlp.down_proj.weight", dtype="F32", shape=(model.hidden_size, 3072)),
        TensorEntry(name="model.layers.0.input_layernorm.weight", dtype="F32", shape=(model.hidden_size,)),
    )
    checked = model.model_copy(update={"checkpoint": CheckpointTensors(tensors=tensors, source="test")})
    bf16 = weight_breakdown(checked, "bfloat16")
    assert bf16.layers[0].total_bytes == (model.hidden_size * 3072 + model.hidden_size) * 2
    online = weight_breakdown(checked, "fp8")  # --quantization fp8 on a 16-bit checkpoint
    assert online.layers[0].sharded_bytes == model.hidden_size * 3072
    assert online.embedding.total_bytes == bf16.embedding.total_bytes  # embeddings are never quantized


# --- active bytes, speculative drafts ---------------------------------------------------------------


def test_active_weight_bytes_read_only_the_picked_experts() -> None:
    moe = facts("Qwen/Qwen3-30B-A3B")
    total = weight_breakdown(moe, "bfloat16").total_bytes
    active = active_weight_bytes_per_token(moe, "bfloat16")
    # 3.3B active parameters (model card) of 30.5B: attention, router, 8 of 128 experts and the head.
    assert within(active / 2, 3.3e9, 0.1)
    assert active < total / 5
    dense = facts("Qwen/Qwen3-32B")
    embedding = weight_breakdown(dense, "bfloat16").embedding.total_bytes
    assert active_weight_bytes_per_token(dense, "bfloat16") == pytest.approx(
        weight_breakdown(dense, "bfloat16").total_bytes - embedding
    )


def test_speculative_config_is_read_from_extra_args() -> None:
    args = ["--max-num-seqs", "8", "--speculative-config", '{"method": "mtp", "num_speculative_tokens": 1}']
    assert speculative_config_from_args(args) == {"method": "mtp", "num_speculative_tokens": 1}
    assert speculative_config_from_args(['--speculative_config={"model": "x"}']) == {"model": "x"}
    assert speculative_config_from_args(["--speculative-config", "not json"]) is None
    assert speculative_config_from_args([]) is None


def test_mtp_and_draft_models_add_their_weights_ngram_adds_none() -> None:
    deepseek = facts("deepseek-ai/DeepSeek-V3")
    base = plan_capacity(deepseek, "H200", 8, max_model_len=8192)
    mtp = plan_capacity(deepseek, "H200", 8, max_model_len=8192, speculative_config={"method": "mtp"})
    draft = draft_weights(deepseek, "fp8", {"method": "mtp"})
    assert draft is not None and draft.part.parameters > 10e9  # one MTP layer with its 256 experts
    assert mtp.weights_gib_per_gpu == pytest.approx(base.weights_gib_per_gpu + draft.bytes_per_rank(8) / GIB)
    assert any(note.startswith("speculative draft (MTP") for note in mtp.notes)
    llama = facts("meta-llama/Llama-3.1-70B-Instruct")
    with_draft = plan_capacity(llama, "H100", 4, max_model_len=8192,
                               speculative_config={"model": "meta-llama/Llama-3.2-1B-Instruct",
                                                   "num_speculative_tokens": 4})
    plain = plan_capacity(llama, "H100", 4, max_model_len=8192)
    added = with_draft.weights_gib_per_gpu - plain.weights_gib_per_gpu
    assert added == pytest.approx(1.24e9 * 2 / GIB / 4, rel=0.05)  # the 1B draft, split over 4 ranks
    ngram = plan_capacity(llama, "H100", 4, max_model_len=8192, speculative_config={"method": "ngram"})
    assert ngram.weights_gib_per_gpu == plain.weights_gib_per_gpu


def test_a_stacks_speculative_config_reaches_the_plan() -> None:
    spec = '{"model": "meta-llama/Llama-3.2-1B-Instruct", "num_speculative_tokens": 4}'
    base = {"model": {"id": "meta-llama/Llama-3.1-70B-Instruct"}, "resources": {"gpuType": "H100"},
            "parallelism": {"tensorParallelSize": 4}, "engine": {"maxModelLen": 8192}}
    plain = plan_serving(parse_stack_config(base)).capacity
    drafted = plan_serving(parse_stack_config(
        {**base, "engine": {**base["engine"], "extraArgs": ["--speculative-config", spec]}}
    )).capacity
    assert plain is not None and drafted is not None
    assert drafted.weights_gib_per_gpu > plain.weights_gib_per_gpu
    assert "speculative draft meta-llama/Llama-3.2-1B-Instruct: 2.30 GiB" in drafted.notes


# --- quantization names vLLM accepts --------------------------------------------------------------


@pytest.mark.parametrize("method", QUANTIZATION_METHODS)
def test_every_method_vllm_accepts_maps_to_a_weight_precision(method: str) -> None:
    assert check_quantization(method, allow_deprecated=True) == method
    assert resolve_weight_dtype(facts(LLAMA_8B), method) in ("fp8", "int8", "int4", "fp4")


def test_online_shorthands_map_to_their_precision() -> None:
    llama = facts(LLAMA_8B)
    assert resolve_weight_dtype(llama, "fp8_per_tensor") == "fp8"
    assert resolve_weight_dtype(llama, "fp8_per_block") == "fp8"
    assert resolve_weight_dtype(llama, "int8_per_channel_weight_only") == "int8"
    assert resolve_weight_dtype(llama, "nvfp4_per_token") == "fp4"


def test_engine_quantization_fp8_per_tensor_is_accepted_and_sized() -> None:
    config = {"model": {"id": LLAMA_8B}, "resources": {"gpuType": "H100"},
              "engine": {"quantization": "fp8_per_tensor", "maxModelLen": 8192}}
    plan = plan_serving(parse_stack_config(config))
    assert plan.capacity is not None and plan.capacity.weight_dtype == "fp8"
    assert plan.capacity.weights_gib_per_gpu == pytest.approx(8.49, rel=0.01)


def test_an_unknown_quantization_names_engine_quantization_in_vllms_words() -> None:
    config = {"model": {"id": LLAMA_8B}, "resources": {"gpuType": "H100"}, "engine": {"quantization": "fp3"}}
    with pytest.raises(ConfigError) as caught:
        plan_serving(parse_stack_config(config))
    message = str(caught.value)
    assert "pulumi-vllm:engine.quantization: 'fp3' is not accepted: Unknown quantization method: fp3. Must be one of" in message
    assert "fp8_per_tensor" in message and "resources.gpuType" not in message


def test_a_deprecated_quantization_needs_vllms_flag() -> None:
    base = {"model": {"id": LLAMA_8B}, "engine": {"quantization": "fbgemm_fp8"}}
    with pytest.raises(ConfigError, match=r"pulumi-vllm:engine.quantization: 'fbgemm_fp8' is not accepted: .*deprecated"):
        parse_stack_config(base)
    allowed = parse_stack_config({**base, "engine": {**base["engine"], "extraArgs": ["--allow-deprecated-quantization"]}})
    assert allowed.engine.quantization == "fbgemm_fp8"


def test_other_engines_keep_their_own_quantization_names() -> None:
    config = parse_stack_config({"model": {"id": LLAMA_8B}, "engine": {"kind": "tgi", "quantization": "eetq"}})
    assert config.engine.quantization == "eetq"


# --- with vLLM -----------------------------------------------------------------------------------

_ALLOCATE = r'''
import json, socket, sys, types, importlib
import torch
from vllm.config import VllmConfig, set_current_vllm_config
from vllm.distributed import init_distributed_environment, initialize_model_parallel
from vllm.model_executor.layers.linear import RowParallelLinear
cases = json.loads(sys.argv[1])
sock = socket.socket(); sock.bind(("127.0.0.1", 0)); port = sock.getsockname()[1]; sock.close()
config = VllmConfig()
# Only the dtype is read from the model config by the methods built here.
object.__setattr__(config, "model_config", types.SimpleNamespace(dtype=torch.bfloat16, is_moe=False, hf_config=None,
                                                                  quantization=None))
out = []
with set_current_vllm_config(config):
    init_distributed_environment(world_size=1, rank=0, distributed_init_method=f"tcp://127.0.0.1:{port}",
                                 local_rank=0, backend="gloo")
    initialize_model_parallel(1, 1)
    for path, quant in cases:
        module, name = path.split(":")
        klass = getattr(importlib.import_module("vllm.model_executor.layers.quantization." + module), name)
        layer = RowParallelLinear(4096, 4096, bias=False, quant_config=klass.from_config(quant),
                                  params_dtype=torch.bfloat16, prefix="model.layers.0.mlp.down_proj")
        out.append(sum(p.numel() * p.element_size() for p in layer.parameters() if p.dtype != torch.int64))
print(json.dumps(out))
'''


@pytest.mark.vllm
def test_bytes_per_weight_equal_what_vllms_layers_allocate() -> None:
    """vLLM's RowParallelLinear of 4096 x 4096 with each method: the bytes of its parameters per weight."""
    cases = [[klass, config] for _, config, klass, _ in FORMATS]
    result = subprocess.run([sys.executable, "-c", _ALLOCATE, json.dumps(cases)], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    allocated = json.loads(result.stdout.strip().splitlines()[-1])
    for (method, config, _, expected), total in zip(FORMATS, allocated, strict=True):
        model = _with(LLAMA_8B, method, config)
        _, linear, _ = linear_bytes_per_weight(model, resolve_weight_dtype(model))
        assert total / (4096 * 4096) == pytest.approx(expected, rel=1e-4), (method, config)
        assert linear == pytest.approx(total / (4096 * 4096), rel=1e-3), (method, config)


@pytest.mark.vllm
def test_quantization_methods_data_is_current() -> None:
    result = subprocess.run([sys.executable, str(REPO / "tools" / "vllm_quantization.py"), "--check"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.vllm
def test_mla_page_is_one_latent_per_layer_as_vllms_spec() -> None:
    import torch
    from vllm.v1.kv_cache_interface import MLAAttentionSpec

    deepseek = facts("deepseek-ai/DeepSeek-V3")
    spec = MLAAttentionSpec(block_size=16, num_kv_heads=1, head_size=512 + 64, dtype=torch.bfloat16)
    assert kv_cache_bytes_per_token(deepseek, 8) // deepseek.num_hidden_layers * 16 == spec.page_size_bytes
    # On Hopper vLLM prefers FLASH_ATTN_MLA (platforms/cuda.py _get_backend_priorities), whose kernels take
    # blocks of any multiple of 16: the planner's 16-token blocks stand (FlashMLA alone needs 64).
    # The module needs flash-attn to import (absent from the CPU build): read its source instead.
    import ast
    import importlib.util

    spec_path = importlib.util.find_spec("vllm")
    assert spec_path is not None and spec_path.submodule_search_locations
    source = Path(spec_path.submodule_search_locations[0], "v1/attention/backends/mla/flashattn_mla.py").read_text()
    backend = next(node for node in ast.parse(source).body
                   if isinstance(node, ast.ClassDef) and node.name == "FlashAttnMLABackend")
    method = next(node for node in backend.body
                  if isinstance(node, ast.FunctionDef) and node.name == "get_supported_kernel_block_sizes")
    assert "MultipleOf(16)" in ast.unparse(method)
