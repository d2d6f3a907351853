"""Multi-model stacks and the router/LoRA keys: expansion, shared defaults, errors in the file's own key names."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.config.models import deep_merge
from pulumi_vllm.engine.argv import engine_args_from_config, vllm_command

TWO: dict[str, Any] = {
    "name": "chat",
    "namespace": "ml",
    "engine": {"dtype": "bfloat16", "maxModelLen": 8192},
    "resources": {"gpuType": "L40S"},
    "models": {
        "llama": {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "adapters": {"sql": "org/sql-lora"}},
        "qwen": {"model": {"id": "Qwen/Qwen2.5-7B-Instruct"}, "engine": {"maxModelLen": 16384}},
    },
    "router": {"enabled": True, "policy": "round_robin"},
}


def test_each_entry_is_a_whole_config_named_after_the_stack_and_its_key() -> None:
    config = parse_stack_config(TWO)
    assert list(config.models) == ["llama", "qwen"]
    llama, qwen = config.models["llama"], config.models["qwen"]
    assert (llama.name, qwen.name) == ("chat-llama", "chat-qwen")
    assert llama.namespace == qwen.namespace == "ml"
    # Shared defaults merged under each entry; the entry's own value wins, key by key.
    assert (llama.engine.max_model_len, qwen.engine.max_model_len) == (8192, 16384)
    assert llama.engine.dtype == qwen.engine.dtype == "bfloat16"
    assert llama.adapters == {"sql": "org/sql-lora"} and qwen.adapters == {}
    # The root is the first model's view with the stack's name, router and (one) quota.
    assert config.name == "chat" and config.router.policy == "round_robin"
    assert config.model.id == "meta-llama/Llama-3.1-8B-Instruct"


def test_a_single_model_stack_is_unchanged() -> None:
    config = parse_stack_config({"model": {"id": "Qwen/Qwen2.5-7B-Instruct"}})
    assert config.models == {} and not config.router.enabled and config.adapters == {}


def test_one_quota_for_the_namespace_never_one_per_model() -> None:
    config = parse_stack_config({**TWO, "quota": {"enabled": True}})
    assert config.quota.enabled
    assert not any(member.quota.enabled for member in config.models.values())


def test_errors_name_the_key_where_the_file_sets_it() -> None:
    raw = {**TWO, "engine": {"gpuMemoryUtilization": 1.5},
           "models": {"llama": {"model": {"id": "org/a"}, "engine": {"dtype": "int3"}}}}
    with pytest.raises(ConfigError) as error:
        parse_stack_config(raw)
    message = str(error.value)
    assert "pulumi-vllm:models.llama.engine.dtype: 'int3' is not accepted" in message
    assert "pulumi-vllm:engine.gpuMemoryUtilization: 1.5 is not accepted" in message
    assert "(the shared default, for models.llama)" in message


@pytest.mark.parametrize(
    "entry, expected",
    [
        ({"model": {"id": "org/a"}, "namespace": "x"}, "pulumi-vllm:models.m.namespace: belongs to the whole stack"),
        ({"model": {"id": "org/a"}, "adapters": {"bad name": "org/x"}}, "pulumi-vllm:models.m.adapters"),
        ({"model": {"id": "org/a"}, "adapters": {"x": "not-a-repo"}}, "is not a Hugging Face id"),
        ({"model": {"id": "org/a"}, "unknownKey": 1}, "pulumi-vllm:models.m.unknownKey: unknown key"),
        ({"engine": {}}, "pulumi-vllm:models.m.model: required but not set"),
    ],
)
def test_bad_entries_are_refused_with_their_key(entry: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError, match="invalid stack configuration") as error:
        parse_stack_config({"models": {"m": entry}})
    assert expected in str(error.value)


def test_model_and_models_together_are_refused() -> None:
    with pytest.raises(ConfigError, match="set either model .* or models"):
        parse_stack_config({**TWO, "model": {"id": "org/a"}})


def test_a_model_key_must_be_a_dns_label() -> None:
    with pytest.raises(ConfigError, match="pulumi-vllm:models.Big_Model: 'Big_Model' is not a DNS label"):
        parse_stack_config({"models": {"Big_Model": {"model": {"id": "org/a"}}}})


@pytest.mark.parametrize("router, expected", [
    ({"policy": "fastest"}, "pulumi-vllm:router.policy: 'fastest' is not accepted"),
    ({"image": "vllm/vllm-router:latest"}, "is not pinned"),
    ({"extraArgs": ["--port", "9"]}, "is set by pulumi-vllm itself"),
    ({"gateway": {"httpRoute": True}}, "httpRoute needs parentRefs"),
    ({"gateway": {"inferencePools": True}}, "inferencePools needs endpointPicker"),
])
def test_router_refusals(router: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_stack_config({**TWO, "router": router})
    assert expected in str(error.value)


def test_adapters_become_vllm_lora_flags() -> None:
    member = parse_stack_config(TWO).models["llama"]
    argv = vllm_command(engine_args_from_config(member)).argv
    at = argv.index("--enable-lora")
    assert argv[at:] == ["--enable-lora", "--lora-modules", "sql=org/sql-lora", "--max-loras", "1",
                         "--max-lora-rank", "16"]
    assert "--enable-lora" not in vllm_command(engine_args_from_config(parse_stack_config(TWO).models["qwen"])).argv


def test_runtime_loading_sets_vllms_switch_and_enables_lora() -> None:
    config = parse_stack_config({"model": {"id": "org/a"}, "lora": {"runtimeLoading": True},
                                 "engine": {"env": {"OTHER": "1"}}})
    assert config.engine.env == {"OTHER": "1", "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    argv = vllm_command(engine_args_from_config(config)).argv
    assert argv[argv.index("--enable-lora"):] == ["--enable-lora", "--max-lora-rank", "16"]


_maps = st.recursive(
    st.integers() | st.text(max_size=3),
    lambda children: st.dictionaries(st.sampled_from("abc"), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(base=st.dictionaries(st.sampled_from("abc"), _maps, max_size=3),
       override=st.dictionaries(st.sampled_from("abc"), _maps, max_size=3))
def test_deep_merge_keeps_every_override_and_every_untouched_default(base: dict[str, Any],
                                                                     override: dict[str, Any]) -> None:
    merged = deep_merge(base, override)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            assert merged[key] == deep_merge(base[key], value)
        else:
            assert merged[key] == value
    for key, value in base.items():
        if key not in override:
            assert merged[key] == value


def test_the_pre_download_job_fetches_hub_adapters_too() -> None:
    from pulumi_vllm.cli.render import render_config

    rendered = render_config({"name": "w", "model": {"id": "org/base"}, "warmup": {"enabled": True},
                              "adapters": {"x": "org/x-lora", "local": "/root/.cache/huggingface/local-lora"}})
    (job,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    script = "\n".join([*container.get("command", []), *container.get("args", [])])
    downloads = [line.split()[2] for line in script.splitlines() if line.startswith("hf download")]
    assert downloads == ["org/base", "org/x-lora"]  # a path in the cache is not a Hub repository
