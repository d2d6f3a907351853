"""Stack config validation: clear errors naming the key, the value and what is accepted."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulumi_vllm.config import DEFAULT_IMAGE, ConfigError, load_stack_config, parse_stack_config
from pulumi_vllm.plan import plan_serving

MINIMAL = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}}


def test_minimal_config_has_secure_working_defaults() -> None:
    config = parse_stack_config(MINIMAL)
    assert config.engine.image == DEFAULT_IMAGE
    assert config.service.type == "ClusterIP"
    assert config.cache.retain_on_delete is True
    assert config.resources.gpu_resource_name == "nvidia.com/gpu"
    assert config.replicas == 1


def test_flat_runtime_config_is_decoded() -> None:
    flat = {
        "pulumi-vllm:model": json.dumps({"id": "Qwen/Qwen2.5-7B-Instruct", "servedModelName": "qwen"}),
        "pulumi-vllm:replicas": "2",
        "pulumi-vllm:cache": json.dumps({"accessMode": "ReadWriteMany"}),
        "pulumi-vllm:hfToken": "12345",
        "kubernetes:context": "ignored",
    }
    config = load_stack_config(flat)
    assert config.replicas == 2
    assert config.model.served_model_name == "qwen"
    assert config.hf_token is not None and config.hf_token.get_secret_value() == "12345"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({**MINIMAL, "replicaz": 2}, "pulumi-vllm:replicaz: unknown key"),
        ({"model": {"id": "m", "servedName": "x"}}, "pulumi-vllm:model.servedName: unknown key"),
        ({}, "pulumi-vllm:model: required but not set"),
        (
            {**MINIMAL, "engine": {"gpuMemoryUtilization": 1.5}},
            "pulumi-vllm:engine.gpuMemoryUtilization: 1.5 is not accepted: use at most 1",
        ),
        ({**MINIMAL, "engine": {"image": "vllm/vllm-openai:latest"}}, "uses 'latest'; pin a vLLM release"),
        ({**MINIMAL, "engine": {"image": "vllm/vllm-openai"}}, "has no tag; pin a vLLM release"),
        ({**MINIMAL, "engine": {"extraArgs": ["--port=9000"]}}, "pulumi-vllm:engine.extraArgs"),
        ({**MINIMAL, "engine": {"env": {"HF_TOKEN": "x"}}}, "HF_TOKEN must not be a plain value"),
        ({**MINIMAL, "resources": {"memoryRequest": "lots"}}, "pulumi-vllm:resources.memoryRequest: 'lots'"),
        ({**MINIMAL, "resources": {"tolerations": [{"key": "a", "efect": "NoSchedule"}]}}, "unknown field(s) ['efect']"),
        ({**MINIMAL, "name": "Llama_8B"}, "pulumi-vllm:name: 'Llama_8B' is not accepted: 'Llama_8B' is not a DNS label"),
        ({**MINIMAL, "replicas": 2}, "cannot share a ReadWriteOnce model cache"),
        ({**MINIMAL, "service": {"type": "Ingress"}}, "pulumi-vllm:service.type: 'Ingress' is not accepted"),
        ({**MINIMAL, "labels": {"app": "has space"}}, "not a valid Kubernetes label value"),
    ],
)
def test_bad_config_fails_with_one_clear_message(raw: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(raw)
    assert expected in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_secret_values_are_never_echoed_in_errors() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({**MINIMAL, "hfToken": "hf_supersecret", "hfTokenSecret": {"name": "x"}})
    assert "hf_supersecret" not in str(caught.value)
    assert "set either hfToken or hfTokenSecret" in str(caught.value)


def test_secret_values_are_masked_in_repr() -> None:
    config = parse_stack_config({**MINIMAL, "hfToken": "hf_supersecret", "apiKey": "key-123"})
    assert "hf_supersecret" not in repr(config)
    assert "key-123" not in repr(config)


def test_wrong_gpu_count_names_the_key() -> None:
    config = parse_stack_config({**MINIMAL, "parallelism": {"tensorParallelSize": 2}, "resources": {"gpuCount": 3}})
    with pytest.raises(ConfigError, match=r"pulumi-vllm:resources.gpuCount"):
        plan_serving(config)


def test_tensor_parallel_that_does_not_divide_heads_fails_with_vllm_wording() -> None:
    config = parse_stack_config({**MINIMAL, "parallelism": {"tensorParallelSize": 3}})
    with pytest.raises(ConfigError) as caught:
        plan_serving(config)
    message = str(caught.value)
    assert message.startswith("pulumi-vllm:parallelism.tensorParallelSize: 3 is not accepted")
    assert "Total number of attention heads (32) must be divisible by tensor parallel size (3)." in message


# Hypothesis: arbitrary (often wrong) configs either validate or raise ConfigError naming a key; nothing crashes.
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 70000), st.floats(-2, 2, allow_nan=False), st.text(max_size=12))
_sections = st.fixed_dictionaries(
    {},
    optional={
        "engine": st.fixed_dictionaries(
            {},
            optional={
                "gpuMemoryUtilization": _scalars,
                "maxModelLen": _scalars,
                "dtype": st.sampled_from(["auto", "bfloat16", "float99", ""]),
                "image": st.sampled_from([DEFAULT_IMAGE, "x", "vllm/vllm-openai:latest", "a:b"]),
            },
        ),
        "parallelism": st.fixed_dictionaries(
            {},
            optional={
                "tensorParallelSize": st.integers(-1, 16),
                "pipelineParallelSize": st.integers(-1, 4),
                "gpusPerNode": st.integers(0, 16),
            },
        ),
        "resources": st.fixed_dictionaries({}, optional={"gpuCount": _scalars, "memoryRequest": _scalars}),
        "replicas": _scalars,
        "name": st.text(max_size=10),
        "cache": st.fixed_dictionaries({}, optional={"size": _scalars, "accessMode": _scalars}),
        "bogus": _scalars,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(["meta-llama/Llama-3.1-8B-Instruct", "Qwen/Qwen3-14B", "unknown/model", ""]),
    sections=_sections,
)
def test_any_config_validates_or_fails_cleanly(model: str, sections: dict) -> None:
    raw = {"model": {"id": model}, **sections}
    try:
        plan = plan_serving(parse_stack_config(raw))
    except ConfigError as error:
        assert str(error).count("pulumi-vllm:") >= 1
        return
    assert plan.total_gpus >= 0
    assert plan.topology.world_size == (
        plan.config.parallelism.tensor_parallel_size * plan.config.parallelism.pipeline_parallel_size
    )
