"""The TGI profile: ``text-generation-launcher``'s command line, environment and refusals, for TGI 3.3.7.

No real counterpart runs here: the launcher is a Rust (clap) binary that no package registry reachable
from this workplace ships, and PyPI's ``text-generation`` package is only the HTTP client's pydantic
types. So these tests check the profile's own rules against the launcher's documented flags
(https://huggingface.co/docs/text-generation-inference/reference/launcher), the policy pack's reader of
TGI commands (the project's own counterpart), and the health check command run for real with curl.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest
from engines import profile_container, require_program, status_server

from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine.other_engines import engine_commands
from pulumi_vllm.engine.profiles import ServeSpec, profile
from pulumi_vllm.engine.profiles.stack import _ENGINE_FIELDS
from pulumi_vllm.engine.profiles.tgi import PROFILE, TGI_IMAGE, TGI_QUANTIZE, TGI_VERSION
from pulumi_vllm.plan import plan_serving

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
SPEC = ServeSpec(model=MODEL, served_model_name=MODEL, port=PROFILE.port)
SHARDED = replace(SPEC, tensor_parallel_size=2, gpus=2, max_model_len=8192)

# The launcher's options that take a value and its switches (TGI 3.3.7's `text-generation-launcher --help`), as
# documented at PROFILE.docs: the command must use nothing else, and give each at most once (clap refuses repeats).
LAUNCHER_VALUES = frozenset({
    "--model-id", "--revision", "--validation-workers", "--sharded", "--num-shard", "--quantize", "--speculate",
    "--dtype", "--kv-cache-dtype", "--max-concurrent-requests", "--max-best-of", "--max-stop-sequences",
    "--max-top-n-tokens", "--max-input-tokens", "--max-input-length", "--max-total-tokens", "--waiting-served-ratio",
    "--max-batch-prefill-tokens", "--max-batch-total-tokens", "--max-waiting-tokens", "--max-batch-size",
    "--cuda-graphs", "--hostname", "--port", "--shard-uds-path", "--master-addr", "--master-port",
    "--huggingface-hub-cache", "--weights-cache-override", "--cuda-memory-fraction", "--rope-scaling",
    "--rope-factor", "--otlp-endpoint", "--otlp-service-name", "--cors-allow-origin", "--api-key",
    "--watermark-gamma", "--watermark-delta", "--tokenizer-config-path", "--max-client-batch-size",
    "--lora-adapters", "--usage-stats", "--payload-limit",
})
LAUNCHER_SWITCHES = frozenset({
    "--trust-remote-code", "--disable-custom-kernels", "--json-output", "--disable-grammar-support",
    "--enable-prefill-logprobs",
})
DOCUMENTED_CHOICES = {
    "--dtype": {"float16", "bfloat16"},
    "--kv-cache-dtype": {"fp8_e4m3fn", "fp8_e5m2"},
    "--usage-stats": {"on", "off", "no-stack"},
    "--quantize": {
        "awq", "compressed-tensors", "eetq", "exl2", "gptq", "marlin", "bitsandbytes", "bitsandbytes-nf4",
        "bitsandbytes-fp4", "fp8",
    },
}


def _options(args: tuple[str, ...]) -> dict[str, str | None]:
    """The launcher's options in ``args``, checked against its documented flags (each given once)."""
    options: dict[str, str | None] = {}
    index = 0
    while index < len(args):
        flag = args[index]
        assert flag not in options, f"{flag} given twice: {args}"
        if flag in LAUNCHER_SWITCHES:
            options[flag] = None
            index += 1
        else:
            assert flag in LAUNCHER_VALUES, f"{flag} is not a flag of text-generation-launcher: {args}"
            assert index + 1 < len(args), f"{flag} needs a value: {args}"
            options[flag] = args[index + 1]
            index += 2
        if flag in DOCUMENTED_CHOICES:
            assert options[flag] in DOCUMENTED_CHOICES[flag], (flag, options[flag])
    return options


# --- the profile's facts --------------------------------------------------------------------------------------


def test_profile_is_the_tgi_kind() -> None:
    assert profile("tgi") is PROFILE
    assert PROFILE.kind == "tgi" and PROFILE.title == "TGI"


def test_image_is_pinned_to_the_version_the_flags_are_written_for() -> None:
    assert TGI_VERSION == "3.3.7"
    assert PROFILE.version == TGI_VERSION
    assert TGI_IMAGE == PROFILE.image == "ghcr.io/huggingface/text-generation-inference:3.3.7"
    assert "latest" not in PROFILE.image
    assert PROFILE.docs.startswith("https://huggingface.co/docs/text-generation-inference/")


def test_facts_of_the_router() -> None:
    assert PROFILE.port == 8080
    assert PROFILE.health_path == PROFILE.ready_path == "/health"
    assert PROFILE.metrics_path == "/metrics"
    assert PROFILE.openai_paths == ("/v1/chat/completions", "/v1/completions", "/v1/models")
    assert PROFILE.api_key_env == "API_KEY"


def test_parallelism_facts() -> None:
    assert PROFILE.splits_heads and not PROFILE.pipeline and PROFILE.max_tensor_parallel is None
    assert PROFILE.docker and not PROFILE.multi_node and not PROFILE.vllm_based
    assert "--num-shard" in PROFILE.parallelism


def test_honours_only_engine_fields_it_maps() -> None:
    assert PROFILE.honours <= set(_ENGINE_FIELDS)
    assert PROFILE.honours == {
        "dtype", "max_model_len", "gpu_memory_utilization", "kv_cache_dtype", "quantization", "extra_args"
    }


# --- command() ----------------------------------------------------------------------------------------------------


def test_command_runs_the_launcher_with_documented_flags_only() -> None:
    command = PROFILE.command(SPEC)
    assert command.command == ("text-generation-launcher",)
    options = _options(command.args)
    assert options["--model-id"] == MODEL
    assert options["--hostname"] == "0.0.0.0"
    assert options["--port"] == "8080"
    assert options["--num-shard"] == "1"  # explicit: unset, the launcher shards over every visible GPU
    assert options["--cuda-memory-fraction"] == "0.9"
    for absent in ("--revision", "--max-total-tokens", "--dtype", "--quantize", "--kv-cache-dtype",
                   "--trust-remote-code", "--api-key"):
        assert absent not in options


def test_port_comes_from_the_spec() -> None:
    assert _options(PROFILE.command(replace(SPEC, port=9090)).args)["--port"] == "9090"


def test_tensor_parallel_size_is_num_shard() -> None:
    assert _options(PROFILE.command(SHARDED).args)["--num-shard"] == "2"


def test_max_model_len_is_max_total_tokens_with_one_less_input() -> None:
    options = _options(PROFILE.command(SHARDED).args)
    assert options["--max-total-tokens"] == "8192"
    assert options["--max-input-tokens"] == "8191"


def test_max_input_tokens_in_extra_args_wins() -> None:
    for flag in ("--max-input-tokens", "--max-input-length"):
        spec = replace(SHARDED, extra_args=(flag, "4096"))
        args = PROFILE.command(spec).args
        options = _options(args)
        assert options[flag] == "4096" and options["--max-total-tokens"] == "8192"
        assert args.count("--max-input-tokens") + args.count("--max-input-length") == 1


@pytest.mark.parametrize(("dtype", "flag"), [("half", "float16"), ("float16", "float16"), ("bfloat16", "bfloat16")])
def test_dtype_maps_to_tgis_names(dtype: str, flag: str) -> None:
    assert _options(PROFILE.command(replace(SPEC, dtype=dtype)).args)["--dtype"] == flag


@pytest.mark.parametrize(("kv", "flag"), [("fp8", "fp8_e4m3fn"), ("fp8_e4m3", "fp8_e4m3fn"), ("fp8_e5m2", "fp8_e5m2")])
def test_kv_cache_dtype_maps_to_tgis_names(kv: str, flag: str) -> None:
    assert _options(PROFILE.command(replace(SPEC, kv_cache_dtype=kv)).args)["--kv-cache-dtype"] == flag


@pytest.mark.parametrize("method", TGI_QUANTIZE)
def test_quantization_is_passed_as_written(method: str) -> None:
    spec = replace(SPEC, quantization=method)
    assert _options(PROFILE.command(spec).args)["--quantize"] == method
    assert not [p for p in PROFILE.problems(spec) if p.startswith("engine.quantization")]


def test_revision_trust_remote_code_and_memory_fraction() -> None:
    spec = replace(SPEC, revision="0e9e39f", trust_remote_code=True, gpu_memory_utilization=0.85)
    options = _options(PROFILE.command(spec).args)
    assert options["--revision"] == "0e9e39f"
    assert "--trust-remote-code" in options
    assert options["--cuda-memory-fraction"] == "0.85"


def test_extra_args_come_last_verbatim() -> None:
    extra = ("--max-batch-prefill-tokens", "4096", "--max-concurrent-requests", "64")
    args = PROFILE.command(replace(SPEC, extra_args=extra)).args
    assert args[-len(extra):] == extra
    _options(args)


def test_hub_cache_is_under_the_mounted_cache() -> None:
    env = PROFILE.env(replace(SPEC, cache_path="/cache/hf/"))
    assert env == {"HUGGINGFACE_HUB_CACHE": "/cache/hf/hub", "HF_HUB_CACHE": "/cache/hf/hub"}


def test_policy_pack_reads_the_command_as_tgi() -> None:
    """The policy pack's reader of TGI commands sees the model, the shard count and the cache this profile sets."""
    command, env = PROFILE.command(SHARDED), PROFILE.env(SHARDED)
    (view,) = engine_commands(profile_container(PROFILE, SHARDED))
    assert view.engine == "tgi"
    assert view.model == MODEL
    assert view.tensor_parallel_size == 2 and view.pipeline_parallel_size == 1
    assert view.tensor_flag == "--num-shard"
    cache = next(env[name] for name in view.cache_env if name in env)
    assert cache == f"{SHARDED.cache_path}/hub"
    assert view.api_key_flag not in command.args


# --- problems() ---------------------------------------------------------------------------------------------------


def test_a_plain_spec_has_no_problems() -> None:
    assert PROFILE.problems(SPEC) == []
    assert PROFILE.problems(SHARDED) == []


def test_served_model_name_is_refused() -> None:
    (message,) = PROFILE.problems(replace(SPEC, served_model_name="llama"))
    assert message.startswith("model.servedModelName: 'llama' is not accepted with engine.kind 'tgi'")
    assert MODEL in message


@pytest.mark.parametrize("dtype", ["float", "float32"])
def test_a_dtype_tgi_lacks_is_refused(dtype: str) -> None:
    spec = replace(SPEC, dtype=dtype)
    (message,) = PROFILE.problems(spec)
    assert message.startswith(f"engine.dtype: {dtype!r} is not accepted with engine.kind 'tgi'")
    assert "float16" in message and "bfloat16" in message
    assert "--dtype" not in PROFILE.command(spec).args


def test_a_quantization_tgi_lacks_is_refused_with_the_accepted_values() -> None:
    (message,) = PROFILE.problems(replace(SPEC, quantization="gptq_marlin"))
    assert message.startswith("engine.quantization: 'gptq_marlin' is not accepted with engine.kind 'tgi': use one of ")
    for method in ("awq", "gptq", "bitsandbytes-nf4", "fp8", "compressed-tensors"):
        assert method in message


def test_dtype_with_quantize_is_refused() -> None:
    (message,) = PROFILE.problems(replace(SPEC, dtype="bfloat16", quantization="awq"))
    assert message.startswith("engine.dtype: 'bfloat16' is not accepted with engine.quantization 'awq'")


def test_exl2_cannot_be_sharded() -> None:
    (message,) = PROFILE.problems(replace(SHARDED, quantization="exl2"))
    assert message.startswith("parallelism.tensorParallelSize: 2 is not accepted with engine.quantization 'exl2'")
    assert PROFILE.problems(replace(SPEC, quantization="exl2")) == []


def test_pipeline_parallelism_is_refused() -> None:
    (message,) = PROFILE.problems(replace(SPEC, pipeline_parallel_size=2, gpus=2))
    assert message.startswith("parallelism.pipelineParallelSize: 2 is not accepted with engine.kind 'tgi'")


def test_a_one_token_context_is_refused() -> None:
    (message,) = PROFILE.problems(replace(SPEC, max_model_len=1))
    assert message.startswith("engine.maxModelLen: 1 is not accepted with engine.kind 'tgi'")


@pytest.mark.parametrize("flag", ["--port", "--num-shard", "--model-id", "--max-total-tokens", "--quantize"])
def test_a_flag_the_stack_sets_is_refused_in_extra_args(flag: str) -> None:
    (message,) = PROFILE.problems(replace(SPEC, extra_args=(f"{flag}=1",)))
    assert message.startswith(f"engine.extraArgs: '{flag}' is not accepted with engine.kind 'tgi'")


def test_a_literal_api_key_is_refused() -> None:
    (message,) = PROFILE.problems(replace(SPEC, extra_args=("--api-key", "sk-123")))
    assert message.startswith("engine.extraArgs: '--api-key' is not accepted with engine.kind 'tgi'")
    assert "API_KEY" in message and "sk-123" not in message


def test_the_stack_refuses_with_the_profiles_message() -> None:
    values = {
        "model": {"id": MODEL}, "resources": {"gpuType": "L40S"},
        "engine": {"kind": "tgi", "quantization": "gptq_marlin"},
    }
    with pytest.raises(ConfigError) as error:
        plan_serving(parse_stack_config(values))
    assert "pulumi-vllm:engine.quantization: 'gptq_marlin' is not accepted with engine.kind 'tgi'" in str(error.value)


# --- the health check runs for real -------------------------------------------------------------------------------


def test_http_check_uses_curl_and_fails_on_an_error_status() -> None:
    require_program("curl", "apt-get install curl")
    with status_server({"/health": 200}, default=503) as port:
        ok = PROFILE.http_check(f"http://127.0.0.1:{port}/health")
        assert ok[0] == "curl"
        assert subprocess.run(ok, check=False, capture_output=True, timeout=30).returncode == 0
        unavailable = PROFILE.http_check(f"http://127.0.0.1:{port}/loading")
        assert subprocess.run(unavailable, check=False, capture_output=True, timeout=30).returncode != 0


def test_usage_stats_are_off_unless_the_stack_turns_them_on() -> None:
    assert _options(PROFILE.command(SPEC).args)["--usage-stats"] == "off"
    on = PROFILE.command(replace(SPEC, extra_args=("--usage-stats", "on"))).args
    assert _options(on)["--usage-stats"] == "on" and on.count("--usage-stats") == 1
