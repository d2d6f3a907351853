"""Two models and a LoRA adapter behind the real vLLM router, every process started from its rendered command.

A two-model stack (``tiny-a`` with two replicas and the LoRA adapter ``sql``, ``tiny-b`` with one) is
rendered by the package. Each serving Deployment's container runs here as real vLLM (kubelet.py: the
command, arguments and environment as written; only the port moved), the router Deployment's two
containers run as written too: ``vllm-router`` from the pinned wheel, and the registration loop, whose
worker list is the rendered one with each headless Service's name replaced by the pods' loopback
address and port (what Kubernetes DNS would answer). Which server answered a request is read from the
servers' own ``vllm:request_success_total`` counters. Three vLLM servers at most run at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from pulumi_vllm.cli.render import RenderedStack, render_config
from pulumi_vllm.engine.router import ROUTER_URL_ENV, WORKERS_ENV

from .conftest import API_KEY
from .kubelet import local_container
from .server import VllmServer, free_port, http_request, metric_sum, start_vllm_server, stop_process
from .tiny_model import build_tiny_model

pytestmark = pytest.mark.realvllm

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ROUTER_STARTUP_SECONDS = 60.0
PREFIX = " ".join(["Kubernetes runs the server in a pod behind a service."] * 12)
"""A long shared prompt prefix (the router's cache-aware policy matches on the request text)."""


def make_adapter(model_dir: Path, target: Path) -> Path:
    """A rank-8 LoRA adapter for the tiny model, made with peft (random, seeded, non-zero weights)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    torch.manual_seed(7)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(target))
    return target


def stack_values(model_a: Path, model_b: Path, adapter: Path, policy: str) -> dict[str, Any]:
    """Two tiny models behind the router; ``a`` has two replicas and an adapter."""
    return {
        "name": "duo",
        "engine": {"dtype": "float32", "maxModelLen": 512, "extraArgs": ["--enforce-eager"]},
        "cache": {"accessMode": "ReadWriteMany"},
        "apiKey": API_KEY,
        "models": {
            "a": {"model": {"id": str(model_a), "servedModelName": "tiny-a"}, "replicas": 2,
                  "adapters": {"sql": str(adapter)}, "lora": {"maxLoraRank": 8}},
            "b": {"model": {"id": str(model_b), "servedModelName": "tiny-b"}},
        },
        "router": {"enabled": True, "policy": policy},
    }


def only(rendered: RenderedStack, kind: str, name: str) -> RenderedStack:
    """The render with one object of ``kind`` (the one named ``name``), for kubelet.local_container."""
    documents = [
        (path, doc) for path, doc in rendered.documents
        if not (isinstance(doc, dict) and doc.get("kind") == kind and doc["metadata"]["name"] != name)
    ]
    return dataclasses.replace(rendered, documents=documents)


def router_pod(rendered: RenderedStack) -> dict[str, dict[str, Any]]:
    """The rendered router Deployment's containers by name."""
    (deployment,) = [doc for _, doc in rendered.documents if isinstance(doc, dict) and doc.get("kind") == "Deployment"
                     and doc["metadata"]["name"] == "duo-router"]
    return {container["name"]: container for container in deployment["spec"]["template"]["spec"]["containers"]}


def set_option(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with the value after ``flag`` replaced."""
    at = argv.index(flag)
    return [*argv[: at + 1], value, *argv[at + 2:]]


def success_count(server: VllmServer) -> float:
    """The server's own count of finished requests (``vllm:request_success_total``, every reason and model)."""
    return metric_sum(server, "vllm:request_success_total")


@dataclasses.dataclass
class Fleet:
    """The running servers: two replicas of ``tiny-a``, one of ``tiny-b``."""

    a1: VllmServer
    a2: VllmServer
    b: VllmServer
    ports: dict[str, int]

    def counts(self) -> dict[str, float]:
        return {"a1": success_count(self.a1), "a2": success_count(self.a2), "b": success_count(self.b)}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> tuple[Path, Path, Path]:
    """Two tiny models (separate directories, served under different names) and an adapter for the first."""
    model_b = build_tiny_model(tmp_path_factory.mktemp("tiny-b"))
    adapter = make_adapter(tiny_model_dir, tmp_path_factory.mktemp("sql-adapter"))
    return tiny_model_dir, model_b, adapter


@pytest.fixture(scope="module")
def renders(models: tuple[Path, Path, Path]) -> dict[str, RenderedStack]:
    """The stack rendered with each policy the tests compare."""
    return {policy: render_config(stack_values(*models, policy)) for policy in ("cache_aware", "round_robin")}


@pytest.fixture(scope="module")
def fleet(renders: dict[str, RenderedStack], vllm_env: dict[str, str],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The three vLLM servers, started together from the rendered Deployments, stopped at the end."""
    rendered = renders["cache_aware"]
    ports = {"a1": free_port(), "a2": free_port(), "b": free_port()}
    deployments = {"a1": "duo-a", "a2": "duo-a", "b": "duo-b"}
    containers = {
        key: local_container(only(rendered, "Deployment", deployments[key]), "Deployment",
                             tmp_path_factory.mktemp(f"volumes-{key}"), port=ports[key])
        for key in ports
    }
    with contextlib.ExitStack() as stack:
        managers = {
            key: start_vllm_server(container.argv, {**container.env, **vllm_env}, ports[key],
                                   probe_path=container.probe_paths["readinessProbe"], startup_timeout=420)
            for key, container in containers.items()
        }
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {key: pool.submit(manager.__enter__) for key, manager in managers.items()}
            servers: dict[str, VllmServer] = {}
            for key, future in futures.items():
                with contextlib.suppress(Exception):
                    servers[key] = future.result(timeout=480)
                    stack.push(managers[key].__exit__)  # only a started server has something to stop
        missing = set(ports) - set(servers)
        assert not missing, f"vLLM did not start for {missing}"
        yield Fleet(servers["a1"], servers["a2"], servers["b"], ports)
    for server in servers.values():
        assert server.remaining_processes() == [], "a vLLM process outlived its stop"


def _workers(container: dict[str, Any], ports: dict[str, int]) -> list[dict[str, Any]]:
    """The rendered worker list with each Service name resolved as DNS would: to the pods' loopback addresses."""
    env = {item["name"]: item["value"] for item in container["env"]}
    replicas = {"duo-a": ("a1", "a2"), "duo-b": ("b",)}
    workers = []
    for group in json.loads(env[WORKERS_ENV]):
        service = group["dns"].split(".", 1)[0]
        for key in replicas["duo-a" if service.startswith("duo-a-") else "duo-b"]:
            host = "127.0.0.1" if group["host"] == "{ip}" else "localhost"  # the adapter's second pod name
            workers.append({**group, "dns": "127.0.0.1", "port": ports[key], "host": host})
    return workers


@contextlib.contextmanager
def running_router(rendered: RenderedStack, fleet: Fleet, log_dir: Path) -> Iterator[str]:
    """The rendered router pod (router and registration loop) on loopback; yields the router's URL."""
    containers = router_pod(rendered)
    router, registrar = containers["router"], containers["register-workers"]
    port, metrics = free_port(), free_port()
    argv = [*router["command"], *router["args"]]
    argv = set_option(set_option(argv, "--port", str(port)), "--prometheus-port", str(metrics))
    argv = set_option(set_option(argv, "--host", "127.0.0.1"), "--prometheus-host", "127.0.0.1")
    executable = shutil.which("vllm-router", path=str(Path(sys.executable).parent))
    assert executable, "vllm-router is not installed (pip install vllm-router==0.1.17)"
    env = {item["name"]: item["value"] for item in registrar["env"]}
    env[WORKERS_ENV] = json.dumps(_workers(registrar, fleet.ports))
    env[ROUTER_URL_ENV] = f"http://127.0.0.1:{port}"
    registrar_argv = [sys.executable if registrar["command"][0] == "python3" else registrar["command"][0],
                      *registrar["command"][1:]]
    processes = []
    try:
        with (log_dir / f"router-{port}.log").open("wb") as log:
            processes.append(subprocess.Popen([executable, *argv[1:]], stdout=log, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + ROUTER_STARTUP_SECONDS
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if http_request(base + "/readiness", timeout=2).status == 200:
                    break
            time.sleep(0.5)
        else:
            raise TimeoutError("the router did not become ready")
        with (log_dir / f"registrar-{port}.log").open("wb") as log:
            processes.append(subprocess.Popen(registrar_argv, env={"PATH": "/usr/bin:/bin", **env}, stdout=log,
                                              stderr=subprocess.STDOUT, start_new_session=True))
        wanted = len(json.loads(env[WORKERS_ENV]))
        while time.monotonic() < deadline + 30:
            if len(http_request(base + "/workers", timeout=5).json().get("workers", [])) == wanted:
                break
            time.sleep(0.5)
        yield base
    finally:
        for process in processes:
            stop_process(process)


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("router-logs")


@pytest.fixture(scope="module")
def cache_aware(renders: dict[str, RenderedStack], fleet: Fleet, log_dir: Path) -> Iterator[str]:
    with running_router(renders["cache_aware"], fleet, log_dir) as url:
        yield url


def _post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http_request(url + path, method="POST", body=body, headers=AUTH, timeout=120)
    assert response.status == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _deltas(fleet: Fleet, before: dict[str, float]) -> dict[str, float]:
    after = fleet.counts()
    return {key: after[key] - before[key] for key in after}


def test_the_router_lists_every_model_and_adapter(cache_aware: str) -> None:
    response = http_request(cache_aware + "/v1/models", headers=AUTH, timeout=10)
    assert response.status == 200, response.text
    # In Inference-Gateway mode the router answers its own shape, {"models": [...]}, not OpenAI's list.
    assert sorted(response.json()["models"]) == ["sql", "tiny-a", "tiny-b"]
    workers = http_request(cache_aware + "/workers", timeout=10).json()["workers"]
    assert sorted(worker["model_id"] for worker in workers) == ["sql", "sql", "tiny-a", "tiny-a", "tiny-b"]


@pytest.mark.parametrize("model, group", [("tiny-a", ("a1", "a2")), ("tiny-b", ("b",)), ("sql", ("a1", "a2"))])
@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions"])
def test_each_model_is_answered_by_its_own_servers(cache_aware: str, fleet: Fleet, model: str,
                                                   group: tuple[str, ...], route: str) -> None:
    before = fleet.counts()
    body: dict[str, Any] = {"model": model, "max_tokens": 4}
    if route == "/v1/chat/completions":
        body["messages"] = [{"role": "user", "content": f"Hello {model}"}]
    else:
        body["prompt"] = f"Hello {model}"
    answer = _post(cache_aware, route, body)
    assert answer["model"] == model
    deltas = _deltas(fleet, before)
    assert sum(deltas[key] for key in group) == 1, deltas
    assert sum(value for key, value in deltas.items() if key not in group) == 0, deltas


def test_the_adapter_changes_the_answer(cache_aware: str) -> None:
    """The adapter's weights are applied: greedy decoding of one prompt differs from the base model's."""
    texts = {
        model: _post(cache_aware, "/v1/completions", {"model": model, "prompt": "Hello", "max_tokens": 8,
                                                      "temperature": 0})["choices"][0]["text"]
        for model in ("tiny-a", "sql")
    }
    assert texts["tiny-a"] != texts["sql"], texts


REPEATS = 8


def _repeat_prefix(url: str) -> None:
    for index in range(REPEATS):
        _post(url, "/v1/completions", {"model": "tiny-a", "prompt": f"{PREFIX} question {index}", "max_tokens": 2})


def test_cache_aware_keeps_a_repeated_prefix_on_one_replica(cache_aware: str, fleet: Fleet) -> None:
    before = fleet.counts()
    _repeat_prefix(cache_aware)
    deltas = _deltas(fleet, before)
    print(f"cache_aware: requests finished per server {deltas}")
    assert deltas["b"] == 0
    assert sorted([deltas["a1"], deltas["a2"]]) == [0, REPEATS], deltas


def test_round_robin_spreads_the_same_prefix(renders: dict[str, RenderedStack], fleet: Fleet, log_dir: Path,
                                             cache_aware: str) -> None:
    with running_router(renders["round_robin"], fleet, log_dir) as url:
        before = fleet.counts()
        _repeat_prefix(url)
        deltas = _deltas(fleet, before)
    print(f"round_robin: requests finished per server {deltas}")
    assert deltas["b"] == 0
    assert deltas["a1"] + deltas["a2"] == REPEATS
    assert min(deltas["a1"], deltas["a2"]) >= REPEATS // 2 - 1, deltas
