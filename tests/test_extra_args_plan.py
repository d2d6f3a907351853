"""Flags of ``engine.extraArgs`` the plan depends on: refused naming their key, or folded into the plan.

Each conflict is rendered as a whole stack (the Deployment's GPUs and its one vLLM command line), and the
policy pack is shown a manifest that gives a flag twice.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine.commandline import find_commands
from pulumi_vllm.engine.plan_flags import OWNED_FLAGS, check_plan_flags, folded_value
from pulumi_vllm.plan import plan_serving

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "policies"))

from test_policies_unit import container, find, run

from vllm_policies.gpus import gpus_match_parallelism

MODEL = {"id": "Qwen/Qwen2.5-7B-Instruct"}


def _deployment(rendered: RenderedStack) -> dict[str, Any]:
    (found,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "Deployment"]
    return found


def _server(rendered: RenderedStack) -> tuple[int, list[str]]:
    """The pod's GPU limit and the vLLM server's arguments."""
    main = _deployment(rendered)["spec"]["template"]["spec"]["containers"][0]
    return int(main["resources"]["limits"]["nvidia.com/gpu"]), list(main["args"])


def _refusal(extra: list[str]) -> str:
    with pytest.raises(ConfigError) as caught:
        render_config({"name": "flags", "model": MODEL, "engine": {"extraArgs": extra}})
    return str(caught.value)


@pytest.mark.parametrize(
    ("extra", "key", "value"),
    [
        (["--tensor-parallel-size", "2"], "parallelism.tensorParallelSize", "2"),
        (["-tp", "2"], "parallelism.tensorParallelSize", "2"),
        (["--tensor_parallel_size=2"], "parallelism.tensorParallelSize", "2"),
        (["-pp=2"], "parallelism.pipelineParallelSize", "2"),
        (["--data-parallel-size", "2"], "parallelism.dataParallelSize", "2"),
        (["-dp", "2"], "parallelism.dataParallelSize", "2"),
        (["-dpl", "2"], "parallelism.dataParallelSize", "2"),
        (["--enable-expert-parallel"], "parallelism.enableExpertParallel", "true"),
        (["-ep"], "parallelism.enableExpertParallel", "true"),
        (["--max-model-len", "4096"], "engine.maxModelLen", "4096"),
        (["--max_model_len=4096"], "engine.maxModelLen", "4096"),
        (["--kv-cache-dtype", "fp8"], "engine.kvCacheDtype", "fp8"),
        (["--gpu-memory-utilization", "0.8"], "engine.gpuMemoryUtilization", "0.8"),
        (["--device-memory-utilization=0.8"], "engine.gpuMemoryUtilization", "0.8"),
        (["--quantization", "fp8"], "engine.quantization", "fp8"),
        (["-q", "awq"], "engine.quantization", "awq"),
        (["-qawq"], "engine.quantization", "awq"),
        (["--dtype", "half"], "engine.dtype", "half"),
        (["--runner", "pooling"], "engine.runner", "pooling"),
        (["--convert=embed"], "engine.convert", "embed"),
    ],
)
def test_a_flag_the_plan_owns_is_refused_naming_its_key(extra: list[str], key: str, value: str) -> None:
    message = _refusal(["--enable-prefix-caching", *extra])
    assert "pulumi-vllm:engine.extraArgs:" in message
    assert f"set {key}: {value} instead" in message
    assert message.count("\n") == 1  # one problem, one line under the heading


def test_every_owned_flag_has_a_key_and_a_long_name() -> None:
    for dest, (flag, key) in OWNED_FLAGS.items():
        assert flag.startswith("--") and flag[2:].replace("-", "_") == dest
        assert key.split(".")[0] in ("parallelism", "engine")


def test_the_keys_instead_render_one_flag_and_the_pods_gpus() -> None:
    """What the refusal asks for: parallelism.tensorParallelSize 2 gives a 2-GPU pod and one --tensor-parallel-size."""
    gpus, args = _server(render_config({"name": "flags", "model": MODEL, "parallelism": {"tensorParallelSize": 2}}))
    assert gpus == 2
    assert args.count("--tensor-parallel-size") == 1 and args[args.index("--tensor-parallel-size") + 1] == "2"


def test_a_folded_flag_stays_once_and_the_planner_reads_it() -> None:
    stack = {"name": "flags", "model": MODEL, "resources": {"gpuType": "L4"}, "engine": {"maxModelLen": 8192}}
    folded = copy.deepcopy(stack)
    folded["engine"]["extraArgs"] = ["--max-num-seqs", "16"]
    gpus, args = _server(render_config(folded))
    assert gpus == 1 and args.count("--max-num-seqs") == 1
    plain = plan_serving(parse_stack_config(stack)).capacity
    sixteen = plan_serving(parse_stack_config(folded)).capacity
    assert plain is not None and sixteen is not None
    # Fewer sequences: a smaller sampler warm-up, so more memory is left for the KV cache.
    assert sixteen.kv_cache_tokens > plain.kv_cache_tokens
    assert folded_value(["--max-num-seqs=16"], "max_num_seqs") == 16
    assert folded_value(["--enforce-eager"], "max_num_seqs") is None


def test_a_folded_flag_given_twice_is_refused() -> None:
    message = _refusal(["--max-num-seqs", "8", "--max_num_seqs=16"])
    assert "'--max-num-seqs 8' and '--max_num_seqs=16': vLLM keeps the last one" in message


def test_hf_overrides_in_extra_args_is_folded_into_engine_hf_overrides() -> None:
    overrides = {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0}}
    rendered = render_config({"name": "flags", "model": MODEL,
                              "engine": {"extraArgs": ["--hf-overrides", json.dumps(overrides), "--enforce-eager"]}})
    assert rendered.config is not None
    assert rendered.config.engine.hf_overrides == overrides
    assert rendered.config.engine.extra_args == ["--enforce-eager"]
    _, args = _server(rendered)
    assert args.count("--hf-overrides") == 1
    assert json.loads(args[args.index("--hf-overrides") + 1]) == overrides


def test_hf_overrides_in_both_places_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"model": MODEL, "engine": {"hfOverrides": {"max_position_embeddings": 65536},
                                                       "extraArgs": ["--hf-overrides={}"]}})
    assert "engine.hfOverrides is set too" in str(caught.value)


def test_other_flags_pass_untouched() -> None:
    check_plan_flags(["--enable-prefix-caching", "--max-num-seqs", "64", "--tool-call-parser", "hermes"])


def test_the_pack_reports_a_flag_given_twice_with_different_values() -> None:
    """vLLM's parser keeps the last value: the pack reads it so, and says the flag is given twice."""
    document = find("api-server-deployment.yaml", "Deployment")
    main = container(document)
    assert run(gpus_match_parallelism, [document]) == []
    main["args"] = [*main["args"], "--tensor-parallel-size", "1"]
    messages = [message for message, _ in run(gpus_match_parallelism, [document])]
    assert any("--tensor-parallel-size is given 2 times ('2', '1'): vLLM keeps the last ('1')" in m for m in messages)
    # ... and the GPUs are judged against the last value, as vLLM runs it (2 GPUs for tensor parallel 1).
    assert any("needs 1" in m for m in messages)


def test_the_pack_reads_the_last_value_as_vllm_does() -> None:
    (command,) = find_commands(["vllm", "serve", "m", "-tp", "1", "--tensor-parallel-size=4"]).vllm
    assert command.tensor_parallel_size == 4
    assert command.conflicting_flags == {"--tensor-parallel-size": ("1", "4")}
    (repeated,) = find_commands(["vllm", "serve", "m", "--middleware", "a.B", "--middleware", "c.D"]).vllm
    assert repeated.conflicting_flags == {}


@pytest.mark.parametrize(
    ("extra", "wanted"),
    [
        (["--hf-overrides.rope_scaling.factor", "4"], "write the overrides as one JSON object in engine.hfOverrides"),
        (["--hf-overrides", "[1, 2]"], "--hf-overrides '[1, 2]' is not accepted: a JSON object is"),
        (["--hf-overrides", '{"rope_scaling": {"type": "yarn"}}'], "has no rope_type"),
    ],
)
def test_hf_overrides_that_cannot_be_folded_are_refused(extra: list[str], wanted: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"model": MODEL, "engine": {"extraArgs": extra}})
    assert wanted in str(caught.value) and "engine.extraArgs" in str(caught.value)


def test_any_other_flag_the_stack_renders_is_not_given_twice() -> None:
    """Flags outside the plan's table too: the rendered command never carries one flag with two values."""
    stack = {"model": {**MODEL, "servedModelName": "chat"}, "engine": {"extraArgs": ["--served-model-name=other"]}}
    with pytest.raises(ConfigError) as caught:
        plan_serving(parse_stack_config(stack))
    assert "gives --served-model-name 'other', and the stack's own keys already give --served-model-name 'chat'" in (
        str(caught.value))
    adapters = {"model": MODEL, "adapters": {"sql": "org/sql-lora"}, "engine": {"extraArgs": ["--max-loras", "4"]}}
    with pytest.raises(ConfigError, match="--max-loras '4'"):
        plan_serving(parse_stack_config(adapters))
    # The same value twice is no conflict, and a flag the stack does not render is alone anyway.
    plan_serving(parse_stack_config({"model": {**MODEL, "trustRemoteCode": True},
                                     "engine": {"extraArgs": ["--trust-remote-code", "--served-model-name", "x"]}}))
