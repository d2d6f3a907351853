"""The router's objects as rendered, its command line read by the router's own parser, its registration loop.

The example stack ``two-models-router`` and variants of it are rendered under Pulumi's mock runtime; the
router's arguments go through ``vllm_router.launch_router.parse_router_args`` (the pinned wheel), the
serving commands with LoRA flags through vLLM's parser, and the registration loop runs against a real
``vllm-router`` process on loopback (it registers workers whether or not they answer yet).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from schemas import validate_object
from stacks import stack_file

from pulumi_vllm.cli.render import RenderedStack, render_config, render_stack
from pulumi_vllm.config import ConfigError, parse_stack_config
from pulumi_vllm.config.routing import ROUTER_POLICIES
from pulumi_vllm.engine.router import (
    REGISTRAR_SCRIPT,
    ROUTER_METRICS_PORT,
    ROUTER_PORT,
    ROUTER_URL_ENV,
    ROUTER_VERSION,
    WORKERS_ENV,
    worker_urls,
)
from pulumi_vllm.kubernetes.router import check_router, models_quota_gpus

REPO = Path(__file__).resolve().parents[1]
STACK = "two-models-router"


def _objects(rendered: RenderedStack) -> list[dict[str, Any]]:
    return [doc for _, doc in rendered.documents if isinstance(doc, dict) and "kind" in doc]


def _named(rendered: RenderedStack, kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in _objects(rendered) if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


def _values() -> dict[str, Any]:
    stack = yaml.safe_load(stack_file(STACK).read_text())["config"]
    return {key.split(":", 1)[1]: value for key, value in stack.items()}


@pytest.fixture(scope="module")
def example() -> RenderedStack:
    return render_stack(REPO, STACK, env={})


@pytest.fixture(scope="module")
def router_containers(example: RenderedStack) -> dict[str, dict[str, Any]]:
    pod = _named(example, "Deployment", "chat-router")["spec"]["template"]["spec"]
    return {container["name"]: container for container in pod["containers"]}


def test_router_deployment_budget_and_service(example: RenderedStack) -> None:
    deployment = _named(example, "Deployment", "chat-router")
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    assert deployment["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    budget = _named(example, "PodDisruptionBudget", "chat-router")
    assert budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": selector}}
    service = _named(example, "Service", "chat-router")
    assert service["spec"]["selector"] == selector
    assert {(port["name"], port["port"]) for port in service["spec"]["ports"]} == {
        ("http", 80), ("metrics", ROUTER_METRICS_PORT)}
    # No RBAC: the pods are found through DNS, not the Kubernetes API.
    assert not {"ServiceAccount", "Role", "RoleBinding"} & {doc["kind"] for doc in _objects(example)}


def test_base_url_is_the_routers(example: RenderedStack) -> None:
    outputs = example.run.outputs
    assert outputs["baseUrl"] == "http://chat-router.vllm-models.svc.cluster.local/v1"
    assert sorted(outputs["models"]) == ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "sql"]


def test_headless_services_select_each_groups_serving_pods(example: RenderedStack,
                                                           router_containers: dict[str, Any]) -> None:
    env = {item["name"]: item["value"] for item in router_containers["register-workers"]["env"]}
    groups = json.loads(env[WORKERS_ENV])
    assert env[ROUTER_URL_ENV] == f"http://127.0.0.1:{ROUTER_PORT}"
    by_model = {group["model"]: group for group in groups}
    assert sorted(by_model) == ["llama-3.1-8b-instruct", "qwen2.5-7b-instruct", "sql"]
    deployments = {"llama-3.1-8b-instruct": "chat-llama", "qwen2.5-7b-instruct": "chat-qwen", "sql": "chat-llama"}
    for model, group in by_model.items():
        service = _named(example, "Service", group["dns"].split(".")[0])
        assert service["spec"]["clusterIP"] == "None"
        assert group["dns"].endswith(".vllm-models.svc.cluster.local")
        pod_labels = _named(example, "Deployment", deployments[model])["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items(), model
        assert group["port"] == 8000
    # The adapter is registered under the pods' second name (its own headless Service), one URL per model id.
    sql, base = by_model["sql"], by_model["llama-3.1-8b-instruct"]
    assert worker_urls(sql, ["10.0.0.7"]) == ["http://10-0-0-7.chat-llama-adapter-1.vllm-models.svc.cluster.local:8000"]
    assert worker_urls(base, ["10.0.0.7"]) == ["http://10.0.0.7:8000"]


def test_one_gpu_quota_counts_every_model(example: RenderedStack) -> None:
    (quota,) = [doc for doc in _objects(example) if doc["kind"] == "ResourceQuota"]
    gpus = sum(
        int(container["resources"]["limits"].get("nvidia.com/gpu", 0)) * doc["spec"]["replicas"]
        for doc in _objects(example) if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
    )
    assert gpus == 3
    assert quota["spec"]["hard"]["requests.nvidia.com/gpu"] == str(gpus)


def test_a_quota_below_the_models_gpus_is_refused() -> None:
    config = parse_stack_config({**_values(), "quota": {"enabled": True, "gpus": 2}})
    with pytest.raises(ConfigError, match=r"quota.gpus: 2 is below the 3 GPUs the stack's models request together"):
        models_quota_gpus(config)
    assert models_quota_gpus(parse_stack_config({**_values(), "quota": {"enabled": True}})) == 3


def _router_parser() -> argparse.ArgumentParser:
    router_args = pytest.importorskip("vllm_router.router_args")
    parser = argparse.ArgumentParser()
    router_args.RouterArgs.add_cli_args(parser)
    return parser


def test_the_pinned_wheel_is_installed() -> None:
    from importlib.metadata import version

    pytest.importorskip("vllm_router")
    assert version("vllm-router") == ROUTER_VERSION


def test_policies_are_the_routers_own() -> None:
    (policy,) = [action for action in _router_parser()._actions if "--policy" in action.option_strings]
    assert tuple(policy.choices or ()) == ROUTER_POLICIES


@pytest.mark.parametrize("policy", ROUTER_POLICIES)
def test_the_rendered_router_command_parses_with_the_router(policy: str) -> None:
    launch = pytest.importorskip("vllm_router.launch_router")
    values = {**_values(), "router": {**_values()["router"], "policy": policy, "extraArgs": ["--log-level", "info"]}}
    rendered = render_config(values)
    container = _named(rendered, "Deployment", "chat-router")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["vllm-router"]
    parsed = launch.parse_router_args(container["args"])
    assert parsed.enable_igw is True and parsed.policy == policy and parsed.log_level == "info"
    assert parsed.port == ROUTER_PORT and parsed.prometheus_port == ROUTER_METRICS_PORT
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"http": parsed.port, "metrics": parsed.prometheus_port}
    assert parsed.worker_urls == []  # Inference-Gateway mode: workers come from /workers


def test_a_misspelt_router_flag_is_refused_by_its_parser() -> None:
    launch = pytest.importorskip("vllm_router.launch_router")
    rendered = render_config({**_values(), "router": {"enabled": True, "extraArgs": ["--polcy", "x"]}})
    container = _named(rendered, "Deployment", "chat-router")["spec"]["template"]["spec"]["containers"][0]
    with pytest.raises(SystemExit):
        launch.parse_router_args(container["args"])


def test_the_lora_flags_parse_with_vllm(example: RenderedStack) -> None:
    check = pytest.importorskip("pulumi_vllm.engine.check")
    pytest.importorskip("vllm")
    container = _named(example, "Deployment", "chat-llama")["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["vllm", "serve"]
    namespace = check.check_serve_args(container["args"])
    assert namespace.enable_lora is True and namespace.max_loras == 1 and namespace.max_lora_rank == 16
    modules = [(module.name, module.path) for module in namespace.lora_modules]
    assert modules == [("sql", "org-ml/llama-3.1-8b-sql-lora")]


def test_gateway_objects_match_their_crds() -> None:
    gateway = {"httpRoute": True, "parentRefs": [{"name": "inference", "namespace": "gateways"}],
               "hostnames": ["llm.example.com"], "inferencePools": True, "endpointPicker": "chat-epp"}
    rendered = render_config({**_values(), "router": {"enabled": True, "gateway": gateway}})
    route = _named(rendered, "HTTPRoute", "chat-router")
    pools = [doc for doc in _objects(rendered) if doc["kind"] == "InferencePool"]
    for manifest in [route, *pools]:
        validate_object(manifest)  # strict: the CRDs from ../shared/crds
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "chat-router", "port": 80}]
    assert route["spec"]["parentRefs"][0]["name"] == "inference"
    assert sorted(pool["metadata"]["name"] for pool in pools) == ["chat-llama", "chat-qwen"]
    for pool in pools:
        labels = _named(rendered, "Deployment", pool["metadata"]["name"])["spec"]["template"]["metadata"]["labels"]
        assert pool["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pool["spec"]["targetPorts"] == [{"number": 8000}]


def test_an_invalid_pool_is_refused_by_the_crd() -> None:
    import jsonschema

    rendered = render_config({**_values(), "router": {"enabled": True, "gateway": {
        "inferencePools": True, "endpointPicker": "chat-epp"}}})
    pool = _named(rendered, "InferencePool", "chat-qwen")
    with pytest.raises(jsonschema.ValidationError):
        validate_object({**pool, "spec": {**pool["spec"], "targetPorts": [{"number": 0}]}})


def test_a_single_model_stack_can_have_the_router_in_front() -> None:
    rendered = render_config({"name": "one", "model": {"id": "Qwen/Qwen2.5-7B-Instruct"}, "replicas": 2,
                              "cache": {"accessMode": "ReadWriteMany"}, "router": {"enabled": True}})
    assert rendered.run.outputs["baseUrl"] == "http://one-router.default.svc.cluster.local/v1"
    assert _named(rendered, "Service", "one-workers")["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("values, expected", [
    ({"target": "docker", "docker": {"hosts": [{"name": "g", "dockerHost": "unix:///var/run/docker.sock"}]}},
     "the router runs on Kubernetes"),
    ({"models": {"a": {"model": {"id": "org/a", "servedModelName": "same"}},
                 "b": {"model": {"id": "org/b", "servedModelName": "same"}}}},
     "pulumi-vllm:models.b.model.servedModelName: 'same' is not accepted: it is also served by models.a"),
])
def test_what_the_router_cannot_front_is_refused(values: dict[str, Any], expected: str) -> None:
    base = {"name": "x", "model": {"id": "org/a"}, "router": {"enabled": True}}
    if "models" in values:
        base.pop("model")
    with pytest.raises(ConfigError) as error:
        check_router(parse_stack_config({**base, **values}))
    assert expected in str(error.value)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_the_registration_loop_registers_each_pod_under_its_model(tmp_path: Path) -> None:
    pytest.importorskip("vllm_router")
    executable = shutil.which("vllm-router", path=str(Path(sys.executable).parent))
    assert executable
    port = _free_port()
    log = (tmp_path / "router.log").open("wb")
    router = subprocess.Popen([executable, "--enable-igw", "--host", "127.0.0.1", "--port", str(port),
                               "--policy", "cache_aware"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                _get(f"http://127.0.0.1:{port}/workers")
                break
            except OSError:
                time.sleep(0.2)
        groups = [
            {"model": "base", "dns": "127.0.0.1", "port": 8001, "host": "{ip}"},
            {"model": "adapter", "dns": "localhost", "port": 8001, "host": "{ip_dashed}.alias"},
            {"model": "gone", "dns": "no-such-name.invalid", "port": 8002, "host": "{ip}"},
        ]
        env = {WORKERS_ENV: json.dumps(groups), ROUTER_URL_ENV: f"http://127.0.0.1:{port}",
               "ROUTER_REGISTER_ONCE": "1", "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-c", REGISTRAR_SCRIPT], check=False, env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        workers = {item["url"]: item["model_id"] for item in _get(f"http://127.0.0.1:{port}/workers")["workers"]}
        assert workers == {"http://127.0.0.1:8001": "base", "http://127-0-0-1.alias:8001": "adapter"}
        assert sorted(_get(f"http://127.0.0.1:{port}/v1/models")["models"]) == ["adapter", "base"]
    finally:
        router.terminate()
        router.wait(timeout=15)
        log.close()


def test_the_render_summary_counts_every_model_group() -> None:
    from pulumi_vllm.cli.render import render_stack
    from pulumi_vllm.plan import plan_serving

    rendered = render_stack(REPO, "two-models-router", env={})
    assert rendered.config is not None
    lines = rendered.summary()
    total = sum(plan_serving(member).total_gpus for member in rendered.config.models.values())
    assert total == 3
    assert lines[0] == f"models:   2 groups, {total} x nvidia.com/gpu in all"
    for key, member in rendered.config.models.items():
        assert any(line.startswith(f"  {key}: {member.model.id} ") for line in lines)
