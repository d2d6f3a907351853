"""Refusals that say the real reason, and remedies that fit when planned, the same in the plan, size and the pack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_policies_unit import container, find, pod_spec, run

from pulumi_vllm.capacity.planner import plan_capacity
from pulumi_vllm.capacity.remedies import Refusal, explain, quantized_variants
from pulumi_vllm.cli import main
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.models.catalog import known_models, lookup
from pulumi_vllm.plan import plan_serving
from vllm_policies.capacity import capacity

QWEN_MOE = "Qwen/Qwen3-30B-A3B"
QWEN_MOE_FP8 = "Qwen/Qwen3-30B-A3B-FP8"
LLAMA_405B = "meta-llama/Llama-3.1-405B-Instruct"
LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"


def _refusal(model: str, gpu: str, tensor: int = 1, gpus_per_node: int | None = None, **settings: Any) -> Refusal:
    facts = lookup(model)
    assert facts is not None
    plan = plan_capacity(facts, gpu, tensor, model_id=model, **settings)
    assert not plan.fits
    return explain(plan, facts, gpu, gpus_per_node=gpus_per_node)


def _size(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["size", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_qwen3_moe_in_bf16_on_an_l40s_is_refused_for_its_weights_and_pointed_at_its_fp8_upload() -> None:
    refusal = _refusal(QWEN_MOE, "L40S")
    weights = plan_capacity(lookup(QWEN_MOE), "L40S", model_id=QWEN_MOE).weights_gib_per_gpu  # type: ignore[arg-type]
    assert weights > 50  # 30.5B parameters in 16 bits
    assert refusal.reason.startswith(f"the weights alone ({weights:.2f} GiB per GPU, bfloat16) exceed the L40S's 44.53 GiB")
    assert "gpu_memory_utilization" not in refusal.reason  # vLLM's advice cannot help here; its words come after
    assert "Try increasing `gpu_memory_utilization`" in refusal.vllm_message
    text = refusal.text()
    assert text.index(refusal.reason) < text.index(refusal.vllm_message) < text.index(refusal.remedies[0])
    assert refusal.remedies[0].startswith(f"serve the published quantized variant {QWEN_MOE_FP8} (fp8 weights) on 1 x L40S")
    assert [fix.kind for fix in refusal.fixes] == ["quantized", "tensor-parallel", "larger-gpu"]
    assert refusal.fixes[2].plan.gpu == "A100-80GB"


def test_the_fp8_remedy_fits_when_planned_on_its_own() -> None:
    facts = lookup(QWEN_MOE_FP8)
    assert facts is not None
    plan = plan_capacity(facts, "L40S", model_id=QWEN_MOE_FP8)
    assert plan.fits and plan.weight_dtype == "fp8"
    assert plan.kv_cache_tokens == _refusal(QWEN_MOE, "L40S").fixes[0].plan.kv_cache_tokens


def test_every_remedy_offered_fits() -> None:
    for refusal in (_refusal(QWEN_MOE, "L40S"), _refusal(LLAMA_405B, "H100", 8, 8), _refusal(LLAMA_8B, "L4")):
        assert refusal.fixes and all(fix.plan.fits and fix.plan.max_concurrency >= 1 for fix in refusal.fixes)


def test_quantized_variants_come_only_from_published_catalog_ids() -> None:
    assert quantized_variants(QWEN_MOE) == [QWEN_MOE_FP8]
    assert quantized_variants("Qwen/Qwen3-32B") == ["Qwen/Qwen3-32B-FP8", "Qwen/Qwen3-32B-AWQ"]  # 8 bits first
    assert quantized_variants(QWEN_MOE_FP8) == []  # already quantized
    assert quantized_variants("meta-llama/Llama-3.1-405B") == ["meta-llama/Llama-3.1-405B-FP8"]  # not the Instruct one
    every = {variant for model in known_models() for variant in quantized_variants(model)}
    assert every <= set(known_models())
    assert all(lookup(variant).quantization for variant in every)  # type: ignore[union-attr]


def test_a_model_too_large_for_one_node_gets_pipeline_stages_last() -> None:
    refusal = _refusal(LLAMA_405B, "H100", 8, 8)
    assert [fix.kind for fix in refusal.fixes] == ["quantized", "larger-gpu", "pipeline"]
    assert refusal.remedies[-1].startswith("pipeline parallel 2 across 2 nodes of 8 H100-80GB GPUs (tensor parallel 8")


def test_no_pipeline_across_nodes_when_tensor_parallelism_inside_the_node_fits() -> None:
    kinds = [fix.kind for fix in _refusal(QWEN_MOE, "L40S", gpus_per_node=4).fixes]
    assert "tensor-parallel" in kinds and "pipeline" not in kinds


def test_a_single_gpu_node_gets_the_pipeline_only_after_the_variant_and_the_larger_gpu() -> None:
    refusal = _refusal(QWEN_MOE, "L40S", gpus_per_node=1)
    assert [fix.kind for fix in refusal.fixes] == ["quantized", "larger-gpu", "pipeline"]
    assert refusal.remedies[-1].startswith("pipeline parallel 2 across 2 nodes of 1 L40S GPU ")


def test_a_context_too_long_for_the_kv_cache_names_both_sizes_and_a_length_that_fits() -> None:
    refusal = _refusal(LLAMA_8B, "L4")
    plan = plan_capacity(lookup(LLAMA_8B), "L4", model_id=LLAMA_8B)  # type: ignore[arg-type]
    assert refusal.reason == (
        f"the KV cache holds {plan.kv_cache_tokens:,} tokens ({plan.kv_cache_gib_per_gpu:.2f} GiB per GPU); one "
        "request of 131,072 tokens (the maximum model length) needs 16.00 GiB"  # 128 KiB per token in 16 bits
    )
    shorter = next(fix for fix in refusal.fixes if fix.kind == "max-model-len")
    assert shorter.plan.fits and shorter.plan.max_model_len <= plan.max_model_len_that_fits


def test_too_little_free_memory_at_start_up_is_said_and_a_utilization_that_starts_offered() -> None:
    refusal = _refusal(LLAMA_8B, "H100", gpu_memory_utilization=0.995)
    assert refusal.reason.startswith("free memory at start-up (78.58 of the H100-80GB's 79.19 GiB")
    assert refusal.fixes[0].kind == "utilization" and refusal.fixes[0].plan.gpu_memory_utilization == 0.99


def test_size_with_one_gpu_per_node_does_not_advise_two_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    code, figures = _size(capsys, "--model", QWEN_MOE, "--gpu", "L40S", "--gpus", "1")
    assert code == 1 and not figures["fits"]
    assert (figures["tensor_parallel_size"], figures["pipeline_parallel_size"]) == (1, 1)
    assert figures["remedies"][0].startswith(f"serve the published quantized variant {QWEN_MOE_FP8}")
    assert figures["remedies"][-1].startswith("pipeline parallel 2 across 2 nodes")


def test_the_same_reason_and_remedies_in_render_size_and_the_pack(capsys: pytest.CaptureFixture[str]) -> None:
    expected = _refusal(QWEN_MOE, "L40S")
    _, figures = _size(capsys, "--model", QWEN_MOE, "--gpu", "L40S")
    assert figures["reason"] == expected.reason and figures["remedies"] == list(expected.remedies)

    with pytest.raises(ConfigError) as caught:
        plan_serving(parse_stack_config({"model": {"id": QWEN_MOE}, "resources": {"gpuType": "L40S"}}))
    rendered = str(caught.value)

    document = find("api-server-deployment.yaml", "Deployment")
    container(document)["args"] = [f"--model={QWEN_MOE}"]
    container(document)["resources"]["limits"]["nvidia.com/gpu"] = "1"
    container(document)["resources"]["requests"]["nvidia.com/gpu"] = "1"
    pod_spec(document)["nodeSelector"] = {"nvidia.com/gpu.product": "NVIDIA-L40S"}
    (reported, _), = run(capacity, document)
    for text in (rendered, reported):
        assert expected.reason in text
        assert all(remedy in text for remedy in expected.remedies)
        assert text.index(expected.reason) < text.index("No available memory for the cache blocks")
