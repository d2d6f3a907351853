"""The Megatron-LM profile: torchrun and the text generation server's flags, the checkpoint, refusals.

No Megatron-LM checkout can run here (it needs CUDA and torch.distributed over GPUs): the flags are checked
against tools/run_text_generation_server.py and megatron/training/arguments.py as written for the pinned
tag, not against the script itself.
"""

from __future__ import annotations

import socket

import pytest

from pulumi_vllm.engine.profiles import ServeSpec, profile
from pulumi_vllm.engine.profiles.megatron import MEGATRON_VERSION, PROFILE, SERVER_SCRIPT

TOKENIZER = "meta-llama/Llama-3.1-8B"


def spec(**changes: object) -> ServeSpec:
    values: dict[str, object] = {
        "model": TOKENIZER, "served_model_name": TOKENIZER, "model_file": "megatron/llama-8b", "cache_path": "/cache",
    }
    values.update(changes)
    return ServeSpec(**values)  # type: ignore[arg-type]


def flag(args: tuple[str, ...], name: str) -> str:
    return args[args.index(name) + 1]


def test_registry_returns_this_profile() -> None:
    assert profile("megatron") is PROFILE


def test_command_runs_the_server_under_torchrun() -> None:
    command = PROFILE.command(spec(tensor_parallel_size=2, pipeline_parallel_size=2, gpus=4, port=5001))
    assert command.command == ("torchrun",)
    args = command.args
    assert flag(args, "--nproc-per-node") == "4"
    assert args.index("--nproc-per-node") < args.index(SERVER_SCRIPT)
    assert flag(args, "--tensor-model-parallel-size") == "2"
    assert flag(args, "--pipeline-model-parallel-size") == "2"
    assert flag(args, "--load") == "/cache/megatron/llama-8b"
    assert "--use-checkpoint-args" in args
    assert flag(args, "--tokenizer-type") == "HuggingFaceTokenizer"
    assert flag(args, "--tokenizer-model") == TOKENIZER
    assert flag(args, "--port") == "5001"


@pytest.mark.parametrize(("dtype", "precision"), [("bfloat16", "--bf16"), ("half", "--fp16"), ("float16", "--fp16")])
def test_dtype_maps_to_precision_flags(dtype: str, precision: str) -> None:
    args = PROFILE.command(spec(dtype=dtype)).args
    assert precision in args


def test_auto_dtype_keeps_megatrons_default() -> None:
    args = PROFILE.command(spec(extra_args=("--seed", "1"))).args
    assert "--bf16" not in args and "--fp16" not in args
    assert args[-2:] == ("--seed", "1")


def test_checkpoint_folder_is_required() -> None:
    problems = PROFILE.problems(spec(model_file=None))
    assert len(problems) == 1
    assert problems[0].startswith("engine.modelFile: is required")


def test_gpus_must_be_tensor_times_pipeline() -> None:
    assert PROFILE.problems(spec(tensor_parallel_size=2, pipeline_parallel_size=2, gpus=4)) == []
    problems = PROFILE.problems(spec(tensor_parallel_size=2, gpus=4))
    assert len(problems) == 1 and problems[0].startswith("parallelism.tensorParallelSize: 2 x pipeline 1")


def test_readiness_is_a_connection_to_the_port() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        command = PROFILE.ready_command(spec(port=port))
        assert command[:2] == ("python3", "-c")
        exec(command[2], {})  # noqa: S102 - our own probe, run against a local listener
    with pytest.raises(OSError):
        exec(command[2], {})  # noqa: S102 - nothing listens any more


def test_facts() -> None:
    assert PROFILE.image == ""
    assert MEGATRON_VERSION in PROFILE.docs
    assert PROFILE.openai_paths == ()
    assert PROFILE.port == 5000
    assert PROFILE.env(spec()) == {"CUDA_DEVICE_MAX_CONNECTIONS": "1"}
    assert PROFILE.pipeline and PROFILE.splits_heads
    assert not PROFILE.docker and not PROFILE.multi_node and PROFILE.api_key_env is None
    assert PROFILE.honours == frozenset({"dtype", "extra_args"})
