"""The Triton profile: the generated model repository against Triton's and vLLM's own definitions.

``config.pbtxt`` is parsed with Triton's ``inference.ModelConfig`` message from tritonclient (the descriptor
its generated module carries, so the protobuf runtime's version gate does not apply); ``model.json``'s keys
are checked against vLLM's ``AsyncEngineArgs``, which the vLLM backend constructs from it.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import json
import pathlib
import shlex
from typing import Any

import pytest
from engines import require_module

from pulumi_vllm.engine.profiles import ServeSpec, profile
from pulumi_vllm.engine.profiles.triton import (
    MODEL_REPOSITORY,
    OPENAI_FRONTEND,
    PROFILE,
    TRITON_RELEASE,
    suggested_name,
)

MODEL = "Qwen/Qwen2.5-7B-Instruct"
TRITONCLIENT = "pip install --no-deps tritonclient==2.73.0"


def spec(**changes: object) -> ServeSpec:
    values: dict[str, object] = {"model": MODEL, "served_model_name": "qwen2.5-7b-instruct"}
    values.update(changes)
    return ServeSpec(**values)  # type: ignore[arg-type]


def model_config_class() -> Any:
    """Triton's ModelConfig message, built from the descriptor in tritonclient's model_config_pb2."""
    require_module("tritonclient", TRITONCLIENT)
    from google.protobuf import descriptor_pool, message_factory

    found = importlib.util.find_spec("tritonclient")
    assert found is not None and found.submodule_search_locations
    source = pathlib.Path(next(iter(found.submodule_search_locations)), "grpc", "model_config_pb2.py").read_text()
    serialized = next(
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile"
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(serialized)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.ModelConfig"))


def test_registry_returns_this_profile() -> None:
    assert profile("triton") is PROFILE


def test_image_is_the_pinned_vllm_container() -> None:
    assert PROFILE.image == f"nvcr.io/nvidia/tritonserver:{TRITON_RELEASE}-vllm-python-py3"
    assert "latest" not in PROFILE.image


def test_model_repository_layout() -> None:
    files = PROFILE.files(spec())
    assert sorted(files) == ["qwen2.5-7b-instruct/1/model.json", "qwen2.5-7b-instruct/config.pbtxt"]


def test_config_pbtxt_parses_as_tritons_model_config() -> None:
    from google.protobuf import text_format

    model_config = model_config_class()
    parsed = text_format.Parse(PROFILE.files(spec())["qwen2.5-7b-instruct/config.pbtxt"], model_config())
    assert parsed.name == "qwen2.5-7b-instruct"
    assert parsed.backend == "vllm"
    assert len(parsed.instance_group) == 1
    kind = model_config.DESCRIPTOR.fields_by_name["instance_group"].message_type.enum_types_by_name["Kind"]
    assert parsed.instance_group[0].kind == kind.values_by_name["KIND_MODEL"].number
    assert parsed.instance_group[0].count == 1
    # The parser is strict: a misspelt field is an error, so the check above can fail.
    with pytest.raises(text_format.ParseError):
        text_format.Parse('backends: "vllm"', model_config())


def test_model_json_keys_are_vllm_engine_arguments() -> None:
    require_module("vllm", "pip install vllm")
    from vllm.engine.arg_utils import AsyncEngineArgs

    served = spec(tensor_parallel_size=2, pipeline_parallel_size=2, gpus=4, max_model_len=4096, dtype="bfloat16",
                  kv_cache_dtype="fp8", quantization="fp8", revision="main", trust_remote_code=True)
    arguments = json.loads(PROFILE.files(served)["qwen2.5-7b-instruct/1/model.json"])
    fields = {field.name for field in dataclasses.fields(AsyncEngineArgs)}
    assert set(arguments) <= fields, set(arguments) - fields
    engine_args = AsyncEngineArgs(**arguments)
    assert engine_args.model == MODEL
    assert (engine_args.tensor_parallel_size, engine_args.pipeline_parallel_size) == (2, 2)
    assert engine_args.max_model_len == 4096
    assert engine_args.kv_cache_dtype == "fp8"


def test_command_copies_the_repository_and_starts_the_openai_frontend() -> None:
    command = PROFILE.command(spec(port=9100, files_path="/etc/engine", extra_args=("--default-max-tokens", "256")))
    assert command.command == ("/bin/sh", "-c")
    (script,) = command.args
    copy, start = script.split(" && exec ")
    assert f"cp -rL /etc/engine/qwen2.5-7b-instruct {MODEL_REPOSITORY}/" in copy
    words = shlex.split(start)
    assert words[:2] == ["python3", OPENAI_FRONTEND]
    assert words[words.index("--model-repository") + 1] == MODEL_REPOSITORY
    assert words[words.index("--tokenizer") + 1] == MODEL
    assert words[words.index("--openai-port") + 1] == "9100"
    assert words[-2:] == ["--default-max-tokens", "256"]


@pytest.mark.parametrize("name", [MODEL, ".hidden", "a b", ""])
def test_refuses_names_triton_cannot_serve(name: str) -> None:
    problems = PROFILE.problems(spec(served_model_name=name))
    assert len(problems) == 1
    assert problems[0].startswith(f"model.servedModelName: {name!r} is not accepted")


def test_suggested_name_is_legal() -> None:
    assert suggested_name(MODEL) == "qwen2.5-7b-instruct"
    assert PROFILE.problems(spec(served_model_name=suggested_name(MODEL))) == []


def test_refuses_a_model_file() -> None:
    assert [p.split(":")[0] for p in PROFILE.problems(spec(model_file="x.gguf"))] == ["engine.modelFile"]


def test_facts() -> None:
    assert (PROFILE.port, PROFILE.ready_path, PROFILE.metrics_path) == (9000, "/health/ready", "/metrics")
    assert PROFILE.vllm_based and PROFILE.pipeline and PROFILE.splits_heads
    assert not PROFILE.docker and not PROFILE.multi_node
    assert "/v1/chat/completions" in PROFILE.openai_paths
