"""vLLM's own argument parsers, run by pulumi_vllm.engine.check: what vLLM accepts and refuses.

Also the offline path (pulumi_vllm.engine.offline): its ``vllm.LLM`` keywords against vLLM's EngineArgs.

These need vLLM installed (the ``vllm`` marker); without it they fail with ImportError.
"""

from __future__ import annotations

import dataclasses
import importlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulumi_vllm.engine.argv import EngineArgs, vllm_command
from pulumi_vllm.engine.check import (
    VllmArgsError,
    check_batch_args,
    check_engine_args,
    check_serve_args,
    installed_vllm_version,
)
from pulumi_vllm.engine.offline import OfflineArgsError, llm_kwargs

pytestmark = pytest.mark.vllm

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
GOOD_SERVE_ARGS = [
    MODEL,
    "--host",
    "0.0.0.0",
    "--port",
    "8000",
    "--tensor-parallel-size",
    "2",
]


def test_installed_version_is_the_importable_packages_version() -> None:
    vllm_version = importlib.import_module("vllm.version").__version__
    assert installed_vllm_version() == vllm_version


def test_good_serve_args_pass() -> None:
    namespace = check_serve_args(GOOD_SERVE_ARGS)
    assert namespace.model == MODEL
    assert namespace.host == "0.0.0.0"
    assert namespace.port == 8000
    assert namespace.tensor_parallel_size == 2


def test_model_flag_instead_of_positional_serves_the_same_model() -> None:
    positional = check_serve_args(GOOD_SERVE_ARGS)
    flag = check_serve_args(["--model", MODEL, *GOOD_SERVE_ARGS[1:]])
    assert flag.model == MODEL
    assert vars(flag) == vars(positional)


def test_positional_model_and_model_flag_together_are_refused() -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_serve_args([MODEL, "--model", "other/model"])
    assert caught.value.message == f"unrecognized arguments: {MODEL}"


def test_misspelt_flag_fails_with_vllms_message() -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_serve_args([MODEL, "--tensor-paralel-size", "2"])
    assert str(caught.value) == "unrecognized arguments: --tensor-paralel-size 2"
    assert caught.value.command == "vllm serve"
    assert caught.value.argv == [MODEL, "--tensor-paralel-size", "2"]
    assert "usage:" in caught.value.output


def test_bad_value_fails_with_vllms_message() -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_serve_args([MODEL, "--dtype", "float99"])
    assert caught.value.message.startswith("argument --dtype: invalid choice: 'float99'")
    assert "'bfloat16'" in caught.value.message


@pytest.mark.parametrize(
    ("flag", "needed"),
    [
        ("--enable-auto-tool-choice", "--tool-call-parser"),
        ("--enable-log-outputs", "--enable-log-requests"),
    ],
)
def test_flag_needing_another_fails_in_vllms_validation(flag: str, needed: str) -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_serve_args([MODEL, flag])
    assert caught.value.message == f"Error: {flag} requires {needed}"


def test_flag_with_the_one_it_needs_passes() -> None:
    namespace = check_serve_args([MODEL, "--enable-auto-tool-choice", "--tool-call-parser", "hermes"])
    assert namespace.enable_auto_tool_choice is True
    assert namespace.tool_call_parser == "hermes"


def test_served_model_name_without_positional_model_is_refused() -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_serve_args(["--port", "8000", "--served-model-name", "chat"])
    assert "should be provided as the first positional argument" in caught.value.message


def test_help_is_not_a_serve_command() -> None:
    with pytest.raises(VllmArgsError, match="print help"):
        check_serve_args(["--help"])


def test_batch_parser_accepts_input_output_and_model() -> None:
    namespace = check_batch_args(["-i", "in.jsonl", "-o", "out.jsonl", "--model", MODEL])
    assert (namespace.input_file, namespace.output_file, namespace.model) == (
        "in.jsonl",
        "out.jsonl",
        MODEL,
    )


def test_batch_parser_requires_the_output_file() -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_batch_args(["-i", "in.jsonl", "--model", MODEL])
    assert caught.value.message == "the following arguments are required: -o/--output-file"


def test_batch_parser_refuses_a_positional_model() -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_batch_args(["-i", "in.jsonl", "-o", "out.jsonl", MODEL])
    assert caught.value.message == f"unrecognized arguments: {MODEL}"


_SLOW_PARSE = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SLOW_PARSE
@given(port=st.integers(min_value=1, max_value=65535), size=st.integers(min_value=1, max_value=64))
def test_integer_flags_round_trip(port: int, size: int) -> None:
    namespace = check_serve_args([MODEL, "--port", str(port), "--tensor-parallel-size", str(size)])
    assert (namespace.port, namespace.tensor_parallel_size) == (port, size)


@_SLOW_PARSE
@given(name=st.from_regex(r"--zz-[a-z]{1,12}", fullmatch=True))
def test_unknown_flags_are_unrecognized(name: str) -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_serve_args([MODEL, name, "1"])
    assert caught.value.message == f"unrecognized arguments: {name} 1"


def test_batch_refusal_names_the_batch_command() -> None:
    with pytest.raises(VllmArgsError) as caught:
        check_batch_args(["-i", "in.jsonl", "-o", "out.jsonl", "--model", MODEL, "--tensor-paralel-size", "2"])
    assert caught.value.message == "unrecognized arguments: --tensor-paralel-size 2"
    assert caught.value.command == "vllm run-batch"


def test_engine_args_accept_engine_flags_and_refuse_server_flags() -> None:
    namespace = check_engine_args(["--enforce-eager", "--max_num_seqs", "8"])
    assert (namespace.enforce_eager, namespace.max_num_seqs) == (True, 8)
    with pytest.raises(VllmArgsError) as caught:
        check_engine_args(["--enforce-eager", "--api-key", "secret"])
    assert caught.value.message == "unrecognized arguments: --api-key secret"
    assert caught.value.command == "vllm.LLM"


# --- offline inference: pulumi_vllm.engine.offline.llm_kwargs against vLLM's own EngineArgs ---

EVERY_SETTING = EngineArgs(
    model="org/model",
    revision="0123456789abcdef0123456789abcdef01234567",
    served_model_name="chat",
    trust_remote_code=True,
    dtype="bfloat16",
    max_model_len=8192,
    gpu_memory_utilization=0.85,
    kv_cache_dtype="fp8",
    quantization="fp8",
    tensor_parallel_size=4,
    pipeline_parallel_size=2,
    distributed_executor_backend="ray",
    extra_args=("--enforce-eager", "--max-num-seqs", "8"),
)


def _vllm_engine_fields() -> set[str]:
    import vllm

    return {field.name for field in dataclasses.fields(vllm.EngineArgs)}


def test_llm_kwargs_are_vllm_engine_args_fields() -> None:
    """A misspelt keyword would reach vLLM's EngineArgs and fail there; it fails here first."""
    kwargs = llm_kwargs(EVERY_SETTING)
    assert set(kwargs) - _vllm_engine_fields() == set()
    assert {"model", "tokenizer", "served_model_name", "distributed_executor_backend", "enforce_eager"} <= set(kwargs)
    assert kwargs["tokenizer"] == kwargs["model"] == "org/model"
    assert kwargs["max_num_seqs"] == 8


def test_llm_kwargs_leave_unset_settings_to_vllm() -> None:
    kwargs = llm_kwargs(EngineArgs(model="org/model"))
    assert not {"revision", "served_model_name", "max_model_len", "quantization"} & set(kwargs)
    assert "distributed_executor_backend" not in kwargs


def test_server_only_extra_args_are_refused_offline() -> None:
    with pytest.raises(OfflineArgsError, match="unrecognized arguments: --chat-template x.jinja"):
        llm_kwargs(EngineArgs(model="org/model", extra_args=("--enforce-eager", "--chat-template", "x.jinja")))


_ENGINES = st.builds(
    EngineArgs,
    model=st.sampled_from(["org/model", "/models/llama"]),
    revision=st.none() | st.sampled_from(["main", "v1.0"]),
    served_model_name=st.none() | st.sampled_from(["chat", "llama-3"]),
    trust_remote_code=st.booleans(),
    dtype=st.sampled_from(["auto", "half", "float16", "bfloat16", "float", "float32"]),
    max_model_len=st.none() | st.integers(min_value=1, max_value=131072),
    gpu_memory_utilization=st.integers(min_value=1, max_value=100).map(lambda percent: percent / 100),
    kv_cache_dtype=st.sampled_from(["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]),
    quantization=st.none() | st.sampled_from(["fp8", "awq", "gptq"]),
    tensor_parallel_size=st.integers(min_value=1, max_value=16),
    pipeline_parallel_size=st.integers(min_value=1, max_value=8),
    distributed_executor_backend=st.none() | st.sampled_from(["ray", "mp"]),
    extra_args=st.sampled_from([(), ("--enforce-eager",), ("--max-num-seqs", "8", "--enable-prefix-caching")]),
)


@_SLOW_PARSE
@given(engine=_ENGINES)
def test_offline_engine_is_configured_like_the_server(engine: EngineArgs) -> None:
    """vLLM's EngineArgs from ``llm_kwargs`` equal those ``vllm serve`` builds from the rendered flags.

    Compared: every setting the rendered flags change from vLLM's defaults, and every keyword
    ``llm_kwargs`` passes (the tokenizer aside: the server leaves it unset, which means the model).
    """
    import vllm

    served = vllm.EngineArgs.from_cli_args(check_serve_args(vllm_command(engine).args))
    baseline = vllm.EngineArgs.from_cli_args(check_serve_args([engine.model]))
    kwargs = llm_kwargs(engine)
    offline = vllm.EngineArgs(**kwargs)
    set_by_flags = {name for name in _vllm_engine_fields() if getattr(served, name) != getattr(baseline, name)}
    compared = set_by_flags | (set(kwargs) - {"tokenizer"})
    assert {name: getattr(offline, name) for name in compared} == {name: getattr(served, name) for name in compared}
