"""The single vLLM command builder."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pulumi_vllm.config import parse_stack_config
from pulumi_vllm.engine.argv import BATCH_COMMAND, SERVE_COMMAND, EngineArgs, engine_args_from_config, vllm_command


def _flag(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_serve_command_listens_on_all_interfaces_port_8000() -> None:
    command = vllm_command(EngineArgs(model="org/model"))
    assert command.command == SERVE_COMMAND
    assert command.args[0] == "org/model"
    assert _flag(command.args, "--host") == "0.0.0.0"
    assert _flag(command.args, "--port") == "8000"


def test_config_reaches_the_command() -> None:
    config = parse_stack_config(
        {
            "model": {"id": "Qwen/Qwen2.5-7B-Instruct", "revision": "abc123", "servedModelName": "qwen", "trustRemoteCode": True},
            "engine": {"dtype": "bfloat16", "maxModelLen": 4096, "gpuMemoryUtilization": 0.85, "kvCacheDtype": "fp8",
                       "extraArgs": ["--enable-prefix-caching"]},
            "parallelism": {"tensorParallelSize": 2},
        }
    )
    args = vllm_command(engine_args_from_config(config)).args
    assert _flag(args, "--revision") == "abc123"
    assert _flag(args, "--served-model-name") == "qwen"
    assert "--trust-remote-code" in args
    assert _flag(args, "--dtype") == "bfloat16"
    assert _flag(args, "--max-model-len") == "4096"
    assert _flag(args, "--gpu-memory-utilization") == "0.85"
    assert _flag(args, "--kv-cache-dtype") == "fp8"
    assert _flag(args, "--tensor-parallel-size") == "2"
    assert args[-1] == "--enable-prefix-caching"
    assert "--distributed-executor-backend" not in args


def test_multi_node_uses_ray_and_batch_shares_engine_flags() -> None:
    engine = EngineArgs(model="m", tensor_parallel_size=8, pipeline_parallel_size=2, distributed_executor_backend="ray")
    serve = vllm_command(engine)
    batch = vllm_command(engine, mode="batch", batch_input="/in.jsonl", batch_output="/out.jsonl")
    assert _flag(serve.args, "--distributed-executor-backend") == "ray"
    assert batch.command == BATCH_COMMAND
    assert _flag(batch.args, "-i") == "/in.jsonl" and _flag(batch.args, "--model") == "m"
    # Everything after the entrypoint-specific part is the same engine flag list.
    assert serve.args[5:] == batch.args[6:]


def test_api_key_is_never_a_flag() -> None:
    config = parse_stack_config({"model": {"id": "m"}, "apiKey": "sekret"})
    argv = vllm_command(engine_args_from_config(config)).argv
    assert "--api-key" not in argv and "sekret" not in " ".join(argv)


@given(utilization=st.floats(min_value=0.01, max_value=1.0), tensor=st.integers(1, 64), pipeline=st.integers(1, 8))
def test_numbers_round_trip(utilization: float, tensor: int, pipeline: int) -> None:
    args = vllm_command(EngineArgs(model="m", gpu_memory_utilization=utilization, tensor_parallel_size=tensor,
                                   pipeline_parallel_size=pipeline)).args
    assert abs(float(_flag(args, "--gpu-memory-utilization")) - utilization) < 1e-5
    assert int(_flag(args, "--tensor-parallel-size")) == tensor
    assert int(_flag(args, "--pipeline-parallel-size")) == pipeline
