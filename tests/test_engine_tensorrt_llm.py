"""The TensorRT-LLM profile: trtllm-serve's command line, its --config file and what it refuses.

No TensorRT-LLM package can run here (it needs CUDA and its own wheels): the flags are checked against the
release's click options as written in the docs for the pinned version, not against trtllm-serve itself.
"""

from __future__ import annotations

import json

import pytest
import yaml

from pulumi_vllm.engine.profiles import ServeSpec, profile
from pulumi_vllm.engine.profiles.tensorrt_llm import CONFIG_FILE, PROFILE, TRTLLM_VERSION

MODEL = "Qwen/Qwen2.5-7B-Instruct"


def spec(**changes: object) -> ServeSpec:
    values: dict[str, object] = {"model": MODEL, "served_model_name": MODEL}
    values.update(changes)
    return ServeSpec(**values)  # type: ignore[arg-type]


def flag(args: tuple[str, ...], name: str) -> str:
    return args[args.index(name) + 1]


def test_registry_returns_this_profile() -> None:
    assert profile("tensorrt-llm") is PROFILE
    assert PROFILE.kind == "tensorrt-llm"


def test_image_is_pinned_to_the_release() -> None:
    assert PROFILE.image == f"nvcr.io/nvidia/tensorrt-llm/release:{TRTLLM_VERSION}"
    assert not PROFILE.image.endswith(":latest")
    assert TRTLLM_VERSION in PROFILE.docs


def test_command_serves_the_hub_id_with_the_pytorch_backend() -> None:
    command = PROFILE.command(spec(tensor_parallel_size=2, pipeline_parallel_size=2, gpus=4, port=8123))
    assert command.command == ("trtllm-serve",)
    args = command.args
    assert args[0] == MODEL
    assert flag(args, "--host") == "0.0.0.0"
    assert flag(args, "--port") == "8123"
    assert flag(args, "--backend") == "pytorch"
    assert flag(args, "--tp_size") == "2"
    assert flag(args, "--pp_size") == "2"
    assert "--tokenizer" not in args
    assert "--config" not in args


def test_engine_settings_map_to_flags() -> None:
    args = PROFILE.command(
        spec(max_model_len=8192, gpu_memory_utilization=0.8, trust_remote_code=True, revision="main",
             extra_args=("--max_batch_size", "64"))
    ).args
    assert flag(args, "--max_seq_len") == "8192"
    assert flag(args, "--kv_cache_free_gpu_memory_fraction") == "0.8"
    assert "--trust_remote_code" in args
    assert flag(args, "--revision") == "main"
    assert args[-2:] == ("--max_batch_size", "64")


def test_engine_directory_uses_the_tensorrt_backend_and_the_ids_tokenizer() -> None:
    served = spec(model_file="engines/qwen-tp2", served_model_name="qwen-tp2", tensor_parallel_size=2, gpus=2,
                  cache_path="/cache")
    args = PROFILE.command(served).args
    assert args[0] == "/cache/engines/qwen-tp2"
    assert flag(args, "--backend") == "tensorrt"
    assert flag(args, "--tokenizer") == MODEL
    assert PROFILE.api_model_name(served) == "qwen-tp2"
    assert PROFILE.problems(served) == []


def test_no_config_file_for_defaults() -> None:
    assert PROFILE.files(spec()) == {}


def test_dtype_and_kv_cache_dtype_go_to_the_config_file() -> None:
    served = spec(dtype="half", kv_cache_dtype="fp8", gpu_memory_utilization=0.7, files_path="/etc/engine")
    files = PROFILE.files(served)
    options = yaml.safe_load(files[CONFIG_FILE])
    assert options == {"dtype": "float16", "kv_cache_config": {"dtype": "fp8", "free_gpu_memory_fraction": 0.7}}
    assert json.loads(files[CONFIG_FILE]) == options
    assert flag(PROFILE.command(served).args, "--config") == f"/etc/engine/{CONFIG_FILE}"


@pytest.mark.parametrize("kv_cache_dtype", ["fp8_e4m3", "fp8_e5m2"])
def test_refuses_kv_cache_dtypes_it_lacks(kv_cache_dtype: str) -> None:
    problems = PROFILE.problems(spec(kv_cache_dtype=kv_cache_dtype))
    assert len(problems) == 1
    assert problems[0].startswith(f"engine.kvCacheDtype: {kv_cache_dtype!r} is not accepted")
    assert "'fp8'" in problems[0]


def test_refuses_a_served_name_it_cannot_give() -> None:
    problems = PROFILE.problems(spec(served_model_name="qwen"))
    assert len(problems) == 1
    assert problems[0].startswith("model.servedModelName: 'qwen' is not accepted")
    assert repr(MODEL) in problems[0]


def test_refuses_a_revision_of_an_engine_directory() -> None:
    problems = PROFILE.problems(spec(model_file="engine", served_model_name="engine", revision="v1"))
    assert [p.split(":")[0] for p in problems] == ["model.revision"]


def test_defaults_are_fine() -> None:
    assert PROFILE.problems(spec(tensor_parallel_size=4, pipeline_parallel_size=2, gpus=8)) == []


def test_facts() -> None:
    assert (PROFILE.port, PROFILE.health_path, PROFILE.metrics_path) == (8000, "/health", "/metrics")
    assert "/v1/chat/completions" in PROFILE.openai_paths
    assert PROFILE.splits_heads and PROFILE.pipeline
    assert not PROFILE.docker and not PROFILE.multi_node and not PROFILE.vllm_based
    assert PROFILE.api_key_env is None
    assert "quantization" not in PROFILE.honours
