"""engine.kind through the whole stack: refusals before anything is created, the rendered workload of each engine,
the Docker target of the single-host engines, and the planner's "not estimated"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from schemas import validate_object
from stacks import stack_file

from pulumi_vllm.cli import main
from pulumi_vllm.cli.render import render_config, render_stack
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.engine.profiles import ENGINE_KINDS, profile
from pulumi_vllm.plan import plan_serving
from pulumi_vllm.render.summary import summary_lines

REPO = Path(__file__).resolve().parents[1]
LLAMA_8B = {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "resources": {"gpuType": "L40S"}}
ENGINE_STACKS = {
    "llama.cpp": "engine-llama-cpp",
    "ollama": "engine-ollama",
    "tgi": "engine-tgi",
    "tensorrt-llm": "engine-tensorrt-llm",
    "triton": "engine-triton",
    "ray-serve-llm": "engine-ray-serve-llm",
    "deepspeed-mii": "engine-deepspeed-mii",
    "megatron": "engine-megatron",
}


def _manifests(rendered: Any) -> list[dict[str, Any]]:
    return [doc for name, doc in rendered.documents if name.endswith(".yaml") and isinstance(doc, dict) and "kind" in doc]


def _of_kind(rendered: Any, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in _manifests(rendered) if doc["kind"] == kind]


def _refused(values: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as error:
        plan_serving(parse_stack_config(values))
    return str(error.value)


def test_every_engine_but_vllm_has_an_example_stack() -> None:
    assert sorted(ENGINE_STACKS) == sorted(kind for kind in ENGINE_KINDS if kind != "vllm")
    for stack in ENGINE_STACKS.values():
        assert stack_file(stack).is_file()


@pytest.mark.parametrize("kind", sorted(ENGINE_STACKS))
def test_each_engine_stack_serves_its_profile_on_the_stack_service(kind: str) -> None:
    rendered = render_stack(REPO, ENGINE_STACKS[kind], env={"PULUMI_VLLM_SECRET_HF_TOKEN": "hf_test"})
    engine = profile(kind)
    for manifest in _manifests(rendered):
        validate_object(manifest)
    if kind == "ray-serve-llm":
        (service,) = _of_kind(rendered, "RayService")
        head = service["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
        assert engine.port in [port["containerPort"] for port in head["ports"]]
        return
    (deployment,) = _of_kind(rendered, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == rendered.config.engine.image
    assert container["ports"] == [{"name": "http", "containerPort": engine.port, "protocol": "TCP"}]
    if engine.health_path is None:
        assert container["livenessProbe"]["tcpSocket"] == {"port": "http"}
    else:
        assert container["livenessProbe"]["httpGet"]["path"] == engine.health_path
    if engine.ready_command(_spec(rendered)) is None:
        assert container["readinessProbe"]["httpGet"]["path"] == engine.ready_path
    else:
        assert "exec" in container["readinessProbe"]
    # The container runs exactly the profile's command line.
    assert [*container["command"], *container["args"]] == engine.command(_spec(rendered)).argv
    (service,) = _of_kind(rendered, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert any(line.startswith(f"engine:   {kind} ") for line in summary_lines(rendered))


def _spec(rendered: Any) -> Any:
    from pulumi_vllm.engine.profiles.stack import serve_spec

    plan = rendered.plan
    return serve_spec(plan.config, gpus=plan.gpus_per_pod, cache_path="/root/.cache/huggingface")


def test_engine_files_are_a_configmap_mounted_read_only() -> None:
    rendered = render_stack(REPO, "engine-triton", env={"PULUMI_VLLM_SECRET_HF_TOKEN": "hf_test"})
    (config_map,) = _of_kind(rendered, "ConfigMap")
    engine = profile("triton")
    files = engine.files(_spec(rendered))
    assert sorted(config_map["data"].values()) == sorted(files.values())
    pod = _of_kind(rendered, "Deployment")[0]["spec"]["template"]["spec"]
    (volume,) = [volume for volume in pod["volumes"] if volume["name"] == "engine-files"]
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    assert sorted(item["path"] for item in volume["configMap"]["items"]) == sorted(files)
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "engine-files")
    assert mount["readOnly"] is True


def test_the_api_key_goes_to_the_engines_own_variable() -> None:
    engine = profile("llama.cpp")
    assert engine.api_key_env and engine.api_key_env != "VLLM_API_KEY"
    rendered = render_config(
        {**LLAMA_8B, "model": {"id": "org/model-GGUF"}, "engine": {"kind": "llama.cpp", "modelFile": "m.gguf"},
         "apiKey": "sk-test-key-123"}
    )
    container = _of_kind(rendered, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    names = [item["name"] for item in container["env"]]
    assert engine.api_key_env in names and "VLLM_API_KEY" not in names
    assert "sk-test-key-123" not in json.dumps(_manifests(rendered))


def test_the_network_policy_opens_the_engines_port() -> None:
    rendered = render_config(
        {**LLAMA_8B, "engine": {"kind": "tgi"}, "networkPolicy": {"enabled": True, "allowFromNamespaces": ["apps"]}}
    )
    ports = [
        port["port"]
        for policy in _of_kind(rendered, "NetworkPolicy")
        for rule in policy["spec"].get("ingress", [])
        for port in rule.get("ports", [])
    ]
    assert profile("tgi").port in ports and 8000 not in ports


def test_the_planner_does_not_estimate_other_engines() -> None:
    rendered = render_config({**LLAMA_8B, "engine": {"kind": "tgi"}})
    assert rendered.plan.capacity is None
    assert "capacity: not estimated (engine.kind tgi: the planner's accounting is vLLM's)" in summary_lines(rendered)
    # Triton runs vLLM's engine: the accounting applies.
    triton = {**LLAMA_8B, "model": {**LLAMA_8B["model"], "servedModelName": "llama"}, "engine": {"kind": "triton"}}
    assert plan_serving(parse_stack_config(triton)).capacity is not None


def test_size_says_not_estimated_for_an_engine_not_built_on_vllm(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "L4", "--engine", "tgi", "--json"])
    assert status == 3
    figures = json.loads(capsys.readouterr().out)
    assert figures["estimated"] is False and figures["engine"] == "tgi"
    assert main(["size", "--model", "meta-llama/Llama-3.1-8B-Instruct", "--gpu", "L40S", "--engine", "triton"]) == 0


# Refusals: one message naming the key as written, the value and what is accepted, before anything is created.


def test_an_engine_without_an_api_key_refuses_api_key() -> None:
    message = _refused({**LLAMA_8B, "model": {"id": "llama3.1:8b"}, "engine": {"kind": "ollama"}, "apiKey": "sk-x-123456"})
    assert message.startswith("pulumi-vllm:apiKey: [secret] is not accepted with engine.kind 'ollama'")
    assert "sk-x-123456" not in message


def test_docker_target_takes_only_single_host_engines() -> None:
    docker = {"target": "docker", "docker": {"hosts": [{"name": "local", "gpus": ["0"]}]}}
    message = _refused({**LLAMA_8B, **docker, "engine": {"kind": "tensorrt-llm"}})
    assert message.startswith("pulumi-vllm:target: 'docker' is not accepted with engine.kind 'tensorrt-llm'")
    assert "vllm, llama.cpp, ollama and tgi" in message


def test_a_single_pod_engine_refuses_a_multi_node_layout() -> None:
    message = _refused(
        {**LLAMA_8B, "engine": {"kind": "tensorrt-llm"},
         "parallelism": {"tensorParallelSize": 4, "pipelineParallelSize": 2, "gpusPerNode": 4}}
    )
    assert message.startswith("pulumi-vllm:parallelism: 8 GPUs over 2 pods is not accepted with engine.kind 'tensorrt-llm'")


def test_an_engine_setting_the_engine_cannot_honour_is_refused() -> None:
    message = _refused(
        {**LLAMA_8B, "model": {"id": "org/m-GGUF"}, "engine": {"kind": "llama.cpp", "modelFile": "m.gguf",
                                                               "kvCacheDtype": "fp8"}}
    )
    assert message.startswith("pulumi-vllm:engine.kvCacheDtype: 'fp8' is not accepted with engine.kind 'llama.cpp'")


def test_several_problems_come_in_one_message() -> None:
    message = _refused(
        {**LLAMA_8B, "engine": {"kind": "tgi"}, "batch": {"enabled": True, "inputPath": "/data/in.jsonl"},
         "monitoring": {"enabled": True}}
    )
    assert message.startswith("invalid stack configuration:\n  pulumi-vllm:")
    assert "pulumi-vllm:batch.enabled: true is not accepted with engine.kind 'tgi'" in message
    assert "pulumi-vllm:monitoring.enabled: true is not accepted with engine.kind 'tgi'" in message


def test_an_engine_without_an_image_needs_one() -> None:
    message = _refused({**LLAMA_8B, "engine": {"kind": "megatron", "modelFile": "ckpt"}})
    assert "pulumi-vllm:engine.image: is required with engine.kind 'megatron'" in message


def test_the_router_fronts_vllm_model_groups_only() -> None:
    values = {
        "resources": {"gpuType": "L40S"},
        "router": {"enabled": True},
        "models": {"a": {"model": {"id": "Qwen/Qwen2.5-7B-Instruct"}}, "b": {"model": {"id": "meta-llama/Llama-3.1-8B-Instruct"}, "engine": {"kind": "tgi"}}},
    }
    from pulumi_vllm.kubernetes.router import check_router

    with pytest.raises(ConfigError) as error:
        check_router(parse_stack_config(values))
    assert "pulumi-vllm:models.b.engine.kind: 'tgi' is not accepted behind the router" in str(error.value)


def test_vllm_flags_are_checked_only_for_vllm() -> None:
    with pytest.raises(ConfigError):
        parse_stack_config({**LLAMA_8B, "engine": {"extraArgs": ["--num-shard", "2"]}})
    config = parse_stack_config({**LLAMA_8B, "engine": {"kind": "tgi", "extraArgs": ["--max-batch-prefill-tokens", "4096"]}})
    assert config.engine.extra_args == ["--max-batch-prefill-tokens", "4096"]


@pytest.mark.parametrize("kind", [kind for kind in ENGINE_KINDS if profile(kind).image])
def test_the_default_image_is_the_profiles_pinned_image(kind: str) -> None:
    config = parse_stack_config({**LLAMA_8B, "engine": {"kind": kind}})
    image = profile(kind).image
    assert config.engine.image == image
    assert not image.endswith(":latest") and (":" in image.rsplit("/", 1)[-1] or "@sha256:" in image)


def test_the_ollama_docker_stack_runs_the_profiles_command_and_health_check() -> None:
    rendered = render_stack(REPO, "docker-ollama", env={})
    compose = [doc for name, doc in rendered.documents if name.endswith("compose.yaml")]
    assert compose, [name for name, _ in rendered.documents]
    (service,) = compose[0]["services"].values()
    engine = profile("ollama")
    assert service["image"] == engine.image
    assert any(str(engine.port) in str(port) for port in service["ports"])
    ready = engine.ready_command(_spec(rendered))
    assert service["healthcheck"]["test"] == ["CMD", *(ready or ())] or ready is None


def _readme_engine_rows() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in (REPO / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| `") and cells[0].strip("`") in ENGINE_KINDS:
            rows[cells[0].strip("`")] = cells
    return rows


@pytest.mark.parametrize("kind", ENGINE_KINDS)
def test_the_readme_engine_table_says_what_the_profiles_do(kind: str) -> None:
    row = _readme_engine_rows()[kind]
    engine = profile(kind)
    image, routes = row[1], row[4]
    if engine.image:
        assert f"`{engine.image}`" in image
    else:
        assert image.startswith("none published")
    written = [part.strip("`") for part in routes.split(" (")[0].split(", ")]
    if engine.openai_paths:
        assert written == list(engine.openai_paths)
    else:
        assert routes.startswith("none")


DOCKER_ENGINES = {
    "llama.cpp": {"model": {"id": "org/model-GGUF"}, "engine": {"kind": "llama.cpp", "modelFile": "m.gguf"}},
    "ollama": {"model": {"id": "qwen2.5:7b"}, "engine": {"kind": "ollama"}},
    "tgi": {"model": {"id": "Qwen/Qwen2.5-7B-Instruct"}, "engine": {"kind": "tgi"}},
}


@pytest.mark.parametrize("kind", sorted(DOCKER_ENGINES))
def test_single_host_engines_run_on_docker_with_their_command_port_and_health_check(kind: str) -> None:
    from test_compose import _validate

    engine = profile(kind)
    values = {
        **DOCKER_ENGINES[kind], "target": "docker",
        "docker": {"hosts": [{"name": "local", "gpus": ["0"]}], "port": 9999},
    }
    if engine.api_key_env:
        values["apiKey"] = "sk-docker-key-123"
    rendered = render_config(values)
    compose = {name: doc for name, doc in rendered.documents if name.startswith("compose")}
    (document,) = compose.values()
    _validate(document)
    (service,) = document["services"].values()
    spec = _spec(rendered)
    command = engine.command(spec)
    def unescaped(words: list[str]) -> list[str]:
        return [word.replace("$$", "$") for word in words]  # Compose's escape of a literal $

    assert unescaped(service["entrypoint"]) == list(command.command)
    assert unescaped(service["command"]) == list(command.args)
    assert service["ports"][0]["target"] == engine.port and service["ports"][0]["published"] in (9999, "9999")
    ready = engine.ready_command(spec)
    expected = ready or engine.http_check(f"http://127.0.0.1:{engine.port}{engine.ready_path}")
    assert service["healthcheck"]["test"] == ["CMD", *expected]
    if engine.api_key_env:
        assert engine.api_key_env in json.dumps(service["environment"])
        assert "sk-docker-key-123" not in json.dumps(document)


def test_an_engine_without_openai_routes_gets_its_server_root_as_base_url() -> None:
    values = {**LLAMA_8B, "engine": {"kind": "megatron", "image": "registry.example.com/megatron:1", "modelFile": "ckpt"}}
    plan = plan_serving(parse_stack_config(values))
    assert plan.base_url.endswith(".svc.cluster.local") and plan.api_root == ""
    assert plan_serving(parse_stack_config({**LLAMA_8B, "engine": {"kind": "tgi"}})).base_url.endswith("/v1")
