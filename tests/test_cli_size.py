"""``pulumi-vllm size``: output, exit codes, layout suggestion and local model folders."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pulumi_vllm.capacity.gpus import lookup_gpu
from pulumi_vllm.capacity.planner import plan_capacity
from pulumi_vllm.cli import main
from pulumi_vllm.cli.size import parameters_in_checkpoint
from pulumi_vllm.distributed.parallelism import check_parallelism, plan_topology
from pulumi_vllm.models import catalog

if TYPE_CHECKING:
    from pulumi_vllm.capacity.layout import LayoutAdvice

LLAMA_8B = "meta-llama/Llama-3.1-8B-Instruct"
JSON_KEYS = {
    "weights_gib_per_gpu", "kv_cache_gib_per_gpu", "kv_cache_tokens", "max_concurrency", "fits", "message",
    "tensor_parallel_size", "pipeline_parallel_size",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["size", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_exactly_the_documented_keys_and_the_planner_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_8B, "--gpu", "h100", "--max-model-len", "8192", "--json",
                       "--gpu-memory-utilization", "0.95", "--vllm-version", "0.19.0")
    figures = json.loads(out)
    assert code == 0
    assert set(figures) == JSON_KEYS
    plan = plan_capacity(catalog.lookup(LLAMA_8B), lookup_gpu("H100"), 1, 1, 8192, 0.95, vllm_version="0.19.0",
                         model_id=LLAMA_8B)
    assert figures == plan.as_json()
    assert figures["fits"] is True and figures["kv_cache_tokens"] > 0


def test_human_output_names_the_pieces(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_8B, "--gpu", "L40S", "--max-model-len", "16384",
                       "--kv-cache-dtype", "fp8", "--tensor-parallel-size", "2")
    assert code == 0
    assert "tensor_parallel_size=2, pipeline_parallel_size=1 (2 x L40S)" in out
    assert "kv_cache_dtype=fp8" in out
    assert "verdict:      fits: GPU KV cache size:" in out


def test_does_not_fit_exits_1_with_vllms_message(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", "meta-llama/Llama-3.1-405B-Instruct", "--gpu", "L4", "--json")
    figures = json.loads(out)
    assert code == 1
    assert figures["fits"] is False
    assert figures["message"].startswith("No available memory for the cache blocks.")


def test_too_long_context_reports_the_longest_that_fits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_8B, "--gpu", "L4", "--max-model-len", "131072")
    assert code == 1
    assert "the estimated maximum model length is" in out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--model", "nobody/no-such-model", "--gpu", "H100"], "unknown model 'nobody/no-such-model'"),
        (["--model", LLAMA_8B, "--gpu", "H9000"], "Accepted (case-insensitive): H100-80GB"),
        (["--model", LLAMA_8B, "--gpu", "H100", "--tensor-parallel-size", "3"], "divisible by tensor parallel size"),
        (["--model", LLAMA_8B, "--gpu", "H100", "--vllm-version", "latest"], "not a vLLM version"),
        (["--model", LLAMA_8B, "--gpu", "H100", "--gpus", "4", "--tensor-parallel-size", "8"],
         "exceeds the GPUs per node (4)"),
    ],
)
def test_user_mistakes_exit_2_with_one_message(capsys: pytest.CaptureFixture[str], argv: list[str],
                                               expected: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and expected in err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "1.5", "abc"])
def test_bad_utilization_is_a_usage_error(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["size", "--model", LLAMA_8B, "--gpu", "H100", "--gpu-memory-utilization", value])
    assert exit_.value.code == 2
    assert "--gpu-memory-utilization" in capsys.readouterr().err


def test_gpus_per_node_suggests_a_valid_layout(capsys: pytest.CaptureFixture[str]) -> None:
    model = "meta-llama/Llama-3.1-70B-Instruct"
    code, out, _ = run(capsys, "--model", model, "--gpu", "H100", "--gpus", "8", "--max-model-len", "8192",
                       "--min-concurrency", "4", "--json")
    figures = json.loads(out)
    tp, pp = figures["tensor_parallel_size"], figures["pipeline_parallel_size"]
    assert code == 0 and figures["fits"]
    assert figures["max_concurrency"] >= 4
    assert check_parallelism(catalog.lookup(model), tp, pp) == []
    plan_topology(tp, pp, gpus_per_node=8)


def test_suggestion_is_announced_in_the_human_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", "meta-llama/Llama-3.1-70B-Instruct", "--gpu", "H100", "--gpus", "8",
                       "--max-model-len", "8192")
    assert code == 0
    assert "tensor_parallel_size=8, pipeline_parallel_size=1 (8 x H100-80GB), suggested\n" in out
    assert "\nwhy:          tensor parallel 8 inside one node: fits with " in out


def test_no_layout_found_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_8B, "--gpu", "custom:4", "--gpus", "1", "--json")
    figures = json.loads(out)
    assert code == 1
    assert figures["fits"] is False
    assert figures["message"].startswith("no layout of up to 16 nodes of 1 custom-4GiB GPUs")
    assert figures["layout_reason"] == figures["message"]
    assert [entry["pipeline_parallel_size"] for entry in figures["layouts"]] == list(range(1, 17))
    assert not any(entry["fits"] or entry["chosen"] for entry in figures["layouts"])


def _write_safetensors(path: Path, shapes: dict[str, list[int]]) -> None:
    header: dict[str, object] = {}
    offset = 0
    for name, shape in shapes.items():
        size = 2
        for dim in shape:
            size *= dim
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))


def test_local_model_folder_uses_config_json_and_counts_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 256, "num_attention_heads": 4,
        "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 512, "intermediate_size": 512,
        "max_position_embeddings": 1024, "torch_dtype": "bfloat16",
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    shapes = {"model.embed_tokens.weight": [512, 256], "lm_head.weight": [512, 256]}
    for layer in range(2):
        shapes[f"model.layers.{layer}.self_attn.q_proj.weight"] = [256, 256]
        shapes[f"model.layers.{layer}.mlp.up_proj.weight"] = [512, 256]
    _write_safetensors(tmp_path / "model.safetensors", shapes)
    counted = sum(rows * cols for rows, cols in shapes.values())
    assert parameters_in_checkpoint(tmp_path) == counted

    code, out, _ = run(capsys, "--model", str(tmp_path), "--gpu", "L4")
    assert code == 0
    assert "(facts: config.json:" in out
    assert "max_model_len=1024" in out  # the model's own context length
    assert "num_parameters unknown" not in out


def test_folder_without_checkpoint_estimates_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {"hidden_size": 256, "num_attention_heads": 4, "num_hidden_layers": 2, "vocab_size": 512}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert parameters_in_checkpoint(tmp_path) is None
    code, out, _ = run(capsys, "--model", str(tmp_path), "--gpu", "L4")
    assert code == 0
    assert "num_parameters unknown: estimated" in out
    assert "max_model_len=2048" in out  # vLLM's fallback without a context length in config.json


def test_module_entry_point(tmp_path: Path) -> None:
    components = Path(__file__).resolve().parents[1] / "components"
    result = subprocess.run(
        [sys.executable, "-m", "pulumi_vllm.cli", "size", "--model", LLAMA_8B, "--gpu", "a100-80gb", "--json"],
        capture_output=True, text=True, env={"PYTHONPATH": str(components)}, cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout)) == JSON_KEYS


LLAMA_70B = "meta-llama/Llama-3.1-70B-Instruct"
LAYOUT_KEYS = {
    "tensor_parallel_size", "pipeline_parallel_size", "gpus", "nodes", "kv_cache_tokens", "max_concurrency", "fits",
    "reason", "chosen",
}


def _advice(model: str, gpu: str, gpus: int, max_model_len: int) -> LayoutAdvice:
    from pulumi_vllm.capacity.layout import advise_layout

    return advise_layout(catalog.lookup(model), gpu, gpus, max_model_len=max_model_len, model_id=model)


def test_70b_on_8_h100_at_32k_suggests_tensor_parallel_8(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_70B, "--gpu", "H100", "--gpus", "8", "--max-model-len", "32768",
                       "--json")
    figures = json.loads(out)
    assert code == 0
    assert (figures["tensor_parallel_size"], figures["pipeline_parallel_size"]) == (8, 1)  # was 1 x 3
    assert set(figures) == JSON_KEYS | {"layouts", "layout_reason"}  # the old keys stay
    assert figures["layout_reason"] == (
        f"tensor parallel 8 inside one node: fits with {figures['max_concurrency']:.2f}x concurrency at 32,768 "
        "tokens; pipeline stages only across nodes"
    )
    chosen = [entry for entry in figures["layouts"] if entry["chosen"]]
    assert len(chosen) == 1 and chosen[0]["fits"]
    assert (chosen[0]["tensor_parallel_size"], chosen[0]["pipeline_parallel_size"]) == (8, 1)
    assert chosen[0]["kv_cache_tokens"] == figures["kv_cache_tokens"]


def test_json_lists_every_layout_weighed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_70B, "--gpu", "H100", "--gpus", "8", "--max-model-len", "32768",
                       "--json")
    advice = _advice(LLAMA_70B, "H100", 8, 32768)
    assert code == 0
    layouts = json.loads(out)["layouts"]
    assert all(set(entry) == LAYOUT_KEYS for entry in layouts)
    assert layouts == [candidate.as_json(candidate.plan is advice.plan) for candidate in advice.candidates]
    assert [(e["tensor_parallel_size"], e["pipeline_parallel_size"]) for e in layouts] == [
        (8, 1), (4, 1), (2, 1), (2, 2), (1, 1), (1, 2), (1, 3),
    ]
    assert all(entry["gpus"] == entry["tensor_parallel_size"] * entry["pipeline_parallel_size"] for entry in layouts)
    assert all((entry["reason"] == "") == entry["fits"] for entry in layouts)


def test_text_output_tables_every_layout_weighed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_70B, "--gpu", "H100", "--gpus", "8", "--max-model-len", "32768")
    advice = _advice(LLAMA_70B, "H100", 8, 32768)
    assert code == 0
    title = "weighed:      nodes of 8 H100-80GB GPUs, at least 1x concurrency at 32,768 tokens per request\n"
    rows = out.split(title, 1)[1].splitlines()
    assert rows[0].split() == ["TP", "x", "PP", "GPUs", "nodes", "KV-cache", "tokens", "concurrency", "fits"]
    assert len(rows) == 1 + len(advice.candidates)
    for row, candidate in zip(rows[1:], advice.candidates):
        assert candidate.plan is not None
        cells = row.split(maxsplit=7)
        assert cells[:6] == [
            str(candidate.tensor_parallel_size), "x", str(candidate.pipeline_parallel_size), str(candidate.gpus),
            str(candidate.nodes), f"{candidate.plan.kv_cache_tokens:,}",
        ]
        assert cells[6] == f"{candidate.plan.max_concurrency:.2f}x"
        assert cells[7] == ("yes, chosen" if candidate.plan is advice.plan else "yes" if candidate.fits
                            else f"no: {candidate.reason}")
    assert rows[1].endswith("yes, chosen") and rows[1].startswith("  8 x 1 ")
    assert "no: the KV cache holds 15,392 tokens, less than one request of 32,768" in rows[6]


def test_heads_not_dividing_the_node_are_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", "Qwen/Qwen2.5-7B-Instruct", "--gpu", "L4", "--gpus", "8",
                       "--max-model-len", "32768")
    assert code == 0
    assert "tensor_parallel_size=4, pipeline_parallel_size=1 (4 x L4), suggested" in out
    reason = "tensor parallel 4, not 8: 8 does not divide the model's 28 attention heads; fits with "
    assert f"\nwhy:          {reason}" in out
    rejected = next(row for row in out.splitlines() if row.startswith("  8 x 1 "))
    assert rejected.split() == ["8", "x", "1", "8", "-", "-", "-", "no:", "8", "does", "not", "divide", "the",
                                "model's", "28", "attention", "heads"]


def test_model_too_big_for_one_node_pipelines_across_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    # Kimi K2 (fp8 as published) outgrows one node of 4 GB200s; the catalog has no smaller variant and no larger
    # NVIDIA GPU, so pipeline stages across nodes are the advice.
    code, out, _ = run(capsys, "--model", "moonshotai/Kimi-K2-Instruct", "--gpu", "GB200", "--gpus", "4",
                       "--max-model-len", "8192", "--json")
    figures = json.loads(out)
    assert code == 0
    assert (figures["tensor_parallel_size"], figures["pipeline_parallel_size"]) == (4, 2)
    assert figures["layout_reason"].startswith(
        "tensor parallel 4 inside each node, pipeline 2 across 2 nodes: one node is not enough (TP 4 x PP 1: "
    )
    assert [(e["tensor_parallel_size"], e["pipeline_parallel_size"], e["nodes"]) for e in figures["layouts"]] == [
        (4, 1, 1), (4, 2, 2),
    ]


def test_pipeline_across_nodes_comes_after_a_quantized_variant_that_fits_one_node(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Changed behaviour: Llama 3.1 405B in bf16 on nodes of 8 H100s used to be advised over 2 nodes; the published
    # FP8 upload fits one node, so that comes first and the two-node pipeline last.
    code, out, _ = run(capsys, "--model", "meta-llama/Llama-3.1-405B-Instruct", "--gpu", "H100", "--gpus", "8",
                       "--max-model-len", "8192", "--json")
    figures = json.loads(out)
    assert code == 1 and not figures["fits"]
    assert (figures["tensor_parallel_size"], figures["pipeline_parallel_size"]) == (8, 1)
    assert figures["reason"].startswith("the weights alone (94.53 GiB per GPU, bfloat16) exceed the H100-80GB's")
    assert figures["remedies"][0].startswith(
        "serve the published quantized variant meta-llama/Llama-3.1-405B-Instruct-FP8 (fp8 weights) on 8 x H100-80GB"
    )
    assert figures["remedies"][-1].startswith("pipeline parallel 2 across 2 nodes of 8 H100-80GB GPUs")
    assert [(e["tensor_parallel_size"], e["pipeline_parallel_size"], e["nodes"]) for e in figures["layouts"]] == [
        (8, 1, 1), (8, 2, 2),
    ]


def test_no_layout_found_tables_the_closest_without_a_reason_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_8B, "--gpu", "custom:4", "--gpus", "1")
    assert code == 1
    assert "(12 x custom-4GiB), the closest of the layouts weighed\n" in out
    assert "\nwhy:" not in out
    assert out.count("  no: Free memory on device") == 16


def test_given_layout_is_not_advised(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--model", LLAMA_70B, "--gpu", "H100", "--gpus", "8", "--tensor-parallel-size", "4",
                       "--json")
    assert code == 0
    assert set(json.loads(out)) == JSON_KEYS
    code, out, _ = run(capsys, "--model", LLAMA_70B, "--gpu", "H100", "--gpus", "8", "--tensor-parallel-size", "4")
    assert "weighed:" not in out and "why:" not in out and "suggested" not in out


def test_a_reader_that_closes_the_pipe_early_ends_the_output_quietly() -> None:
    """``pulumi-vllm size ... | head``: the reader has gone when the command writes, which ends with the shell's
    code for a closed pipe (141) and no traceback."""
    command = [sys.executable, "-c", "from pulumi_vllm.cli import console_main; console_main()", "size", "--model",
               "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "H100", "--concurrency", "4"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141
    assert "Traceback" not in error and "BrokenPipeError" not in error
